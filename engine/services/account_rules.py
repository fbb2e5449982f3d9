"""What an account may hold (its username, display name, roles, sites, territory and RPPS number), checked the
same way when an account is created (accounts) and when administrators change it (directory) (CH-5.3).

Each check returns the French refusal, or None when the value is acceptable, so that each use case raises its
own error.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Set

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.account_roles import ACCOUNT_ROLES
from engine.domain.actors import SYSTEM_USER
from engine.domain.identity import is_valid_rpps
from engine.store.directory_models import SiteRow, TerritoryRow, User, UserRole

USERNAME_PATTERN = re.compile(r"[a-z0-9._-]{3,64}")
RADIOLOGIST_ROLES = frozenset({"radiologist", "tele_expert"})
RADIOLOGIST_FIELDS = frozenset({"rpps", "authorization_expires", "insurance_expires", "extraterritorial",
                                "foreign_authorization_on_file", "foreign_insurance_on_file", "territory_id",
                                "external_company"})
INVALID_RPPS = "Numéro RPPS invalide : il compte 11 chiffres dont une clé de contrôle ; vérifiez-le."


def new_account_refusal(username: str, display_name: str, roles: Set[str], rpps: str | None) -> str | None:
    """The first problem of a new account, in this order: username, display name, roles, RPPS number."""
    if not USERNAME_PATTERN.fullmatch(username):
        return ("Identifiant invalide : 3 à 64 caractères parmi les minuscules a-z, les chiffres, "
                "le point, le tiret et le tiret bas.")
    if username == SYSTEM_USER:
        return f"L'identifiant « {SYSTEM_USER} » est réservé : choisissez-en un autre."
    if not display_name or len(display_name) > 200:
        return "Indiquez le nom affiché de la personne (200 caractères au plus)."
    return roles_refusal(roles) or rpps_refusal(rpps)


def roles_refusal(roles: Set[str]) -> str | None:
    if not roles:
        return "Attribuez au moins un rôle."
    unknown = sorted(roles - set(ACCOUNT_ROLES))
    if unknown:
        return f"Rôle inconnu : {', '.join(unknown)}. Rôles possibles : {', '.join(ACCOUNT_ROLES)}."
    return None


def rpps_refusal(rpps: str | None) -> str | None:
    return INVALID_RPPS if rpps is not None and not is_valid_rpps(rpps) else None


def unknown_sites_refusal(session: Session, sites: Collection[str]) -> str | None:
    wanted = set(sites)
    known = set(session.execute(select(SiteRow.id).where(SiteRow.id.in_(wanted))).scalars()) if wanted else set()
    return f"Site inconnu : {', '.join(sorted(wanted - known))}." if wanted - known else None


def unknown_territory_refusal(session: Session, territory_id: str | None) -> str | None:
    if territory_id is not None and session.get(TerritoryRow, territory_id) is None:
        return f"Territoire inconnu : {territory_id}."
    return None


def lock_active_administrators(session: Session) -> set[str]:
    """The active administrators, their rows locked (in a fixed order) so that two administrators removing
    each other at the same time cannot leave nobody in charge."""
    rows = session.execute(select(User.username).join(UserRole, UserRole.username == User.username)
                           .where(UserRole.role == "administrator", User.active.is_(True))
                           .order_by(User.username).with_for_update(of=User)).scalars()
    return set(rows)
