"""Hot-path writes sent to the driver's cursor store exactly what SQLAlchemy itself would store."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, select, update

from engine.store.driver import DriverStatement
from engine.store.models import ProcessDefinition, ProcessInstance, Task, table_of

_TASK = table_of(Task)
COLUMNS = ["id", "instance_id", "spec_name", "title", "lane", "form_key", "site_id", "status", "restricted",
           "assignee", "urgency", "due_at", "created_at", "ended_at", "ended_by"]


def _case(session) -> int:
    definition = ProcessDefinition(process_id="p", version=1, name="p", content_hash="h" * 64, source="{}",
                                   deployed_at=datetime(2026, 1, 1, tzinfo=UTC), deployed_by="t")
    session.add(definition)
    session.flush()
    case = ProcessInstance(definition_id=definition.id, process_id="p", status="running", state="{}",
                           version=1, audit_seq=0, audit_hash="0" * 64,
                           started_by="t", started_at=datetime(2026, 1, 1, tzinfo=UTC),
                           updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    session.add(case)
    session.flush()
    return case.id


def _row(task_id: str, instance_id: int, due: datetime | None) -> dict:
    return {"id": task_id, "instance_id": instance_id, "spec_name": "ask", "title": "Répondre « vite »",
            "lane": "requester", "form_key": None, "site_id": None, "status": "open", "restricted": True,
            "assignee": None, "urgency": 2, "due_at": due, "created_at": datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
            "ended_at": None, "ended_by": None}


def test_driver_insert_reads_back_like_a_sqlalchemy_insert(ctx):
    due = datetime(2026, 3, 1, 9, 30, 0, 0, tzinfo=UTC)  # zero microseconds: the format must still match
    with ctx.write() as session:
        instance_id = _case(session)
        DriverStatement(insert(_TASK), COLUMNS).execute(session, [_row("a", instance_id, due),
                                                                  _row("b", instance_id, None)])
        session.connection().execute(insert(_TASK), [_row("c", instance_id, due)])
        session.commit()
    with ctx.read() as session:
        rows = {r.id: r for r in session.execute(select(_TASK).order_by(_TASK.c.id))}
        later = session.execute(select(_TASK.c.id).where(_TASK.c.due_at > datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
                                ).scalars().all()
    assert rows["a"]._asdict() | {"id": "c"} == rows["c"]._asdict()
    assert rows["a"].due_at == due and rows["a"].restricted is True and rows["b"].due_at is None
    assert sorted(later) == ["a", "c"]  # compared in SQL: same stored format for both writers


def test_driver_update_reports_how_many_rows_it_changed(ctx):
    end = DriverStatement(update(_TASK).where(_TASK.c.id == bindparam("b_id"), _TASK.c.status == "open")
                          .values(status=bindparam("status")))
    with ctx.write() as session:
        instance_id = _case(session)
        DriverStatement(insert(_TASK), COLUMNS).execute(session, [_row("a", instance_id, None)])
        assert end.execute(session, [{"b_id": "a", "status": "completed"}]) == 1
        assert end.execute(session, [{"b_id": "a", "status": "completed"}]) == 0  # guard no longer matches
        assert end.execute(session, []) == 0
        session.commit()
    with ctx.read() as session:
        assert session.execute(select(_TASK.c.status)).scalar_one() == "completed"


def test_driver_writes_roll_back_with_the_session(ctx):
    with ctx.write() as session:
        instance_id = _case(session)
        session.commit()
    with ctx.write() as session:
        DriverStatement(insert(_TASK), COLUMNS).execute(session, [_row("a", instance_id, None)])
        session.rollback()
    with ctx.read() as session:
        assert session.execute(select(_TASK.c.id)).all() == []


def test_driver_query_gives_the_values_sqlalchemy_would(ctx):
    from engine.store.driver import DriverQuery

    due = datetime(2026, 3, 1, 9, 30, 0, 0, tzinfo=UTC)
    with ctx.write() as session:
        instance_id = _case(session)
        DriverStatement(insert(_TASK), COLUMNS).execute(session, [_row("a", instance_id, due)])
        session.commit()
    query = select(_TASK).where(_TASK.c.id == bindparam("task_id"), _TASK.c.status == "open")
    with ctx.write() as session:
        ours = DriverQuery(query.with_for_update()).one_or_none(session, {"task_id": "a"})
        theirs = session.connection().execute(query, {"task_id": "a"}).one()
        assert ours._asdict() == theirs._asdict()
        assert ours.due_at == due and ours.restricted is True
        assert DriverQuery(query).one_or_none(session, {"task_id": "nope"}) is None


def test_driver_query_with_list_parameters_returns_what_sqlalchemy_returns(ctx):
    from sqlalchemy import and_, or_

    from engine.store.driver import DriverQuery

    query = (select(_TASK.c.id, _TASK.c.due_at, _TASK.c.restricted)
             .where(or_(_TASK.c.lane.in_(bindparam("lanes", expanding=True)),
                        and_(_TASK.c.site_id.is_(None), _TASK.c.urgency.in_(bindparam("ranks", expanding=True)))),
                    _TASK.c.status == "open")
             .order_by(_TASK.c.id).limit(bindparam("limit")))
    due = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with ctx.write() as session:
        instance_id = _case(session)
        rows = [_row(name, instance_id, due if name in "ac" else None) for name in "abcde"]
        rows[1]["lane"], rows[2]["lane"], rows[3]["urgency"], rows[4]["status"] = "radiologist", "tech", 5, "completed"
        DriverStatement(insert(_TASK), COLUMNS).execute(session, rows)
        session.commit()
    on_driver = DriverQuery(query)
    cases = [{"lanes": ["requester"], "ranks": [2], "limit": 10},
             {"lanes": ["radiologist", "tech"], "ranks": [5, 7, 9], "limit": 10},
             {"lanes": ["requester"], "ranks": [2], "limit": 1},  # same lengths: the compiled variant is reused
             {"lanes": ["x", "y", "z"], "ranks": [1], "limit": 10}]
    results = []
    for values in cases:
        with ctx.read() as session:
            expected = [tuple(r) for r in session.execute(query, values)]
        with ctx.driver_read() as reader:
            found = [tuple(r) for r in on_driver.all(reader, values)]
        assert found == expected, values
        assert all(isinstance(r[2], bool) for r in found)  # SQLAlchemy's result processors applied
        results.append([r[0] for r in found])
    assert results == [["a", "b", "c", "d"], ["b", "c", "d"], ["a"], []]
    assert found == [] and expected == []
    with ctx.driver_read() as reader:
        assert on_driver.all(reader, cases[1])[1].due_at == due  # dates come back as SQLAlchemy gives them


def test_a_driver_read_on_sqlite_sees_one_snapshot(ctx):
    # SQLite runs the driver in autocommit mode, so driver_read begins a transaction itself; PostgreSQL reads
    # are READ COMMITTED there as in every Session.
    from engine.store.driver import DriverQuery

    count = DriverQuery(select(_TASK.c.id).where(_TASK.c.instance_id == bindparam("case")))
    with ctx.write() as session:
        instance_id = _case(session)
        session.commit()
    with ctx.driver_read() as reader:
        assert count.all(reader, {"case": instance_id}) == []
        with ctx.write() as session:  # another connection commits meanwhile
            DriverStatement(insert(_TASK), COLUMNS).execute(session, [_row("a", instance_id, None)])
            session.commit()
        meanwhile = [r.id for r in count.all(reader, {"case": instance_id})]
        assert meanwhile == ([] if ctx.engine.dialect.name == "sqlite" else ["a"])
    with ctx.driver_read() as reader:
        assert [r.id for r in count.all(reader, {"case": instance_id})] == ["a"]


def test_items_of_a_list_parameter_go_through_its_type_like_single_values(ctx):
    from engine.store.driver import DriverQuery

    due_first, due_second = datetime(2026, 3, 1, 9, 30, tzinfo=UTC), datetime(2026, 3, 2, 10, 0, 5, 7, tzinfo=UTC)
    with ctx.write() as session:
        instance_id = _case(session)
        DriverStatement(insert(_TASK), COLUMNS).execute(session, [
            _row("a", instance_id, due_first), _row("b", instance_id, due_second), _row("c", instance_id, None)])
        session.commit()
    query = DriverQuery(select(_TASK.c.id).where(_TASK.c.due_at.in_(bindparam("dues", expanding=True)))
                        .order_by(_TASK.c.id))
    with ctx.driver_read() as reader:
        assert [r.id for r in query.all(reader, {"dues": [due_first, due_second]})] == ["a", "b"]
        assert [r.id for r in query.all(reader, {"dues": [due_second]})] == ["b"]
