"""What the account and directory pages share: the engine context, today's date in France, the choice lists
of the forms, and how a refusal is shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import abort, current_app, request
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from engine.domain.account_roles import ACCOUNT_ROLES as ROLES
from engine.domain.credentials import credential_problems
from engine.errors import Forbidden
from engine.services.context import EngineContext
from engine.services.directory import (
    DirectoryError,
    UserSummary,
    list_sites,
    list_territories,
    list_users_with_roles,
    user_summary,
)
from web.admin.account_forms import AccessForm, CredentialsForm, NewUserForm
from web.auth.access import current_actor
from web.extensions import telerad
from web.shared.formatting import PARIS
from web.shared.labels import ROLE_LABELS

RENEWAL_NOTICE = timedelta(days=30)  # credentials expiring within this delay are flagged "à renouveler"


def ctx() -> EngineContext:
    return telerad(current_app).ctx


def today_in_france() -> date:
    """Credentials are valid until a calendar day in France (engine.domain.credentials)."""
    return ctx().clock.now().astimezone(PARIS).date()


@dataclass(frozen=True)
class CredentialState:
    problems: list[str]
    renew_before: date | None

    @property
    def valid(self) -> bool:
        return not self.problems


def credential_state(user: UserSummary, today: date) -> CredentialState | None:
    """For radiologists and tele-experts: what keeps them from being assigned a case today, in French."""
    if not user.is_radiologist:
        return None
    creds = user.credentials
    soon = [d for d in (creds.authorization_expires, creds.insurance_expires)
            if d is not None and today <= d <= today + RENEWAL_NOTICE]
    return CredentialState(credential_problems(creds, today), min(soon, default=None))


def was_submitted(form: FlaskForm) -> bool:
    return request.method == "POST" and bool(form.submit.data)  # type: ignore[attr-defined]


def site_choices() -> list[tuple[str, str]]:
    return [(site_id, f"{name} — {site_id}") for site_id, name, _territory in list_sites(ctx())]


def territory_choices(empty: str) -> list[tuple[str, str]]:
    return [("", empty)] + [(t_id, f"{name} — {t_id}") for t_id, name, _dep, _reg in list_territories(ctx())]


def radiologist_choices() -> list[tuple[str, str]]:
    return [(u.username, f"{u.display_name} — {u.username}") for u in list_users_with_roles(ctx(), current_actor())
            if u.is_radiologist and u.active]


def role_choices() -> list[tuple[str, str]]:
    return [(role, str(ROLE_LABELS[role])) for role in ROLES]


def account_choices(form: NewUserForm | AccessForm) -> None:
    form.roles.choices = role_choices()
    form.sites.choices = site_choices()


def credential_choices(form: CredentialsForm) -> None:
    form.territory_id.choices = territory_choices(_("— aucun —"))


def user_or_404(username: str) -> UserSummary:
    try:
        return user_summary(ctx(), current_actor(), username)
    except DirectoryError:
        abort(404)


def refused(err: Exception) -> str:
    if isinstance(err, Forbidden):
        abort(403)
    return str(err)


def display_context() -> dict[str, Any]:
    return {"role_labels": ROLE_LABELS, "sites": {s_id: name for s_id, name, _t in list_sites(ctx())},
            "territories": {t_id: name for t_id, name, _d, _r in list_territories(ctx())}}


