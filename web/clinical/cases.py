"""Cases: list and search, new requests, the case record, its dialogue and attachments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from engine.errors import Forbidden, NotFound
from engine.services.cases import (
    InvalidInput,
    add_attachment,
    attachment_file,
    case_record,
    diagram_source,
    ensure_visible,
    list_cases,
    post_message,
)
from engine.services.duplicates import Duplicate, PatientKey, find_duplicates
from engine.services.instances import start_instance
from forms import FormValidationError
from web.auth.access import current_actor
from web.clinical.taskforms import TaskForm
from web.extensions import telerad

bp = Blueprint("cases", __name__, url_prefix="/cases")

REQUEST_FORMS = {
    "telediagnosis": ("td_request.schema.json", ("requester",), _l("Demande de télédiagnostic")),
    # The deployed teleexpertise starts in the local radiologist's lane (workflows/bpmn/teleexpertise.bpmn).
    "teleexpertise": ("te_request.schema.json", ("local_radiologist",), _l("Demande de téléexpertise")),
}


def _ctx() -> Any:
    return telerad(current_app).ctx


def _storage() -> Any:
    return telerad(current_app).settings.instance_path / "files"


@bp.get("")
@login_required
def index() -> Any:
    status = request.args.get("status") or None
    query = (request.args.get("q") or "").strip()[:100] or None
    cases = list_cases(_ctx(), current_actor(), status=status, query=query)
    return render_template("clinical/cases/index.html", cases=cases, status=status, query=query or "")


@bp.route("/new/<process>", methods=["GET", "POST"])
@login_required
def new(process: str) -> Any:
    if process not in REQUEST_FORMS:
        abort(404)
    form_key, roles, title = REQUEST_FORMS[process]
    actor = current_actor()
    if not actor.roles.intersection(roles):
        abort(403)
    sites = sorted(actor.sites)
    form = TaskForm(_ctx().forms, form_key, None)
    site_id = request.form.get("site_id") or (sites[0] if len(sites) == 1 else "")
    confirm = False
    if request.method == "POST" and form.validate_submission():
        if site_id not in actor.sites:
            form.form_errors.append(_("Choisissez le site demandeur."))
        elif (duplicates := _unconfirmed_duplicates(actor, site_id, form.data_for_engine())):
            form.form_errors.extend(duplicates)
            confirm = True
        else:
            try:
                case_id = start_instance(_ctx(), actor, process, {}, site_id=site_id,
                                         first_task=form.data_for_engine())
            except FormValidationError as err:
                form.show_errors(err.errors)
            except Forbidden as err:
                abort(403, str(err))
            else:
                _store_uploads(case_id)
                flash(_("La demande est envoyée."), "success")
                return redirect(url_for("cases.show", case_id=case_id))
    return render_template("clinical/cases/new.html", form=form, title=title, process=process, sites=sites,
                           site_id=site_id, confirm_duplicate=confirm)


@bp.get("/duplicates")
@login_required
def duplicate_check() -> Any:
    """The duplicate warning of the new-request page while it is filled in (duplicate-check.js): the same fields,
    named as in the form; JSON {"warnings": [...]} in the page's language."""
    actor = current_actor()
    site_id = request.args.get("site_id", "")
    if not actor.roles.intersection({"requester", "local_radiologist"}) or site_id not in actor.sites:
        return {"warnings": []}
    patient = {name: request.args.get(f"patient-{name}", "")[:150]
               for name in ("birth_name", "first_names", "birth_date", "site_patient_id", "ins")}
    found = find_duplicates(_ctx(), actor, PatientKey.from_request(site_id, patient),
                            request.args.get("modality", "")[:16] or None)
    return {"warnings": _duplicate_warnings(found)}


def _unconfirmed_duplicates(actor: Any, site_id: str, data: dict[str, Any]) -> list[str]:
    """The warning of an open request for the same patient and modality (within the duplicate window), until the
    requester ticks "confirm anyway" (the `confirm_duplicate` box of the form shown again)."""
    if request.form.get("confirm_duplicate") == "1":
        return []
    patient = data.get("patient") if isinstance(data.get("patient"), dict) else {}
    found = find_duplicates(_ctx(), actor, PatientKey.from_request(site_id, patient), data.get("modality"))
    return _duplicate_warnings(found)


def _duplicate_warnings(found: list[Duplicate]) -> list[str]:
    now = _ctx().clock.now()
    return [_("Une demande ouverte existe déjà pour ce patient et cette modalité (n° %(case_id)d, il y a "
              "%(age)s). Confirmer quand même ?", case_id=d.case_id, age=elapsed_text(now - d.started_at))
            for d in found[:3]]


def elapsed_text(elapsed: timedelta) -> str:
    minutes = max(0, int(elapsed.total_seconds() // 60))
    if minutes < 1:
        return _("moins d'1 min")
    if minutes < 60:
        return _("%(minutes)d min", minutes=minutes)
    if minutes < 48 * 60:
        return _("%(hours)d h", hours=minutes // 60)
    return _("%(days)d j", days=minutes // 1440)


def _store_uploads(case_id: int) -> None:
    for upload in request.files.getlist("attachments"):
        if not upload or not upload.filename:
            continue
        try:
            add_attachment(_ctx(), current_actor(), case_id, upload.filename, upload.mimetype or "",
                           upload.read(), _storage())
        except InvalidInput as err:
            flash(f"{upload.filename} : {err}", "warning")


@bp.get("/<int:case_id>")
@login_required
def show(case_id: int) -> Any:
    try:
        record = case_record(_ctx(), current_actor(), case_id)
    except NotFound:
        abort(404)
    return render_template("clinical/cases/show.html", record=record, case=record.line, known=record.data)


@bp.get("/<int:case_id>/diagram.bpmn")
@login_required
def diagram(case_id: int) -> Any:
    try:
        xml = diagram_source(_ctx(), current_actor(), case_id)
    except NotFound:
        abort(404)
    return Response(xml, mimetype="application/xml")


@bp.post("/<int:case_id>/messages")
@login_required
def message(case_id: int) -> Any:
    try:
        post_message(_ctx(), current_actor(), case_id, request.form.get("body", ""))
        flash(_("Message ajouté au dossier."), "success")
    except InvalidInput as err:
        flash(str(err), "warning")
    except NotFound:
        abort(404)
    return redirect(url_for("cases.show", case_id=case_id) + "#messages")


@bp.post("/<int:case_id>/attachments")
@login_required
def upload(case_id: int) -> Any:
    try:
        ensure_visible(_ctx(), current_actor(), case_id)
        uploads = [u for u in request.files.getlist("attachments") if u and u.filename]
        if not uploads:
            flash(_("Choisissez un fichier."), "warning")
        for item in uploads:
            add_attachment(_ctx(), current_actor(), case_id, item.filename or "", item.mimetype or "",
                           item.read(), _storage())
    except InvalidInput as err:
        flash(str(err), "warning")
    except NotFound:
        abort(404)
    return redirect(url_for("cases.show", case_id=case_id) + "#attachments")


@bp.get("/<int:case_id>/attachments/<int:attachment_id>")
@login_required
def attachment(case_id: int, attachment_id: int) -> Any:
    try:
        path, filename, content_type = attachment_file(_ctx(), current_actor(), case_id, attachment_id, _storage())
    except NotFound:
        abort(404)
    return send_file(path, mimetype=content_type, as_attachment=True, download_name=filename)
