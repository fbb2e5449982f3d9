"""The findings tried from the network peers' side: MLLP and DICOM (scripts/replay_findings.py)."""

from __future__ import annotations

import contextlib
import copy
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification
from sqlalchemy import text

from scripts.replay.attacks import database, quere_case
from scripts.replay.http import Browser
from tests.integration.dicom_support import QUERE, rewrite

IDLE_SOCKETS = 64
ROOT = Path(__file__).resolve().parents[2]
START, END = b"\x0b", b"\x1c\x0d"


@contextlib.contextmanager
def idle_sockets(port: int, count: int = IDLE_SOCKETS) -> Iterator[int]:
    """`count` TCP connections that say nothing; yields how many the listener accepted at first."""
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            with contextlib.suppress(OSError):
                opened.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        yield len(opened)
    finally:
        for sock in opened:
            sock.close()


def echo(port: int, calling: str = "CT_BREST") -> tuple[bool, float]:
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 30
    started = time.monotonic()
    association = ae.associate("127.0.0.1", port, ae_title="TELERAD")
    ok = False
    if association.is_established:
        status = association.send_c_echo()
        ok = bool(status) and status.Status == 0
        association.release()
    return ok, round(time.monotonic() - started, 2)


def order(control_id: str) -> bytes:
    """The sample order of the RIS of Brest (tests/data/hl7) under a new control id."""
    sample = (ROOT / "tests" / "data" / "hl7" / "orm_o01_2.5_nw_utf8.hl7").read_bytes().replace(b"\n", b"")
    return START + sample.replace(b"BRE000102", control_id.encode()) + END


def send_mllp(port: int, message: bytes, source: str = "127.0.0.1") -> tuple[str, float]:
    """The acknowledgement's MSA-1 code and its error text (MSA-3 or ERR-8), or the network error; and the
    seconds it took."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0)) as sock:
            sock.sendall(message)
            answer = b""
            while not answer.endswith(END):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
    except OSError as error:
        return f"error: {error}", round(time.monotonic() - started, 2)
    segments = {s[:3]: s.split("|") for s in answer.decode("utf-8", "replace").split("\r") if s[:3] in ("MSA", "ERR")}
    msa, err = segments.get("MSA", []), segments.get("ERR", [])
    reason = (msa[3] if len(msa) > 3 else "") or (err[8] if len(err) > 8 else "")
    code = msa[1] if len(msa) > 1 else "no MSA"
    return (f"{code} {reason}".strip()), round(time.monotonic() - started, 2)


def idle_dicom(instance: Any) -> dict[str, Any]:
    with idle_sockets(instance.dicom_port) as opened:
        ok, seconds = echo(instance.dicom_port)
    return {"fixed": ok and seconds < 10, "idle_sockets": opened, "echo_ok": ok, "echo_seconds": seconds}


def idle_mllp(instance: Any) -> dict[str, Any]:
    with idle_sockets(instance.mllp_port) as opened:
        code, seconds = send_mllp(instance.mllp_port, order("REPLAY-IDLE-1"))
    return {"fixed": code[:2] in ("AA", "AE", "AR", "CA", "CE", "CR") and seconds < 10, "idle_sockets": opened,
            "ack": code, "ack_seconds": seconds}


def dicom_resend(instance: Any) -> dict[str, Any]:
    _, accession = quere_case(instance)
    storage = Path(instance.env["TELERAD_INSTANCE_PATH"]) / "dicom"
    with tempfile.TemporaryDirectory() as folder:
        first = pydicom.dcmread(rewrite(Path(folder), "CT_small.dcm", **QUERE, AccessionNumber=accession))
        second = copy.deepcopy(first)
        second.PixelData = bytes(reversed(first.PixelData))
        files_before = stored_files(storage)
        statuses = [store(instance.dicom_port, dataset) for dataset in (first, second)]
    files_after = stored_files(storage)
    with database(instance).connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM dicom_instance WHERE sop_instance_uid = :uid"),
                                  {"uid": str(first.SOPInstanceUID)}).scalar_one()
    return {"fixed": statuses[0] == 0 and statuses[1] != 0 and files_after - files_before == 1 and rows == 1,
            "statuses": [hex(s) for s in statuses], "new_files": files_after - files_before, "index_rows": rows}


def stored_files(storage: Path) -> int:
    return sum(1 for path in storage.rglob("*") if path.is_file() and path.suffix not in (".png", ".none"))


def store(port: int, dataset: pydicom.Dataset) -> int:
    ae = AE(ae_title="CT_BREST")
    ae.add_requested_context(CTImageStorage, str(dataset.file_meta.TransferSyntaxUID))
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 30
    association = ae.associate("127.0.0.1", port, ae_title="TELERAD")
    if not association.is_established:
        return -1
    try:
        status = association.send_c_store(dataset)
        return int(status.Status) if status else -1
    finally:
        association.release()


def hl7_sender_address(instance: Any) -> dict[str, Any]:
    """The administrator binds the demo RIS of Brest to 127.0.0.2 on the HL7 page; the same sender identifiers
    from another address are then refused."""
    with database(instance).connect() as connection:
        sender_id = connection.execute(text("SELECT id FROM hl7_sender WHERE sending_application = 'RIS_BREST'")
                                       ).scalar_one()
    admin = Browser(instance.base).login(instance.accounts["admin"])
    saved = admin.post(f"/admin/hl7/senders/{sender_id}/access",
                       {"allowed_sources": "127.0.0.2/32", "client_cert_name": ""}, "/admin/hl7/")
    refused, _ = send_mllp(instance.mllp_port, order("REPLAY-ADDR-1"), source="127.0.0.1")
    allowed, _ = send_mllp(instance.mllp_port, order("REPLAY-ADDR-2"), source="127.0.0.2")
    return {"fixed": saved.status == 302 and refused.startswith("AR") and "adresse" in refused
            and not allowed.startswith("AR"), "page": saved.status,
            "from_other_address": refused,
            "from_allowed_address": allowed}
