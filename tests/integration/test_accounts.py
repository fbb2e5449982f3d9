"""Accounts: creation rules, Argon2 passwords, lock-out, TOTP second factor with replay protection, API tokens,
all recorded in the global audit chain (CH-5.3, CH-8.1)."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services import accounts
from engine.services.accounts import (
    AccountError,
    AuthenticationFailed,
    authenticate_password,
    confirm_enrolment,
    create_user,
    issue_api_token,
    load_profile,
    profile_for_token,
    reset_totp,
    revoke_api_token,
    set_password,
    totp_provisioning,
    unlock_user,
    verify_totp,
)
from engine.services.accounts_tokens import list_api_tokens
from engine.store import audit
from engine.store.directory_models import ApiToken, SiteRow, TerritoryRow, User
from engine.store.models import AuditEvent

ADMIN = Actor.system()
PASSWORD = "correct horse battery"


@pytest.fixture
def site(ctx):
    with ctx.write() as session:
        session.add(TerritoryRow(id="t-nord", name="Nord", department="59", region="Hauts-de-France"))
        session.flush()
        session.add(SiteRow(id="ch-lens", name="CH de Lens", territory_id="t-nord"))
        session.commit()
    return "ch-lens"


@pytest.fixture
def user(ctx, site):
    return create_user(ctx, ADMIN, "jdupont", "Dr Jeanne Dupont", PASSWORD, ["radiologist"], [site])


def stored(ctx, username="jdupont") -> User:
    with ctx.read() as session:
        row = session.get(User, username)
        assert row is not None
        return row


def code_at(ctx, clock, steps: int = 0, username="jdupont") -> str:
    secret = ctx.keys.decrypt_secret(stored(ctx, username).totp_secret)
    return pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30 * steps))


def actions(ctx) -> list[tuple[str, str]]:
    with ctx.read() as session:
        rows = session.execute(select(AuditEvent.actor, AuditEvent.action).where(AuditEvent.chain == 0)
                               .order_by(AuditEvent.seq)).all()
    return [(row.actor, row.action) for row in rows]


def enrol(ctx, clock):
    return confirm_enrolment(ctx, "jdupont", code_at(ctx, clock))


def chain_is_intact(ctx) -> bool:
    with ctx.read() as session:
        _checked, problems = audit.verify(session)
    return not problems


@pytest.mark.charter("CH-5.3")
def test_create_user_hashes_the_password_and_prepares_a_totp_secret(ctx, clock, user):
    assert user.roles == {"radiologist"} and user.sites == {"ch-lens"} and not user.totp_enrolled
    row = stored(ctx)
    assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
    assert len(ctx.keys.decrypt_secret(row.totp_secret)) == 32
    assert row.created_at == clock.now() and row.failed_logins == 0
    assert actions(ctx) == [("system", "user.created")]
    secret, uri = totp_provisioning(ctx, "jdupont")
    assert secret == ctx.keys.decrypt_secret(row.totp_secret) and secret not in row.totp_secret
    assert uri.startswith("otpauth://totp/Telerad:jdupont?secret=") and "issuer=Telerad" in uri


@pytest.mark.parametrize(("username", "password", "roles", "sites", "message"), [
    ("JD", PASSWORD, ["radiologist"], [], "Identifiant invalide"),
    ("jean dupont", PASSWORD, ["radiologist"], [], "Identifiant invalide"),
    ("system", PASSWORD, ["radiologist"], [], "réservé"),
    ("jdupont", PASSWORD, ["wizard"], [], "Rôle inconnu : wizard"),
    ("jdupont", PASSWORD, [], [], "au moins un rôle"),
    ("jdupont", "court", ["radiologist"], [], "au moins 12 caractères"),
    ("jdupont", "moi-jdupont-2026", ["radiologist"], [], "ne doit pas contenir l'identifiant"),
    ("jdupont", PASSWORD, ["radiologist"], ["nowhere"], "Site inconnu : nowhere"),
])
def test_create_user_refuses_bad_input_in_french(ctx, username, password, roles, sites, message):
    with pytest.raises(AccountError, match=message):
        create_user(ctx, ADMIN, username, "Dr Jeanne Dupont", password, roles, sites)
    assert actions(ctx) == []


def test_create_user_refuses_duplicates_bad_rpps_and_non_administrators(ctx, user):
    with pytest.raises(AccountError, match="existe déjà"):
        create_user(ctx, ADMIN, "jdupont", "Autre", PASSWORD, ["requester"])
    with pytest.raises(AccountError, match="RPPS invalide"):
        create_user(ctx, ADMIN, "pmartin", "Dr Paul Martin", PASSWORD, ["radiologist"], rpps="12345678901")
    with pytest.raises(Forbidden):
        create_user(ctx, Actor("jdupont", frozenset({"radiologist"})), "pmartin", "Dr Paul Martin", PASSWORD,
                    ["radiologist"])
    with pytest.raises(TypeError):
        create_user(ctx, ADMIN, "pmartin", "Dr Paul Martin", PASSWORD, ["radiologist"], favourite_colour="blue")
    admin = Actor("boss", frozenset({"administrator"}))
    assert create_user(ctx, admin, "pmartin", "Dr Paul Martin", PASSWORD, ["radiologist"]).username == "pmartin"


@pytest.mark.charter("CH-5.3")
def test_password_login_is_audited(ctx, user):
    profile = authenticate_password(ctx, "jdupont", PASSWORD)
    assert profile.username == "jdupont" and not profile.totp_enrolled
    assert actions(ctx)[-1] == ("jdupont", "auth.login")


class CountingHasher:
    def __init__(self, real: PasswordHasher):
        self.real = real
        self.verified = 0

    def verify(self, stored_hash: str, password: str) -> bool:
        self.verified += 1
        return self.real.verify(stored_hash, password)

    def __getattr__(self, name: str):
        return getattr(self.real, name)


@pytest.mark.charter("CH-8.1")
def test_unknown_user_and_wrong_password_get_the_same_answer_and_the_same_work(ctx, user, monkeypatch):
    hasher = CountingHasher(accounts._HASHER)
    monkeypatch.setattr(accounts, "_HASHER", hasher)
    with pytest.raises(AuthenticationFailed) as wrong:
        authenticate_password(ctx, "jdupont", "not the password")
    assert hasher.verified == 1
    with pytest.raises(AuthenticationFailed) as unknown:
        authenticate_password(ctx, "nobody", "not the password")
    assert hasher.verified == 2  # a dummy hash is checked: no timing difference
    assert str(wrong.value) == str(unknown.value) == "Identifiant ou mot de passe incorrect."
    assert wrong.value.reason == unknown.value.reason == "invalid_password"
    assert actions(ctx)[-2:] == [("jdupont", "auth.failed"), ("anonymous", "auth.failed")]
    with ctx.read() as session:
        detail = session.execute(select(AuditEvent.detail).order_by(AuditEvent.id.desc()).limit(1)).scalar()
    assert '"username": "nobody"' in detail


@pytest.mark.charter("CH-5.3")
def test_five_failures_lock_the_account_for_fifteen_minutes(ctx, clock, user):
    for attempt in range(1, 5):
        with pytest.raises(AuthenticationFailed) as err:
            authenticate_password(ctx, "jdupont", f"wrong password {attempt}")
        assert err.value.reason == "invalid_password"
    with pytest.raises(AuthenticationFailed) as err:
        authenticate_password(ctx, "jdupont", "wrong password 5")
    assert err.value.reason == "locked" and err.value.locked_until == clock.now() + timedelta(minutes=15)
    # 08:00 UTC is 09:00 in Paris in January
    assert "jusqu'au 05/01/2026 à 09:15 (heure de Paris)" in str(err.value)
    assert ("jdupont", "auth.locked") in actions(ctx)
    clock.advance(minutes=14, seconds=59)
    with pytest.raises(AuthenticationFailed) as err:
        authenticate_password(ctx, "jdupont", PASSWORD)  # even the right password
    assert err.value.reason == "locked" and err.value.locked_until == stored(ctx).locked_until
    clock.advance(seconds=1)
    assert authenticate_password(ctx, "jdupont", PASSWORD).username == "jdupont"
    assert stored(ctx).locked_until is None and stored(ctx).failed_logins == 0
    assert chain_is_intact(ctx)


def test_attempts_during_a_lock_do_not_extend_it_and_an_administrator_can_unlock(ctx, clock, user):
    for attempt in range(5):
        with pytest.raises(AuthenticationFailed):
            authenticate_password(ctx, "jdupont", f"wrong password {attempt}")
    until = stored(ctx).locked_until
    clock.advance(minutes=10)
    with pytest.raises(AuthenticationFailed):
        authenticate_password(ctx, "jdupont", "still guessing")
    assert stored(ctx).locked_until == until
    unlock_user(ctx, ADMIN, "jdupont")
    assert authenticate_password(ctx, "jdupont", PASSWORD).username == "jdupont"


def test_an_outdated_hash_is_upgraded_at_login(ctx, user, monkeypatch):
    monkeypatch.setattr(accounts, "_HASHER", PasswordHasher())  # production parameters (the suite uses cheap ones)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with ctx.write() as session:
        session.get(User, "jdupont").password_hash = weak
        session.commit()
    authenticate_password(ctx, "jdupont", PASSWORD)
    upgraded = stored(ctx).password_hash
    assert upgraded != weak and not accounts._HASHER.check_needs_rehash(upgraded)
    assert authenticate_password(ctx, "jdupont", PASSWORD).username == "jdupont"


@pytest.mark.charter("CH-5.3")
def test_enrolment_then_totp_with_replay_protection(ctx, clock, user):
    with pytest.raises(AuthenticationFailed) as err:
        verify_totp(ctx, "jdupont", code_at(ctx, clock))
    assert err.value.reason == "not_enrolled"
    profile = enrol(ctx, clock)
    assert profile.totp_enrolled and stored(ctx).totp_enrolled_at == clock.now()
    with pytest.raises(AuthenticationFailed, match="déjà configuré"):
        totp_provisioning(ctx, "jdupont")
    with pytest.raises(AuthenticationFailed) as err:
        verify_totp(ctx, "jdupont", code_at(ctx, clock))  # the code used for the enrolment
    assert err.value.reason == "replayed_code" and "déjà servi" in str(err.value)
    clock.advance(seconds=30)
    assert verify_totp(ctx, "jdupont", code_at(ctx, clock)).username == "jdupont"
    clock.advance(seconds=60)
    assert verify_totp(ctx, "jdupont", code_at(ctx, clock, steps=-1)).username == "jdupont"  # drift: one step
    clock.advance(seconds=90)
    with pytest.raises(AuthenticationFailed) as err:
        verify_totp(ctx, "jdupont", code_at(ctx, clock, steps=-2))  # too old
    assert err.value.reason == "invalid_code"
    assert verify_totp(ctx, "jdupont", code_at(ctx, clock, steps=+1)).username == "jdupont"  # one step ahead
    with pytest.raises(AuthenticationFailed) as err:
        verify_totp(ctx, "jdupont", code_at(ctx, clock))  # older than the last one used
    assert err.value.reason == "replayed_code"
    assert [a for _, a in actions(ctx)].count("auth.totp_enrolled") == 1
    assert chain_is_intact(ctx)


@pytest.mark.charter("CH-5.3")
def test_wrong_codes_count_towards_the_lock_out_and_a_full_login_resets_the_count(ctx, clock, user):
    enrol(ctx, clock)
    clock.advance(seconds=30)
    for attempt in range(3):
        with pytest.raises(AuthenticationFailed):
            authenticate_password(ctx, "jdupont", f"wrong password {attempt}")
    assert authenticate_password(ctx, "jdupont", PASSWORD).username == "jdupont"
    assert stored(ctx).failed_logins == 3  # the password alone does not reset the count
    with pytest.raises(AuthenticationFailed) as err:
        verify_totp(ctx, "jdupont", "000000" if code_at(ctx, clock) != "000000" else "111111")
    assert err.value.reason == "invalid_code"
    with pytest.raises(AuthenticationFailed) as err:
        verify_totp(ctx, "jdupont", "12345")
    assert err.value.reason == "locked"
    with pytest.raises(AuthenticationFailed) as err:
        verify_totp(ctx, "jdupont", code_at(ctx, clock))
    assert err.value.reason == "locked"
    clock.advance(minutes=15)
    assert verify_totp(ctx, "jdupont", code_at(ctx, clock)).username == "jdupont"
    assert stored(ctx).failed_logins == 0


def test_reset_totp_and_set_password(ctx, clock, user):
    enrol(ctx, clock)
    old_secret = stored(ctx).totp_secret
    reset_totp(ctx, ADMIN, "jdupont")
    row = stored(ctx)
    assert row.totp_secret != old_secret and row.totp_enrolled_at is None and row.totp_last_step == 0
    assert not load_profile(ctx, "jdupont").totp_enrolled
    with pytest.raises(AccountError, match="au moins 12"):
        set_password(ctx, ADMIN, "jdupont", "short")
    with pytest.raises(Forbidden):
        set_password(ctx, Actor("pmartin"), "jdupont", "a brand new passphrase")
    set_password(ctx, Actor("jdupont"), "jdupont", "a brand new passphrase")
    with pytest.raises(AuthenticationFailed):
        authenticate_password(ctx, "jdupont", PASSWORD)
    assert authenticate_password(ctx, "jdupont", "a brand new passphrase").username == "jdupont"
    with pytest.raises(AccountError, match="Compte inconnu"):
        reset_totp(ctx, ADMIN, "nobody")


@pytest.mark.charter("CH-5.3")
def test_api_tokens_are_stored_hashed_resolved_and_revoked(ctx, clock, user):
    token = issue_api_token(ctx, "jdupont", "RIS du CH de Lens")
    assert len(token) >= 43
    with ctx.read() as session:
        row = session.execute(select(ApiToken)).scalar_one()
    assert token not in row.token_hash and len(row.token_hash) == 64 and row.last_used_at is None
    with pytest.raises(AccountError, match="existe déjà"):
        issue_api_token(ctx, "jdupont", "RIS du CH de Lens")
    with pytest.raises(AccountError, match="nom de 1 à 100"):
        issue_api_token(ctx, "jdupont", "  ")
    assert profile_for_token(ctx, token).username == "jdupont"
    assert list_api_tokens(ctx, "jdupont")[0].last_used_at == clock.now()
    assert profile_for_token(ctx, token + "x") is None and profile_for_token(ctx, "") is None
    revoke_api_token(ctx, "jdupont", "RIS du CH de Lens")
    assert profile_for_token(ctx, token) is None
    with pytest.raises(AccountError, match="Aucun jeton actif"):
        revoke_api_token(ctx, "jdupont", "RIS du CH de Lens")
    again = issue_api_token(ctx, "jdupont", "RIS du CH de Lens")  # the name is free again
    with ctx.write() as session:
        session.get(User, "jdupont").active = False
        session.commit()
    assert profile_for_token(ctx, again) is None
    assert [a for _, a in actions(ctx)].count("auth.token_issued") == 2
    assert ("jdupont", "auth.token_revoked") in actions(ctx)


def test_token_use_time_is_refreshed_at_most_once_a_minute(ctx, clock, user):
    token = issue_api_token(ctx, "jdupont", "pacs")
    profile_for_token(ctx, token)
    first = clock.now()
    clock.advance(seconds=30)
    profile_for_token(ctx, token)
    assert list_api_tokens(ctx, "jdupont")[0].last_used_at == first
    clock.advance(seconds=30)
    profile_for_token(ctx, token)
    assert list_api_tokens(ctx, "jdupont")[0].last_used_at == clock.now()


def test_a_profile_carries_exactly_the_accounts_roles_and_sites(ctx, site):
    with ctx.write() as session:  # stored directly: create_site refuses such ids, older databases may hold them
        session.add(SiteRow(id='ch-arras,2 "b"', name="CH d'Arras", territory_id="t-nord"))
        session.commit()
    create_user(ctx, ADMIN, "mleroy", "Dr Marc Leroy", PASSWORD, ["radiologist", "administrator"],
                [site, 'ch-arras,2 "b"'])
    create_user(ctx, ADMIN, "nosite", "Sans site", PASSWORD, ["administrator"], [])
    token = issue_api_token(ctx, "mleroy", "pacs")
    for profile in (load_profile(ctx, "mleroy"), profile_for_token(ctx, token)):
        assert profile is not None
        assert profile.roles == {"radiologist", "administrator"}
        assert profile.sites == {"ch-lens", 'ch-arras,2 "b"'}  # a comma or a quote in an id splits nothing
        assert profile.actor.sites == frozenset({"ch-lens", 'ch-arras,2 "b"'})
    siteless = load_profile(ctx, "nosite")
    assert siteless is not None and siteless.roles == {"administrator"} and siteless.sites == frozenset()
    assert load_profile(ctx, "nobody") is None
