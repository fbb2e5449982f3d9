"""Administrator pages for the routing directory: territories, sites and conventions (CH-3.4, CH-6.1).

Every route requires the administrator role on the server; every change goes through an engine service, which
checks it again, does it in one transaction and records it in the audit chain.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import Forbidden
from engine.services.directory import (
    DirectoryError,
    convention_summary,
    create_convention,
    create_site,
    create_territory,
    list_conventions,
    list_sites,
    list_territories,
    list_users_with_roles,
    territory_neighbours,
    update_convention,
)
from engine.services.eligibility import medical_leads
from web.admin.account_forms import (
    TIER_LABELS,
    EditConventionForm,
    NewConventionForm,
    SiteForm,
    TerritoryForm,
)
from web.admin.account_support import (
    ctx,
    display_context,
    radiologist_choices,
    refused,
    site_choices,
    territory_choices,
    was_submitted,
)
from web.auth.access import current_actor, roles_required

bp = Blueprint("directory", __name__, url_prefix="/admin")
ANCHORS = {"territory": "#territories", "site": "#sites", "convention": "#conventions"}


@bp.route("/directory", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def directory() -> Any:
    forms: dict[str, Any] = {
        "territory": TerritoryForm(prefix="territory", formdata=None),
        "site": SiteForm(prefix="site", formdata=None),
        "convention": NewConventionForm(prefix="convention", formdata=None),
    }
    errors: dict[str, str] = {}
    if request.method == "POST":
        submitted = {"territory": TerritoryForm(prefix="territory"), "site": SiteForm(prefix="site"),
                     "convention": NewConventionForm(prefix="convention")}
        which = next((name for name, form in submitted.items() if was_submitted(form)), None)
        if which is None:
            abort(400)
        forms[which] = submitted[which]
        _directory_choices(forms)
        if forms[which].validate():
            try:
                message = _create(which, forms[which])
            except (DirectoryError, Forbidden) as err:
                errors[which] = refused(err)
            else:
                flash(message, "success")
                return redirect(url_for("directory.directory") + ANCHORS[which])
    _directory_choices(forms)
    return _directory_page(forms, errors)


def _directory_choices(forms: dict[str, Any]) -> None:
    forms["territory"].neighbours.choices = territory_choices("")[1:]
    forms["site"].territory_id.choices = territory_choices(_("— choisissez —"))
    forms["convention"].site_id.choices = [("", _("— choisissez —"))] + site_choices()
    forms["convention"].radiologists.choices = radiologist_choices()
    forms["convention"].tiers.choices = [(str(t), str(label)) for t, label in TIER_LABELS.items()]


def _create(which: str, form: Any) -> str:
    actor = current_actor()
    if which == "territory":
        create_territory(ctx(), actor, form.territory_id.data or "", form.name.data or "", form.department.data or "",
                         form.region.data or "", tuple(form.neighbours.data or ()))
        return _("Territoire « %(id)s » créé.", id=(form.territory_id.data or "").strip())
    if which == "site":
        create_site(ctx(), actor, form.site_id.data or "", form.name.data or "", form.territory_id.data or "")
        return _("Site « %(id)s » créé.", id=(form.site_id.data or "").strip())
    values = form.convention_values()
    number = create_convention(ctx(), actor, form.site_id.data or "", tuple(form.radiologists.data or ()), **values)
    if values["cme_validated"] and values["approved_by_g4"] and values["approved_by_council"]:
        return _("Convention n° %(number)s créée ; elle est active.", number=number)
    return _("Convention n° %(number)s créée ; elle restera inactive tant que la CME, le G4 et le conseil de "
             "l'Ordre ne l'auront pas tous approuvée.", number=number)


def _directory_page(forms: dict[str, Any], errors: dict[str, str]) -> Any:
    actor = current_actor()
    accounts = {u.username: u.display_name for u in list_users_with_roles(ctx(), actor)}
    return render_template(
        "admin/directory/directory.html", forms=forms, errors=errors, neighbours=territory_neighbours(ctx(), actor),
        territory_rows=list_territories(ctx()), site_rows=list_sites(ctx()), leads=medical_leads(ctx()),
        conventions=list_conventions(ctx(), actor), accounts=accounts, tier_labels=TIER_LABELS,
        **display_context())


@bp.route("/directory/conventions/<int:convention_id>", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def edit_convention(convention_id: int) -> Any:
    try:
        convention = convention_summary(ctx(), current_actor(), convention_id)
    except DirectoryError:
        abort(404)
    form = EditConventionForm(prefix="convention", formdata=request.form if request.method == "POST" else None, data={
        "radiologists": list(convention.radiologists), "cme_validated": convention.cme_validated,
        "approved_by_g4": convention.approved_by_g4, "approved_by_council": convention.approved_by_council,
        "tiers": [str(t) for t in convention.tiers], "external_allowed": convention.external_allowed})
    form.radiologists.choices = radiologist_choices()
    for member in convention.radiologists:  # a member who lost the role or was deactivated stays visible
        if member not in {value for value, _label in form.radiologists.choices}:
            form.radiologists.choices.append((member, member))
    form.tiers.choices = [(str(t), str(label)) for t, label in TIER_LABELS.items()]
    error = None
    if request.method == "POST" and form.validate():
        try:
            changed = update_convention(ctx(), current_actor(), convention_id, form.radiologists.data or [],
                                        **form.convention_values())
        except (DirectoryError, Forbidden) as err:
            error = refused(err)
        else:
            flash(_("Convention n° %(number)s enregistrée.", number=convention_id) if changed
                  else _("Aucune modification."), "success" if changed else "info")
            return redirect(url_for("directory.directory") + "#conventions")
    return render_template("admin/directory/convention_edit.html", convention=convention, form=form, error=error,
                           **display_context())
