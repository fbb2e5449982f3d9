"""Site visits, imaging devices and reading workstations (CH-5.6, CH-5.2) through the use cases, on the demo
directory: dr.legall and dr.morvan are bound to the three demo sites by active conventions; dr.guillou leads
ch-brest, dr.riou ch-morlaix. The clock starts on Monday 5 January 2026 (Paris)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.errors import Forbidden, NotFound
from engine.services.accounts import create_user
from engine.services.directory import create_site
from engine.services.notification_contacts import SITE_VISIT_OVERDUE
from engine.services.notification_outbox import OutboxRow
from engine.services.reading_stations import declare_station, list_stations, remove_station
from engine.services.site_devices import add_device, list_devices, validate_device
from engine.services.site_quality_access import SiteQualityError
from engine.services.site_visits import list_visits, notify_overdue_visits, overdue_visits, record_visit, visit_schedule
from engine.store.audit import AuditEvent
from engine.store.directory_models import ConventionRow, NotificationOutbox
from engine.store.site_quality_models import ReadingStationRow, SiteDeviceRow, SiteVisitRow
from integrations.notify.messages import compose
from tests import demo_app

demo_ctx = demo_app.demo_ctx
ADMIN = Actor("admin", frozenset({"administrator"}))
LEGALL = Actor("dr.legall", frozenset({"radiologist", "tele_expert"}))
MORVAN = Actor("dr.morvan", frozenset({"radiologist"}))
KERBRAT = Actor("dr.kerbrat", frozenset({"local_radiologist"}), frozenset({"ch-morlaix"}))
GUILLOU = Actor("dr.guillou", frozenset({"site_lead"}), frozenset({"ch-brest"}))
RIOU = Actor("dr.riou", frozenset({"site_lead"}), frozenset({"ch-morlaix"}))
REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))
AUDITOR = Actor("auditor", frozenset({"auditor"}))
PROTOCOL = "ct-head-nc"


def _protocol(ctx) -> str:
    from engine.services.protocols import list_protocols

    return list_protocols(ctx, include_inactive=False)[0].id


def _count(ctx, model) -> int:
    with ctx.read() as session:
        return len(session.execute(select(model)).all())


def _actions(ctx, prefix):
    with ctx.read() as session:
        return [e.action for e in session.execute(select(AuditEvent)).scalars() if e.action.startswith(prefix)]


def _pair(visits, site, user):
    return next((v for v in visits if (v.site_id, v.radiologist) == (site, user)), None)


@pytest.mark.charter("CH-5.6")
def test_CH5_6_a_visit_is_overdue_the_day_after_it_is_due_not_the_day_before(demo_ctx):
    protocol = _protocol(demo_ctx)
    record_visit(demo_ctx, LEGALL, "ch-brest", "dr.legall", "2025-01-05", "Salle de scanner vérifiée.", [protocol])
    due = date(2025, 1, 5) + timedelta(days=365)  # the convention's interval, 365 days by default
    assert due == date(2026, 1, 5)
    assert _pair(overdue_visits(demo_ctx, due - timedelta(days=1)), "ch-brest", "dr.legall") is None
    assert _pair(overdue_visits(demo_ctx, due), "ch-brest", "dr.legall") is None  # due today: not late yet
    late = _pair(overdue_visits(demo_ctx, due + timedelta(days=1)), "ch-brest", "dr.legall")
    assert late is not None and (late.last_visit, late.next_due, late.days_late) == (date(2025, 1, 5), due, 1)
    # Bound by an active convention and never there: overdue at once; the site filter keeps one site.
    never = _pair(overdue_visits(demo_ctx, due - timedelta(days=1)), "ch-brest", "dr.morvan")
    assert never is not None and never.last_visit is None
    assert {v.site_id for v in overdue_visits(demo_ctx, due, site_id="ch-morlaix")} == {"ch-morlaix"}
    # A later visit moves the next due date.
    record_visit(demo_ctx, ADMIN, "ch-brest", "dr.legall", "2025-06-01", "Revue des protocoles.", [protocol])
    assert _pair(overdue_visits(demo_ctx, due + timedelta(days=1)), "ch-brest", "dr.legall") is None
    schedule = _pair(visit_schedule(demo_ctx, LEGALL, due), "ch-brest", "dr.legall")
    assert schedule.next_due == date(2026, 6, 1) and not schedule.overdue


@pytest.mark.charter("CH-5.6")
def test_CH5_6_the_convention_interval_sets_the_next_visit(demo_ctx):
    with demo_ctx.write() as session:
        for row in session.execute(select(ConventionRow).where(ConventionRow.site_id == "ch-brest")).scalars():
            row.visit_interval_days = 180
        session.commit()
    record_visit(demo_ctx, LEGALL, "ch-brest", "", "2025-08-01", "Visite semestrielle.", [_protocol(demo_ctx)])
    assert _pair(overdue_visits(demo_ctx, date(2026, 1, 28)), "ch-brest", "dr.legall") is None  # due 28/01
    assert _pair(overdue_visits(demo_ctx, date(2026, 1, 29)), "ch-brest", "dr.legall") is not None


@pytest.mark.charter("CH-5.6", negative=True)
def test_CH5_6_a_radiologist_records_only_his_own_visits_at_sites_he_serves(demo_ctx):
    protocol = _protocol(demo_ctx)
    for actor, radiologist in ((MORVAN, "dr.legall"), (REQUESTER, "dr.legall"), (GUILLOU, "dr.legall"),
                               (AUDITOR, "dr.legall")):
        with pytest.raises(Forbidden):
            record_visit(demo_ctx, actor, "ch-brest", radiologist, "2025-12-01", "Visite.", [protocol])
    create_site(demo_ctx, ADMIN, "ch-quimper", "CH de Quimper", "brest")  # no convention
    with pytest.raises(SiteQualityError, match="aucune convention active"):
        record_visit(demo_ctx, LEGALL, "ch-quimper", "dr.legall", "2025-12-01", "Visite.", [protocol])
    with pytest.raises(SiteQualityError, match="aucune convention active"):  # an administrator neither
        record_visit(demo_ctx, ADMIN, "ch-brest", "dr.kerbrat", "2025-12-01", "Visite.", [protocol])
    assert _count(demo_ctx, SiteVisitRow) == 0 and _actions(demo_ctx, "site_visit.") == []
    visit = record_visit(demo_ctx, LEGALL, "ch-brest", "dr.legall", "2025-12-01", "Visite.", [protocol])
    with demo_ctx.read() as session:
        row = session.get(SiteVisitRow, visit)
        assert (row.recorded_by, json.loads(row.protocols_reviewed)) == ("dr.legall", [protocol])
    assert _actions(demo_ctx, "site_visit.") == ["site_visit.recorded"]


@pytest.mark.charter("CH-5.6", negative=True)
@pytest.mark.parametrize(("day", "findings", "protocols", "message"), [
    ("2026-01-06", "Visite.", ["P"], "dans le futur"),
    ("05/13/2025", "Visite.", ["P"], "date valide"),
    ("", "Visite.", ["P"], "date valide"),
    ("2025-12-01", "   ", ["P"], "Constats de la visite : ce champ est obligatoire"),
    ("2025-12-01", "x" * 4001, ["P"], "4000 caractères au plus"),
    ("2025-12-01", "Visite.", [], "au moins un protocole"),
    ("2025-12-01", "Visite.", ["no-such-protocol"], "protocole inconnu du catalogue : no-such-protocol"),
])
def test_CH5_6_bad_visit_input_is_refused_in_french(demo_ctx, day, findings, protocols, message):
    protocols = [_protocol(demo_ctx) if p == "P" else p for p in protocols]
    with pytest.raises(SiteQualityError, match=message):
        record_visit(demo_ctx, LEGALL, "ch-brest", "dr.legall", day, findings, protocols)
    assert _count(demo_ctx, SiteVisitRow) == 0


@pytest.mark.charter("CH-5.6")
def test_CH5_6_visits_are_seen_by_their_radiologist_the_site_lead_and_administrators(demo_ctx):
    protocol = _protocol(demo_ctx)
    record_visit(demo_ctx, LEGALL, "ch-brest", "", "2025-12-01", "Brest.", [protocol])
    record_visit(demo_ctx, MORVAN, "ch-morlaix", "", "2025-12-02", "Morlaix.", [protocol])
    seen = {actor.user_id: {v.findings for v in list_visits(demo_ctx, actor)}
            for actor in (ADMIN, LEGALL, MORVAN, GUILLOU, RIOU)}
    assert seen == {"admin": {"Brest.", "Morlaix."}, "dr.legall": {"Brest."}, "dr.morvan": {"Morlaix."},
                    "dr.guillou": {"Brest."}, "dr.riou": {"Morlaix."}}
    assert {v.site_id for v in visit_schedule(demo_ctx, GUILLOU)} == {"ch-brest"}
    assert {v.radiologist for v in visit_schedule(demo_ctx, LEGALL)} == {"dr.legall"}
    for actor in (REQUESTER, AUDITOR):
        with pytest.raises(Forbidden):
            list_visits(demo_ctx, actor)


@pytest.mark.charter("CH-5.6")
def test_CH5_6_an_overdue_visit_is_notified_once_a_week_at_most(demo_ctx, clock):
    protocol = _protocol(demo_ctx)
    for site in ("ch-brest", "ch-morlaix", "clinique-landerneau"):  # everything up to date but dr.legall at Brest
        record_visit(demo_ctx, MORVAN, site, "", "2025-12-01", "À jour.", [protocol])
        if site != "ch-brest":
            record_visit(demo_ctx, LEGALL, site, "", "2025-12-01", "À jour.", [protocol])
    assert notify_overdue_visits(demo_ctx, ("email",)) == 2  # the radiologist and the site's medical lead
    with demo_ctx.read() as session:
        rows = session.execute(select(NotificationOutbox)).scalars().all()
    assert {(r.event, r.recipient, r.site_id, r.case_id) for r in rows} == {
        (SITE_VISIT_OVERDUE, "dr.legall", "ch-brest", None), (SITE_VISIT_OVERDUE, "dr.guillou", "ch-brest", None)}
    assert notify_overdue_visits(demo_ctx, ("email",)) == 0  # the same day: not again
    clock.advance(days=6)
    assert notify_overdue_visits(demo_ctx, ("email",)) == 0  # within the week: not again
    clock.advance(days=1, minutes=1)
    assert notify_overdue_visits(demo_ctx, ("email",)) == 2  # a week later, still overdue: told again
    record_visit(demo_ctx, LEGALL, "ch-brest", "", "2026-01-12", "Enfin.", [protocol])
    clock.advance(days=8)
    assert notify_overdue_visits(demo_ctx, ("email",)) == 0  # visited: nothing more
    assert notify_overdue_visits(demo_ctx, ()) == 0
    row = rows[0]
    message = compose(OutboxRow(row.id, row.event, row.event_key, None, row.site_id, None, row.recipient,
                                row.channel, row.address, row.status, row.attempts, row.next_attempt_at, None,
                                row.created_at, None), "CH de Brest (urgences)", "https://telerad.example")
    assert "Visite de site en retard" in message.subject and "CH de Brest" in message.body
    assert message.link == "https://telerad.example/site-visits" and "À jour" not in message.body


@pytest.mark.charter("CH-5.6", negative=True)
def test_CH5_6_a_device_is_validated_only_by_a_radiologist_bound_to_its_site(demo_ctx):
    device = add_device(demo_ctx, GUILLOU, "ch-brest", "CT", "Siemens", "Somatom go.Up", "SN-1234", "2024-03-01")
    assert [d.validated for d in list_devices(demo_ctx, GUILLOU)] == [False]  # shown as not validated
    create_user(demo_ctx, ADMIN, "dr.nobody", "Dr Sans Convention", "a-long-password-2026", ("radiologist",))
    for actor in (Actor("dr.nobody", frozenset({"radiologist"})), KERBRAT, GUILLOU, ADMIN, REQUESTER):
        with pytest.raises(Forbidden):
            validate_device(demo_ctx, actor, device, "2025-12-01", "")
    with pytest.raises(NotFound):
        validate_device(demo_ctx, LEGALL, device + 100, "2025-12-01", "")
    with pytest.raises(SiteQualityError, match="précéder la mise en service"):
        validate_device(demo_ctx, LEGALL, device, "2024-01-01", "")
    with demo_ctx.read() as session:
        assert session.get(SiteDeviceRow, device).validated_on is None
    validate_device(demo_ctx, LEGALL, device, "2025-12-01", "Contrôle qualité à jour.")
    view = list_devices(demo_ctx, RIOU)
    assert view == []  # another site's lead sees nothing of Brest
    (view,) = list_devices(demo_ctx, LEGALL)
    assert (view.validated, view.validated_by, view.validated_on, view.may_validate) == (
        True, "dr.legall", date(2025, 12, 1), True)
    assert _actions(demo_ctx, "site_device.") == ["site_device.added", "site_device.validated"]


@pytest.mark.charter("CH-5.6", negative=True)
def test_CH5_6_devices_are_recorded_at_visible_sites_with_valid_input(demo_ctx):
    with pytest.raises(Forbidden):
        add_device(demo_ctx, RIOU, "ch-brest", "CT", "Siemens", "X", "1", "2024-03-01")
    with pytest.raises(Forbidden):
        add_device(demo_ctx, REQUESTER, "ch-brest", "CT", "Siemens", "X", "1", "2024-03-01")
    for modality, maker, day, message in (("ZZ", "GE", "2024-03-01", "Modalité"),
                                          ("MR", "", "2024-03-01", "Fabricant : ce champ est obligatoire"),
                                          ("MR", "GE", "2027-01-01", "dans le futur"),
                                          ("MR", "GE", "hier", "date valide")):
        with pytest.raises(SiteQualityError, match=message):
            add_device(demo_ctx, ADMIN, "ch-brest", modality, maker, "Signa", "S1", day)
    with pytest.raises(SiteQualityError, match="Site inconnu"):
        add_device(demo_ctx, ADMIN, "nowhere", "MR", "GE", "Signa", "S1", "2024-03-01")
    assert _count(demo_ctx, SiteDeviceRow) == 0


@pytest.mark.charter("CH-5.2", negative=True)
def test_CH5_2_each_radiologist_declares_his_own_reading_stations(demo_ctx):
    args = ("Poste de garde", "Barco Coronis 3MP", True, "2025-11-01", "Contrôle de qualité annuel, 11/2025.")
    for actor in (ADMIN, REQUESTER, GUILLOU):
        with pytest.raises(Forbidden):
            declare_station(demo_ctx, actor, *args)
    with pytest.raises(SiteQualityError, match="écran de diagnostic conforme"):
        declare_station(demo_ctx, LEGALL, *args[:2], False, *args[3:])
    with pytest.raises(SiteQualityError, match="Référence et contrôles"):
        declare_station(demo_ctx, LEGALL, *args[:4], "")
    assert _count(demo_ctx, ReadingStationRow) == 0
    station = declare_station(demo_ctx, LEGALL, *args)
    assert [s.name for s in list_stations(demo_ctx, LEGALL)] == ["Poste de garde"]
    assert list_stations(demo_ctx, MORVAN) == []
    assert [s.username for s in list_stations(demo_ctx, ADMIN)] == ["dr.legall"]
    with pytest.raises(NotFound):
        remove_station(demo_ctx, MORVAN, station)  # someone else's: not found
    remove_station(demo_ctx, LEGALL, station)
    assert _actions(demo_ctx, "reading_station.") == ["reading_station.declared", "reading_station.removed"]


@pytest.mark.charter("CH-5.6")
def test_CH5_6_the_scheduler_runs_the_overdue_visit_notification_daily_when_notifications_are_on(demo_ctx):
    from integrations.notify.settings import NotifySettings
    from web.ops.scheduler import TimerScheduler

    assert TimerScheduler(demo_ctx, 3600)._scheduler.get_job("notify_overdue_visits") is None  # no channel: no job
    settings = NotifySettings.from_env({"TELERAD_SMTP_URL": "smtp://127.0.0.1:2525"})
    scheduler = TimerScheduler(demo_ctx, 3600, notify=settings)
    job = scheduler._scheduler.get_job("notify_overdue_visits")
    assert job is not None and job.trigger.interval.total_seconds() == 24 * 3600
    scheduler.notify_site_visits()  # the demo radiologists never visited their sites: all overdue at once
    with demo_ctx.read() as session:
        rows = session.execute(select(NotificationOutbox)).scalars().all()
    told = {(r.recipient, r.site_id) for r in rows}
    assert {("dr.legall", "ch-brest"), ("dr.guillou", "ch-brest"), ("dr.riou", "ch-morlaix")} <= told
    assert {r.event for r in rows} == {SITE_VISIT_OVERDUE}
    scheduler.notify_site_visits()  # run again (a restart): nobody told twice
    with demo_ctx.read() as session:
        assert len(session.execute(select(NotificationOutbox)).all()) == len(rows)
