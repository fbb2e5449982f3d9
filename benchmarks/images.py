"""Images to the radiologist: WADO-RS retrieval of a CT series against Orthanc's DICOMweb, and C-FIND latency.

Not a test. Run from the project root:

    .venv/bin/python benchmarks/images.py [--images 300] [--rounds 5] [--studies 10000] [--queries 20] [--no-viewer]
        [--json]

WADO-RS. `--images` small CT slices (pydicom's CT_small.dcm, 128 x 128, 16-bit native, about 39 kB each) with
fresh SOP Instance UIDs, one study, one series, the patient and accession number of a demo case, are ingested
into Telerad through its ingest path (integrations.dicom.ingest.ingest_file, attached to the case, fresh SQLite
database) and stored in Orthanc (Debian's Orthanc and its DICOMweb plugin, started on a free loopback port) through
its REST API. Both serve the series over HTTP on 127.0.0.1: Telerad's Flask app under waitress with 16 threads
(as `telerad run` serves it), with a "read" API token of the case's
technologist; Orthanc with no authentication. Each round retrieves the series once from each, alternating which
goes first, with `Accept: multipart/related; type="application/dicom"; transfer-syntax=*` (as stored; no
transcoding on either side), reading the body in 64 kB chunks:

- time to first image: from the request to the end of the first part (the second boundary seen);
- MB/s: body bytes / time to the last byte (10^6 bytes);
- every answer is checked to hold exactly `--images` parts.

Sums over rounds; `ratio` = Telerad MB/s / Orthanc MB/s (target >= 1.0), `first_image_ratio` = Orthanc's time
to first image / Telerad's (>= 1.0 when Telerad is as quick).

C-FIND. Telerad's query/retrieve SCP (the StorageSCP, one association kept open by a pynetdicom client whose AE
title is a registered viewing station of dr.legall, a radiologist who may see the demo cases): `--queries`
queries of each kind, timed one by one, first with the index holding only the benchmark's study (baseline, same
run), then after `--studies` more studies (one series, one instance each, spread over the demo cases of the CH de
Brest) were inserted directly with SQLAlchemy Core. Kinds, study level: by StudyInstanceUID, by AccessionNumber,
by PatientID (not an indexed column), by PatientName prefix (ten matches). Median and 95th percentile in ms.
The same queries are also timed, same run, against a bare pynetdicom C-FIND SCP that answers one canned match
(no database, no checks), with pynetdicom's defaults and behind Telerad's TCP_QUICKACK handler: the floor of the
protocol and of pynetdicom on this machine.

The viewer's time to first image in Chromium: benchmarks/viewer.py, run by this script in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pydicom  # noqa: E402
import pynetdicom  # noqa: E402
import requests  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402
from pynetdicom import AE, evt  # noqa: E402
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # noqa: E402
from pynetdicom.transport import ThreadedAssociationServer  # noqa: E402
from sqlalchemy import select  # noqa: E402

from engine.domain.actors import Actor  # noqa: E402
from engine.errors import NotFound  # noqa: E402
from engine.services.accounts import issue_api_token, load_profile  # noqa: E402
from engine.services.bootstrap import build_context  # noqa: E402
from engine.services.cases import ensure_visible  # noqa: E402
from engine.services.definitions import deploy_library  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.models import ProcessInstance  # noqa: E402
from forms import default_registry  # noqa: E402
from integrations.dicom.demo import configure_demo_dicom  # noqa: E402
from integrations.dicom.ingest import ingest_file  # noqa: E402
from integrations.dicom.models import INSTANCE, SERIES, STUDY  # noqa: E402
from integrations.dicom.scp import QuickAckRequestHandler, StorageSCP  # noqa: E402
from integrations.dicom.workstations import add_workstation  # noqa: E402
from web.app import create_app  # noqa: E402
from web.cli.demo_data import create_demo  # noqa: E402
from web.config import Settings  # noqa: E402

ORTHANC = Path("/usr/sbin/Orthanc")
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
START_SECONDS = 30
HTTP_TIMEOUT = 120
CHUNK = 65536
ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
STATION = "BENCH_WS"
RADIOLOGIST = "dr.legall"
TECHNOLOGIST = "merm.leroy"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_series(folder: Path, count: int, accession: str) -> tuple[str, str, list[Path]]:
    """(study UID, series UID, files) of `count` CT slices of the demo case's patient."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    template.AccessionNumber = accession
    template.PatientName, template.PatientBirthDate, template.PatientID = "QUERE^JEAN", "19600921", "IPP-BREST-1"
    template.PatientSex = "M"
    study, series = generate_uid(), generate_uid()
    template.StudyInstanceUID, template.SeriesInstanceUID, template.SeriesNumber = study, series, 1
    folder.mkdir(parents=True)
    paths = []
    for index in range(count):
        template.InstanceNumber = index + 1
        template.SliceLocation = float(index)
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = folder / f"ct{index:05d}.dcm"
        template.save_as(path, enforce_file_format=True)
        paths.append(path)
    return study, series, paths


