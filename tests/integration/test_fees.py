"""Acts and fees (CH-7, CH-6.4) through the use cases on SQLite and PostgreSQL, on the demo with a few weeks of
released cases whose acts were chosen by their radiologists (web.cli.demo_fees): each act shared as the charter
says (hand computations), statements totalled to the cent, issued and then immutable, a correction carried into the
next statement, flat-rate lines refused, who may read and do what, and a bad CCAM file refused whole."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update

from engine.domain.actors import Actor
from engine.domain.fees import CcamTableError
from engine.errors import Conflict, Forbidden
from engine.services.case_acts import CaseActError, add_case_act, case_acts, remove_case_act
from engine.services.ccam_tables import list_tables, load_table, table_on
from engine.services.fee_statements import (
    FLAT_RATE_REFUSAL,
    FeeStatementError,
    Scope,
    add_adjustment,
    get_statement,
    issue_statement,
    list_statements,
    parse_month,
    preview_statement,
)
from engine.store.fee_models import CcamTable, CcamTableAct, FeeStatement, ImmutableStatement
from tests.integration import fees_scenario

fees_ctx = fees_scenario.fees_ctx
ADMIN = fees_scenario.ADMIN

DECEMBER, JANUARY = parse_month("2025-12"), parse_month("2026-01")
LEGALL, MORVAN = Scope("radiologist", "dr.legall"), Scope("radiologist", "dr.morvan")
BREST = Scope("site", "ch-brest")
LEGALL_ACTOR = Actor("dr.legall", frozenset({"radiologist"}), frozenset({"ch-brest"}))
MORVAN_ACTOR = Actor("dr.morvan", frozenset({"radiologist"}))
BREST_LEAD = Actor("dr.guillou", frozenset({"site_lead"}), frozenset({"ch-brest"}))
MORLAIX_LEAD = Actor("dr.x", frozenset({"site_lead"}), frozenset({"ch-morlaix"}))
REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))
# Hand computations on the SAMPLE table: (code, on call) -> (radiologist, site).
# ACQK001 85.27 € of which 60.00 technical: 25.27 + 20 % of 60.00 = 37.27; the site 48.00 (CH-7.2).
# NBQK001 19.95 €: 32 % = 6.38; 20 % of the other 13.57 = 2.71; 9.09 to the radiologist, 10.86 to the site (CH-7.3).
# On call: the site's on-call fee of 40.00 added whole, paid by the site (CH-7.5).
HAND = {("ACQK001", False): ("37.27", "48.00"), ("ACQK001", True): ("77.27", "8.00"),
        ("NBQK001", False): ("9.09", "10.86"), ("NBQK001", True): ("49.09", "-29.14")}
CT_CSV = ("code,label,modality,family,price_eur,technical_share_eur\n"
          "ACQK001,Scanographie du crâne,CT,scanner,100.00,70.00\n")


def _total(lines, key):
    return sum((Decimal(line[key]) for line in lines), Decimal("0.00"))


@pytest.mark.charter("CH-7.2")
@pytest.mark.charter("CH-7.3")
@pytest.mark.charter("CH-7.5")
@pytest.mark.charter("CH-7.6")
def test_CH7_each_act_is_shared_as_the_charter_says_and_the_statements_add_up_to_the_cent(fees_ctx):
    statements = {s: preview_statement(fees_ctx, ADMIN, s, DECEMBER) for s in (LEGALL, MORVAN, BREST)}
    lines = statements[BREST]["lines"]
    assert len(lines) == 5 and {line["family"] for line in lines} == {"scanner", "radiologie"}
    for line in lines:
        assert (line["radiologist_eur"], line["site_eur"]) == HAND[(line["code"], line["on_call"])], line
        assert sum(Decimal(b["amount_eur"]) for b in line["breakdown"]) == (
            Decimal(line["radiologist_eur"]) + Decimal(line["site_eur"]))
        assert Decimal(line["radiologist_eur"]) + Decimal(line["site_eur"]) == Decimal(line["price_eur"])
    assert statements[LEGALL]["totals"]["due_to_radiologists_eur"] == "74.54"  # two plain head CTs
    assert statements[MORVAN]["totals"]["due_to_radiologists_eur"] == "203.63"
    assert _total(lines, "radiologist_eur") == Decimal("278.17") == Decimal("74.54") + Decimal("203.63")
    site = statements[BREST]["totals"]
    assert site["due_to_radiologists_eur"] == "278.17" and site["price_eur"] == "361.03"
    # CH-7.6: the site's transmission costs are in its net only, never in a radiologist's statement.
    assert site["transmission_costs_eur"] == "90.00" and site["site_net_eur"] == "-7.14"  # 82.86 - 90.00
    assert statements[LEGALL]["totals"]["transmission_costs_eur"] == "0.00"
    assert {(p["payee"], p["amount_eur"]) for p in statements[BREST]["payments"]} == {
        ("dr.legall", "74.54"), ("dr.morvan", "203.63")}
    assert all(s["sample_table"] for s in statements.values())  # computed on the SAMPLE table, and says so


@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_1_an_issued_statement_is_frozen_and_its_acts_locked(fees_ctx, clock):
    with pytest.raises(FeeStatementError, match="n'est pas terminé"):
        issue_statement(fees_ctx, ADMIN, LEGALL, JANUARY)
    with pytest.raises(Forbidden):
        issue_statement(fees_ctx, LEGALL_ACTOR, LEGALL, DECEMBER)
    statement_id = issue_statement(fees_ctx, ADMIN, LEGALL, DECEMBER)
    issued = get_statement(fees_ctx, LEGALL_ACTOR, statement_id)
    assert issued.snapshot["totals"]["due_to_radiologists_eur"] == "74.54" and issued.snapshot["issued_by"] == "admin"
    with pytest.raises(Conflict):
        issue_statement(fees_ctx, ADMIN, LEGALL, DECEMBER)
    case_id = issued.snapshot["lines"][0]["case_id"]
    with pytest.raises(Conflict, match="émis"):
        add_case_act(fees_ctx, LEGALL_ACTOR, case_id, "ACQH003")
    with pytest.raises(Conflict):
        remove_case_act(fees_ctx, LEGALL_ACTOR, case_id, issued.snapshot["lines"][0]["act_id"])
    assert case_acts(fees_ctx, LEGALL_ACTOR, case_id).locked
    with fees_ctx.write() as session:
        row = session.get(FeeStatement, statement_id)
        row.snapshot = "{}"
        with pytest.raises(ImmutableStatement):
            session.flush()
        session.rollback()
    with fees_ctx.write() as session, pytest.raises(Exception, match="never changed"):
        session.execute(update(FeeStatement).where(FeeStatement.id == statement_id).values(sha256="x"))
    with fees_ctx.write() as session, pytest.raises(Exception, match="never changed"):
        session.execute(text("DELETE FROM fee_statement"))
    assert get_statement(fees_ctx, ADMIN, statement_id).snapshot_text == issued.snapshot_text


@pytest.mark.charter("CH-6.4", negative=True)
@pytest.mark.charter("CH-7.1", negative=True)
def test_CH6_4_a_correction_is_carried_into_the_next_statement_and_a_flat_rate_is_refused(fees_ctx, clock):
    december = issue_statement(fees_ctx, ADMIN, LEGALL, DECEMBER)
    case_id = get_statement(fees_ctx, ADMIN, december).snapshot["lines"][0]["case_id"]
    for kind, reason, case in (("forfait", "Forfait mensuel", case_id), ("correction", "Prime de productivité",
                                                                        case_id), ("correction", "Rattrapage", None)):
        with pytest.raises(FeeStatementError) as refused:
            add_adjustment(fees_ctx, ADMIN, case, "100.00", reason, kind=kind)
        assert FLAT_RATE_REFUSAL in str(refused.value)
    with pytest.raises(FeeStatementError, match="Montant illisible"):
        add_adjustment(fees_ctx, ADMIN, case_id, "douze", "Acte oublié")
    with pytest.raises(Forbidden):
        add_adjustment(fees_ctx, LEGALL_ACTOR, case_id, "10.00", "Acte oublié")
    add_adjustment(fees_ctx, ADMIN, case_id, "-12,50", "Injection non réalisée : ACQH003 corrigé en ACQK001")
    assert get_statement(fees_ctx, ADMIN, december).snapshot["adjustments"] == []  # the issued one unchanged
    january = preview_statement(fees_ctx, ADMIN, LEGALL, JANUARY)
    assert january["totals"]["adjustments_eur"] == "-12.50" and january["totals"]["due_to_radiologists_eur"] == "-12.50"
    assert preview_statement(fees_ctx, ADMIN, BREST, JANUARY)["totals"]["adjustments_eur"] == "-12.50"
    clock.advance(days=30)
    issue_statement(fees_ctx, ADMIN, LEGALL, JANUARY)
    assert preview_statement(fees_ctx, ADMIN, LEGALL, parse_month("2026-02"))["adjustments"] == []  # carried once


@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_1_who_may_read_statements_and_choose_acts(fees_ctx, clock):
    assert preview_statement(fees_ctx, LEGALL_ACTOR, LEGALL, DECEMBER)["scope"]["id"] == "dr.legall"
    for actor, scope in ((LEGALL_ACTOR, MORVAN), (LEGALL_ACTOR, BREST), (MORLAIX_LEAD, BREST), (REQUESTER, BREST),
                         (BREST_LEAD, LEGALL)):
        with pytest.raises(Forbidden):
            preview_statement(fees_ctx, actor, scope, DECEMBER)
    assert preview_statement(fees_ctx, BREST_LEAD, BREST, DECEMBER)["totals"]["acts"] == 5
    clock.advance(days=30)
    ids = [issue_statement(fees_ctx, ADMIN, scope, DECEMBER) for scope in (LEGALL, MORVAN, BREST)]
    assert [s.id for s in list_statements(fees_ctx, LEGALL_ACTOR)] == [ids[0]]
    assert [s.id for s in list_statements(fees_ctx, BREST_LEAD)] == [ids[2]]
    assert list_statements(fees_ctx, REQUESTER) == []
    with pytest.raises(Forbidden):
        get_statement(fees_ctx, LEGALL_ACTOR, ids[1])
    # Acts: only the case's radiologist chooses them, from the table, fitting the case's modality.
    case_id = preview_statement(fees_ctx, ADMIN, MORVAN, JANUARY)["lines"][0]["case_id"]
    with pytest.raises(Forbidden):
        add_case_act(fees_ctx, LEGALL_ACTOR, case_id, "ACQK001")
    with pytest.raises(CaseActError, match="inconnu"):
        add_case_act(fees_ctx, MORVAN_ACTOR, case_id, "FORFAIT")
    with pytest.raises(CaseActError, match="modalité"):
        add_case_act(fees_ctx, MORVAN_ACTOR, case_id, "ZBQK002")  # a chest X-ray on a CT case
    choices = case_acts(fees_ctx, MORVAN_ACTOR, case_id, search="crâne").choices
    assert choices and all(a.modality == "CT" and "crâne" in a.label for a in choices)
    act_id = add_case_act(fees_ctx, MORVAN_ACTOR, case_id, "ACQH003", urgency=True)
    assert [a.code for a in case_acts(fees_ctx, MORVAN_ACTOR, case_id).chosen][-1] == "ACQH003"
    remove_case_act(fees_ctx, MORVAN_ACTOR, case_id, act_id)


@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_1_a_ccam_table_is_versioned_by_date_and_a_bad_file_is_refused_whole(fees_ctx, tmp_path):
    tables = len(list_tables(fees_ctx))
    bad = tmp_path / "ccam.csv"
    for content, message in ((CT_CSV + "ZZZ1,Faux,CT,scanner,10.00,5.00\n", "code CCAM invalide"),
                             (CT_CSV + "ACQK001,Doublon,CT,scanner,10.00,5.00\n", "deux fois"),
                             ("code,label\nACQK001,x\n", "colonnes manquantes"),
                             (CT_CSV.replace("100.00", "cent"), "montant illisible")):
        bad.write_text(content, encoding="utf-8")
        with pytest.raises(CcamTableError, match=message):
            load_table(fees_ctx, ADMIN, bad, date(2026, 1, 1))
    with pytest.raises(Forbidden):
        load_table(fees_ctx, LEGALL_ACTOR, bad, date(2026, 1, 1))
    with fees_ctx.read() as session:
        assert session.execute(select(func.count()).select_from(CcamTable)).scalar_one() == tables == 1
    good = tmp_path / "ccam-2026.csv"
    good.write_text(CT_CSV, encoding="utf-8")
    load_table(fees_ctx, ADMIN, good, date(2026, 1, 1))
    load_table(fees_ctx, ADMIN, good, date(2026, 1, 1))  # the same date of effect: replaced, not added
    with fees_ctx.read() as session:
        assert table_on(session, date(2025, 12, 31)).sample
        new = table_on(session, date(2026, 1, 1))
        assert not new.sample and new.source_name == "ccam-2026.csv"
        assert session.execute(select(func.count()).select_from(CcamTable)).scalar_one() == 2
        assert session.execute(select(CcamTableAct.price_eur).where(CcamTableAct.table_id == new.id)).scalar_one() \
            == Decimal("100.00")
    # January's act now shares with the table in effect on its day of release: 30.00 + 14.00.
    january = preview_statement(fees_ctx, ADMIN, MORVAN, JANUARY)["lines"][0]
    assert (january["price_eur"], january["radiologist_eur"]) == ("100.00", "84.00")  # with the 40.00 on-call fee


def _teleexpertise_answered(ctx, clock) -> int:
    """A teleexpertise of ch-morlaix asked by its local radiologist and answered (signed) by dr.legall."""
    import pyotp

    from engine.services.instances import start_instance
    from engine.services.tasks import complete_task
    from engine.store.directory_models import User
    from tests.demo_app import open_task

    local = Actor("dr.kerbrat", frozenset({"local_radiologist"}), frozenset({"ch-morlaix"}))
    expert = Actor("dr.legall", frozenset({"radiologist", "tele_expert"}))
    case_id = start_instance(ctx, local, "teleexpertise", {}, site_id="ch-morlaix")
    request = {"patient": {"birth_name": "KERMARREC", "first_names": "Yann", "birth_date": "1950-03-02", "sex": "M",
                           "identity_status": "qualified"}, "expert_id": "dr.legall",
               "question": "Lésion rénale gauche : kyste ou lésion tissulaire ?", "clinical_context": "Fortuite.",
               "study_reference": "TR260105A1B2C3D4", "prior_imaging": "aucune",
               "interventional_decision_possible": True}
    complete_task(ctx, local, open_task(ctx, case_id, "te_request"), request)
    complete_task(ctx, local, open_task(ctx, case_id, "te_consent"), {"patient_informed": True, "consent": "given"})
    complete_task(ctx, expert, open_task(ctx, case_id, "te_check"), {"file_complete": True})
    with ctx.read() as session:
        secret = ctx.keys.decrypt_secret(session.get(User, "dr.legall").totp_secret)
    complete_task(ctx, expert, open_task(ctx, case_id, "te_report"), {
        "opinion": "Kyste simple.", "conclusion": "Kyste simple Bosniak I.", "send_to_requester": True,
        "patient_requested": False, "signature_code": pyotp.TOTP(secret).at(clock.now())})
    return case_id


@pytest.mark.charter("CH-7.4", negative=True)
def test_CH7_4_a_second_opinion_is_paid_its_specific_fee_never_a_share_of_the_act(fees_ctx, clock):
    case_id = _teleexpertise_answered(fees_ctx, clock)
    add_case_act(fees_ctx, LEGALL_ACTOR, case_id, "ZCQH001")  # the act the local team performed and billed
    lines = [x for x in preview_statement(fees_ctx, ADMIN, LEGALL, JANUARY)["lines"] if x["case_id"] == case_id]
    assert len(lines) == 1 and lines[0]["teleexpertise"]
    assert lines[0]["radiologist_eur"] == "50.00" and [b["key"] for b in lines[0]["breakdown"]] == ["teleexpertise_fee"]
    # No share of the act (110.54 €, 50.54 intellectual) reaches the tele-expert for a second opinion.
    assert not any(b["key"].startswith(("intellectual", "technical")) for b in lines[0]["breakdown"])
    assert preview_statement(fees_ctx, ADMIN, Scope("site", "ch-morlaix"), JANUARY)["payments"] == [{
        "payer_site": "ch-morlaix", "payer_name": "CH de Morlaix", "payee": "dr.legall",
        "payee_name": "Dr Yann Le Gall (radiologue)", "amount_eur": "50.00"}]


@pytest.mark.charter("CH-7.2", negative=True)
@pytest.mark.charter("CH-7.3", negative=True)
def test_CH7_2_3_a_table_that_would_break_the_split_is_refused(fees_ctx, tmp_path):
    bad = tmp_path / "ccam.csv"
    header = "code,label,modality,family,price_eur,technical_share_eur\n"
    for row, message in (("ACQK001,Scanographie du crâne,CT,scanner,85.27,\n", "part technique"),  # CH-7.2
                         ("ACQK001,Scanographie du crâne,CT,scanner,85.27,90.00\n", "dépasse le prix"),
                         ("ZBQK002,Radiographie du thorax,XR,irm,21.28,\n", "ne correspond pas à la famille"),
                         ("ZBQK002,Radiographie du thorax,CT,radiologie,21.28,\n", "ne correspond pas")):  # CH-7.3
        bad.write_text(header + row, encoding="utf-8")
        with pytest.raises(CcamTableError, match=message):
            load_table(fees_ctx, ADMIN, bad, date(2026, 1, 1))
    assert len(list_tables(fees_ctx)) == 1


@pytest.mark.charter("CH-7.5", negative=True)
@pytest.mark.charter("CH-7.6", negative=True)
def test_CH7_5_6_a_correction_never_bills_transmission_costs_nor_takes_back_the_on_call_fee(fees_ctx):
    case_id = preview_statement(fees_ctx, ADMIN, LEGALL, DECEMBER)["lines"][0]["case_id"]
    with pytest.raises(FeeStatementError, match="CH-7.6"):
        add_adjustment(fees_ctx, ADMIN, case_id, "-90.00", "Quote-part de l'abonnement de télétransmission")
    with pytest.raises(FeeStatementError, match="CH-7.5"):
        add_adjustment(fees_ctx, ADMIN, case_id, "-40", "Reprise du forfait de permanence des soins")
    january = preview_statement(fees_ctx, ADMIN, LEGALL, JANUARY)
    assert january["adjustments"] == [] and january["totals"]["transmission_costs_eur"] == "0.00"
    # The on-call fee of an act done on call is the radiologist's whole, paid from the site's net.
    on_call = [x for x in preview_statement(fees_ctx, ADMIN, BREST, DECEMBER)["lines"] if x["on_call"]]
    assert on_call and all({(b["key"], b["payee"], b["amount_eur"]) for b in x["breakdown"]} >= {
        ("on_call_fee", "radiologist", "40.00"), ("on_call_fee_paid", "site", "-40.00")} for x in on_call)
