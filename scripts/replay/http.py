"""A small HTTP client that behaves like a browser behind the TLS reverse proxy: it keeps cookies (Secure ones
included: the proxy speaks TLS to the browser), sends the proxy's forwarded headers and the Referer that
Flask-WTF checks on HTTPS, and never follows redirects (the replays look at them)."""

from __future__ import annotations

import http.client
import re
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pyotp

_LAST_STEP: dict[str, int] = {}  # a code is usable once: the same person logging in twice waits for the next one
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class Browser:
    base: tuple[str, int]
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
                extra: dict[str, str] | None = None) -> Response:
        host, port = self.base
        connection = http.client.HTTPConnection(host, port, timeout=120)
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1",
                   "Referer": f"https://{host}:{port}/", **self.headers, **(extra or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if content_type:
            headers["Content-Type"] = content_type
        try:
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            response = Response(answer.status, answer.getheaders(), answer.read())
        finally:
            connection.close()
        for cookie in response.all("Set-Cookie"):
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if value and "expires=thu, 01 jan 1970" not in cookie.lower():
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, fields: dict[str, str], csrf_from: str | None = None) -> Response:
        if csrf_from is not None:
            fields = {"csrf_token": self.csrf(csrf_from), **fields}
        return self.request("POST", path, urlencode(fields).encode(), "application/x-www-form-urlencoded")

    def post_file(self, path: str, field_name: str, filename: str, content: bytes, csrf_from: str) -> Response:
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
                 f"{self.csrf(csrf_from)}\r\n".encode(),
                 f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n",
                 f"--{boundary}--\r\n".encode()]
        return self.request("POST", path, b"".join(parts), f"multipart/form-data; boundary={boundary}")

    def csrf(self, page: str) -> str:
        match = CSRF.search(self.get(page).text)
        if match is None:
            raise RuntimeError(f"no CSRF token on {page}")
        return match.group(1) or match.group(2)

    def login(self, account: dict[str, str]) -> Browser:
        first = self.post("/login", {"username": account["username"], "password": account["password"]}, "/login")
        if first.status != 302:
            raise RuntimeError(f"login of {account['username']} answered {first.status}")
        code = _fresh_code(account)
        second = self.post("/login/totp", {"code": code}, "/login/totp")
        if second.status != 302 or "/login" in (second.header("Location") or ""):
            raise RuntimeError(f"second factor of {account['username']} answered {second.status}")
        return self


def _fresh_code(account: dict[str, str]) -> str:
    while int(time.time()) // 30 <= _LAST_STEP.get(account["username"], -1):
        time.sleep(0.5)
    _LAST_STEP[account["username"]] = int(time.time()) // 30
    return pyotp.TOTP(account["totp_secret"]).now()
