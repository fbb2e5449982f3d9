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
from engine.services.convention_documents import list_documents, store_document
from engine.services.conventions import (
    convention_summary,
    list_conventions,
    site_lead_choices,
    update_convention_content,
)
from engine.services.directory import (
    DirectoryError,
    create_convention,
    create_site,
    create_territory,
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
from web.admin.convention_forms import (
    DOCUMENT_KIND_LABELS,
    ConventionContentForm,
    ConventionDocumentForm,
    content_data,
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
    """Members, tiers and activation (refused until the convention is complete, with what it lacks)."""
    convention = _convention(convention_id)
    form = _edit_form(convention, request.form if request.method == "POST" else None)
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
    return _convention_page(convention, form=form, errors={"convention": error} if error else {})


@bp.post("/directory/conventions/<int:convention_id>/content")
@login_required
@roles_required("administrator")
def convention_content(convention_id: int) -> Any:
    """Approval dates, medical lead, pathway, duties, fallback procedure, technical part, expiry and renewal."""
    convention = _convention(convention_id)
    form = ConventionContentForm(prefix="content")
    form.medical_lead.choices = _lead_choices(convention.site_id)
    if form.validate():
        try:
            changed = update_convention_content(ctx(), current_actor(), convention_id, form.content())
        except (DirectoryError, Forbidden) as err:
            return _convention_page(convention, content_form=form, errors={"content": refused(err)})
        flash(_("Contenu de la convention n° %(number)s enregistré.", number=convention_id) if changed
              else _("Aucune modification."), "success" if changed else "info")
        return redirect(url_for("directory.edit_convention", convention_id=convention_id) + "#convention-content")
    return _convention_page(convention, content_form=form)


@bp.post("/directory/conventions/<int:convention_id>/documents")
@login_required
@roles_required("administrator")
def convention_document(convention_id: int) -> Any:
    convention = _convention(convention_id)
    form = ConventionDocumentForm(prefix="document")
    upload = form.document.data if form.validate() else None
    try:
        if upload is None or not getattr(upload, "filename", ""):
            raise DirectoryError(_("Choisissez le fichier du document."))
        store_document(ctx(), current_actor(), convention_id, form.kind.data or "", upload.filename, upload.read(),
                       no_productivity_or_exclusivity=bool(form.no_productivity_or_exclusivity.data))
    except (DirectoryError, Forbidden) as err:
        return _convention_page(convention, document_form=form, errors={"document": refused(err)})
    flash(_("Document « %(kind)s » déposé.", kind=DOCUMENT_KIND_LABELS.get(form.kind.data or "", "")), "success")
    return redirect(url_for("directory.edit_convention", convention_id=convention_id) + "#documents")


def _convention(convention_id: int) -> Any:
    try:
        return convention_summary(ctx(), current_actor(), convention_id)
    except DirectoryError:
        abort(404)


def _edit_form(convention: Any, formdata: Any) -> EditConventionForm:
    form = EditConventionForm(prefix="convention", formdata=formdata, data={
        "radiologists": list(convention.radiologists), "cme_validated": convention.cme_validated,
        "approved_by_g4": convention.approved_by_g4, "approved_by_council": convention.approved_by_council,
        "tiers": [str(t) for t in convention.tiers], "external_allowed": convention.external_allowed})
    form.radiologists.choices = radiologist_choices()
    for member in convention.radiologists:  # a member who lost the role or was deactivated stays visible
        if member not in {value for value, _label in form.radiologists.choices}:
            form.radiologists.choices.append((member, member))
    form.tiers.choices = [(str(t), str(label)) for t, label in TIER_LABELS.items()]
    return form


def _lead_choices(site_id: str) -> list[tuple[str, str]]:
    return [("", _("— choisissez —"))] + site_lead_choices(ctx(), current_actor(), site_id)


def _convention_page(convention: Any, *, form: Any = None, content_form: Any = None, document_form: Any = None,
                     errors: dict[str, str] | None = None) -> Any:
    form = form or _edit_form(convention, None)
    if content_form is None:
        content_form = ConventionContentForm(prefix="content", formdata=None, data=content_data(convention))
        content_form.medical_lead.choices = _lead_choices(convention.site_id)
    document_form = document_form or ConventionDocumentForm(prefix="document", formdata=None)
    return render_template("admin/directory/convention_edit.html", convention=convention, form=form,
                           content_form=content_form, document_form=document_form, errors=errors or {},
                           documents=list_documents(ctx(), current_actor(), convention.id),
                           kind_labels=DOCUMENT_KIND_LABELS, **display_context())
