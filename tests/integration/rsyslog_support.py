"""A real rsyslogd for the audit export tests: TLS (RFC 5425) on 127.0.0.1 with a throwaway openssl CA, every
received message written raw to a file. Started as the current user from a config in a temporary folder: no
system path is touched (own work directory and pid file, no imuxsock or imklog)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.tls_support import Pki, make_pki

RSYSLOGD = "/usr/sbin/rsyslogd"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _driver() -> str:
    for folder in Path("/usr/lib").glob("*/rsyslog"):
        if (folder / "lmnsd_ossl.so").exists():
            return "ossl"
        if (folder / "lmnsd_gtls.so").exists():
            return "gtls"
    pytest.skip("rsyslog has no TLS driver (install rsyslog-openssl)")
    raise AssertionError


@dataclass
class Rsyslog:
    folder: Path
    pki: Pki
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def received(self) -> Path:
        return self.folder / "received.log"

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.port}"

    def config(self) -> str:
        work = self.folder / "work"
        work.mkdir(exist_ok=True)
        return f"""
global(workDirectory="{work}" maxMessageSize="64k"
       defaultNetstreamDriver="{_driver()}"
       defaultNetstreamDriverCAFile="{self.pki.path('ca.crt')}"
       defaultNetstreamDriverCertFile="{self.pki.path('server.crt')}"
       defaultNetstreamDriverKeyFile="{self.pki.path('server.key')}")
module(load="imtcp" streamDriver.name="{_driver()}" streamDriver.mode="1" streamDriver.authMode="anon")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="remote") {{
  action(type="omfile" file="{self.received}" template="raw" flushOnTXEnd="on" asyncWriting="off")
}}
input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="remote")
"""

    def start(self) -> None:
        conf = self.folder / "rsyslog.conf"
        conf.write_text(self.config())
        log = (self.folder / "rsyslogd.out").open("ab")
        self.process = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.folder / "rsyslogd.pid")],
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {(self.folder / 'rsyslogd.out').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("rsyslogd did not listen within 15 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def messages(self) -> list[bytes]:
        try:
            return [line for line in self.received.read_bytes().split(b"\n") if line]
        except FileNotFoundError:
            return []

    def wait_for(self, count: int, timeout: float = 15.0) -> list[bytes]:
        """The received messages once there are at least `count` (the test fails after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"rsyslog received {len(self.messages())} message(s), expected {count}")


@pytest.fixture(scope="session")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    if not Path(RSYSLOGD).exists() or shutil.which("openssl") is None:
        pytest.skip("rsyslog and openssl are needed (Debian packages rsyslog, rsyslog-openssl, openssl)")
    folder = tmp_path_factory.mktemp("rsyslog")
    server = Rsyslog(folder, make_pki(folder / "pki"))
    server.start()
    yield server
    server.stop()
