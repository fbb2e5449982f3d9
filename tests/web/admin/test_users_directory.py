"""Administrator pages: accounts with roles, sites and radiologist credentials, account actions, and the routing
directory (territories, sites, conventions), refused on the server to anyone but administrators
(CH-3.1, CH-3.2, CH-3.4, CH-5.3, CH-6.1)."""

from __future__ import annotations

import html
import json
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.directory import DirectoryError, set_user_active, update_user_roles_sites
from engine.store.directory_models import User, UserRole, UserSite
from engine.store.models import AuditEvent
from engine.store.sql_directory import SqlDirectory
from tests import demo_app
from tests.convention_support import fill_convention
from tests.demo_app import login

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the fixtures of the clinician pages (demo data)
NEW_PASSWORD = "une phrase de passe solide"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def audit_events(ctx, action: str) -> list[tuple[str, dict]]:
    with ctx.read() as session:
        rows = session.execute(select(AuditEvent.actor, AuditEvent.detail).where(AuditEvent.action == action)
                               .order_by(AuditEvent.id)).all()
    return [(actor, json.loads(detail)) for actor, detail in rows]


def roles_of(ctx, username: str) -> set[str]:
    with ctx.read() as session:
        return set(session.execute(select(UserRole.role).where(UserRole.username == username)).scalars())


def sites_of(ctx, username: str) -> set[str]:
    with ctx.read() as session:
        return set(session.execute(select(UserSite.site_id).where(UserSite.username == username)).scalars())


def stored(ctx, username: str) -> User:
    with ctx.read() as session:
        user = session.get(User, username)
        assert user is not None
        return user


def radiologist_form(**overrides: str) -> dict[str, object]:
    form: dict[str, object] = {
        "username": "dr.nedelec", "display_name": "Dr Erwan Nédélec (radiologue)", "password": NEW_PASSWORD,
        "roles": ["radiologist"], "sites": ["ch-brest"], "rpps": "10003456786",
        "authorization_expires": "2030-06-30", "insurance_expires": "2025-12-31", "territory_id": "brest",
        "external_company": "", "submit": "Créer le compte",
    }
    form.update(overrides)
    return form


