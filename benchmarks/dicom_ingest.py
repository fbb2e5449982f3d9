"""DICOM reception throughput: DCMTK storescu into Telerad's SCP, against a bare pynetdicom SCP, same run.

Not a test. Run from the project root:

    .venv/bin/python benchmarks/dicom_ingest.py [--instances 200] [--rounds 3] [--json]

Workload: `--instances` small uncompressed CT instances (pydicom's CT_small.dcm, 128 x 128, 39 kB, with new
SOP Instance UIDs, one study in four series, accession number and patient of a demo case), sent by
/usr/bin/storescu with its default settings over one association on 127.0.0.1, to:

- telerad: integrations.dicom StorageSCP (allow-list check, validation, content-addressed file written with
  fsync, study/series/instance indexed in a fresh SQLite database, study matched to its case), with its
  TCP_QUICKACK receive wrapper;
- bare: a plain pynetdicom AE with its default settings and default storage contexts, whose C-STORE handler
  only writes the received dataset to a file (no fsync, no database) — the baseline the ratio is taken on;
- bare_quickack: the same bare handler behind Telerad's TCP_QUICKACK request handler, to show what the
  database and the checks cost once the delayed-ACK stall is gone.

Each round runs the three receivers one after the other with fresh folders (and a fresh study for Telerad);
instances/s = instances / wall time of the storescu process, summed over rounds. Targets: ratio >= 0.7 and
telerad >= 100 instances/s.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pydicom  # noqa: E402
import pynetdicom  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.filewriter import write_file_meta_info  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402
from pynetdicom import AE, StoragePresentationContexts, _config, evt  # noqa: E402
from pynetdicom.transport import ThreadedAssociationServer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from engine.domain.actors import Actor  # noqa: E402
from engine.services.bootstrap import build_context  # noqa: E402
from engine.services.definitions import deploy_library  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.models import InboundMessage, ProcessInstance  # noqa: E402
from integrations.dicom.demo import configure_demo_dicom  # noqa: E402
from integrations.dicom.models import DicomInstance  # noqa: E402
from integrations.dicom.scp import QuickAckRequestHandler, StorageSCP  # noqa: E402
from integrations.dicom.stability import notify_stable_studies  # noqa: E402
from web.cli.demo_data import create_demo  # noqa: E402

STORESCU = "/usr/bin/storescu"


def make_instances(folder: Path, count: int, accession: str) -> list[Path]:
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    template.AccessionNumber = accession
    template.PatientName, template.PatientBirthDate, template.PatientID = "QUERE^JEAN", "19600921", "BENCH1"
    study, series = generate_uid(), [generate_uid() for _ in range(4)]
    folder.mkdir(parents=True)
    paths = []
    for index in range(count):
        template.StudyInstanceUID = study
        template.SeriesInstanceUID = series[index % 4]
        template.SeriesNumber = index % 4 + 1
        template.InstanceNumber = index // 4 + 1
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = folder / f"ct{index:05d}.dcm"
        template.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def send(port: int, files: list[Path], calling: str = "CT_BREST", called: str = "TELERAD") -> float:
    started = time.perf_counter()
    result = subprocess.run([STORESCU, "-aet", calling, "-aec", called, "127.0.0.1", str(port),
                             *map(str, files)], capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"storescu failed ({result.returncode}): {result.stderr[-2000:]}")
    return elapsed


class BareSCP:
    """pynetdicom defaults; the handler writes what it received, nothing more."""

    def __init__(self, folder: Path, quickack: bool):
        self.folder = folder
        self.ae = AE(ae_title="TELERAD")
        self.ae.supported_contexts = StoragePresentationContexts
        options: dict[str, Any] = {"request_handler": QuickAckRequestHandler} if quickack else {}
        self.server = self.ae.make_server(("127.0.0.1", 0), evt_handlers=[(evt.EVT_C_STORE, self.on_store)],
                                          server_class=ThreadedAssociationServer, **options)
        self.ae._servers.append(self.server)
        import threading

        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def on_store(self, event: Any) -> int:
        target = self.folder / event.request.AffectedSOPInstanceUID
        if _config.STORE_RECV_CHUNKED_DATASET:  # on while Telerad's SCP runs (process-wide): pynetdicom wrote the
            shutil.copyfile(event.dataset_path, target)  # dataset to a file in the DICOM format as it arrived
            return 0x0000
        with open(target, "wb") as handle:
            handle.write(b"\x00" * 128 + b"DICM")
            write_file_meta_info(handle, event.file_meta, enforce_standard=False)
            handle.write(event.request.DataSet.getvalue())
        return 0x0000

    def stop(self) -> None:
        self.ae.shutdown()
        self.thread.join(timeout=10)


def telerad_setup(work: Path) -> tuple[Any, str, int]:
    url = f"sqlite:///{work / 'telerad.db'}"
    upgrade(url)
    ctx = build_context(url)
    deploy_library(ctx, Actor("designer"), ROOT / "workflows" / "bpmn")
    create_demo(ctx)
    configure_demo_dicom(ctx)
    with ctx.read() as session:
        case_id, accession = session.execute(select(ProcessInstance.id, ProcessInstance.accession_number).where(
            ProcessInstance.patient_name.like("QU%"))).one()
    return ctx, accession, case_id


def run(instances: int, rounds: int) -> dict[str, Any]:
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="telerad-dicom-bench-"))
    try:
        ctx, accession, case_id = telerad_setup(work)
        scp = StorageSCP(ctx, "TELERAD", "127.0.0.1", 0, work / "dicom")
        scp.start()
        warm = make_instances(work / "warm", 8, accession)
        send(scp.port, warm)
        times: dict[str, float] = {"telerad": 0.0, "bare": 0.0, "bare_quickack": 0.0}
        for number in range(rounds):
            files = make_instances(work / f"round{number}", instances, accession)
            for name in ("bare", "bare_quickack"):
                folder = work / f"{name}{number}"
                folder.mkdir()
                bare = BareSCP(folder, quickack=name == "bare_quickack")
                try:
                    times[name] += send(bare.port, files)
                finally:
                    bare.stop()
                assert len(list(folder.iterdir())) == instances
            times["telerad"] += send(scp.port, files)
        scp.stop()
        with ctx.read() as session:
            indexed = session.execute(select(func.count()).select_from(DicomInstance)).scalar_one()
        assert indexed == 8 + instances * rounds, indexed
        ctx.clock.now()  # the study is stable once the clock has moved past the delay
        notify_stable_studies(ctx, ctx.clock.now(), delay=0)
        with ctx.read() as session:  # images_received reached the case (its acquisition step stays open for the
            # technologist's attestation: the message is non-interrupting)
            moved_on = any(case_id in json.loads(row or "[]") for row in session.execute(
                select(InboundMessage.delivered_to).where(InboundMessage.message_name == "images_received",
                                                          InboundMessage.status == "delivered")).scalars())
        ctx.engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = instances * rounds
    rate = {name: total / seconds for name, seconds in times.items()}
    return {
        "instances": instances, "rounds": rounds, "sender": f"{STORESCU} (DCMTK, default settings, one association)",
        "telerad_instances_per_s": round(rate["telerad"], 1),
        "bare_instances_per_s": round(rate["bare"], 1),
        "bare_quickack_instances_per_s": round(rate["bare_quickack"], 1),
        "ratio": round(rate["telerad"] / rate["bare"], 2),
        "ratio_vs_bare_quickack": round(rate["telerad"] / rate["bare_quickack"], 2),
        "bare_baseline": "pynetdicom defaults (no TCP_QUICKACK), handler writes files only, no fsync, no database",
        "telerad": "TCP_QUICKACK, validation, fsync'd content-addressed file, SQLite index, case matching",
        "targets_met": rate["telerad"] / rate["bare"] >= 0.7 and rate["telerad"] >= 100,
        "case_moved_on": moved_on,
        "versions": {"pydicom": pydicom.__version__, "pynetdicom": pynetdicom.__version__},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.instances, args.rounds)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
