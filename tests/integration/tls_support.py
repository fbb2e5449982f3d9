"""A throwaway test PKI made with the `openssl` command: a CA, a server certificate for 127.0.0.1, client
certificates for a RIS and a modality, and a second CA that signed nothing we trust. Nothing is checked in."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Pki:
    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name

    def client_context(self, client: str | None = "ris", ca: str = "ca") -> ssl.SSLContext:
        """A client TLS context trusting `ca`, presenting `<client>.crt` (none when client is None)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.path(f"{ca}.crt")))
        if client is not None:
            context.load_cert_chain(self.path(f"{client}.crt"), self.path(f"{client}.key"))
        return context

    def env(self, prefix: str, *, client_cert: str | None = None, ca: str = "ca") -> dict[str, str]:
        values = {f"{prefix}CERT": str(self.path("server.crt")), f"{prefix}KEY": str(self.path("server.key")),
                  f"{prefix}CA": str(self.path(f"{ca}.crt"))}
        if client_cert is not None:
            values[f"{prefix}CLIENT_CERT"] = client_cert
        return values


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key(name: str, cwd: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=cwd)


def _ca(name: str, cwd: Path) -> None:
    _key(name, cwd)
    _openssl("req", "-x509", "-new", "-key", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj",
             f"/O=Telerad tests/CN={name} test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=cwd)


def _leaf(name: str, cn: str, ca: str, extensions: str, cwd: Path) -> None:
    _key(name, cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/O=Telerad tests/CN={cn}",
             cwd=cwd)
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=cwd)


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    _ca("ca", folder)
    _ca("rogue", folder)
    _leaf("server", "telerad.test", "ca", "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
          "subjectAltName=IP:127.0.0.1,DNS:localhost\n", folder)
    client = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    _leaf("ris", "ris.ch-brest.test", "ca", client + "subjectAltName=DNS:ris-backup.ch-brest.test\n", folder)
    _leaf("modality", "ct-brest.test", "ca", client, folder)
    _leaf("impostor", "ris.ch-brest.test", "rogue", client, folder)  # right name, CA we do not trust
    return Pki(folder)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the TLS tests make their certificates with the openssl command")
    return make_pki(tmp_path_factory.mktemp("pki"))
