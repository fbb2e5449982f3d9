"""Settings of the remuneration document (CH-6.4, CH-7.4 to CH-7.6) through the use cases on SQLite and PostgreSQL, on
the demo's released cases (tests.integration.fees_scenario): a value changed mid-month values the acts released
before and after differently, a site's value wins over the organisation's, the transmission costs of a month are
the value in force on its first day, an issued statement never moves, bad values are refused with nothing written,
and every change is in the audit trail.

The demo's December at ch-brest (hand computations on the SAMPLE table, see tests/integration/test_fees.py):
dr.legall two plain head CTs (37.27 each, the site 48.00 each); dr.morvan three acts done on call, released on the
15th (NBQK001: 9.09 + the on-call fee), the 20th and the 25th (ACQK001: 37.27 + the on-call fee each). The demo's
ch-morlaix has its own transmission costs, 120.00 from 2025-01-01 (web.cli.demo_fees)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select, text, update

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.audit import verify_audit
from engine.services.fee_settings import FeeSettingError, parse_effective, set_setting, settings_overview
from engine.services.fee_statements import Scope, get_statement, issue_statement, parse_month, preview_statement
from engine.store.fee_setting_models import FeeSetting, ImmutableSetting
from engine.store.models import AuditEvent
from tests.integration import fees_scenario
from tests.integration.test_fees import _teleexpertise_answered

fees_ctx = fees_scenario.fees_ctx
ADMIN = fees_scenario.ADMIN
DECEMBER, JANUARY = parse_month("2025-12"), parse_month("2026-01")
LEGALL, MORVAN = Scope("radiologist", "dr.legall"), Scope("radiologist", "dr.morvan")
BREST, MORLAIX = Scope("site", "ch-brest"), Scope("site", "ch-morlaix")
LANDERNEAU = Scope("site", "clinique-landerneau")
BREST_LEAD = Actor("dr.guillou", frozenset({"site_lead"}), frozenset({"ch-brest"}))
RADIOLOGIST = Actor("dr.legall", frozenset({"radiologist"}), frozenset({"ch-brest"}))


def _december(ctx, scope=BREST):
    return preview_statement(ctx, ADMIN, scope, DECEMBER)


def _on_call_lines(snapshot):
    return sorted((line["released_at"][:10], line["radiologist_eur"], line["site_eur"])
                  for line in snapshot["lines"] if line["on_call"])


def _changes(ctx):
    with ctx.read() as session:
        return [json.loads(e.detail) | {"actor": e.actor} for e in session.execute(
            select(AuditEvent).where(AuditEvent.action == "fees.setting_changed").order_by(AuditEvent.id)).scalars()]


def _rows(ctx):
    with ctx.read() as session:
        return session.execute(select(func.count()).select_from(FeeSetting)).scalar_one()


@pytest.mark.charter("CH-7.5")
def test_CH7_5_an_on_call_fee_changed_mid_month_values_acts_released_before_and_after_differently(fees_ctx):
    assert _on_call_lines(_december(fees_ctx)) == [("2025-12-15", "49.09", "-29.14"), ("2025-12-20", "77.27", "8.00"),
                                                   ("2025-12-25", "77.27", "8.00")]  # the default 40.00
    set_setting(fees_ctx, ADMIN, "on_call_fee", "60.00", date(2025, 12, 18), "Avenant n° 2 à la convention")
    # Before the 18th: 9.09 + 40.00 (the site 10.86 - 40.00); from the 18th: 37.27 + 60.00 (the site 48.00 - 60.00).
    assert _on_call_lines(_december(fees_ctx)) == [("2025-12-15", "49.09", "-29.14"), ("2025-12-20", "97.27", "-12.00"),
                                                   ("2025-12-25", "97.27", "-12.00")]
    assert _december(fees_ctx, MORVAN)["totals"]["due_to_radiologists_eur"] == "243.63"  # 49.09 + 2 x 97.27
    site = _december(fees_ctx)["totals"]
    # 278.17 + 2 x 20.00 to the radiologists; the site's net 48 + 48 - 29.14 - 12 - 12 = 42.86, minus 90.00.
    assert (site["due_to_radiologists_eur"], site["site_net_eur"]) == ("318.17", "-47.14")
    assert _december(fees_ctx, LEGALL)["totals"]["due_to_radiologists_eur"] == "74.54"  # nothing done on call
    applied = {(a["name"], a["amount_eur"], a["default"]) for a in _december(fees_ctx, MORVAN)["settings"]["applied"]}
    assert applied == {("on_call_fee", "40.00", True), ("on_call_fee", "60.00", False)}


@pytest.mark.charter("CH-6.4")
@pytest.mark.charter("CH-7.4")
def test_CH6_4_a_sites_own_remuneration_document_wins_over_the_organisations(fees_ctx, clock):
    set_setting(fees_ctx, ADMIN, "on_call_fee", "60.00", date(2025, 12, 1), "Convention de l'organisation")
    set_setting(fees_ctx, ADMIN, "on_call_fee", "45.00", date(2025, 12, 1), "Convention du CH de Brest",
                site_id="ch-brest")
    set_setting(fees_ctx, ADMIN, "on_call_fee", "70.00", date(2025, 12, 1), "Convention du CH de Morlaix",
                site_id="ch-morlaix")
    # dr.morvan's December at ch-brest: 9.09 + 45.00 + 2 x (37.27 + 45.00) = 218.63.
    assert _december(fees_ctx, MORVAN)["totals"]["due_to_radiologists_eur"] == "218.63"
    # A second opinion for ch-morlaix: its own teleexpertise fee, not the organisation's.
    set_setting(fees_ctx, ADMIN, "teleexpertise_fee", "55.00", date(2026, 1, 1), "Convention de l'organisation")
    set_setting(fees_ctx, ADMIN, "teleexpertise_fee", "62.50", date(2026, 1, 1), "Convention du CH de Morlaix",
                site_id="ch-morlaix")
    case_id = _teleexpertise_answered(fees_ctx, clock)
    from engine.services.case_acts import add_case_act

    add_case_act(fees_ctx, Actor("dr.legall", frozenset({"radiologist"})), case_id, "ZCQH001")
    line = next(x for x in preview_statement(fees_ctx, ADMIN, LEGALL, JANUARY)["lines"] if x["case_id"] == case_id)
    assert line["radiologist_eur"] == "62.50" and [b["key"] for b in line["breakdown"]] == ["teleexpertise_fee"]
    assert preview_statement(fees_ctx, ADMIN, MORLAIX, JANUARY)["payments"][0]["amount_eur"] == "62.50"


@pytest.mark.charter("CH-7.6")
def test_CH7_6_the_transmission_costs_of_a_month_are_the_value_in_force_on_its_first_day(fees_ctx):
    set_setting(fees_ctx, ADMIN, "transmission_costs", "100.00", date(2025, 12, 1), "Abonnement 2025",
                site_id="ch-brest")
    set_setting(fees_ctx, ADMIN, "transmission_costs", "120.00", date(2025, 12, 2), "Nouvel abonnement",
                site_id="ch-brest")
    set_setting(fees_ctx, ADMIN, "transmission_costs", "95.00", date(2025, 12, 15), "Tarif de l'organisation")
    brest = _december(fees_ctx)["totals"]
    assert (brest["transmission_costs_eur"], brest["site_net_eur"]) == ("100.00", "-17.14")  # 82.86 - 100.00
    assert preview_statement(fees_ctx, ADMIN, BREST, JANUARY)["totals"]["transmission_costs_eur"] == "120.00"
    assert _december(fees_ctx, LANDERNEAU)["totals"]["transmission_costs_eur"] == "90.00"  # the default on Dec 1st
    assert preview_statement(fees_ctx, ADMIN, LANDERNEAU, JANUARY)["totals"]["transmission_costs_eur"] == "95.00"
    for month in (DECEMBER, JANUARY):  # the demo's ch-morlaix: its own value wins over the organisation's
        assert preview_statement(fees_ctx, ADMIN, MORLAIX, month)["totals"]["transmission_costs_eur"] == "120.00"
    assert _december(fees_ctx, LEGALL)["totals"]["transmission_costs_eur"] == "0.00"  # never the radiologist's


def test_a_months_settings_are_read_in_one_query_whatever_the_number_of_acts(fees_ctx):
    for day in (date(2025, 12, 10), date(2025, 12, 18), date(2025, 12, 22)):
        set_setting(fees_ctx, ADMIN, "on_call_fee", "50.00", day, "Avenant")
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if "fee_setting" in statement:
            statements.append(statement)

    event.listen(fees_ctx.engine, "before_cursor_execute", count)
    try:
        assert _december(fees_ctx)["totals"]["acts"] == 5
    finally:
        event.remove(fees_ctx.engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements


@pytest.mark.charter("CH-6.4", negative=True)
@pytest.mark.charter("CH-7.1", negative=True)
@pytest.mark.charter("CH-7.4", negative=True)
def test_CH6_4_bad_values_are_refused_in_french_with_nothing_written(fees_ctx, clock):
    before = (_rows(fees_ctx), len(_changes(fees_ctx)))
    for name, amount, site, message in (
            ("on_call_fee", "-5.00", None, "négatif"), ("transmission_costs", "12.345", None, "deux décimales"),
            ("teleexpertise_fee", "0", None, "non nulle"), ("teleexpertise_fee", "0,00", "ch-brest", "non nulle"),
            ("on_call_fee", "quarante", None, "Montant illisible"), ("on_call_fee", "1e3", None, "Montant illisible"),
            ("productivity_bonus", "100.00", None, "Paramètre inconnu"), ("forfait", "500", None, "Aucun forfait"),
            ("on_call_fee", "45.00", "ch-nowhere", "Site inconnu")):
        with pytest.raises(FeeSettingError, match=message):
            set_setting(fees_ctx, ADMIN, name, amount, date(2026, 2, 1), "Convention", site_id=site)
    with pytest.raises(FeeSettingError, match="motif"):
        set_setting(fees_ctx, ADMIN, "on_call_fee", "45.00", date(2026, 2, 1), "  ")
    for reason in ("Convention\x00 art. 6", "Convention\x07", "\ud800"):  # PostgreSQL cannot store a NUL
        with pytest.raises(FeeSettingError, match="caractère non autorisé"):
            set_setting(fees_ctx, ADMIN, "on_call_fee", "45.00", date(2026, 2, 1), reason)
    with pytest.raises(Forbidden):
        set_setting(fees_ctx, BREST_LEAD, "on_call_fee", "45.00", date(2026, 2, 1), "Convention", site_id="ch-brest")
    for bad in ("2026-02-30", "février", "01/13/2026", "1999-12-31"):
        with pytest.raises(FeeSettingError, match="(?i)date d.effet"):
            parse_effective(bad)
    assert parse_effective("15/02/2026") == date(2026, 2, 15)
    # A date of effect in (or before) a month whose statement is issued would change the frozen statement.
    issue_statement(fees_ctx, ADMIN, LEGALL, DECEMBER)
    for name, day, site in (("on_call_fee", date(2025, 12, 20), None), ("on_call_fee", date(2025, 11, 10), None),
                            ("on_call_fee", date(2025, 12, 1), "ch-brest"),  # dr.legall's December has Brest acts
                            ("teleexpertise_fee", date(2025, 12, 31), None)):
        with pytest.raises(FeeSettingError, match=r"relevé de 2025-12 est déjà émis.*à partir du 2026-01-01"):
            set_setting(fees_ctx, ADMIN, name, "45.00", day, "Convention", site_id=site)
    assert (_rows(fees_ctx), len(_changes(fees_ctx))) == before
    # What the issued statement does not carry stays open: Brest's transmission costs (a site's line, its
    # statement not issued), another site's on-call fee, and from the month after the issued one.
    set_setting(fees_ctx, ADMIN, "transmission_costs", "80.00", date(2025, 12, 1), "Abonnement", site_id="ch-brest")
    set_setting(fees_ctx, ADMIN, "on_call_fee", "50.00", date(2025, 12, 1), "Convention", site_id="ch-morlaix")
    set_setting(fees_ctx, ADMIN, "on_call_fee", "50.00", date(2026, 1, 1), "Avenant")
    issue_statement(fees_ctx, ADMIN, BREST, DECEMBER)
    with pytest.raises(FeeSettingError, match="déjà émis pour ce site"):
        set_setting(fees_ctx, ADMIN, "transmission_costs", "85.00", date(2025, 12, 5), "Abonnement",
                    site_id="ch-brest")
    assert _rows(fees_ctx) == before[0] + 3


@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_1_an_issued_statement_does_not_change_when_a_setting_changes_later(fees_ctx, clock):
    set_setting(fees_ctx, ADMIN, "on_call_fee", "60.00", date(2025, 12, 18), "Avenant n° 2")
    statement_id = issue_statement(fees_ctx, ADMIN, BREST, DECEMBER)
    issued = get_statement(fees_ctx, ADMIN, statement_id)
    assert issued.snapshot["totals"]["due_to_radiologists_eur"] == "318.17"
    applied = issued.snapshot["settings"]["applied"]
    assert {(a["name"], a["amount_eur"], a["effective_from"], a["default"]) for a in applied} == {
        ("on_call_fee", "40.00", None, True), ("on_call_fee", "60.00", "2025-12-18", False),
        ("transmission_costs", "90.00", None, True)}
    set_setting(fees_ctx, ADMIN, "on_call_fee", "80.00", date(2026, 1, 1), "Avenant n° 3")
    set_setting(fees_ctx, ADMIN, "transmission_costs", "150.00", date(2026, 1, 1), "Abonnement",
                site_id="ch-brest")
    assert get_statement(fees_ctx, ADMIN, statement_id).snapshot_text == issued.snapshot_text
    assert _december(fees_ctx)["totals"] == issued.snapshot["totals"]  # the preview still matches it
    january = preview_statement(fees_ctx, ADMIN, BREST, JANUARY)
    assert january["lines"][0]["radiologist_eur"] == "117.27"  # 37.27 + 80.00 on call on 2 January
    assert january["totals"]["transmission_costs_eur"] == "150.00"


def test_every_change_is_audited_and_the_history_is_append_only(fees_ctx):
    demo = _changes(fees_ctx)
    assert [(c["actor"], c["name"], c["site"], c["amount_eur"]) for c in demo] == [
        ("system", "transmission_costs", "ch-morlaix", "120.00")]
    first = set_setting(fees_ctx, ADMIN, "on_call_fee", "45.00", date(2026, 2, 1), "Convention signée le 12/01")
    set_setting(fees_ctx, ADMIN, "on_call_fee", "50,5", date(2026, 3, 1), "Avenant", site_id="ch-brest")
    assert [(c["actor"], c["setting"] if c["name"] == "on_call_fee" and c["site"] is None else None,
             c["amount_eur"], c["effective_from"], c["previous_eur"], c["previous_default"]) for c in _changes(
        fees_ctx)[1:]] == [("admin", first, "45.00", "2026-02-01", "40.00", True),
                       ("admin", None, "50.50", "2026-03-01", "45.00", False)]
    assert _changes(fees_ctx)[2]["reason"] == "Avenant" and _changes(fees_ctx)[2]["site"] == "ch-brest"
    checked, problems = verify_audit(fees_ctx)
    assert checked and problems == []
    with fees_ctx.write() as session:
        session.get(FeeSetting, first).amount_eur = Decimal("1.00")
        with pytest.raises(ImmutableSetting):
            session.flush()
        session.rollback()
    with fees_ctx.write() as session, pytest.raises(Exception, match="never changed"):
        session.execute(update(FeeSetting).where(FeeSetting.id == first).values(amount_eur=1))
    with fees_ctx.write() as session, pytest.raises(Exception, match="never changed"):
        session.execute(text("DELETE FROM fee_setting"))
    assert _rows(fees_ctx) == 3


def test_who_reads_the_settings(fees_ctx, clock):
    overview = settings_overview(fees_ctx, ADMIN)
    assert [(v.name, str(v.amount_eur), v.default) for v in overview.organisation] == [
        ("on_call_fee", "40.00", True), ("teleexpertise_fee", "50.00", True), ("transmission_costs", "90.00", True)]
    assert [s.site_id for s in overview.sites] == ["ch-morlaix"] and overview.can_edit  # the demo's
    assert [(v.name, v.site_id, str(v.amount_eur)) for v in overview.history] == [
        ("transmission_costs", "ch-morlaix", "120.00")]
    set_setting(fees_ctx, ADMIN, "transmission_costs", "70.00", date(2026, 1, 1), "Abonnement", site_id="ch-brest")
    set_setting(fees_ctx, ADMIN, "on_call_fee", "55.00", date(2026, 1, 1), "Convention", site_id="ch-morlaix")
    set_setting(fees_ctx, ADMIN, "on_call_fee", "65.00", date(2026, 6, 1), "Avenant à venir")
    overview = settings_overview(fees_ctx, ADMIN)
    assert [s.site_id for s in overview.sites] == ["ch-brest", "ch-morlaix"] and len(overview.history) == 4
    assert overview.organisation[0].amount_eur == Decimal("40.00")  # 65.00 only from June
    brest = overview.sites[0].values
    assert [(v.name, str(v.amount_eur), v.site_id) for v in brest] == [
        ("on_call_fee", "40.00", None), ("teleexpertise_fee", "50.00", None), ("transmission_costs", "70.00",
                                                                               "ch-brest")]
    lead = settings_overview(fees_ctx, BREST_LEAD)
    assert not lead.can_edit and [s.site_id for s in lead.sites] == ["ch-brest"]
    assert {v.site_id for v in lead.history} == {None, "ch-brest"}  # not Morlaix's document
    with pytest.raises(Forbidden):
        settings_overview(fees_ctx, RADIOLOGIST)
