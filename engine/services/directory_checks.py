"""What administrators may enter in the routing directory: the identifiers and names of territories and sites,
and the members of a convention. Each check returns the French refusal, or None when the value is acceptable."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.services.account_rules import RADIOLOGIST_ROLES
from engine.store.directory_models import User, UserRole

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


def identifier_refusal(value: str, of_what: str) -> str | None:
    """`value` already stripped; `of_what` completes "Identifiant ..." (e.g. "du site")."""
    if not ID_PATTERN.fullmatch(value):
        return (f"Identifiant {of_what} invalide : 2 à 64 caractères parmi les minuscules a-z, les chiffres, "
                "le point, le tiret et le tiret bas, en commençant par une lettre ou un chiffre.")
    return None


def text_refusal(value: str, what: str, max_length: int) -> str | None:
    """`value` already stripped; `what` completes "Indiquez ..." (e.g. "le nom du site")."""
    return f"Indiquez {what} ({max_length} caractères au plus)." if not value or len(value) > max_length else None


def members_refusal(session: Session, usernames: Iterable[str]) -> str | None:
    """Members of a convention must be existing accounts with the radiologist or tele-expert role."""
    wanted = set(usernames)
    if not wanted:
        return None
    known = set(session.execute(select(User.username).where(User.username.in_(wanted))).scalars())
    if wanted - known:
        return f"Radiologue inconnu : {', '.join(sorted(wanted - known))}."
    radiologists = set(session.execute(select(UserRole.username).where(
        UserRole.username.in_(wanted), UserRole.role.in_(RADIOLOGIST_ROLES))).scalars())
    if wanted - radiologists:
        return ("Ces comptes n'ont pas le rôle de radiologue ou de télé-expert : "
                f"{', '.join(sorted(wanted - radiologists))}.")
    return None
