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