@pytest.mark.charter("CH-3.1")
def test_admin_creates_a_radiologist_with_credentials_and_sees_their_state(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    page = text(client.get("/admin/users/new"))
    for label in ("Médecin demandeur", "Manipulateur", "Radiologue de proximité", "Télé-expert",
                  "Médecin responsable du site", "Concepteur de processus", "Administrateur", "Auditeur"):
        assert label in page
    assert '<label class="form-label" for="rpps">' in page

    response = client.post("/admin/users/new", data=radiologist_form())
    assert response.status_code == 302, text(response)
    assert response.headers["Location"].endswith("/admin/users/dr.nedelec")
    edit = text(client.get(response.headers["Location"]))
    assert "configurera son second facteur" in edit  # the TOTP enrolment note
    assert "Assurance RCP expirée (valable jusqu'au 31/12/2025)" in edit

    user = stored(demo_ctx, "dr.nedelec")
    assert (user.rpps, user.authorization_expires, user.insurance_expires) == (
        "10003456786", date(2030, 6, 30), date(2025, 12, 31))
    assert user.totp_enrolled_at is None and roles_of(demo_ctx, "dr.nedelec") == {"radiologist"}
    assert sites_of(demo_ctx, "dr.nedelec") == {"ch-brest"}

    listing = text(client.get("/admin/users"))
    row = re.search(r'<tr id="user-dr.nedelec">(.*?)</tr>', listing, re.S).group(1)
    assert "Radiologue" in row and "CH de Brest (urgences)" in row and "Non affectable" in row
    assert "Assurance RCP expirée" in row and "À configurer à la prochaine connexion" in row
    legall = re.search(r'<tr id="user-dr.legall">(.*?)</tr>', listing, re.S).group(1)
    assert "Valides" in legall and "Télé-expert" in legall
    assert audit_events(demo_ctx, "user.created")[-1] == ("admin", {
        "username": "dr.nedelec", "roles": ["radiologist"], "sites": ["ch-brest"]})


@pytest.mark.charter("CH-3.2")
def test_extraterritorial_radiologist_without_foreign_documents_is_shown_not_assignable(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    response = client.post("/admin/users/new", data=radiologist_form(
        username="dr.weber", rpps="", insurance_expires="2030-06-30", extraterritorial="y",
        foreign_insurance_on_file="y", territory_id=""))
    assert response.status_code == 302, text(response)
    row = re.search(r'<tr id="user-dr.weber">(.*?)</tr>', text(client.get("/admin/users")), re.S).group(1)
    assert "autorisation d'exercer délivrée dans son pays" in row and "Numéro RPPS absent" not in row


@pytest.mark.charter("CH-3.1")
def test_invalid_rpps_is_refused_in_french_and_the_input_kept(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    response = client.post("/admin/users/new", data=radiologist_form(rpps="10003456787"))
    page = text(response)
    assert response.status_code == 200
    assert "Numéro RPPS invalide : il compte 11 chiffres dont une clé de contrôle" in page
    assert 'value="10003456787"' in page and 'value="Dr Erwan Nédélec (radiologue)"' in page
    assert re.search(r'value="radiologist"[^>]*checked|checked[^>]*value="radiologist"', page)
    with demo_ctx.read() as session:
        assert session.get(User, "dr.nedelec") is None

    # the same rule when editing
    edit = client.post("/admin/users/dr.legall", data={"creds-rpps": "12345678901", "creds-submit": "x"})
    assert "Numéro RPPS invalide" in text(edit) and 'value="12345678901"' in text(edit)
    assert stored(demo_ctx, "dr.legall").rpps == "10003456786"


def test_form_errors_are_french(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    page = text(client.post("/admin/users/new", data=radiologist_form(
        username="", password="", authorization_expires="31/02/2030")))
    assert "Saisissez l'identifiant." in page and "Saisissez un mot de passe initial." in page
    assert "Date invalide" in page and "Not a valid" not in page and "This field" not in page
    short = text(client.post("/admin/users/new", data=radiologist_form(password="court")))
    assert "Le mot de passe doit compter au moins 12 caractères" in short


@pytest.mark.charter("CH-5.3", negative=True)
def test_every_admin_route_is_forbidden_to_non_administrators(app, demo_ctx, clock):
    routes = [("get", "/admin/users"), ("get", "/admin/users/new"), ("post", "/admin/users/new"),
              ("get", "/admin/users/dr.legall"), ("post", "/admin/users/dr.legall"),
              ("post", "/admin/users/dr.legall/password"), ("post", "/admin/users/dr.legall/unlock"),
              ("post", "/admin/users/dr.legall/totp-reset"), ("post", "/admin/users/dr.legall/deactivate"),
              ("post", "/admin/users/dr.legall/reactivate"), ("post", "/admin/users/dr.legall/sessions/1/end"),
              ("post", "/admin/users/dr.legall/sessions/end-all"), ("post", "/admin/users/dr.legall/tokens/renew"),
              ("get", "/admin/directory"),
              ("post", "/admin/directory"), ("get", "/admin/directory/conventions/1"),
              ("post", "/admin/directory/conventions/1"), ("post", "/admin/directory/conventions/1/content"),
              ("post", "/admin/directory/conventions/1/documents"), ("get", "/admin/users/nobody")]
    rules = {rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith(("users.", "directory."))}
    assert {re.sub(r"dr\.legall|nobody", "<username>", re.sub(r"/1(/content|/documents)?$", r"/<int:convention_id>\1",
                                                            url.replace("/sessions/1/", "/sessions/<int:session_id>/")))
            for _method, url in routes} == rules
    data = {"access-roles": ["administrator"], "access-submit": "x", "username": "intrus",
            "display_name": "Intrus", "password": NEW_PASSWORD, "roles": ["administrator"], "submit": "x"}
    clients = {username: login(app, demo_ctx, clock, username) for username in ("dr.martin", "auditor")}
    for username, client in clients.items():
        for method, url in routes:
            response = getattr(client, method)(url, data=data if method == "post" else None)
            assert response.status_code == 403, (username, method, url, response.status_code)
    anonymous = app.test_client()
    assert anonymous.get("/admin/users").status_code == 302
    assert anonymous.post("/admin/users/dr.legall/unlock").status_code == 302
    assert roles_of(demo_ctx, "dr.legall") == {"radiologist", "tele_expert"} and stored(demo_ctx, "dr.legall").active
    with demo_ctx.read() as session:
        assert session.get(User, "intrus") is None
    assert "Administration" not in text(clients["dr.martin"].get("/", follow_redirects=True))


@pytest.mark.charter("CH-5.3")
def test_editing_roles_and_sites_is_applied_and_audited(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    page = text(client.get("/admin/users/dr.martin"))
    assert 'id="access-roles-0"' in page and 'for="access-sites-0"' in page
    response = client.post("/admin/users/dr.martin", data={
        "access-roles": ["requester", "site_lead"], "access-sites": ["ch-brest", "ch-morlaix"],
        "access-submit": "Enregistrer"})
    assert response.status_code == 302, text(response)
    assert "Rôles et sites enregistrés." in text(client.get(response.headers["Location"]))
    assert roles_of(demo_ctx, "dr.martin") == {"requester", "site_lead"}
    assert sites_of(demo_ctx, "dr.martin") == {"ch-brest", "ch-morlaix"}
    actor, detail = audit_events(demo_ctx, "user.access_changed")[-1]
    assert actor == "admin" and detail == {
        "username": "dr.martin", "roles": ["requester", "site_lead"], "sites": ["ch-brest", "ch-morlaix"],
        "roles_added": ["site_lead"], "roles_removed": [], "sites_added": ["ch-morlaix"], "sites_removed": []}

    # the same again changes nothing and records nothing
    again = client.post("/admin/users/dr.martin", data={
        "access-roles": ["requester", "site_lead"], "access-sites": ["ch-brest", "ch-morlaix"], "access-submit": "x"})
    assert "Aucune modification." in text(client.get(again.headers["Location"]))
    assert len(audit_events(demo_ctx, "user.access_changed")) == 1

    # the new site is effective at the next request (the profile is loaded per request)
    clock.advance(seconds=30)  # a TOTP code is good once only
    martin = login(app, demo_ctx, clock, "dr.martin")
    assert "ch-morlaix" in text(martin.get("/cases/new/telediagnosis"))

    # refusals are shown next to the form, the choices kept
    refused = text(client.post("/admin/users/dr.martin", data={"access-sites": ["ch-brest"], "access-submit": "x"}))
    assert "Attribuez au moins un rôle." in refused
    assert roles_of(demo_ctx, "dr.martin") == {"requester", "site_lead"}


@pytest.mark.charter("CH-3.1")
def test_editing_credentials_is_applied_and_audited(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    response = client.post("/admin/users/dr.morvan", data={
        "creds-rpps": "10101010105", "creds-authorization_expires": "2030-12-31",
        "creds-insurance_expires": "2026-01-04", "creds-territory_id": "morlaix", "creds-submit": "x"})
    assert response.status_code == 302, text(response)
    page = text(client.get(response.headers["Location"]))
    assert "Assurance RCP expirée (valable jusqu'au 04/01/2026)" in page
    assert stored(demo_ctx, "dr.morvan").insurance_expires == date(2026, 1, 4)
    assert SqlDirectory(demo_ctx.reader).radiologist("dr.morvan").credentials.insurance_expires == date(2026, 1, 4)
    actor, detail = audit_events(demo_ctx, "user.credentials_changed")[-1]
    assert actor == "admin" and detail == {"username": "dr.morvan", "changes": {"insurance_expires": "2026-01-04"}}

    soon = (clock.now().date() + timedelta(days=10)).isoformat()
    client.post("/admin/users/dr.morvan", data={
        "creds-rpps": "10101010105", "creds-authorization_expires": "2030-12-31", "creds-insurance_expires": soon,
        "creds-territory_id": "morlaix", "creds-submit": "x"})
    assert "À renouveler avant le" in text(client.get("/admin/users"))


@pytest.mark.charter("CH-3.4")
@pytest.mark.charter("CH-6.1")
def test_convention_without_every_approval_is_inactive_until_approved(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    response = client.post("/admin/directory", data={
        "territory-territory_id": "quimper", "territory-name": "Pays de Cornouaille", "territory-department": "29",
        "territory-region": "Bretagne", "territory-neighbours": ["brest"], "territory-submit": "x"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/directory#territories")
    response = client.post("/admin/directory", data={
        "site-site_id": "ch-quimper", "site-name": "CH de Quimper", "site-territory_id": "quimper",
        "site-submit": "x"})
    assert response.status_code == 302, text(response)
    response = client.post("/admin/directory", data={
        "convention-site_id": "ch-quimper", "convention-radiologists": ["dr.legall", "dr.morvan"],
        "convention-cme_validated": "y", "convention-approved_by_g4": "y", "convention-tiers": ["1", "2"],
        "convention-submit": "x"})
    assert response.status_code == 302, text(response)
    page = text(client.get("/admin/directory"))
    assert "inactive tant que la CME, le G4 et le conseil" in page
    assert "Pays de Cornouaille" in page and "CH de Quimper" in page
    number = SqlDirectory(demo_ctx.reader).conventions("ch-quimper")
    assert len(number) == 1 and number[0].active is False and number[0].tiers == frozenset({1, 2})
    assert number[0].radiologist_ids == frozenset({"dr.legall", "dr.morvan"})
    assert SqlDirectory(demo_ctx.reader).territories()["quimper"].neighbours == frozenset({"brest"})
    row = re.search(r'<tr id="convention-(\d+)">((?:(?!</tr>).)*CH de Quimper.*?)</tr>', page, re.S)
    assert "Inactive" in row.group(2) and ">Active<" not in row.group(2)
    convention_id = int(row.group(1))
    created = audit_events(demo_ctx, "convention.created")[-1]
    assert created[0] == "admin" and created[1]["active"] is False and created[1]["convention"] == convention_id

    # the departmental Medical Council approves: refused while the site has no medical lead (CH-6.1)
    approved = {
        "convention-radiologists": ["dr.legall"], "convention-cme_validated": "y", "convention-approved_by_g4": "y",
        "convention-approved_by_council": "y", "convention-tiers": ["1", "2"], "convention-submit": "x"}
    refused = text(client.post(f"/admin/directory/conventions/{convention_id}", data=approved))
    assert "Le site « CH de Quimper » n'a pas de médecin responsable" in refused
    assert SqlDirectory(demo_ctx.reader).conventions("ch-quimper")[0].active is False
    update_user_roles_sites(demo_ctx, Actor("admin", frozenset({"administrator"})), "dr.guillou", ["site_lead"],
                            ["ch-brest", "ch-quimper"])
    # with its medical lead and its content (issue 19, item 5: tests/web/admin/test_convention_content.py), the
    # convention becomes active
    fill_convention(demo_ctx, convention_id, "dr.guillou")
    response = client.post(f"/admin/directory/conventions/{convention_id}", data=approved)
    assert response.status_code == 302, text(response)
    (convention,) = SqlDirectory(demo_ctx.reader).conventions("ch-quimper")
    assert convention.active and convention.radiologist_ids == frozenset({"dr.legall"})
    actor, detail = audit_events(demo_ctx, "convention.updated")[-1]
    assert actor == "admin" and detail["changes"] == {"approved_by_council": True} and detail["active"] is True
    assert detail["radiologists_removed"] == ["dr.morvan"]


def test_directory_refusals_are_shown_next_to_the_form(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    page = text(client.post("/admin/directory", data={
        "site-site_id": "ch-brest", "site-name": "Doublon", "site-territory_id": "brest", "site-submit": "x"}))
    assert "Le site « ch-brest » existe déjà." in page and 'value="Doublon"' in page
    page = text(client.post("/admin/directory", data={
        "convention-site_id": "ch-brest", "convention-radiologists": ["dr.martin"], "convention-tiers": ["1"],
        "convention-submit": "x"}))
    assert "n'ont pas le rôle de radiologue" in page
    page = text(client.post("/admin/directory", data={
        "territory-territory_id": "Quimper !", "territory-name": "x", "territory-department": "29",
        "territory-region": "Bretagne", "territory-submit": "x"}))
    assert "Identifiant du territoire invalide" in page
    assert len(SqlDirectory(demo_ctx.reader).conventions("ch-brest")) == 1


@pytest.mark.charter("CH-5.3")
def test_unlock_reset_totp_password_and_deactivation_buttons(app, demo_ctx, clock):
    with demo_ctx.write() as session:
        user = session.get(User, "dr.kerbrat")
        user.failed_logins, user.locked_until = 5, clock.now() + timedelta(minutes=15)
        session.commit()
    client = login(app, demo_ctx, clock, "admin")
    row = re.search(r'<tr id="user-dr.kerbrat">(.*?)</tr>', text(client.get("/admin/users")), re.S).group(1)
    assert "Verrouillé" in row
    assert 'action="/admin/users/dr.kerbrat/unlock"' in text(client.get("/admin/users/dr.kerbrat"))

    response = client.post("/admin/users/dr.kerbrat/unlock")
    assert response.status_code == 302
    page = text(client.get(response.headers["Location"]))
    assert "Compte déverrouillé" in page and 'action="/admin/users/dr.kerbrat/unlock"' not in page
    assert (stored(demo_ctx, "dr.kerbrat").failed_logins, stored(demo_ctx, "dr.kerbrat").locked_until) == (0, None)
    assert audit_events(demo_ctx, "auth.unlocked")[-1] == ("admin", {"username": "dr.kerbrat"})

    old_secret = stored(demo_ctx, "dr.kerbrat").totp_secret
    response = client.post("/admin/users/dr.kerbrat/totp-reset")
    assert response.status_code == 302
    after = stored(demo_ctx, "dr.kerbrat")
    assert after.totp_enrolled_at is None and after.totp_secret != old_secret
    assert audit_events(demo_ctx, "auth.totp_reset")[-1] == ("admin", {"username": "dr.kerbrat"})
    assert "À configurer" in text(client.get("/admin/users/dr.kerbrat"))
    relogin = app.test_client()
    step = relogin.post("/login", data={"username": "dr.kerbrat", "password": "telerad-demo-2026"})
    assert step.headers["Location"].endswith("/login/enrol")

    refused = text(client.post("/admin/users/dr.kerbrat/password", data={
        "password-new_password": "court", "password-confirm": "court", "password-submit": "x"}))
    assert "au moins 12 caractères" in refused
    different = text(client.post("/admin/users/dr.kerbrat/password", data={
        "password-new_password": NEW_PASSWORD, "password-confirm": NEW_PASSWORD + "!", "password-submit": "x"}))
    assert "Les deux mots de passe diffèrent." in different
    response = client.post("/admin/users/dr.kerbrat/password", data={
        "password-new_password": NEW_PASSWORD, "password-confirm": NEW_PASSWORD, "password-submit": "x"})
    assert response.status_code == 302
    assert audit_events(demo_ctx, "user.password_set")[-1] == ("admin", {"username": "dr.kerbrat"})

    response = client.post("/admin/users/dr.kerbrat/deactivate")
    assert response.status_code == 302 and not stored(demo_ctx, "dr.kerbrat").active
    assert "Désactivé" in text(client.get("/admin/users/dr.kerbrat"))
    assert app.test_client().post("/login", data={"username": "dr.kerbrat", "password": NEW_PASSWORD}
                                  ).status_code == 200  # refused: stays on the login page
    client.post("/admin/users/dr.kerbrat/reactivate")
    assert stored(demo_ctx, "dr.kerbrat").active
    assert [a for a, _d in audit_events(demo_ctx, "user.deactivated")] == ["admin"]
    assert [a for a, _d in audit_events(demo_ctx, "user.reactivated")] == ["admin"]


def test_the_last_active_administrator_cannot_be_removed(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    page = text(client.post("/admin/users/admin/deactivate"))
    assert "Vous ne pouvez pas désactiver votre propre compte." in page
    page = text(client.post("/admin/users/admin", data={"access-roles": ["auditor"], "access-submit": "x"}))
    assert "Il doit rester au moins un administrateur actif" in page
    assert roles_of(demo_ctx, "admin") == {"administrator"} and stored(demo_ctx, "admin").active
    system = Actor.system()
    update_user_roles_sites(demo_ctx, system, "auditor", ["auditor", "administrator"], [])
    set_user_active(demo_ctx, system, "auditor", False)  # an inactive administrator does not count
    with pytest.raises(DirectoryError, match="au moins un administrateur actif"):
        set_user_active(demo_ctx, system, "admin", False)
    set_user_active(demo_ctx, system, "auditor", True)
    set_user_active(demo_ctx, system, "admin", False)
    assert not stored(demo_ctx, "admin").active


def test_unknown_account_or_convention_is_404(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    assert client.get("/admin/users/nobody").status_code == 404
    assert client.post("/admin/users/nobody/unlock").status_code == 404
    assert client.get("/admin/directory/conventions/999").status_code == 404
