"""HL7 orders in, through a real MLLP client over loopback against our listener: every message stored, every
message acknowledged (AA, AE with ERR, AR), orders turned into telediagnosis cases (CH-5.1)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.instances import case_by_accession, case_data, start_instance
from engine.services.tasks import list_tasks
from engine.store.models import ProcessInstance, Task
from integrations.hl7 import orders
from integrations.hl7.mllp import MllpClient, frame
from integrations.hl7.service import Hl7Service
from tests.integration.hl7_support import ack_segments, case_count, demo_hl7_ctx, inbound_rows, msa, sample

REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))


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


def status_of(ctx, case_id):
    with ctx.read() as session:
        return session.get(ProcessInstance, case_id).status


@pytest.mark.charter("CH-5.1")
def test_orm_2_3_1_in_latin_1_with_lf_line_ends_creates_a_vital_emergency_case(hl7, client):
    ctx, _ = hl7
    ack = client.send(sample("orm_o01_2.3.1_nw_latin1.hl7"))
    assert msa(ack) == ("AA", "BRE000101")
    msh = ack_segments(ack)["MSH"]
    assert msh[2:6] == ["TELERAD", "TELERAD", "RIS_BREST", "CH_BREST"]  # sender and receiver swapped
    assert msh[8] == "ACK^O01^ACK" and msh[11] == "2.3.1" and msh[17] == "8859/1"
    case_id = case_by_accession(ctx, "ACC-BRE-0001")
    data = case_data(ctx, case_id)
    assert data["patient"] == {"birth_name": "KERMARREC", "first_names": "Yann Éloi", "used_name": "LE GUÉVEL",
                               "birth_date": "1948-05-17", "sex": "M", "identity_status": "provisional",
                               "site_patient_id": "IPP0042"}
    assert (data["urgency"], data["modality"], data["site_id"]) == ("vital", "CT", "ch-brest")
    assert data["requested_exam"] == "Scanner cérébral sans injection"
    assert data["question"] == "Hématome intracrânien ?"
    assert data["clinical_context"].startswith("Chute de sa hauteur sous anticoagulant")
    assert data["requesting_physician"] == {"name": "Dr Claire MARTIN", "id": "10101234"}
    # The case waits at its request form, pre-filled, in the inbox of the site's requesters.
    task = next(t for t in list_tasks(ctx, REQUESTER) if t.instance_id == case_id)
    assert task.spec_name == "request"
    [row] = inbound_rows(ctx)
    assert (row.status, row.ack_code, row.case_id, row.encoding, row.site_id, row.message_type) == (
        "processed", "AA", case_id, "8859/1", "ch-brest", "ORM^O01")
    assert "Éloi" in row.raw and row.raw_bytes is None


@pytest.mark.charter("CH-5.1")
def test_orm_2_5_with_zds_and_omi_2_5_1_with_ipc_on_one_connection(hl7, client):
    ctx, _ = hl7
    assert msa(client.send(sample("orm_o01_2.5_nw_utf8.hl7")))[0] == "AA"
    assert msa(client.send(sample("omi_o23_2.5.1_nw.hl7"))) == ("AA", "BRE000103")
    orm = case_data(ctx, case_by_accession(ctx, "ACC-BRE-0002"))
    assert (orm["urgency"], orm["study_instance_uid"]) == ("urgent", "1.2.250.1.59.3.20261127.2")
    assert orm["patient"]["birth_name"] == "LE BIHAN"
    omi = case_data(ctx, case_by_accession(ctx, "ACC-BRE-0003"))  # accession number from IPC-1
    assert (omi["urgency"], omi["modality"], omi["study_instance_uid"]) == (
        "scheduled", "MR", "1.2.250.1.59.3.20261127.3")
    assert omi["patient"]["ins"] == "279035121518989"
    assert omi["patient"]["identity_status"] == "validated"  # PID-32 VALI
    assert omi["patient"]["first_names"] == "Françoise Marie"
    rows = inbound_rows(ctx)
    assert len({row.peer for row in rows}) == 1  # the connection stayed open


@pytest.mark.charter("CH-5.1")
def test_several_messages_on_one_connection(hl7, client):
    ctx, _ = hl7
    for number in range(5):
        message = sample("orm_o01_2.5_nw_utf8.hl7", BRE000102=f"MANY{number}", **{"ACC-BRE-0002": f"ACC-MANY-{number}"})
        assert msa(client.send(message)) == ("AA", f"MANY{number}")
    assert all(case_count(ctx, f"ACC-MANY-{n}") == 1 for n in range(5))
    assert len({row.peer for row in inbound_rows(ctx)}) == 1


@pytest.mark.charter("CH-5.1")
def test_a_repeated_control_id_is_acknowledged_again_without_a_second_case(hl7, client):
    ctx, service = hl7
    first = client.send(sample("orm_o01_2.5_nw_utf8.hl7"))
    with MllpClient("127.0.0.1", service.port) as other:  # a RIS that re-sends after a lost ACK, reconnecting
        again = other.send(sample("orm_o01_2.5_nw_utf8.hl7"))
    assert msa(first) == msa(again) == ("AA", "BRE000102")
    assert case_count(ctx, "ACC-BRE-0002") == 1
    assert len(inbound_rows(ctx)) == 1


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_an_order_with_a_nul_byte_gets_ar_no_case_and_its_exact_bytes_are_kept(hl7, client):
    ctx, _ = hl7
    message = sample("orm_o01_2.5_nw_utf8.hl7").replace(b"LE BIHAN", b"LE\x00BIHAN")
    ack = client.send(message)
    assert msa(ack) == ("AR", "BRE000102") and "NUL" in ack_segments(ack)["ERR"][8]
    assert case_by_accession(ctx, "ACC-BRE-0002") is None
    [row] = inbound_rows(ctx)
    assert (row.status, row.site_id, row.raw_bytes) == ("rejected", "ch-brest", message)


def test_an_unknown_sender_gets_ar_and_its_message_is_kept(hl7, client):
    ctx, _ = hl7
    ack = client.send(sample("orm_o01_2.5_nw_utf8.hl7", RIS_BREST="RIS_INCONNU"))
    assert msa(ack) == ("AR", "BRE000102")
    err = ack_segments(ack)["ERR"]
    assert "RIS_INCONNU/CH_BREST" in err[8] and err[2] == "MSH^1^3"
    assert case_by_accession(ctx, "ACC-BRE-0002") is None
    [row] = inbound_rows(ctx)
    assert (row.status, row.ack_code, row.sending_application, row.site_id) == ("rejected", "AR", "RIS_INCONNU", None)
    assert "Embolie pulmonaire" in row.raw


@pytest.mark.parametrize("garbage", [b"hello world", b"\x00\xff\xfe garbage \x1b", b"MSH|^~\\&|broken",
                                     b"PID|1||123", b""])
@pytest.mark.charter("CH-5.1", negative=True)
def test_garbage_gets_ar_and_is_kept(hl7, client, garbage):
    ctx, _ = hl7
    ack = client.send(garbage)
    assert msa(ack)[0] == "AR"
    [row] = inbound_rows(ctx)
    assert row.status == "rejected" and (row.raw_bytes == garbage or row.raw.encode() == garbage)


def test_noise_outside_frames_is_ignored_and_the_next_frame_answered(hl7, client):
    client.connect()
    client._sock.sendall(b"junk before any frame\r\n")
    assert msa(client.send(sample("orm_o01_2.5_nw_utf8.hl7")))[0] == "AA"


def test_bytes_that_do_not_match_msh_18_get_ar_and_the_bytes_are_kept(hl7, client):
    ctx, _ = hl7
    latin1_without_charset = sample("orm_o01_2.3.1_nw_latin1.hl7").replace(b"|8859/1", b"|")
    ack = client.send(latin1_without_charset)
    assert msa(ack) == ("AR", "BRE000101")
    assert "MSH-18" in ack_segments(ack)["ERR"][0] or "MSH^1^18" in ack.decode("latin-1")
    [row] = inbound_rows(ctx)
    assert row.raw_bytes == latin1_without_charset and "Éloi" not in row.raw
    assert msa(client.send(sample("orm_o01_2.3.1_nw_latin1.hl7").replace(b"8859/1", b"EBCDIC")))[0] == "AR"


@pytest.mark.charter("CH-5.1", negative=True)
def test_an_unsupported_message_type_gets_ar(hl7, client):
    ctx, _ = hl7
    ack = client.send(sample("siu_s12_2.5.hl7"))
    assert msa(ack) == ("AR", "BRE000107")
    assert ack_segments(ack)["ERR"][3] == "200^Unsupported message type^HL70357"
    assert msa(client.send(sample("adt_a08_2.5.hl7", **{"ADT^A08": "ADT^A01"})))[0] == "AR"
    assert [row.status for row in inbound_rows(ctx)] == ["rejected", "rejected"]
    # A known sender's refused message belongs to its site: that site's administrators may read it.
    assert [row.site_id for row in inbound_rows(ctx)] == ["ch-brest", "ch-brest"]


def test_a_frame_over_one_mebibyte_gets_ar(hl7, client):
    big = sample("orm_o01_2.5_nw_utf8.hl7").rstrip() + b"\rNTE|1||" + b"x" * (1024 * 1024 + 10) + b"\r"
    assert msa(client.send(big)) == ("AR", "BRE000102")
    assert msa(client.send(sample("omi_o23_2.5.1_nw.hl7")))[0] == "AA"  # the connection is still usable


@pytest.mark.charter("CH-4.1.6")
@pytest.mark.charter("CH-5.1", negative=True)
def test_an_order_whose_data_fails_gets_ae_with_err_and_no_case(hl7, client):
    ctx, _ = hl7
    ack = client.send(sample("orm_o01_2.5_nw_bad_birth_date.hl7"))
    assert msa(ack) == ("AE", "BRE000108")
    err = ack_segments(ack)["ERR"]
    assert err[2] == "PID^1^7" and err[3].startswith("102^") and err[4] == "E" and "19791345" in err[8]
    assert case_by_accession(ctx, "ACC-BRE-0008") is None
    assert inbound_rows(ctx)[0].status == "error"
    nameless = sample("orm_o01_2.5_nw_utf8.hl7", **{"LE BIHAN^Nolwenn": "", "BRE000102": "NONAME"})
    ack = client.send(nameless)
    assert msa(ack)[0] == "AE" and ack_segments(ack)["ERR"][2] == "PID^1^5"


def test_an_order_with_an_accession_number_of_another_site_gets_ae(hl7, client):
    ctx, _ = hl7
    other = start_instance(ctx, Actor("dr.x", frozenset({"requester"}), frozenset({"ch-morlaix"})), "telediagnosis",
                           {"accession_number": "ACC-BRE-0002"}, site_id="ch-morlaix")
    ack = client.send(sample("orm_o01_2.5_nw_utf8.hl7"))
    assert msa(ack)[0] == "AE" and ack_segments(ack)["ERR"][3].startswith("205^")
    assert case_by_accession(ctx, "ACC-BRE-0002") == other


def test_an_application_failure_still_gets_an_ae_and_the_message_is_kept(hl7, client, monkeypatch):
    ctx, _ = hl7

    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(orders, "start_instance", broken)
    ack = client.send(sample("orm_o01_2.5_nw_utf8.hl7"))
    assert msa(ack) == ("AE", "BRE000102")
    assert "on fire" not in ack.decode()  # no internals in the answer
    [row] = inbound_rows(ctx)
    assert row.status == "error" and row.ack_code == "AE"


@pytest.mark.charter("CH-5.1")
def test_xo_updates_then_ca_cancels_the_case(hl7, client):
    ctx, _ = hl7
    client.send(sample("orm_o01_2.5_nw_utf8.hl7"))
    case_id = case_by_accession(ctx, "ACC-BRE-0002")
    assert msa(client.send(sample("orm_o01_2.5_xo.hl7"))) == ("AA", "BRE000105")
    data = case_data(ctx, case_id)
    assert (data["urgency"], data["requested_exam"]) == ("vital", "Angioscanner thoracique et abdominal")
    assert data["study_instance_uid"] == "1.2.250.1.59.3.20261127.2"  # what the change does not say is kept
    assert msa(client.send(sample("orm_o01_2.5_ca.hl7"))) == ("AA", "BRE000104")
    assert status_of(ctx, case_id) == "cancelled"
    with ctx.read() as session:
        assert not session.execute(select(Task).where(Task.instance_id == case_id, Task.status == "open")).first()
    unknown = sample("orm_o01_2.5_ca.hl7", **{"ACC-BRE-0002": "ACC-NOPE", "BRE000104": "CANCEL2"})
    ack = client.send(unknown)
    assert msa(ack)[0] == "AE" and ack_segments(ack)["ERR"][3].startswith("204^")
    late_change = sample("orm_o01_2.5_xo.hl7", BRE000105="XO-LATE")
    assert msa(client.send(late_change))[0] == "AE"  # a cancelled case is not changed any more


@pytest.mark.charter("CH-4.1.6")
def test_adt_a08_updates_the_patient_of_the_running_case(hl7, client):
    ctx, _ = hl7
    client.send(sample("orm_o01_2.3.1_nw_latin1.hl7"))
    case_id = case_by_accession(ctx, "ACC-BRE-0001")
    assert msa(client.send(sample("adt_a08_2.5.hl7"))) == ("AA", "BRE000106")
    patient = case_data(ctx, case_id)["patient"]
    assert patient["birth_name"] == "KERMARREC-LE BRAS"
    assert patient["used_name"] == "LE GUÉVEL"  # traits the update does not carry are kept
    with ctx.read() as session:
        assert session.get(ProcessInstance, case_id).patient_name == "KERMARREC-LE BRAS YANN ÉLOI"
    assert inbound_rows(ctx)[-1].case_id == case_id


def test_the_listener_answers_even_when_its_handler_raises():
    from integrations.hl7.mllp import MllpListener

    def handler(payload, truncated, peer):
        raise ValueError("boom")

    listener = MllpListener("127.0.0.1", 0, handler)
    listener.start()
    try:
        with MllpClient("127.0.0.1", listener.port) as mllp:
            ack = mllp.send(sample("orm_o01_2.5_nw_utf8.hl7"))
            assert msa(ack) == ("AE", "BRE000102")
            assert msa(mllp.send(b"not hl7"))[0] == "AE"
    finally:
        listener.stop()


def test_frames_split_across_packets_and_several_frames_in_one_packet(hl7):
    _, service = hl7
    import socket

    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        first = frame(sample("orm_o01_2.5_nw_utf8.hl7"))
        second = frame(sample("omi_o23_2.5.1_nw.hl7"))
        sock.sendall(first[:10])
        sock.sendall(first[10:] + second)
        received = b""
        while received.count(b"\x1c\r") < 2:
            received += sock.recv(65536)
    acks = [chunk for chunk in received.split(b"\x1c\r") if chunk]
    assert [msa(a.lstrip(b"\x0b"))[0] for a in acks] == ["AA", "AA"]
