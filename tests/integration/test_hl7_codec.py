"""The pieces of the HL7 interface without a peer: framing, decoding by MSH-18, escaping, ACKs per version, and
how order fields are read across versions."""

from __future__ import annotations

import pytest
from hl7apy.parser import parse_message

from integrations.hl7 import codec
from integrations.hl7.fields import Fields, modality, patient_traits, urgency
from integrations.hl7.mllp import FrameReader, frame
from integrations.hl7.report import address, build_oru, interpreter


def fields_of(text: str) -> Fields:
    incoming = codec.read(text.encode("utf-8"))
    return Fields(parse_message(incoming.normalised, find_groups=False), incoming.header.delimiters)


def test_frames_are_found_in_a_stream_whatever_the_packets():
    reader = FrameReader(max_size=20)
    assert reader.feed(b"noise" + frame(b"MSH|one")[:4]) == []
    assert reader.feed(frame(b"MSH|one")[4:] + frame(b"MSH|two")) == [(b"MSH|one", False), (b"MSH|two", False)]
    assert reader.feed(b"\x0bMSH|abandoned" + frame(b"MSH|three")) == [(b"MSH|three", False)]
    assert reader.feed(frame(b"M" * 50)) == [(b"M" * 20, True)]


@pytest.mark.charter("CH-5.1")
def test_decoding_follows_msh_18_and_segment_ends_are_normalised():
    latin = "MSH|^~\\&|A|B|C|D|2026||ORM^O01|1|P|2.3.1||||||8859/1\r\nPID|1||X||QUÉRÉ^Anaïs\n\n".encode("latin-1")
    incoming = codec.read(latin)
    assert incoming.problem is None and incoming.charset == "8859/1"
    assert incoming.normalised == "MSH|^~\\&|A|B|C|D|2026||ORM^O01|1|P|2.3.1||||||8859/1\rPID|1||X||QUÉRÉ^Anaïs"
    utf8 = "\ufeffMSH|^~\\&|A|B|C|D|2026||ORM^O01|1|P|2.5||||||UNICODE UTF-8\rPID|1||X||QUÉRÉ".encode()
    assert codec.read(utf8).normalised.endswith("QUÉRÉ") and codec.read(utf8).header.control_id == "1"
    assert "MSH-18" in codec.read(latin.replace(b"8859/1", b"")).problem  # not ASCII: refused, not guessed
    assert "non pris en charge" in codec.read(latin.replace(b"8859/1", b"KOI8-R")).problem
    assert codec.read(b"\x0b\x1c").header is None


def test_escaping_round_trips_every_delimiter_and_reads_line_breaks():
    text = "a|b^c&d~e\\f"
    assert codec.escape(text) == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"
    assert codec.unescape(codec.escape(text)) == text
    assert codec.unescape("ligne 1\\.br\\ligne 2") == "ligne 1\nligne 2"
    assert codec.unescape("ligne 1\\E\\.br\\E\\ligne 2") == "ligne 1\nligne 2"  # as hl7apy gives it back
    assert codec.unescape("\\X41\\BC") == "ABC"


def test_text_is_encoded_for_the_character_set_of_the_receiver():
    assert codec.encode("Cœur à 8 €", "8859/1") == "Coeur à 8 EUR".encode("latin-1")
    assert codec.encode("Cœur à 8 €", "8859/15") == "Cœur à 8 €".encode("iso8859-15")
    assert codec.encode("Hématome", "") == b"Hematome"
    assert codec.encode("Hématome", "UNICODE UTF-8") == "Hématome".encode()


def test_ack_of_a_2_3_1_message_puts_the_error_in_err_1_and_msa_3():
    header = codec.read(b"MSH|^~\\&|RIS|CHB|TR|TRF|2026||ORM^O01|M1|P|2.3.1").header
    ack = codec.build_ack(header, "AE", codec.AckError(102, "Date illisible", ("PID", 7)), control_id="X")
    msh, msa, err = ack.rstrip("\r").split("\r")
    assert msh.split("|")[2:12] == ["TR", "TRF", "RIS", "CHB", msh.split("|")[6], "", "ACK^O01^ACK", "X", "P", "2.3.1"]
    assert msa == "MSA|AE|M1|Date illisible"
    assert err == "ERR|PID^1^7^102&Data type error&HL70357"


