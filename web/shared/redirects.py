"""Where a page may send the browser back to after an action: only a path of this site (no open redirect)."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_next(target: str | None) -> str | None:
    """A path on this site to go back to, or None: never another host (no open redirect)."""
    if not target:
        return None
    target = target.removesuffix("?")  # request.full_path always ends with "?" when there is no query
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(char) < 33 or ord(char) == 127 for char in target)):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith(("/login", "/logout")):
        return None
    return target