def telerad_setup(work: Path) -> tuple[Any, str, int]:
    url = f"sqlite:///{work / 'instance' / 'telerad.db'}"
    (work / "instance").mkdir(parents=True)
    upgrade(url)
    ctx = build_context(url, forms=default_registry())
    deploy_library(ctx, Actor("designer"), ROOT / "workflows" / "bpmn")
    create_demo(ctx)
    configure_demo_dicom(ctx)
    with ctx.read() as session:
        case_id, accession = session.execute(select(ProcessInstance.id, ProcessInstance.accession_number).where(
            ProcessInstance.patient_name.like("QU%"), ProcessInstance.process_id == "telediagnosis")).one()
    return ctx, str(accession), int(case_id)


@contextmanager
def serve_telerad(ctx: Any, work: Path) -> Iterator[str]:
    """Telerad's web app on a free loopback port, served by waitress as `telerad run` serves it; its /dicomweb
    URL."""
    from waitress.server import create_server

    settings = replace(Settings.from_env({"TELERAD_INSTANCE_PATH": str(work / "instance")}),
                       database_url=str(ctx.engine.url))
    server = create_server(create_app(settings, ctx), host="127.0.0.1", port=0, threads=16, ident="telerad")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}/dicomweb"
    finally:
        server.close()
        thread.join(timeout=10)


