"""Reports out: a released report is queued as an ORU^R01 in the transaction of the release and delivered over
MLLP to the site's RIS (a real MLLP peer on loopback), with retries and backoff, across restarts (CH-5.1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hl7apy.parser import parse_message
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.instances import case_by_accession, case_data
from engine.services.persistence import InstanceRow
from engine.services.report_addenda import add_addendum
from engine.services.report_signature import SignatureRefused
from engine.services.tasks import complete_task, list_tasks
from forms import default_registry
from integrations.hl7 import codec
from integrations.hl7.fields import Fields
from integrations.hl7.mllp import MllpClient
from integrations.hl7.models import Hl7Message, Hl7Outbox
from integrations.hl7.outbox import ReportHook, deliver_pending, install, retry_now
from integrations.hl7.queries import outbox
from integrations.hl7.senders import set_endpoint
from integrations.hl7.service import Hl7Service
from tests.integration.hl7_support import FakeRis, demo_hl7_ctx, free_port, msa, sample, wait_for
from tests.signing import signature_code
from web.cli.demo_data import demo_request

SYSTEM = Actor.system()
ADMIN = Actor("admin", frozenset({"administrator"}))
REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))
TECHNOLOGIST = Actor("merm.leroy", frozenset({"technologist"}), frozenset({"ch-brest"}))
RADIOLOGIST = Actor("dr.legall", frozenset({"radiologist", "tele_expert"}), frozenset())
FINDINGS = "Hématome sous-dural aigu | épaisseur 8 mm ^ effet de masse & déviation ~ 3 mm \\ sans engagement.\n" \
           "Pas de fracture visible."
CRAFTED = {"patient": {"birth_name": "KERMARREC", "first_names": "Yann", "birth_date": "1948-05-17", "sex": "M",
                       "site_patient_id": "IPP0042"},
           "accession_number": "ACC-CRAFT-1", "requested_exam": "Scanner cérébral sans injection",
           "technique": "Acquisition hélicoïdale sans injection.", "findings": "Cœur de l'hématome : 8 mm.",
           "conclusion": "Hématome sous-dural aigu.", "radiologist": {"name": "Dr Yann Le Gall", "rpps": "10003456786"},
           "release": {"released_at": "2026-01-05T08:30:00+00:00", "released_by": "dr.legall"}}


@pytest.fixture
def ctx(request, make_ctx, database_url):
    ctx = demo_hl7_ctx(request, make_ctx, database_url)
    install(ctx)
    return ctx


def complete(ctx, case_id, spec, actor, **data):
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id and t.spec_name == spec)
    complete_task(ctx, actor, task.id, data)


def order_and_report(ctx, findings=FINDINGS):
    """A RIS order over MLLP, then the whole telediagnosis up to the released report."""
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600)
    service.start()
    try:
        with MllpClient("127.0.0.1", service.port) as client:
            assert msa(client.send(sample("orm_o01_2.3.1_nw_latin1.hl7")))[0] == "AA"
    finally:
        service.stop()
    case_id = case_by_accession(ctx, "ACC-BRE-0001")
    patient = case_data(ctx, case_id)["patient"]
    complete(ctx, case_id, "request", REQUESTER, **demo_request(patient=patient, urgency="vital"))
    complete(ctx, case_id, "accept_case", RADIOLOGIST, acceptance="accept")
    complete(ctx, case_id, "inform_patient", REQUESTER, patient_informed=True, consent="given")
    complete(ctx, case_id, "check_identity", TECHNOLOGIST, identity_checked=True, identity_status="qualified",
             identity_document="id_card")
    complete(ctx, case_id, "justify", RADIOLOGIST, justification="validate")
    complete(ctx, case_id, "choose_protocol", RADIOLOGIST, protocol="ct_head_plain")
    complete(ctx, case_id, "acquire_images", TECHNOLOGIST, images_sent=True, protocol_followed=True,
             technical_difficulty=False)
    complete(ctx, case_id, "interpret", RADIOLOGIST, outcome="report", technique="Acquisition sans injection.",
             findings=findings, conclusion="Hématome sous-dural aigu droit.", certainty="certain",
             urgent_finding=False, poor_prognosis=False, signature_code=signature_code(ctx, RADIOLOGIST.user_id))
    return case_id


def queue(ctx, data=CRAFTED, case_id=999, site_id="ch-brest"):
    """The save hook as the engine calls it, in a transaction of its own."""
    row = InstanceRow(case_id, 1, "telediagnosis", "running", site_id, 2, 0, "0" * 64)
    with ctx.write() as session:
        ReportHook(ctx)(session, row, data)
        session.commit()


def rows(ctx):
    with ctx.read() as session:
        return list(session.execute(select(Hl7Outbox).order_by(Hl7Outbox.id)).scalars())


def read_oru(text):
    message = parse_message(text, find_groups=False)
    return message, Fields(message, codec.STANDARD_DELIMITERS)


@pytest.mark.charter("CH-5.1")
def test_a_released_report_is_queued_once_and_delivered_as_an_oru_r01(ctx):
    case_id = order_and_report(ctx)
    assert "release" in case_data(ctx, case_id)
    [row] = rows(ctx)
    assert (row.case_id, row.status, row.kind, row.site_id) == (case_id, "pending", "ORU", "ch-brest")
    complete(ctx, case_id, "acknowledge_report", REQUESTER, report_read=True, integrated_in_record=True)
    assert len(rows(ctx)) == 1  # later saves of the case do not queue it again
    with FakeRis() as ris:
        set_endpoint(ctx, SYSTEM, "ch-brest", "127.0.0.1", ris.port, receiving_application="RIS_BREST",
                     receiving_facility="CH_BREST")
        assert deliver_pending(ctx).sent == 1
    [text] = ris.received
    message, f = read_oru(text)
    assert message.name == "ORU_R01"
    assert (f.get("MSH", 5), f.get("MSH", 6), f.get("MSH", 18)) == ("RIS_BREST", "CH_BREST", "UNICODE UTF-8")
    assert (f.get("OBR", 3), f.get("OBR", 18), f.get("OBR", 25)) == ("ACC-BRE-0001", "ACC-BRE-0001", "F")
    assert f.get("OBR", 2) == "CMD-2026-0001"
    assert f.get("OBR", 32, 1, 1) == "10003456786"  # RPPS of the interpreting radiologist
    assert "Le Gall" in f.get("OBR", 32, 1, 2) and f.get("OBR", 32, 1, 9) == "ASIP-SANTE-PS"
    assert f.get("PID", 3) == "IPP0042" and f.get("PID", 5) == "KERMARREC" and f.get("PID", 7) == "19480517"
    observations = [{field.name: field.to_er7() for field in obx.children} for obx in message.children
                    if obx.name == "OBX"]
    assert [f.split(obx["OBX_5"]) for obx in observations] == [
        "Acquisition sans injection.", *FINDINGS.splitlines(), "Hématome sous-dural aigu droit."]
    assert {(obx["OBX_2"], obx["OBX_11"]) for obx in observations} == {("TX", "F")}
    assert [obx["OBX_3"].split("^")[0] for obx in observations] == ["55111-9", "18782-3", "18782-3", "19005-8"]
    [sent] = rows(ctx)
    assert (sent.status, sent.attempts, sent.ack_code, sent.last_error) == ("sent", 1, "AA", None)
    with ctx.read() as session:
        logged = session.execute(select(Hl7Message).where(Hl7Message.direction == "out")).scalar_one()
    assert (logged.case_id, logged.control_id, logged.ack_code) == (case_id, sent.control_id, "AA")


@pytest.mark.charter("CH-5.1")
def test_a_signed_addendum_reaches_the_ris_as_a_correction_keeping_the_original(ctx):
    """Issue 17, item 5: the addendum after the release goes to the RIS that took the report, as the report again
    (OBR-25 C) with the addendum after the original sections; a refused signature sends nothing."""
    case_id = order_and_report(ctx)
    complete(ctx, case_id, "acknowledge_report", REQUESTER, report_read=True, integrated_in_record=True)
    with pytest.raises(SignatureRefused):
        add_addendum(ctx, RADIOLOGIST, case_id, "Relecture : pas d'autre anomalie.", "000000")
    assert len(rows(ctx)) == 1
    add_addendum(ctx, RADIOLOGIST, case_id, "Relecture : fracture occipitale non déplacée | à surveiller.",
                 signature_code(ctx, RADIOLOGIST.user_id))
    assert [row.release_key.split(":")[0] for row in rows(ctx)][1:] == ["addendum"]
    with FakeRis() as ris:
        set_endpoint(ctx, SYSTEM, "ch-brest", "127.0.0.1", ris.port, receiving_application="RIS_BREST",
                     receiving_facility="CH_BREST")
        assert deliver_pending(ctx).sent == 2
    original, corrected = (read_oru(text) for text in ris.received)
    assert original[1].get("OBR", 25) == "F" and corrected[1].get("OBR", 25) == "C"
    observations = [{field.name: field.to_er7() for field in obx.children} for obx in corrected[0].children
                    if obx.name == "OBX"]
    assert [obx["OBX_3"].split("^")[0] for obx in observations] == [
        "55111-9", "18782-3", "18782-3", "19005-8", "55107-7", "55107-7"]
    texts = [corrected[1].split(obx["OBX_5"]) for obx in observations]
    assert texts[:4] == ["Acquisition sans injection.", *FINDINGS.splitlines(), "Hématome sous-dural aigu droit."]
    assert texts[4].startswith("Addendum du ") and "Le Gall" in texts[4]
    assert texts[5] == "Relecture : fracture occipitale non déplacée | à surveiller."
    assert {obx["OBX_11"] for obx in observations} == {"C"}


def test_the_hook_is_idempotent_and_a_second_release_is_sent_as_a_correction(ctx):
    set_endpoint(ctx, SYSTEM, "ch-brest", "127.0.0.1", 1)
    queue(ctx)
    queue(ctx)
    assert len(rows(ctx)) == 1
    queue(ctx, {**CRAFTED, "release": {"released_at": "2026-01-05T09:00:00+00:00", "released_by": "dr.legall"}})
    first, second = rows(ctx)
    assert read_oru(first.payload)[1].get("OBR", 25) == "F"
    assert read_oru(second.payload)[1].get("OBR", 25) == "C"


def test_no_report_is_queued_for_a_site_without_hl7_unless_the_order_came_over_hl7(ctx):
    queue(ctx, site_id="ch-morlaix")
    assert rows(ctx) == []
    queue(ctx, {**CRAFTED, "hl7": {"sender": "RIS_MORLAIX@CH_MORLAIX"}}, site_id="ch-morlaix")
    [row] = rows(ctx)
    assert deliver_pending(ctx).failed == 1
    [row] = rows(ctx)
    assert row.status == "failed" and "Aucun point de livraison" in row.last_error


def test_latin_1_endpoint_gets_latin_1_bytes(ctx):
    with FakeRis() as ris:
        set_endpoint(ctx, SYSTEM, "ch-brest", "127.0.0.1", ris.port, charset="8859/1")
        queue(ctx)
        assert deliver_pending(ctx).sent == 1
    [text] = ris.received
    f = read_oru(text)[1]
    assert f.get("MSH", 18) == "8859/1"
    assert "Coeur de l'hématome : 8 mm." in text  # decoded by MSH-18; œ is not in 8859/1


@pytest.mark.charter("CH-5.1")
def test_a_closed_port_fails_with_backoff_and_the_report_goes_when_the_peer_comes_back(ctx, clock):
    port = free_port()
    set_endpoint(ctx, SYSTEM, "ch-brest", "127.0.0.1", port)
    queue(ctx)
    assert deliver_pending(ctx).failed == 1
    [row] = rows(ctx)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert "injoignable" in row.last_error
    assert [line.status for line in outbox(ctx)] == ["failed"]  # what administrators see
    assert deliver_pending(ctx) == deliver_pending(ctx, clock.now() + timedelta(seconds=29))  # not due yet: nothing
    assert rows(ctx)[0].attempts == 1
    clock.advance(seconds=30)
    assert deliver_pending(ctx).failed == 1
    assert rows(ctx)[0].next_attempt_at == clock.now() + timedelta(seconds=60)  # 30 s x 2
    with FakeRis(port) as ris:
        clock.advance(seconds=60)
        assert deliver_pending(ctx).sent == 1
    assert len(ris.received) == 1
    [row] = rows(ctx)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 3, clock.now())


def test_backoff_is_capped_at_one_hour_and_retry_now_makes_a_failed_row_due(ctx, clock):
    from integrations.hl7.outbox import backoff

    assert [backoff(n).total_seconds() for n in (1, 2, 3, 7, 8, 30)] == [30, 60, 120, 1920, 3600, 3600]
    set_endpoint(ctx, SYSTEM, "ch-brest", "127.0.0.1", free_port())
    queue(ctx)
    deliver_pending(ctx)
    with pytest.raises(Exception, match="administrateur"):
        retry_now(ctx, Actor("dr.martin", frozenset({"requester"})))
    assert retry_now(ctx, ADMIN) == 1
    assert rows(ctx)[0].next_attempt_at == clock.now()


def test_a_refusal_by_the_ris_is_a_failure_kept_for_retry(ctx):
    with FakeRis(answer="AE") as ris:
        set_endpoint(ctx, SYSTEM, "ch-brest", "127.0.0.1", ris.port)
        queue(ctx)
        assert deliver_pending(ctx).failed == 1
    [row] = rows(ctx)
    assert row.status == "failed" and "MSA-1 AE" in row.last_error


@pytest.mark.charter("CH-5.1")
def test_pending_reports_survive_a_restart_and_are_delivered_by_the_new_service(ctx, make_ctx):
    port = free_port()
    set_endpoint(ctx, SYSTEM, "ch-brest", "127.0.0.1", port)
    queue(ctx)
    deliver_pending(ctx)  # fails: nobody listens yet
    ctx.engine.dispose()  # the process stops
    with FakeRis(port) as ris:
        restarted = make_ctx(operations=None, forms=default_registry(), escalation=None)
        restarted.clock.advance(minutes=5)
        service = Hl7Service(restarted, "127.0.0.1", 0, delivery_interval=0.2)
        service.start()
        try:
            wait_for(lambda: ris.received, what="the report to reach the RIS")
        finally:
            service.stop()
    assert rows(restarted)[0].status == "sent"
    assert read_oru(ris.received[0])[1].get("OBR", 3) == "ACC-CRAFT-1"
