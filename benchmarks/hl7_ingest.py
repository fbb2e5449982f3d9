"""HL7 orders per second through our MLLP listener into telediagnosis cases, against hl7apy's own parse rate.

Not a test. Run from the project root:

    .venv/bin/python benchmarks/hl7_ingest.py [--messages 200] [--json]

On a fresh SQLite file (migrated, shipped diagrams deployed, one site with its RIS sender), it starts the HL7
service on a loopback ephemeral port and sends `--messages` ORM^O01 v2.5 new orders (the sample
tests/data/hl7/orm_o01_2.5_nw_utf8.hl7, each with its own control id and accession number) on one MLLP
connection, each waiting for its ACK, as a RIS interface does. Each message is stored, parsed, checked, turned
into a case (start_instance) and acknowledged. It then checks every ACK is AA and every accession has one case.

- ``mllp_messages_per_s``: messages / wall time of the stream (client side, ACK received);
- ``hl7apy_parse_per_s``: in the same run, ``hl7apy.parser.parse_message(text, find_groups=False)`` of the same
  messages, measured half before and half after the stream (noise on a shared machine weighs on both);
- ``ratio`` = mllp_messages_per_s / hl7apy_parse_per_s: what the whole pipeline costs against parsing alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hl7apy.parser import parse_message  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from engine.domain.actors import Actor  # noqa: E402
from engine.services.bootstrap import build_context  # noqa: E402
from engine.services.definitions import deploy_library  # noqa: E402
from engine.services.directory import create_site, create_territory  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.models import ProcessInstance  # noqa: E402
from integrations.hl7 import codec  # noqa: E402
from integrations.hl7.mllp import MllpClient  # noqa: E402
from integrations.hl7.senders import add_sender  # noqa: E402
from integrations.hl7.service import Hl7Service  # noqa: E402

SAMPLE = ROOT / "tests" / "data" / "hl7" / "orm_o01_2.5_nw_utf8.hl7"
SYSTEM = Actor.system()


def messages(count: int, prefix: str) -> list[bytes]:
    template = SAMPLE.read_bytes()
    return [template.replace(b"BRE000102", f"{prefix}{n:06d}".encode())
            .replace(b"ACC-BRE-0002", f"ACC-{prefix}-{n:06d}".encode()) for n in range(count)]


def parse_rate(batch: list[bytes]) -> tuple[float, float]:
    texts = [codec.read(m).normalised for m in batch]
    start = time.perf_counter()
    for text in texts:
        parse_message(text, find_groups=False)
    return len(texts), time.perf_counter() - start


def run(count: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="telerad-hl7-bench-"))
    try:
        return measure(f"sqlite:///{folder / 'bench.db'}", count)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(url: str, count: int) -> dict[str, Any]:
    upgrade(url)
    ctx = build_context(url)
    deploy_library(ctx, Actor("bench"), ROOT / "workflows" / "bpmn")
    create_territory(ctx, SYSTEM, "brest", "Pays de Brest", "29", "Bretagne")
    create_site(ctx, SYSTEM, "ch-brest", "CH de Brest", "brest")
    add_sender(ctx, SYSTEM, "ch-brest", "RIS_BREST", "CH_BREST")
    stream = messages(count, "BENCH")
    parsed_before, parse_before_s = parse_rate(stream[: count // 2])
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600)
    service.start()
    try:
        with MllpClient("127.0.0.1", service.port or 0, timeout=60) as client:
            for warm in messages(3, "WARM"):  # spec cache, statement caches, connection pool
                client.send(warm)
            codes = []
            start = time.perf_counter()
            for message in stream:
                codes.append(codec.ack_code_of(client.send(message)))
            wall = time.perf_counter() - start
    finally:
        service.stop()
    parsed_after, parse_after_s = parse_rate(stream[count // 2:])
    with ctx.read() as session:
        cases = session.execute(select(func.count(func.distinct(ProcessInstance.accession_number))).where(
            ProcessInstance.accession_number.like("ACC-BENCH-%"))).scalar_one()
    ctx.engine.dispose()
    if codes.count("AA") != count or cases != count:
        raise SystemExit(f"benchmark invalid: {codes.count('AA')} AA of {count}, {cases} cases")
    mllp_rate = count / wall
    parse_rate_per_s = (parsed_before + parsed_after) / (parse_before_s + parse_after_s)
    return {
        "messages": count, "database": "sqlite", "wall_s": round(wall, 3),
        "mllp_messages_per_s": round(mllp_rate, 1), "ms_per_message": round(1000 * wall / count, 2),
        "hl7apy_parse_per_s": round(parse_rate_per_s, 1),
        "hl7apy_ms_per_parse": round(1000 / parse_rate_per_s, 2),
        "ratio": round(mllp_rate / parse_rate_per_s, 3),
        "versions": {name: version(name) for name in ("hl7apy", "SpiffWorkflow", "SQLAlchemy")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="orders to send (default 200)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(max(args.messages, 2))
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['messages']} ORM^O01 orders over one MLLP connection into cases (SQLite)")
    print(f"  through the listener: {result['mllp_messages_per_s']:>8.1f} messages/s "
          f"({result['ms_per_message']} ms each, ACK included)")
    print(f"  hl7apy parse alone:   {result['hl7apy_parse_per_s']:>8.1f} messages/s "
          f"({result['hl7apy_ms_per_parse']} ms each)")
    print(f"  ratio:                {result['ratio']:>8.3f}")


if __name__ == "__main__":
    main()
