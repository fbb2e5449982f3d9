"""Shared pieces of the DICOM tests: the demo directory and cases, our SCP on an ephemeral loopback port, DCMTK
peers, and pydicom's bundled test files rewritten (UIDs, accession number, patient) into tmp_path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.services.definitions import deploy_library
from engine.store.models import ProcessInstance, Task
from forms import default_registry
from integrations.dicom.demo import configure_demo_dicom
from integrations.dicom.models import DicomInstance, DicomSeries, DicomStudy
from integrations.dicom.scp import StorageSCP
from tests.demo_app import web_app
from web.cli.demo_data import USERS, create_demo
from web.config import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / "workflows" / "bpmn"
STORESCU, ECHOSCU = "/usr/bin/storescu", "/usr/bin/echoscu"
# The demo case of Jean Quéré (CH de Brest) waits at acquire_images for its images.
QUERE = {"PatientName": "QUERE^JEAN", "PatientBirthDate": "19600921", "PatientID": "IPP-BREST-1", "PatientSex": "M"}
# pydicom test files with a compressed transfer syntax, and the DCMTK storescu option proposing it.
COMPRESSED = [
    ("MR_small_RLE.dcm", "-xr", "1.2.840.10008.1.2.5"),
    ("MR_small_jpeg_ls_lossless.dcm", "-xt", "1.2.840.10008.1.2.4.80"),
    ("JPEG2000.dcm", "-xw", "1.2.840.10008.1.2.4.91"),
    ("SC_rgb_jpeg_dcmtk.dcm", "-xy", "1.2.840.10008.1.2.4.50"),
]


@pytest.fixture
def dicom_ctx(make_ctx):
    ctx = make_ctx(operations=None, forms=default_registry(), escalation=None)
    deploy_library(ctx, Actor("designer"), WORKFLOWS)
    create_demo(ctx)
    configure_demo_dicom(ctx)
    return ctx


@pytest.fixture
def storage(tmp_path) -> Path:
    return tmp_path / "instance" / "dicom"


@pytest.fixture
def scp(dicom_ctx, storage):
    server = StorageSCP(dicom_ctx, "TELERAD", "127.0.0.1", 0, storage)
    server.start()
    yield server
    server.stop()


def demo_case(ctx, name_prefix: str = "QU") -> tuple[int, str]:
    """(id, accession number) of a demo case by the start of its patient's name."""
    with ctx.read() as session:
        row = session.execute(select(ProcessInstance.id, ProcessInstance.accession_number).where(
            ProcessInstance.patient_name.like(f"{name_prefix}%"),
            ProcessInstance.process_id == "telediagnosis")).one()
    return int(row.id), str(row.accession_number)


def rewrite(folder: Path, name: str, *, study: str | None = None, series: str | None = None,
            **attributes: Any) -> Path:
    """A copy of a pydicom test file with fresh (or given) UIDs and the given attributes, written in `folder`."""
    dataset = pydicom.dcmread(get_testdata_file(name, download=False))
    dataset.StudyInstanceUID = study or generate_uid()
    dataset.SeriesInstanceUID = series or generate_uid()
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dataset.SOPInstanceUID}.dcm"
    dataset.save_as(path, enforce_file_format=True)
    return path


def for_case(accession: str, **attributes: Any) -> dict[str, Any]:
    return {**QUERE, "AccessionNumber": accession, **attributes}


def require_dcmtk() -> None:
    """The real peers are Debian's DCMTK (pynetdicom's own storescu/echoscu in the virtualenv are not them)."""
    if Path(STORESCU).exists() and Path(ECHOSCU).exists():
        return
    reason = "DICOM peer tests need DCMTK at /usr/bin (apt-get install dcmtk)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run them: {reason}")
    pytest.skip(reason)


def storescu(port: int, *files: Path, options: tuple[str, ...] = (), calling: str = "CT_BREST",
             called: str = "TELERAD") -> subprocess.CompletedProcess[str]:
    require_dcmtk()
    return subprocess.run([STORESCU, *options, "-aet", calling, "-aec", called, "127.0.0.1", str(port),
                           *map(str, files)], capture_output=True, text=True, timeout=60, check=False)


def echoscu(port: int, calling: str = "CT_BREST", called: str = "TELERAD") -> subprocess.CompletedProcess[str]:
    require_dcmtk()
    return subprocess.run([ECHOSCU, "-aet", calling, "-aec", called, "127.0.0.1", str(port)],
                          capture_output=True, text=True, timeout=60, check=False)


DEMO_ACTORS = {user.username: Actor(user.username, frozenset(user.roles), frozenset(user.sites)) for user in USERS}
IDENTITY_CHECKED = {"identity_checked": True, "identity_status": "qualified", "identity_document": "id_card"}


def complete_step(ctx, case_id: int, spec: str, who: str, data: dict[str, Any]) -> None:
    """Complete the open task `spec` of a case as a demo user (e.g. the identity check by the technologist)."""
    from engine.services.tasks import complete_task, list_tasks

    actor = DEMO_ACTORS[who]
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id and t.spec_name == spec)
    complete_task(ctx, actor, task.id, data)


def check_identity(ctx, case_id: int) -> None:
    """Inform the patient (requester) then check the identity (technologist): the case's identity_check fact."""
    complete_step(ctx, case_id, "inform_patient", "dr.martin", {"patient_informed": True, "consent": "given"})
    complete_step(ctx, case_id, "check_identity", "merm.leroy", IDENTITY_CHECKED)


def justify_and_protocol(ctx, case_id: int, protocol: str = "ct_chest_plain") -> None:
    """The radiologist (dr.legall) validates the indication, then chooses a protocol without injection."""
    complete_step(ctx, case_id, "justify", "dr.legall", {"justification": "validate"})
    complete_step(ctx, case_id, "choose_protocol", "dr.legall", {"protocol": protocol})


def audit_actions(ctx, case_id: int) -> list[str]:
    """The actions of a case's audit chain, in order."""
    from engine.store.models import AuditEvent

    with ctx.read() as session:
        return list(session.execute(select(AuditEvent.action).where(AuditEvent.chain == case_id)
                                    .order_by(AuditEvent.seq)).scalars())


def counts(ctx) -> tuple[int, int, int]:
    """(studies, series, instances) indexed."""
    with ctx.read() as session:
        return tuple(session.execute(select(func.count()).select_from(model)).scalar_one()  # type: ignore[return-value]
                     for model in (DicomStudy, DicomSeries, DicomInstance))


def study(ctx, uid: str) -> DicomStudy:
    with ctx.read() as session:
        return session.get(DicomStudy, uid)


def open_tasks(ctx, case_id: int) -> list[str]:
    with ctx.read() as session:
        return sorted(session.execute(select(Task.spec_name).where(
            Task.instance_id == case_id, Task.status == "open")).scalars())


def stored_files(storage: Path) -> list[Path]:
    return sorted(p for p in storage.rglob("*") if p.is_file()) if storage.exists() else []


@pytest.fixture
def dicom_app(dicom_ctx, database_url, tmp_path):
    return web_app(dicom_ctx, database_url, tmp_path)
