"""Helpers of the HL7 tests: the demo directory with its RIS senders, the sample messages, ACK reading, and a
radiology information system stand-in (our MLLP listener recording what it receives)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.services.definitions import deploy_library
from engine.store.models import ProcessInstance
from forms import default_registry
from integrations.hl7 import codec
from integrations.hl7.demo import configure_demo_hl7
from integrations.hl7.mllp import MllpListener
from integrations.hl7.models import Hl7Message
from tests.conftest import DATA
from web.cli.demo_data import create_demo
from web.config import PROJECT_ROOT

SAMPLES = DATA / "hl7"
WORKFLOWS = PROJECT_ROOT / "workflows" / "bpmn"


def demo_hl7_ctx(request: Any, make_ctx: Any, url: str) -> Any:
    """The demo directory (sites ch-brest, ch-morlaix...), the shipped diagrams and the demo RIS senders.

    Building it takes seconds (password hashing, demo cases), so on SQLite it is built once per session and the
    file copied for each test; on PostgreSQL it is built for each test."""
    options = {"operations": None, "forms": default_registry(), "escalation": None}
    if not url.startswith("sqlite:///"):
        return _build(make_ctx(**options))
    path = Path(url.removeprefix("sqlite:///"))
    template = _TEMPLATES.get("demo")
    if template is None:
        _build(make_ctx(**options)).engine.dispose()
        template = request.getfixturevalue("tmp_path_factory").mktemp("hl7_demo") / "demo.db"
        shutil.copy(path, template)
        _TEMPLATES["demo"] = template
    else:
        shutil.copy(template, path)
    return make_ctx(**options)


_TEMPLATES: dict[str, Path] = {}


def _build(ctx: Any) -> Any:
    deploy_library(ctx, Actor("designer"), WORKFLOWS)
    create_demo(ctx)
    configure_demo_hl7(ctx)
    return ctx


def sample(name: str, **replace: str) -> bytes:
    """A sample message, optionally with some text replaced (in the message's own encoding)."""
    data = (SAMPLES / name).read_bytes()
    encoding = "latin-1" if b"8859/1" in data.split(b"\n")[0].split(b"\r")[0] else "utf-8"
    for old, new in replace.items():
        data = data.replace(old.encode(encoding), new.encode(encoding))
    return data


def ack_segments(ack: bytes) -> dict[str, list[str]]:
    """The segments of an ACK by name, split into fields (MSH-n is fields[n - 1], others fields[n])."""
    text = codec.normalise(ack.decode("latin-1"))
    return {segment[:3]: segment.split("|") for segment in text.split("\r")}


def msa(ack: bytes) -> tuple[str, str]:
    fields = ack_segments(ack)["MSA"]
    return fields[1], fields[2]


def inbound_rows(ctx: Any) -> list[Hl7Message]:
    with ctx.read() as session:
        return list(session.execute(select(Hl7Message).where(Hl7Message.direction == "in")
                                    .order_by(Hl7Message.id)).scalars())


def case_count(ctx: Any, accession: str) -> int:
    with ctx.read() as session:
        return int(session.execute(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.accession_number == accession)).scalar_one())


def wait_for(condition: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class FakeRis:
    """A RIS receiving our reports: a real MLLP listener on loopback that records each message and answers AA
    (or the code it is told to)."""

    def __init__(self, port: int = 0, answer: str = "AA"):
        self.received: list[str] = []
        self.answer = answer
        self._lock = threading.Lock()
        self.listener = MllpListener("127.0.0.1", port, self._handle)

    def _handle(self, payload: bytes, truncated: bool, peer: str) -> bytes:
        incoming = codec.read(payload)
        with self._lock:
            self.received.append(incoming.normalised)
        return codec.ack_bytes(incoming.header, self.answer)

    def __enter__(self) -> FakeRis:
        self.listener.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.stop()

    @property
    def port(self) -> int:
        assert self.listener.port is not None
        return self.listener.port


def free_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
