"""CH-3.4 / CH-6.1: a convention is active only for a site with a person responsible for its medical organisation
(an active account with the site lead role at that site). Refused through the service and the administrator pages,
in French, with nothing written; and no change of accounts may leave a site under an active convention without
its lead. The demo gives every site under an active convention its lead."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.services.accounts import create_user
from engine.services.conventions import list_conventions
from engine.services.directory import (
    DirectoryError,
    create_convention,
    create_site,
    set_user_active,
    update_convention,
    update_user_roles_sites,
)
from engine.services.eligibility import sites_without_medical_lead
from engine.store.directory_models import ConventionRow, User
from engine.store.models import AuditEvent
from tests import demo_app
from tests.convention_support import complete_convention, fill_convention
from tests.demo_app import login

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the demo directory, accounts and cases (fixtures)
ADMIN = Actor("admin", frozenset({"administrator"}))
APPROVED = {"cme_validated": True, "approved_by_g4": True, "approved_by_council": True}
NO_LEAD = "Le site « Clinique de Brest » n'a pas de médecin responsable de l'organisation médicale"


@pytest.fixture
def unled_site(demo_ctx):
    create_site(demo_ctx, ADMIN, "clinique-brest", "Clinique de Brest", "brest")
    return "clinique-brest"


def counts(ctx) -> tuple[int, int]:
    with ctx.read() as session:
        return (session.execute(select(func.count()).select_from(ConventionRow)).scalar_one(),
                session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


def give_lead(ctx, site_id: str, username: str = "dr.lead") -> None:
    create_user(ctx, ADMIN, username, "Dr Léa Lead (médecin responsable)", "une phrase de passe solide",
                ("site_lead",), (site_id,))


@pytest.mark.charter("CH-6.1", negative=True)
@pytest.mark.charter("CH-3.4", negative=True)
def test_service_refuses_to_create_an_active_convention_for_a_site_without_medical_lead(demo_ctx, unled_site):
    before = counts(demo_ctx)
    with pytest.raises(DirectoryError) as refused:
        create_convention(demo_ctx, ADMIN, unled_site, ("dr.legall",), **APPROVED)
    assert str(refused.value).startswith(NO_LEAD)
    assert counts(demo_ctx) == before  # nothing written, not even an audit event
    # not yet approved by all: it may be recorded, inactive
    number = create_convention(demo_ctx, ADMIN, unled_site, ("dr.legall",), cme_validated=True,
                               approved_by_g4=True, approved_by_council=False)
    with pytest.raises(DirectoryError, match="n'a pas de médecin responsable"):
        update_convention(demo_ctx, ADMIN, number, ("dr.legall",), **APPROVED, external_allowed=False, tiers="1")
    assert not list_conventions(demo_ctx, ADMIN, unled_site)[0].active
    give_lead(demo_ctx, unled_site)
    with pytest.raises(DirectoryError, match="ne peut pas être activée : il manque"):  # with its lead, not its content
        update_convention(demo_ctx, ADMIN, number, ("dr.legall",), **APPROVED, external_allowed=False, tiers="1")
    fill_convention(demo_ctx, number, "dr.lead")
    assert update_convention(demo_ctx, ADMIN, number, ("dr.legall",), **APPROVED, external_allowed=False,
                             tiers="1")
    assert list_conventions(demo_ctx, ADMIN, unled_site)[0].active


@pytest.mark.charter("CH-6.1", negative=True)
def test_a_deactivated_lead_or_a_lead_of_another_site_does_not_count(demo_ctx, unled_site):
    give_lead(demo_ctx, "ch-morlaix", "dr.elsewhere")  # a lead, but of another site
    create_user(demo_ctx, ADMIN, "dr.former", "Dr Ancien", "une phrase de passe solide", ("site_lead",),
                (unled_site,))
    with demo_ctx.write() as session:  # deactivated outside the guarded service (legacy data)
        user = session.get(User, "dr.former")
        assert user is not None
        user.active = False
        session.commit()
    with pytest.raises(DirectoryError, match="n'a pas de médecin responsable"):
        create_convention(demo_ctx, ADMIN, unled_site, ("dr.legall",), **APPROVED)


@pytest.mark.charter("CH-6.1", negative=True)
def test_the_last_lead_of_a_site_under_active_convention_cannot_be_removed(demo_ctx, unled_site):
    give_lead(demo_ctx, unled_site)
    complete_convention(demo_ctx, unled_site, ("dr.legall",), "dr.lead")
    for change in (lambda: update_user_roles_sites(demo_ctx, ADMIN, "dr.lead", ("requester",), (unled_site,)),
                   lambda: update_user_roles_sites(demo_ctx, ADMIN, "dr.lead", ("site_lead",), ("ch-brest",)),
                   lambda: set_user_active(demo_ctx, ADMIN, "dr.lead", False)):
        with pytest.raises(DirectoryError, match="sans médecin responsable un site sous convention active"):
            change()
    assert sites_without_medical_lead_now(demo_ctx, unled_site) == []
    give_lead(demo_ctx, unled_site, "dr.second")  # with a second lead, the first may go
    assert set_user_active(demo_ctx, ADMIN, "dr.lead", False)


def sites_without_medical_lead_now(ctx, site_id: str) -> list[str]:
    with ctx.read() as session:
        return sites_without_medical_lead(session, [site_id])


@pytest.mark.charter("CH-6.1", negative=True)
@pytest.mark.charter("CH-3.4", negative=True)
def test_admin_pages_refuse_in_french_and_keep_the_convention_inactive(app, demo_ctx, clock, unled_site):
    client = login(app, demo_ctx, clock, "admin")
    before = counts(demo_ctx)
    shown = html.unescape(client.post("/admin/directory", data={
        "convention-site_id": unled_site, "convention-radiologists": ["dr.legall"],
        "convention-cme_validated": "y", "convention-approved_by_g4": "y", "convention-approved_by_council": "y",
        "convention-tiers": ["1"], "convention-submit": "x"}).get_data(as_text=True))
    assert NO_LEAD in shown and "« Médecin responsable du site » à un médecin de ce site" in shown
    site_row = shown.split('<tr id="site-clinique-brest">', 1)[1].split("</tr>", 1)[0]
    assert "Aucun : une convention ne peut pas être activée pour ce site." in site_row
    led_row = shown.split('<tr id="site-ch-morlaix">', 1)[1].split("</tr>", 1)[0]
    assert "Dr Gwenaëlle Riou" in led_row
    assert counts(demo_ctx) == before
    number = create_convention(demo_ctx, ADMIN, unled_site, ("dr.legall",), cme_validated=True,
                               approved_by_g4=True, approved_by_council=False)
    response = client.post(f"/admin/directory/conventions/{number}", data={
        "convention-radiologists": ["dr.legall"], "convention-cme_validated": "y", "convention-approved_by_g4": "y",
        "convention-approved_by_council": "y", "convention-tiers": ["1"], "convention-submit": "x"})
    assert response.status_code == 200 and NO_LEAD in html.unescape(response.get_data(as_text=True))
    assert not list_conventions(demo_ctx, ADMIN, unled_site)[0].active


@pytest.mark.charter("CH-6.1")
@pytest.mark.charter("CH-3.3")
def test_every_demo_site_under_an_active_convention_has_its_medical_lead(demo_ctx):
    active_sites = {c.site_id for c in list_conventions(demo_ctx, ADMIN) if c.active}
    assert active_sites == {"ch-brest", "ch-morlaix", "clinique-landerneau"}
    with demo_ctx.read() as session:
        assert sites_without_medical_lead(session, active_sites) == []
