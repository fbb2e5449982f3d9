"""Conventions with their content (issue 19, item 5; CH-3.4, CH-6.1, CH-6.2, CH-6.4, CH-4.1.14), through the
engine services on SQLite and PostgreSQL: refused active until complete (each missing item named, nothing
written), an active convention stays complete, expiry stops routing, reminders at the renewal date, thirty days
before expiry and at expiry, documents checked by content and size and read only by administrators, auditors and
the site's medical leads; the refusal's steps find the convention's fallback procedure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from engine.domain import routing
from engine.domain.actors import Actor
from engine.domain.convention_content import DOCUMENT_KINDS
from engine.domain.data_checks import paris_date
from engine.errors import Forbidden
from engine.services import convention_documents
from engine.services.accounts import create_user
from engine.services.convention_documents import document_content, list_documents, store_document
from engine.services.convention_reminders import send_convention_reminders
from engine.services.conventions import (
    ConventionContent,
    convention_summary,
    list_conventions,
    update_convention_content,
)
from engine.services.directory import DirectoryError, create_convention, update_convention
from engine.services.refusals import fallback_procedures
from engine.store.convention_models import ConventionDocument, ConventionReminder
from engine.store.directory_models import ConventionRow, NotificationOutbox, User
from engine.store.models import AuditEvent
from tests import demo_app
from tests.convention_support import ADMIN, fill_convention
from web.cli.demo_conventions import FALLBACK, demo_pdf

app, demo_ctx = demo_app.app, demo_app.demo_ctx
MEMBERS = ("dr.legall",)
APPROVE = {"cme_validated": True, "approved_by_g4": True, "approved_by_council": True, "external_allowed": False,
           "tiers": "1,2"}


def counts(ctx) -> tuple[int, int, int]:
    with ctx.read() as session:
        return tuple(session.execute(select(func.count()).select_from(table)).scalar_one()  # type: ignore[return-value]
                     for table in (ConventionRow, ConventionDocument, AuditEvent))


def draft(ctx, site_id: str = "ch-brest") -> int:
    return create_convention(ctx, ADMIN, site_id, MEMBERS, cme_validated=False, approved_by_g4=False,
                             approved_by_council=False)


def is_active(ctx, number: int) -> bool:
    return convention_summary(ctx, ADMIN, number).active


@pytest.mark.charter("CH-3.4", negative=True)
@pytest.mark.charter("CH-6.1", negative=True)
def test_creating_an_active_convention_without_content_is_refused_with_the_list(demo_ctx):
    before = counts(demo_ctx)
    with pytest.raises(DirectoryError) as refused:
        create_convention(demo_ctx, ADMIN, "ch-brest", MEMBERS, cme_validated=True, approved_by_g4=True,
                          approved_by_council=True)
    message = str(refused.value)
    assert message.startswith("La convention ne peut pas être activée : il manque la date de la validation")
    for item in ("le médecin responsable", "le parcours du patient", "le parcours des urgences",
                 "la procédure dégradée", "le débit réseau", "le document de rémunération", "la date d'échéance"):
        assert item in message
    assert counts(demo_ctx) == before  # nothing written, not even the audit event


@pytest.mark.charter("CH-3.4", negative=True)
@pytest.mark.charter("CH-6.1", negative=True)
@pytest.mark.charter("CH-6.2", negative=True)
@pytest.mark.charter("CH-6.4", negative=True)
@pytest.mark.parametrize(("skip", "named"), [
    (("cme_validated_on",), "la date de la validation par la commission médicale"),
    (("g4_approved_on",), "la date de l'approbation du G4"),
    (("council_approved_on",), "la date de l'approbation du conseil départemental"),
    (("cme",), "le document de la validation par la commission médicale"),
    (("g4",), "le document de l'approbation du G4"),
    (("council",), "le document de l'approbation du conseil départemental"),
    (("medical_lead",), "le médecin responsable de l'organisation médicale du site"),
    (("patient_pathway",), "le parcours du patient"),
    (("emergency_pathway",), "le parcours des urgences"),
    (("emergency_duties",), "les obligations des radiologues en urgence"),
    (("travel_duties",), "les obligations de déplacement"),
    (("fallback_procedure",), "la procédure dégradée appliquée en cas de refus"),
    (("equipment",), "l'équipement"),
    (("network_bandwidth_mbps",), "le débit réseau"),
    (("restoration_delay_hours",), "le délai de rétablissement"),
    (("archiving",), "l'archivage"),
    (("remuneration",), "le document de rémunération"),
    (("expires_on",), "la date d'échéance"),
    (("renewal_on",), "la date de renouvellement"),
])
def test_activation_is_refused_until_each_item_is_there(demo_ctx, skip, named):
    number = draft(demo_ctx)
    fill_convention(demo_ctx, number, "dr.guillou", skip=skip)
    before = counts(demo_ctx)
    with pytest.raises(DirectoryError) as refused:
        update_convention(demo_ctx, ADMIN, number, MEMBERS, **APPROVE)
    assert str(refused.value).startswith("La convention ne peut pas être activée : il manque ")
    # that item only (without its document, the remuneration has no declaration either)
    assert named in str(refused.value) and str(refused.value).count(";") == (skip == ("remuneration",))
    assert counts(demo_ctx) == before and not is_active(demo_ctx, number)
    fill_convention(demo_ctx, number, "dr.guillou")  # completed: activation goes through
    assert update_convention(demo_ctx, ADMIN, number, MEMBERS, **APPROVE)
    summary = convention_summary(demo_ctx, ADMIN, number)
    assert summary.active and summary.routes_cases and summary.missing == ()


@pytest.mark.charter("CH-6.4", negative=True)
def test_remuneration_without_the_declaration_is_not_recorded(demo_ctx):
    number = draft(demo_ctx)
    before = counts(demo_ctx)
    with pytest.raises(DirectoryError, match="ni clause de productivité ni clause d'exclusivité"):
        store_document(demo_ctx, ADMIN, number, "remuneration", "remuneration.pdf", demo_pdf("r"))
    assert counts(demo_ctx) == before
    store_document(demo_ctx, ADMIN, number, "remuneration", "remuneration.pdf", demo_pdf("r"),
                   no_productivity_or_exclusivity=True)
    assert convention_summary(demo_ctx, ADMIN, number).remuneration_declared_by == "admin"


@pytest.mark.charter("CH-6.1", negative=True)
def test_an_active_convention_stays_complete_and_its_lead_is_a_lead_of_its_site(demo_ctx):
    (brest,) = [c for c in _demo_conventions(demo_ctx) if c.site_id == "ch-brest"]
    content = ConventionContent(**{k: v for k, v in brest.content.items()})
    before = counts(demo_ctx)
    with pytest.raises(DirectoryError, match="La convention est active et doit rester complète : il manquerait "
                                             "la procédure dégradée"):
        update_convention_content(demo_ctx, ADMIN, brest.id, replace(content, fallback_procedure="  "))
    with pytest.raises(DirectoryError, match="n'est pas un médecin responsable actif de ce site"):
        update_convention_content(demo_ctx, ADMIN, brest.id, replace(content, medical_lead="dr.riou"))
    with pytest.raises(DirectoryError, match="La date de renouvellement doit précéder"):
        update_convention_content(demo_ctx, ADMIN, brest.id, replace(
            content, renewal_on=content.expires_on + timedelta(days=1)))
    with pytest.raises(DirectoryError, match="ne peut pas être dans le futur"):
        update_convention_content(demo_ctx, ADMIN, brest.id, replace(content, g4_approved_on=date(2099, 1, 1)))
    assert counts(demo_ctx) == before
    with pytest.raises(Forbidden):
        update_convention_content(demo_ctx, Actor("dr.guillou", frozenset({"site_lead"})), brest.id, content)
    assert update_convention_content(demo_ctx, ADMIN, brest.id, replace(content, visit_interval_days=180))
    assert convention_summary(demo_ctx, ADMIN, brest.id).visit_interval_days == 180


def _demo_conventions(ctx):
    return list_conventions(ctx, ADMIN)


@pytest.mark.charter("CH-3.4", negative=True)
@pytest.mark.charter("CH-3.3")
def test_an_expired_convention_stops_routing(demo_ctx, clock):
    brest = [c for c in _demo_conventions(demo_ctx) if c.site_id == "ch-brest"][0]
    expires_on = brest.content["expires_on"]
    site = demo_ctx.directory.site("ch-brest")

    def pool() -> list[str]:
        return routing.candidate_pool(site, routing.LOCAL, demo_ctx.directory.radiologists(),
                                      demo_ctx.directory.conventions("ch-brest"), demo_ctx.directory.territories(),
                                      paris_date(clock.now()))

    clock.set(datetime.combine(expires_on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=20))  # last day, Paris
    assert paris_date(clock.now()) == expires_on
    assert pool() == ["dr.legall"] and fallback_procedures(demo_ctx, "ch-brest", "rf_fallback.schema.json")
    clock.set(datetime.combine(expires_on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=23))  # next day
    assert paris_date(clock.now()) == expires_on + timedelta(days=1)
    assert pool() == []
    assert not any(c.active for c in demo_ctx.directory.conventions("ch-brest"))
    assert fallback_procedures(demo_ctx, "ch-brest", "rf_fallback.schema.json") == []
    summary = convention_summary(demo_ctx, ADMIN, brest.id)
    assert summary.expired and not summary.routes_cases
    # it cannot be activated again without a new expiry date
    update_convention(demo_ctx, ADMIN, brest.id, brest.radiologists, cme_validated=True, approved_by_g4=True,
                      approved_by_council=False, external_allowed=False, tiers="1,2,3")
    with pytest.raises(DirectoryError, match="une date d'échéance à venir"):
        update_convention(demo_ctx, ADMIN, brest.id, brest.radiologists, **{**APPROVE, "tiers": "1,2,3"})


@pytest.mark.charter("CH-4.1.14")
def test_the_refusal_steps_find_the_fallback_procedure_of_the_site(demo_ctx):
    found = fallback_procedures(demo_ctx, "ch-brest", "rf_fallback.schema.json")
    assert [f.text for f in found] == [FALLBACK]
    assert [f.text for f in fallback_procedures(demo_ctx, "ch-brest", "rf_reason.schema.json")] == [FALLBACK]
    assert fallback_procedures(demo_ctx, "ch-brest", "td_report.schema.json") == []  # not a refusal step
    assert fallback_procedures(demo_ctx, None, "rf_fallback.schema.json") == []


def outbox(ctx) -> list[tuple[str, str, str]]:
    with ctx.read() as session:
        return sorted(session.execute(select(NotificationOutbox.recipient, NotificationOutbox.event_key,
                                             NotificationOutbox.event)
                                      .where(NotificationOutbox.event == "convention_expiry")).tuples())


def test_reminders_at_the_renewal_date_thirty_days_before_and_at_expiry(demo_ctx, clock):
    conventions = _demo_conventions(demo_ctx)
    expires_on, renewal_on = conventions[0].content["expires_on"], conventions[0].content["renewal_on"]
    assert all(c.content["expires_on"] == expires_on for c in conventions)

    def on(day: date) -> int:
        clock.set(datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=6))
        return send_convention_reminders(demo_ctx)

    assert on(renewal_on - timedelta(days=1)) == 0 and outbox(demo_ctx) == []
    assert on(renewal_on) == 3  # the three demo conventions
    rows = outbox(demo_ctx)
    brest = [c.id for c in conventions if c.site_id == "ch-brest"][0]
    key = f"convention:{brest}:renewal:{expires_on.isoformat()}"
    assert {r for r, k, _e in rows if k == key} == {"admin", "dr.guillou"}  # administrators and the site's lead
    assert not any(r == "dr.riou" for r, k, _e in rows if k == key)  # not the lead of another site
    assert on(renewal_on) == 0 and on(renewal_on + timedelta(days=10)) == 0  # once per stage
    assert on(expires_on - timedelta(days=31)) == 0
    assert on(expires_on - timedelta(days=30)) == 3
    assert on(expires_on) == 0
    assert on(expires_on + timedelta(days=1)) == 3 and on(expires_on + timedelta(days=2)) == 0
    with demo_ctx.read() as session:
        stages = sorted(session.execute(select(ConventionReminder.stage).where(
            ConventionReminder.convention_id == brest)).scalars())
    assert stages == ["expired", "expiry_soon", "renewal"]
    assert len({k for _r, k, _e in outbox(demo_ctx)}) == 9


def test_a_scheduler_that_did_not_run_sends_only_the_latest_stage(demo_ctx, clock):
    expires_on = _demo_conventions(demo_ctx)[0].content["expires_on"]
    clock.set(datetime.combine(expires_on + timedelta(days=5), datetime.min.time(), tzinfo=UTC))
    assert send_convention_reminders(demo_ctx) == 3
    assert {k.split(":")[2] for _r, k, _e in outbox(demo_ctx)} == {"expired"}


@pytest.mark.charter("CH-3.4", negative=True)
@pytest.mark.parametrize(("filename", "content", "message"), [
    ("cme.pdf", b"just text pretending to be a PDF", "Type de fichier non accepté"),
    ("cme.pdf", b"<html><script>alert(1)</script></html>", "Type de fichier non accepté"),
    ("cme.pdf", b"", "Le fichier est vide."),
    ("", demo_pdf("x"), "Choisissez le fichier du document."),
])
def test_bad_uploads_are_refused_in_french_and_nothing_is_written(demo_ctx, filename, content, message):
    number = draft(demo_ctx)
    before = counts(demo_ctx)
    with pytest.raises(DirectoryError, match=message):
        store_document(demo_ctx, ADMIN, number, "cme", filename, content)
    assert counts(demo_ctx) == before


def test_a_document_over_the_limit_is_refused(demo_ctx, monkeypatch):
    number = draft(demo_ctx)
    monkeypatch.setattr(convention_documents, "MAX_DOCUMENT_BYTES", 1024 * 1024)
    before = counts(demo_ctx)
    with pytest.raises(DirectoryError, match="Le fichier est trop volumineux : 1 Mo au plus."):
        store_document(demo_ctx, ADMIN, number, "cme", "cme.pdf", b"%PDF-1.4\n" + b"0" * (1024 * 1024))
    with pytest.raises(DirectoryError, match="Type de document inconnu"):
        store_document(demo_ctx, ADMIN, number, "contract", "c.pdf", demo_pdf("x"))
    with pytest.raises(Forbidden):
        store_document(demo_ctx, Actor("auditor", frozenset({"auditor"})), number, "cme", "c.pdf", demo_pdf("x"))
    assert counts(demo_ctx) == before
    png = store_document(demo_ctx, ADMIN, number, "cme", "scan.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    assert document_content(demo_ctx, ADMIN, number, png)[2] == "image/png"


def test_documents_are_read_by_administrators_auditors_and_the_sites_leads_only(demo_ctx):
    brest = [c for c in _demo_conventions(demo_ctx) if c.site_id == "ch-brest"][0]
    documents = list_documents(demo_ctx, ADMIN, brest.id)
    assert [d.kind for d in documents] == list(DOCUMENT_KINDS) and all(d.current for d in documents)
    first = documents[0].id
    for reader in (ADMIN, Actor("auditor", frozenset({"auditor"})), Actor("dr.guillou", frozenset({"site_lead"}))):
        content, _name, kind = document_content(demo_ctx, reader, brest.id, first)
        assert content.startswith(b"%PDF-") and kind == "application/pdf"
    create_user(demo_ctx, ADMIN, "dr.former", "Dr Ancienne Responsable", "une phrase de passe solide",
                ("site_lead",), ("ch-brest",))
    with demo_ctx.write() as session:  # deactivated: no longer a reader
        session.get(User, "dr.former").active = False
        session.commit()
    before = counts(demo_ctx)
    for intruder in (Actor("dr.riou", frozenset({"site_lead"})),  # the lead of another site
                     Actor("dr.former", frozenset({"site_lead"})),
                     Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"})),
                     Actor("dr.legall", frozenset({"radiologist"}))):
        with pytest.raises(Forbidden):
            document_content(demo_ctx, intruder, brest.id, first)
        with pytest.raises(Forbidden):
            list_documents(demo_ctx, intruder, brest.id)
    assert counts(demo_ctx) == before  # refused reads write nothing
    document_content(demo_ctx, ADMIN, brest.id, first)
    with demo_ctx.read() as session:
        reads = session.execute(select(func.count()).select_from(AuditEvent)
                                .where(AuditEvent.action == "convention.document_read")).scalar_one()
    assert reads == 4


def test_a_new_document_replaces_the_one_in_force_and_keeps_the_earlier(demo_ctx):
    brest = [c for c in _demo_conventions(demo_ctx) if c.site_id == "ch-brest"][0]
    newer = store_document(demo_ctx, ADMIN, brest.id, "g4", "g4-2027.pdf", demo_pdf("G4 2027"))
    g4 = [d for d in list_documents(demo_ctx, ADMIN, brest.id) if d.kind == "g4"]
    assert [(d.id, d.current) for d in g4][0] == (newer, True) and len(g4) == 2 and not g4[1].current


def test_the_daily_job_sends_the_reminders_through_the_outbox(demo_ctx, clock):
    from engine.services.notification_outbox import list_outbox
    from integrations.notify.messages import compose
    from integrations.notify.settings import NotifySettings
    from web.ops.scheduler import TimerScheduler

    settings = NotifySettings.from_env({"TELERAD_SMTP_URL": "smtp://127.0.0.1:2525"}, public_url="https://t.example")
    scheduler = TimerScheduler(demo_ctx, 3600, notify=settings)
    assert scheduler._scheduler.get_job("convention_reminders") is not None
    assert TimerScheduler(demo_ctx, 3600)._scheduler.get_job("convention_reminders") is None  # no notifications
    renewal_on = _demo_conventions(demo_ctx)[0].content["renewal_on"]
    clock.set(datetime.combine(renewal_on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=6))
    scheduler.remind_conventions()
    rows = [r for r in list_outbox(demo_ctx, ADMIN) if r.event == "convention_expiry"]
    assert {r.recipient for r in rows} == {"admin", "dr.guillou", "dr.riou", "dr.abgrall"}
    message = compose(rows[0], "CH de Brest", "https://t.example")
    assert message.subject.startswith("[Telerad] Convention à renouveler")
    assert message.link == "https://t.example/admin/directory#conventions" and "échue" in message.body