def test_ack_keeps_the_delimiters_of_the_sender():
    header = codec.read(b"MSH#:~\\&#RIS#CHB#TR#TR#2026##ORM:O01#M|2#P#2.5").header
    ack = codec.build_ack(header, "AR", codec.AckError(200, "type a#b"))
    assert ack.startswith("MSH#:~\\&#TR#TR#RIS#CHB#") and "ACK:O01:ACK" in ack
    assert "MSA#AR#M|2" in ack and "type a\\F\\b" in ack


def test_priority_is_read_from_tq1_orc_7_obr_27_or_obr_5_and_modality_from_codes_or_words():
    msh = "MSH|^~\\&|A|B|C|D|2026||ORM^O01|1|P|2.3.1||||||UNICODE UTF-8\r"
    assert urgency(fields_of(msh + "ORC|NW||||||^^^^^S\rOBR|1")) == "vital"
    assert urgency(fields_of(msh + "ORC|NW\rOBR|1||||||||||||||||||||||||||^^^^^A")) == "urgent"
    assert urgency(fields_of(msh + "ORC|NW\rOBR|1||||R")) == "scheduled"
    assert urgency(fields_of(msh + "ORC|NW\rOBR|1||||P")) is None  # other priorities: the requester chooses
    assert modality(fields_of(msh + "OBR|1|||X^Échographie abdominale")) == "US"
    assert modality(fields_of(msh + "OBR|1|||X^Angio-IRM cérébrale")) == "MR"
    assert modality(fields_of(msh + "OBR|1|||X^Mammographie bilatérale")) == "MG"
    assert modality(fields_of(msh + "OBR|1|||X^Radiographie du thorax")) == "XR"
    assert modality(fields_of(msh + "OBR|1|||X^TDM thoraco-abdomino-pelvienne")) == "CT"
    assert modality(fields_of(msh + "OBR|1|||X^Consultation")) is None


@pytest.mark.charter("CH-4.1.6")
def test_identity_traits_from_pid():
    msh = "MSH|^~\\&|A|B|C|D|2026||ADT^A08|1|P|2.5\r"
    pid = ("PID|1||123^^^H^PI~2790351215189^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||DOE^Jane^Ann^^^^L||"
           "19790312|X")
    traits = patient_traits(fields_of(msh + pid + "|" * 24 + "QUAL"), complete=True)
    assert traits == {"birth_name": "DOE", "first_names": "Jane Ann", "birth_date": "1979-03-12", "sex": "U",
                      "identity_status": "qualified", "ins": "2790351215189", "site_patient_id": "123"}


def test_the_oru_escapes_text_and_is_addressed_at_delivery():
    data = {"patient": {"birth_name": "O'NEIL & FILS", "first_names": "Jo", "birth_date": "1950-01-02", "sex": "M"},
            "accession_number": "A1", "findings": "a|b^c", "release": {"released_at": "2026-01-05T08:00:00+00:00"},
            "radiologist": {"name": "Dr Le Gall & Co", "rpps": "10003456786"}}
    payload = build_oru(data, control_id="C1", now=codec.datetime(2026, 1, 5, tzinfo=codec.UTC))
    assert "O'NEIL \\T\\ FILS^Jo" in payload and "a\\F\\b\\S\\c" in payload
    assert interpreter(data["radiologist"]).startswith("10003456786&Le Gall \\T\\ Co&&&&Dr&")
    addressed = address(payload, "RIS", "CHB", "8859/1")
    assert addressed.split("\r")[0].split("|")[4:6] == ["RIS", "CHB"]
    assert addressed.split("\r")[0].split("|")[17] == "8859/1"
    message = parse_message(addressed, find_groups=False)
    assert message.name == "ORU_R01" and [s.name for s in message.children][:4] == ["MSH", "PID", "ORC", "OBR"]