@contextmanager
def serve_orthanc(work: Path) -> Iterator[str]:
    """Orthanc with its DICOMweb plugin on a free loopback port; its REST root URL."""
    if not (ORTHANC.exists() and PLUGIN.exists()):
        raise SystemExit("the comparison needs Debian's orthanc and orthanc-dicomweb packages")
    folder = work / "orthanc"
    folder.mkdir()
    port = _free_port()
    config = {"Name": "telerad-bench", "HttpPort": port, "DicomPort": _free_port(), "DicomServerEnabled": False,
              "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
              "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
              "Plugins": [str(PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
    (folder / "orthanc.json").write_text(json.dumps(config))
    with open(folder / "orthanc.log", "wb") as log:
        process = subprocess.Popen([str(ORTHANC), str(folder / "orthanc.json")], stdout=log,
                                   stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_SECONDS
            for _attempt in range(START_SECONDS * 10):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}")
                try:
                    if requests.get(f"{base}/system", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def retrieve(url: str, headers: dict[str, str], expected_parts: int) -> tuple[float, float, int]:
    """(seconds to the first complete part, seconds to the last byte, body bytes) of one WADO-RS retrieval."""
    started = time.perf_counter()
    with requests.get(url, headers={"Accept": ACCEPT, **headers}, stream=True, timeout=HTTP_TIMEOUT) as answer:
        if answer.status_code != 200:
            raise SystemExit(f"{url}: HTTP {answer.status_code} {answer.text[:300]}")
        boundary = answer.headers["Content-Type"].split("boundary=")[1].split(";")[0].strip('"')
        delimiter = b"--" + boundary.encode()
        first = None
        size = parts = 0
        tail = b""
        for chunk in answer.iter_content(CHUNK):
            size += len(chunk)
            window = tail + chunk
            parts += window.count(delimiter) - tail.count(delimiter)
            tail = window[-(len(delimiter) + 4):]
            if first is None and parts >= 2:
                first = time.perf_counter() - started
        total = time.perf_counter() - started
    parts -= 1  # the closing delimiter
    if parts != expected_parts:
        raise SystemExit(f"{url}: {parts} parts instead of {expected_parts}")
    return first if first is not None else total, total, size


def wado_rounds(telerad: str, token: str, orthanc: str, study: str, series: str, images: int,
                rounds: int) -> dict[str, Any]:
    targets = {"telerad": (f"{telerad}/studies/{study}/series/{series}", {"Authorization": f"Bearer {token}"}),
               "orthanc": (f"{orthanc}/dicom-web/studies/{study}/series/{series}", {})}
    for url, headers in targets.values():  # warm-up: caches, connections, the first import of each code path
        retrieve(url, headers, images)
    first = {name: 0.0 for name in targets}
    total = {name: 0.0 for name in targets}
    size = {name: 0 for name in targets}
    for number in range(rounds):
        order = list(targets) if number % 2 == 0 else list(reversed(targets))
        for name in order:
            url, headers = targets[name]
            seconds_first, seconds, body = retrieve(url, headers, images)
            first[name] += seconds_first
            total[name] += seconds
            size[name] += body
    rate = {name: size[name] / total[name] / 1e6 for name in targets}
    first_ms = {name: first[name] / rounds * 1000 for name in targets}
    return {
        "images": images, "rounds": rounds, "bytes_per_retrieval": size["telerad"] // rounds,
        "telerad_mb_per_s": round(rate["telerad"], 1), "orthanc_mb_per_s": round(rate["orthanc"], 1),
        "ratio": round(rate["telerad"] / rate["orthanc"], 2),
        "telerad_first_image_ms": round(first_ms["telerad"], 1),
        "orthanc_first_image_ms": round(first_ms["orthanc"], 1),
        "first_image_ratio": round(first_ms["orthanc"] / first_ms["telerad"], 2),
        "target_met": rate["telerad"] / rate["orthanc"] >= 1.0,
    }


def insert_studies(ctx: Any, count: int, case_ids: list[int], sha256: str, size: int) -> None:
    """`count` studies of one series and one instance each (the instance pointing at a stored file), attached to
    the cases in turn, in one transaction with SQLAlchemy Core."""
    now = datetime.now(UTC)
    studies, series, instances = [], [], []
    for number in range(count):
        study_uid, series_uid = generate_uid(), generate_uid()
        studies.append({"uid": study_uid, "case_id": case_ids[number % len(case_ids)], "site_id": "ch-brest",
                        "accession_number": f"BENCH{number:07d}", "patient_id": f"BENCH-IPP-{number:07d}",
                        "patient_name": f"BENCH^P{number:05d}", "patient_birth_date": "1950-01-01",
                        "patient_sex": "F", "description": "CT bench", "status": "attached", "hold_reason": None,
                        "identity_case_id": None, "first_received_at": now, "last_received_at": now,
                        "notified_at": now, "match_checked_at": None})
        series.append({"uid": series_uid, "study_uid": study_uid, "modality": "CT", "description": "bench",
                       "number": 1})
        instances.append({"sop_instance_uid": generate_uid(), "series_uid": series_uid,
                          "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2", "instance_number": 1, "sha256": sha256,
                          "size": size, "transfer_syntax": "1.2.840.10008.1.2.1", "rows": 128, "columns": 128,
                          "frames": None, "source": "dicom", "calling_ae": "CT_BREST", "received_at": now})
    with ctx.engine.begin() as connection:
        connection.execute(STUDY.insert(), studies)
        connection.execute(SERIES.insert(), series)
        connection.execute(INSTANCE.insert(), instances)


def _query(**keys: str) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    for keyword in ("StudyInstanceUID", "PatientName", "PatientID", "AccessionNumber", "ModalitiesInStudy",
                    "NumberOfStudyRelatedInstances"):
        setattr(identifier, keyword, keys.get(keyword, ""))
    return identifier


def find_latencies(port: int, queries: dict[str, tuple[Dataset, int]], repeat: int) -> dict[str, dict[str, float]]:
    """Per kind: median and 95th percentile of `repeat` C-FINDs on one association (ms); each checked to answer
    the expected number of matches."""
    ae = AE(ae_title=STATION)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    association = ae.associate("127.0.0.1", port, ae_title="TELERAD")
    if not association.is_established:
        raise SystemExit("the query/retrieve SCP refused the association")
    found: dict[str, dict[str, float]] = {}
    try:
        for name, (identifier, expected) in queries.items():
            times = []
            for _repeat in range(repeat):
                started = time.perf_counter()
                matches = sum(1 for status, answer in association.send_c_find(
                    identifier, StudyRootQueryRetrieveInformationModelFind) if status and answer is not None
                    and status.Status in (0xFF00, 0xFF01))
                times.append((time.perf_counter() - started) * 1000)
                if matches != expected:
                    raise SystemExit(f"C-FIND {name}: {matches} matches instead of {expected}")
            times.sort()
            found[name] = {"median_ms": round(statistics.median(times), 2),
                           "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 2)}
    finally:
        association.release()
    return found


@contextmanager
def bare_find_scp(quickack: bool) -> Iterator[int]:
    """A plain pynetdicom C-FIND SCP answering one canned match to any query (no database, no checks); its port.
    With `quickack`, behind Telerad's TCP_QUICKACK request handler."""
    match = _query(StudyInstanceUID="1.2.3", PatientName="BARE^MATCH", PatientID="BARE-1",
                   AccessionNumber="BARE1", ModalitiesInStudy="CT", NumberOfStudyRelatedInstances="1")

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        yield 0xFF00, match

    ae = AE(ae_title="TELERAD")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    options: dict[str, Any] = {"request_handler": QuickAckRequestHandler} if quickack else {}
    server = ae.make_server(("127.0.0.1", 0), evt_handlers=[(evt.EVT_C_FIND, on_find)],
                            server_class=ThreadedAssociationServer, **options)
    ae._servers.append(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        ae.shutdown()
        thread.join(timeout=10)


def run(images: int, rounds: int, studies: int, queries: int, with_viewer: bool = True) -> dict[str, Any]:
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="telerad-images-bench-"))
    try:
        ctx, accession, case_id = telerad_setup(work)
        storage = work / "instance" / "dicom"
        study, series, files = make_series(work / "ct", images, accession)
        started = time.perf_counter()
        for path in files:
            result = ingest_file(ctx, path, "ch-brest", "dicom", storage=storage, calling_ae="CT_BREST")
            if result.status != "stored":
                raise SystemExit(f"ingest: {result.status} {getattr(result, 'reason', '')}")
        ingest_seconds = time.perf_counter() - started
        with ctx.read() as session:
            status = session.execute(select(STUDY.c.status, STUDY.c.case_id).where(STUDY.c.uid == study)).one()
        if tuple(status) != ("attached", case_id):
            raise SystemExit(f"the benchmark study is {tuple(status)}, not attached to case {case_id}")
        token = issue_api_token(ctx, TECHNOLOGIST, "bench-images", scope="read")
        with serve_orthanc(work) as orthanc, serve_telerad(ctx, work) as telerad:
            for path in files:
                stored = requests.post(f"{orthanc}/instances", data=path.read_bytes(), timeout=HTTP_TIMEOUT)
                if not stored.ok:
                    raise SystemExit(f"Orthanc refused {path.name}: {stored.text[:300]}")
            wado = wado_rounds(telerad, token, orthanc, study, series, images, rounds)
        find = cfind(ctx, storage, study, accession, case_id, studies, queries)
        ctx.engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "wado_rs": wado, "c_find": find, "ingest_s": round(ingest_seconds, 1),
        "server": "waitress, 16 threads (as telerad run) on 127.0.0.1, SQLite",
        "viewer_first_image": viewer_first_image() if with_viewer else "not measured (--no-viewer)",
        "versions": {"pydicom": pydicom.__version__, "pynetdicom": pynetdicom.__version__,
                     "orthanc": subprocess.run([str(ORTHANC), "--version"], capture_output=True, text=True,
                                               timeout=30, check=False).stdout.splitlines()[0].strip()},
    }


def viewer_first_image(runs: int = 3) -> dict[str, Any] | str:
    """The viewer's time to first image in Chromium: benchmarks/viewer.py (its own `telerad run` on the demo's
    head CT, against the case page's load in the same run), in a process of its own."""
    if not Path("/usr/bin/chromium").exists():
        return "not measured (no /usr/bin/chromium)"
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("viewer.py")), "--json", "--runs", str(runs)],
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        return f"not measured (benchmarks/viewer.py failed: {done.stderr.strip()[-300:]})"
    measured: dict[str, Any] = json.loads(done.stdout)
    return measured


def cfind(ctx: Any, storage: Path, study: str, accession: str, case_id: int, studies: int,
          queries: int) -> dict[str, Any]:
    profile = load_profile(ctx, RADIOLOGIST)
    assert profile is not None
    radiologist = profile.actor
    with ctx.read() as session:
        candidates = list(session.execute(select(ProcessInstance.id).where(
            ProcessInstance.site_id == "ch-brest")).scalars())
    visible = []
    for candidate in candidates:
        try:
            ensure_visible(ctx, radiologist, candidate)
        except NotFound:
            continue
        visible.append(int(candidate))
    if case_id not in visible:
        raise SystemExit(f"{RADIOLOGIST} may not see the benchmark's case {case_id}")
    add_workstation(ctx, radiologist, RADIOLOGIST, STATION, "127.0.0.1", _free_port())
    scp = StorageSCP(ctx, "TELERAD", "127.0.0.1", 0, storage)
    scp.start()
    try:
        probe = 4242 % studies
        before_queries = {"study_uid": (_query(StudyInstanceUID=study), 1),
                          "accession_number": (_query(AccessionNumber=accession), 1),
                          "patient_id": (_query(PatientID="IPP-BREST-1"), 1),
                          "patient_name_prefix": (_query(PatientName="QUERE*"), 1)}
        bare = {}
        for name, quickack in (("bare", False), ("bare_quickack", True)):
            with bare_find_scp(quickack) as port:
                bare[name] = find_latencies(port, before_queries, queries)
        before = find_latencies(scp.port, before_queries, queries)
        with ctx.read() as session:
            sha256, size = session.execute(select(INSTANCE.c.sha256, INSTANCE.c.size).limit(1)).one()
        started = time.perf_counter()
        insert_studies(ctx, studies, visible, sha256, size)
        insert_seconds = time.perf_counter() - started
        with ctx.read() as session:
            probe_uid = session.execute(select(STUDY.c.uid).where(
                STUDY.c.accession_number == f"BENCH{probe:07d}")).scalar_one()
        prefix = f"BENCH^P{probe // 10:04d}*"
        after_queries = {"study_uid": (_query(StudyInstanceUID=probe_uid), 1),
                         "accession_number": (_query(AccessionNumber=f"BENCH{probe:07d}"), 1),
                         "patient_id": (_query(PatientID=f"BENCH-IPP-{probe:07d}"), 1),
                         "patient_name_prefix": (_query(PatientName=prefix),
                                                 min(10, studies - probe // 10 * 10))}
        after = find_latencies(scp.port, after_queries, queries)
    finally:
        scp.stop()
    return {"studies_added": studies, "cases": len(visible), "queries_per_kind": queries,
            "insert_s": round(insert_seconds, 1), "station_owner": RADIOLOGIST,
            "bare_pynetdicom": bare["bare"], "bare_pynetdicom_quickack": bare["bare_quickack"],
            "baseline_one_study": before, "with_studies": after,
            "slowdown_median": {kind: round(after[kind]["median_ms"] / before[kind]["median_ms"], 2)
                                for kind in after},
            "median_vs_bare_quickack": {kind: round(after[kind]["median_ms"] / bare["bare_quickack"][kind]["median_ms"],
                                                    2) for kind in after}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--studies", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-viewer", action="store_true", help="skip the viewer's time to first image (Chromium)")
    args = parser.parse_args()
    if not (1 <= args.images <= 5000 and 1 <= args.rounds <= 100 and 10 <= args.studies <= 200000
            and 1 <= args.queries <= 1000):
        parser.error("--images 1-5000, --rounds 1-100, --studies 10-200000, --queries 1-1000")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    result = run(args.images, args.rounds, args.studies, args.queries, not args.no_viewer)
    if args.json:
        print(json.dumps(result))
        return
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
