"""Charter gates reached by HL7 orders, through a real MLLP client over loopback against our listener: each
refusal is an AE whose ERR says why in French (the case is left as it was), and is traced on the case.

- an amendment (ORM XO, ADT^A08) of identity traits after the identity check, or of the modality or indication
  after the justification, is refused (CH-4.1.6, CH-4.1.2);
- a cancel (ORC CA) once the acquisition step is reached is refused: the case ends with a released report or a
  motivated refusal (CH-1.2);
- an INS whose key is wrong is refused in new orders and amendments (CH-4.1.6, CH-8.1).
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from engine.domain.identity import nir_key
from engine.services.instances import case_by_accession, case_data
from engine.store.models import AuditEvent, ProcessInstance
from integrations.hl7.mllp import MllpClient
from integrations.hl7.service import Hl7Service
from tests.integration.dicom_support import check_identity, complete_step, demo_case, open_tasks
from tests.integration.hl7_support import ack_segments, case_count, demo_hl7_ctx, inbound_rows, msa, sample
from web.cli.demo_data import demo_request

NIR = "2790229123456"
BAD_INS = f"{NIR}{(nir_key(NIR) % 97) + 1:02d}"
MSH = "MSH|^~\\&|RIS_BREST|CH_BREST|TELERAD|TELERAD|20261127094000+0100||{type}|{control}|P|2.5|||AL|NE|FRA|" \
      "UNICODE UTF-8|FR"


@pytest.fixture
def hl7(request, make_ctx, database_url):
    ctx = demo_hl7_ctx(request, make_ctx, database_url)
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600)
    service.start()
    yield ctx, service
    service.stop()


@pytest.fixture
def client(hl7):
    _, service = hl7
    with MllpClient("127.0.0.1", service.port, timeout=30) as mllp:
        yield mllp


def message(control: str, *segments: str, kind: str = "ORM^O01^ORM_O01") -> bytes:
    return "\r".join([MSH.format(type=kind, control=control), *segments]).encode() + b"\r"


def order_change(control: str, accession: str, exam: str, modality: str, pid: str = "") -> bytes:
    segments = [pid] if pid else []
    return message(control, *segments, f"ORC|XO|CMD-{accession}|{accession}||SC",
                   f"OBR|1|CMD-{accession}|{accession}|ZB01^{exam}^L||||||||||||||{accession}||||||{modality}")


def status_of(ctx, case_id):
    with ctx.read() as session:
        return session.get(ProcessInstance, case_id).status


def refusals(ctx, case_id):
    with ctx.read() as session:
        return [json.loads(d) for d in session.execute(select(AuditEvent.detail).where(
            AuditEvent.chain == case_id, AuditEvent.action == "charter.refused")).scalars()]


def err_text(ack: bytes) -> str:
    """ERR-8, the French reason (the ACK is in the message's UTF-8, MSH-18)."""
    err = next(s for s in ack.decode("utf-8").replace("\n", "\r").split("\r") if s.startswith("ERR"))
    return err.split("|")[8]


def checked_hl7_case(ctx, client) -> int:
    """An HL7 order for Nolwenn Le Bihan (IPP0077), requested, accepted, consented and identity-checked."""
    assert msa(client.send(sample("orm_o01_2.5_nw_utf8.hl7")))[0] == "AA"
    case_id = case_by_accession(ctx, "ACC-BRE-0002")
    patient = {"birth_name": "LE BIHAN", "first_names": "Nolwenn", "birth_date": "1979-02-03", "sex": "F",
               "identity_status": "qualified", "site_patient_id": "IPP0077"}
    complete_step(ctx, case_id, "request", "dr.martin", demo_request(patient=patient, pregnancy_status="not_pregnant"))
    complete_step(ctx, case_id, "accept_case", "dr.legall", {"acceptance": "accept"})
    check_identity(ctx, case_id)
    return case_id


@pytest.mark.charter("CH-4.1.2", negative=True)
def test_xo_changing_the_modality_or_exam_after_the_justification_gets_ae_with_the_reason(hl7, client):
    ctx, _ = hl7
    case_id, accession = demo_case(ctx)  # Jean Quéré: justified, protocol chosen, at the acquisition step
    before = case_data(ctx, case_id)
    ack = client.send(order_change("XO-Q1", accession, "Scanner du poignet droit", "CT"))
    assert msa(ack) == ("AE", "XO-Q1")
    err = ack_segments(ack)["ERR"]
    assert err[2] == "OBR^1^4" and err[3].startswith("207^")
    assert "l'examen a déjà été justifié" in err_text(ack) and "CH-4.1.2" in err_text(ack)
    after = case_data(ctx, case_id)
    assert (after["modality"], after["requested_exam"]) == (before["modality"], before["requested_exam"])
    assert refusals(ctx, case_id)[0]["step"] == "amend"
    row = inbound_rows(ctx)[-1]
    assert (row.status, row.ack_code, row.error_code) == ("error", "AE", 207) and "justifié" in row.error
    # Saying again what the case knows (upper case names from the RIS included) is accepted.
    same = order_change("XO-Q2", accession, before["requested_exam"], before["modality"],
                        pid="PID|1||||QUÉRÉ^JEAN^^^^^L||19600921|M")
    assert msa(client.send(same)) == ("AA", "XO-Q2")


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_xo_and_adt_changing_identity_after_the_identity_check_get_ae_and_change_no_case(hl7, client):
    ctx, _ = hl7
    checked = checked_hl7_case(ctx, client)
    # A second order of the same patient, not checked yet: the ADT would amend both; it must amend neither.
    other = sample("orm_o01_2.5_nw_utf8.hl7", **{"ACC-BRE-0002": "ACC-BRE-0099", "BRE000102": "NW-99"})
    assert msa(client.send(other))[0] == "AA"
    unchecked = case_by_accession(ctx, "ACC-BRE-0099")
    adt = sample("adt_a08_2.5.hl7", **{"IPP0042": "IPP0077", "KERMARREC-LE BRAS^Yann^Éloi": "LE BIHAN-QUÉRÉ^Nolwenn",
                                       "19480517|M": "19790203|F"})
    ack = client.send(adt)
    assert msa(ack) == ("AE", "BRE000106")
    assert ack_segments(ack)["ERR"][2] == "PID^1^5" and "l'identité du patient a déjà été vérifiée" in err_text(ack)
    assert case_data(ctx, checked)["patient"]["birth_name"] == "LE BIHAN"
    assert case_data(ctx, unchecked)["patient"]["birth_name"] == "LE BIHAN"  # nothing half-written
    assert len(refusals(ctx, checked)) == 1
    xo = sample("orm_o01_2.5_xo.hl7", **{"LE BIHAN^Nolwenn": "LE BIHAN^Anne"})
    ack = client.send(xo)
    assert msa(ack)[0] == "AE" and "prénoms" in err_text(ack)
    assert case_data(ctx, checked)["patient"]["first_names"] == "Nolwenn"


@pytest.mark.charter("CH-1.2", negative=True)
def test_ca_after_the_acquisition_step_gets_ae_and_the_case_goes_on(hl7, client):
    ctx, _ = hl7
    case_id, accession = demo_case(ctx)  # at acquire_images
    ack = client.send(message("CA-Q1", f"ORC|CA|CMD-{accession}|{accession}||CA",
                              f"OBR|1|CMD-{accession}|{accession}|ZB01^Radiographie^L"))
    assert msa(ack) == ("AE", "CA-Q1")
    assert ack_segments(ack)["ERR"][2] == "ORC^1^1" and "ne peut plus être annulé" in err_text(ack)
    assert "CH-1.2" in err_text(ack)
    assert status_of(ctx, case_id) == "running" and open_tasks(ctx, case_id) == ["acquire_images"]
    assert refusals(ctx, case_id)[0]["refusals"][0]["rule"] == "CH-1.2"


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-8.1", negative=True)
def test_an_ins_with_a_wrong_key_gets_ae_in_new_orders_and_changes(hl7, client):
    ctx, _ = hl7
    ipp = "IPP0077^^^CH_BREST&1.2.250.1.211.10.200.2&ISO^PI"
    with_ins = f"{ipp}~{BAD_INS}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS"
    ack = client.send(sample("orm_o01_2.5_nw_utf8.hl7", **{ipp: with_ins}))
    assert msa(ack)[0] == "AE"
    err = ack_segments(ack)["ERR"]
    assert err[2] == "PID^1^3" and err[3].startswith("102^") and "INS invalide" in err_text(ack)
    assert case_count(ctx, "ACC-BRE-0002") == 0
    assert msa(client.send(sample("orm_o01_2.5_nw_utf8.hl7", BRE000102="NW-OK")))[0] == "AA"
    change = sample("orm_o01_2.5_xo.hl7", **{ipp: with_ins})
    ack = client.send(change)
    assert msa(ack)[0] == "AE" and "INS invalide" in err_text(ack)
    assert "ins" not in case_data(ctx, case_by_accession(ctx, "ACC-BRE-0002"))["patient"]


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-8.1", negative=True)
def test_a_new_order_reusing_an_accession_number_for_another_patient_gets_ae(hl7, client):
    ctx, _ = hl7
    assert msa(client.send(sample("orm_o01_2.5_nw_utf8.hl7")))[0] == "AA"
    case_id = case_by_accession(ctx, "ACC-BRE-0002")
    ack = client.send(sample("orm_o01_2.5_nw_utf8.hl7", BRE000102="BRE000199", **{
        "LE BIHAN^Nolwenn": "KERMARREC^Yann", "19790203|F": "19480517|M", "IPP0077": "IPP0042"}))
    assert msa(ack)[0] == "AE" and "autre patient" in err_text(ack)
    assert case_count(ctx, "ACC-BRE-0002") == 1
    assert case_data(ctx, case_id)["patient"]["birth_name"].upper() == "LE BIHAN"
    # the same order sent again for the same patient is still acknowledged, without a second case
    assert msa(client.send(sample("orm_o01_2.5_nw_utf8.hl7", BRE000102="BRE000200")))[0] == "AA"
    assert case_count(ctx, "ACC-BRE-0002") == 1
