"""Research exports (CH-8.2): "Recherche". A researcher asks for a de-identified export (protocol, approval
reference, data wanted) and follows it; an administrator approves or refuses; the export is produced in the
background (integrations.dicom.research_export) with its progress on the request's page, and its requester
downloads it once. Everyone else gets 403; the engine checks again who may do what."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
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
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine.domain.research import CASE_FIELDS, EXPORT_KEPT_DAYS, RequestSpec, ResearchError
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.directory import list_sites
from engine.services.research import create_request, decide, get_request, list_requests, take_download
from integrations.dicom.research_export import purge_exports, research_dir, start_in_background
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("research", __name__, url_prefix="/research")
ROLES = ("researcher", "administrator")
FIELD_LABELS = {
    "process": _l("Type de demande"), "site": _l("Site"), "urgency": _l("Urgence"), "status": _l("État du dossier"),
    "modality": _l("Modalité"), "requested_exam": _l("Examen demandé"), "sex": _l("Sexe"),
    "age_years": _l("Âge à la demande (années)"), "clinical_context": _l("Contexte clinique"),
    "question": _l("Question posée"), "findings": _l("Résultats du compte rendu"),
    "conclusion": _l("Conclusion du compte rendu"), "requested_at": _l("Date de la demande (décalée)"),
    "ended_at": _l("Date de clôture (décalée)"),
}
assert set(FIELD_LABELS) == set(CASE_FIELDS)
STATUS_LABELS = {
    "pending": _l("En attente d'approbation"), "approved": _l("Approuvée, export à produire"),
    "refused": _l("Refusée"), "running": _l("Export en cours de production"), "ready": _l("Export prêt"),
    "failed": _l("Échec de la production"), "downloaded": _l("Export téléchargé"), "expired": _l("Export expiré"),
}


def _ctx() -> Any:
    return telerad(current_app).ctx


def _instance() -> Path:
    return Path(telerad(current_app).settings.instance_path)


def _purge() -> None:
    """Exports not downloaded within EXPORT_KEPT_DAYS days are deleted (checked at each visit of the pages, and
    hourly by the worker)."""
    purge_exports(_ctx(), research_dir(_instance()))


def _date(name: str) -> date:
    try:
        return date.fromisoformat((request.form.get(name) or "").strip())
    except ValueError:
        raise ResearchError(_("Indiquez les dates de la période (jj/mm/aaaa).")) from None


def _index(error: str | None = None, status: int = 200) -> Any:
    actor = current_actor()
    try:
        requests = list_requests(_ctx(), actor)
    except Forbidden:
        abort(403)
    return render_template("research/index.html", requests=requests, sites=list_sites(_ctx()),
                           field_labels=FIELD_LABELS, status_labels=STATUS_LABELS, error=error, form=request.form,
                           may_request="researcher" in actor.roles, kept_days=EXPORT_KEPT_DAYS), status


@bp.get("")
@roles_required(*ROLES)
def index() -> Any:
    _purge()
    return _index()


@bp.post("")
@roles_required("researcher")
def new() -> Any:
    form = request.form
    try:
        spec = RequestSpec(form.get("protocol", ""), form.get("approval_ref", ""), tuple(form.getlist("fields")),
                           form.get("images") == "1", form.get("retain_dates") == "1", form.get("clean_pixels") == "1",
                           _date("period_start"), _date("period_end"), tuple(form.getlist("sites")))
        request_id = create_request(_ctx(), current_actor(), spec)
    except Forbidden:
        abort(403)
    except ResearchError as err:
        return _index(str(err), 400)
    flash(_("Demande d'export enregistrée : un administrateur l'examinera."), "success")
    return redirect(url_for("research.show", request_id=request_id))


def _show(request_id: int, error: str | None = None, status: int = 200) -> Any:
    try:
        found = get_request(_ctx(), current_actor(), request_id)
    except NotFound:
        abort(404)
    return render_template("research/request.html", r=found, field_labels=FIELD_LABELS, status_labels=STATUS_LABELS,
                           is_admin="administrator" in current_actor().roles, kept_days=EXPORT_KEPT_DAYS,
                           mine=found.requester == current_actor().user_id, error=error), status


@bp.get("/<int:request_id>")
@roles_required(*ROLES)
def show(request_id: int) -> Any:
    _purge()
    return _show(request_id)


@bp.post("/<int:request_id>/decision")
@roles_required("administrator")
def decision(request_id: int) -> Any:
    approve = request.form.get("decision") == "approve"
    try:
        decide(_ctx(), current_actor(), request_id, approve, request.form.get("note", ""))
    except Forbidden:
        abort(403)
    except NotFound:
        abort(404)
    except (ResearchError, Conflict) as err:
        return _show(request_id, str(err), 409 if isinstance(err, Conflict) else 400)
    if approve:
        start_in_background(_ctx(), request_id, _instance() / "dicom", research_dir(_instance()))
        flash(_("Demande approuvée : l'export est en cours de production."), "success")
    else:
        flash(_("Demande refusée."), "success")
    return redirect(url_for("research.show", request_id=request_id))


@bp.get("/<int:request_id>/download")
@roles_required("researcher")
def download(request_id: int) -> Any:
    try:
        name = take_download(_ctx(), current_actor(), request_id)
    except NotFound:
        abort(404)
    except Conflict as err:
        return _show(request_id, str(err), 409)
    path = research_dir(_instance()) / name
    if not path.is_file():
        abort(410)
    size = path.stat().st_size

    def chunks() -> Iterator[bytes]:
        """The file in 1 MB chunks, deleted once sent (or if the transfer is cut: it downloads once)."""
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    yield chunk
        finally:
            path.unlink(missing_ok=True)

    return Response(stream_with_context(chunks()), mimetype="application/zip", headers={
        "Content-Length": str(size), "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="export-recherche-{request_id}.zip"'})
