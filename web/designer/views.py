"""Process designer pages: definitions and versions, the bpmn-js modeler on a draft, validation findings,
deployment, case migration between versions, visual diff, form schemas, import and export.

Every route requires the process designer (or administrator) role on the server, and every use case checks it
again (engine.services.designer). Views stay thin: they translate requests into use cases and errors into
French answers (JSON for the modeler's calls, pages and flashed messages otherwise).
"""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from engine.domain.account_roles import LANE_ROLES
from engine.domain.charter_roles import ROLES as CHARTER_ROLES
from engine.domain.escalation import DEFAULT_ESCALATION
from engine.errors import Conflict, DefinitionRefused, Forbidden, NotFound
from engine.services import designer
from engine.services.context import EngineContext
from forms.wtforms_builder import UnsupportedSchema, build_form_class
from web.auth.access import current_actor, roles_required
from web.extensions import telerad
from web.shared.csp import CSP
from web.shared.errors import MESSAGES
from web.shared.labels import role_label

bp = Blueprint("designer", __name__, url_prefix="/designer")
# The properties panel builds its two containers from HTML with style="height: 100%" and
# style="flex: none; height: auto" (bpmn-js-properties-panel, PropertiesPanelRenderer). The modeler page allows
# exactly those two attribute values by their hashes ('unsafe-hashes' covers attributes matching a listed hash
# only), so the browser applies them and logs no CSP error; every other page keeps the app's CSP.
MODELER_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-hashes' "
                          "'sha256-nR5hyLltSjfvi2rqC26RbcredWrJvTaPA1yqPX96jpY=' "
                          "'sha256-LIWyuNLBDBQuKJLr4mOx2cFEzHX9lM0BrbfcAAzCvSU='")
DESIGNERS = ("process_designer", "administrator")
MAX_UPLOAD = 2_000_000


def _ctx() -> EngineContext:
    return telerad(current_app).ctx


def _json_error(message: str, status: int, **extra: Any) -> BaseResponse:
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


def _findings(err: DefinitionRefused) -> list[dict[str, str]]:
    return [f.as_dict() for f in err.findings]


def _error(status: int) -> Any:
    """The application's French error page, or JSON for the modeler's calls (engine errors raised by the use
    cases are answered here: a handler may not abort() again)."""
    title, message = MESSAGES[status]
    if request.is_json or request.path.endswith(".json") or request.accept_mimetypes.best == "application/json":
        return _json_error(str(title), status)
    return render_template("shared/errors/error.html", title=title, message=message, status=status), status


@bp.errorhandler(NotFound)
def _not_found(err: NotFound) -> Any:
    return _error(404)


@bp.errorhandler(Forbidden)
def _forbidden(err: Forbidden) -> Any:
    return _error(403)


# ------------------------------------------------------------------------------------ definitions


@bp.get("/")
@roles_required(*DESIGNERS)
def index() -> str:
    return render_template("designer/index.html", processes=designer.list_processes(_ctx(), current_actor()))


@bp.get("/processes/<process_id>")
@roles_required(*DESIGNERS)
def process(process_id: str) -> str:
    info = designer.process_info(_ctx(), current_actor(), process_id)
    return render_template("designer/process.html", info=info)


@bp.get("/versions/<int:definition_id>")
@roles_required(*DESIGNERS)
def version_files(definition_id: int) -> str:
    version, bundle = designer.version_bundle(_ctx(), current_actor(), definition_id)
    main = f"{version.process_id}.bpmn" if f"{version.process_id}.bpmn" in bundle.files else \
        next((n for n in sorted(bundle.files) if n.endswith(".bpmn")), None)
    return render_template("designer/version.html", version=version, files=sorted(bundle.files), main_file=main)


@bp.get("/versions/<int:definition_id>/files/<file_name>")
@roles_required(*DESIGNERS)
def version_file(definition_id: int, file_name: str) -> Response:
    """A file of a deployed version; `?download=1` makes the browser save it."""
    _version, bundle = designer.version_bundle(_ctx(), current_actor(), definition_id)
    if file_name not in bundle.files:
        abort(404)
    response = Response(bundle.files[file_name], mimetype="application/xml")
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response


# ------------------------------------------------------------------------------------------ drafts


@bp.get("/processes/<process_id>/edit")
@roles_required(*DESIGNERS)
def edit(process_id: str) -> BaseResponse:
    ctx = _ctx()
    draft = designer.open_draft(ctx, current_actor(), process_id)
    known = [p.name for p in designer.list_processes(ctx, current_actor()) if p.process_id == process_id]
    response = make_response(render_template(
        "designer/edit.html", draft=draft, process_id=process_id, process_name=known[0] if known else process_id,
        roles=[(role, role_label(role)) for role in sorted(LANE_ROLES)],
        settings=sorted(DEFAULT_ESCALATION), forms=ctx.forms.keys(),
        charter_roles=[(role.name, f"{role.label} ({', '.join(role.rules)})") for role in CHARTER_ROLES.values()],
    ))
    response.headers["Content-Security-Policy"] = MODELER_CSP
    return response


@bp.get("/processes/<process_id>/draft.json")
@roles_required(*DESIGNERS)
def draft_json(process_id: str) -> BaseResponse:
    draft = designer.open_draft(_ctx(), current_actor(), process_id)
    return jsonify(_draft_payload(draft))


def _draft_payload(draft: designer.DraftInfo) -> dict[str, Any]:
    return {"process_id": draft.process_id, "revision": draft.revision, "files": draft.files,
            "reports": draft.reports, "error_count": draft.error_count, "warning_count": draft.warning_count,
            "base_version": draft.base_version, "updated_by": draft.updated_by,
            "updated_at": draft.updated_at.isoformat() if draft.updated_at else None}


@bp.post("/processes/<process_id>/draft")
@roles_required(*DESIGNERS)
def save_draft(process_id: str) -> BaseResponse:
    """JSON in ({"files": {name: xml}, "revision": n}), JSON out: the saved draft with its findings."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("files"), dict) \
            or not isinstance(body.get("revision"), int) \
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in body["files"].items()):
        return _json_error(_("Requête invalide : fichiers et révision attendus."), 400)
    try:
        draft = designer.save_draft(_ctx(), current_actor(), process_id, body["files"], body["revision"])
    except Conflict as err:
        return _json_error(str(err), 409)
    return jsonify(_draft_payload(draft))


@bp.post("/processes/<process_id>/deploy")
@roles_required(*DESIGNERS)
def deploy(process_id: str) -> BaseResponse:
    revision = request.form.get("revision", type=int)
    if revision is None:
        abort(400)
    try:
        deployed = designer.deploy_draft(_ctx(), current_actor(), process_id, revision)
    except DefinitionRefused as err:
        flash(_("Déploiement refusé : %(count)d erreur(s). Corrigez-les dans le modeleur.",
                count=len(err.findings)), "danger")
        return redirect(url_for("designer.edit", process_id=process_id))
    except Conflict as err:
        flash(str(err), "warning")
        return redirect(url_for("designer.edit", process_id=process_id))
    if not deployed.created:
        flash(_("Le brouillon est identique à la version %(version)d : aucune nouvelle version n’a été créée.",
                version=deployed.version), "info")
        return redirect(url_for("designer.process", process_id=process_id))
    flash(_("Version %(version)d déployée : les nouveaux dossiers l’utilisent ; les dossiers en cours restent "
            "sur leur version.", version=deployed.version), "success")
    return redirect(url_for("designer.process", process_id=process_id))


@bp.post("/processes/<process_id>/discard")
@roles_required(*DESIGNERS)
def discard(process_id: str) -> BaseResponse:
    designer.discard_draft(_ctx(), current_actor(), process_id)
    flash(_("Brouillon abandonné."), "info")
    return redirect(url_for("designer.process", process_id=process_id))


@bp.post("/import")
@roles_required(*DESIGNERS)
def import_file() -> BaseResponse:
    """A .bpmn or .dmn from another modeler, into the draft of the process it defines (or of `process_id`)."""
    upload = request.files.get("file")
    process_id = request.form.get("process_id") or None
    back = url_for("designer.process", process_id=process_id) if process_id else url_for("designer.index")
    if upload is None or not upload.filename:
        flash(_("Choisissez un fichier .bpmn ou .dmn."), "danger")
        return redirect(back)
    content = upload.stream.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        flash(_("Fichier trop volumineux (2 Mo au plus)."), "danger")
        return redirect(back)
    name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    try:
        draft = designer.import_diagram(_ctx(), current_actor(), name, content, process_id)
    except DefinitionRefused as err:
        return Response(render_template("designer/import_refused.html", file_name=name, findings=_findings(err),
                                        back=back), status=422)
    except Conflict as err:
        flash(str(err), "warning")
        return redirect(back)
    if draft.error_count:
        flash(_("Fichier importé dans le brouillon, avec %(count)d erreur(s) à corriger avant déploiement.",
                count=draft.error_count), "warning")
    else:
        flash(_("Fichier importé dans le brouillon ; aucune erreur."), "success")
    return redirect(url_for("designer.edit", process_id=draft.process_id))


# ----------------------------------------------------------------------------- versions and cases


@bp.get("/processes/<process_id>/diff")
@roles_required(*DESIGNERS)
def diff(process_id: str) -> str:
    old_id, new_id = request.args.get("from", type=int), request.args.get("to", type=int)
    if old_id is None or new_id is None:
        abort(400)
    comparison = designer.diff_versions(_ctx(), current_actor(), old_id, new_id)
    if comparison.old.process_id != process_id or comparison.new.process_id != process_id:
        abort(404)
    return render_template("designer/diff.html", process_id=process_id, comparison=comparison)


@bp.route("/processes/<process_id>/migrate", methods=["GET", "POST"])
@roles_required(*DESIGNERS)
def migrate(process_id: str) -> Any:
    ctx, actor = _ctx(), current_actor()
    source = request.values.get("from", type=int)
    target = request.values.get("to", type=int)
    if source is None or target is None:
        abort(400)
    old, _bundle = designer.version_bundle(ctx, actor, source)
    new, _bundle = designer.version_bundle(ctx, actor, target)
    if old.process_id != process_id or new.process_id != process_id:
        abort(404)
    results = None
    if request.method == "POST":
        case_ids = [int(v) for v in request.form.getlist("case_id") if v.isdigit()]
        if not case_ids:
            flash(_("Choisissez au moins un dossier à migrer."), "warning")
        else:
            results = designer.migrate(ctx, actor, source, target, case_ids)
            moved = sum(1 for r in results if r.safe)
            flash(_("%(moved)d dossier(s) migré(s) vers la version %(version)d ; %(kept)d laissé(s) sur leur "
                    "version.", moved=moved, version=new.version, kept=len(results) - moved),
                  "success" if moved == len(results) else "warning")
    plan = designer.plan(ctx, actor, source, target)
    return render_template("designer/migrate.html", process_id=process_id, old=old, new=new, plan=plan,
                           results=results)


# -------------------------------------------------------------------------------------------- forms


@bp.get("/forms.json")
@roles_required(*DESIGNERS)
def form_keys() -> BaseResponse:
    return jsonify({"forms": _ctx().forms.keys()})


@bp.get("/forms/<key>")
@roles_required(*DESIGNERS)
def form(key: str) -> str:
    schema = designer.form_schema(_ctx(), current_actor(), key)
    return render_template("designer/form.html", key=key, text=json.dumps(schema, ensure_ascii=False, indent=2),
                           preview=_preview(schema), error=None)


@bp.post("/forms/preview")
@roles_required(*DESIGNERS)
def form_preview() -> BaseResponse:
    """The form a schema gives, rendered by the server exactly as clinicians will see it (HTML fragment)."""
    try:
        schema = designer.check_form_schema(request.get_data(as_text=True))
        html = render_template("designer/_form_preview.html", form=_preview(schema))
    except (designer.FormRefused, UnsupportedSchema) as err:
        return _json_error(str(err), 422)
    return jsonify({"html": html})


@bp.post("/forms/<key>")
@roles_required(*DESIGNERS)
def save_form(key: str) -> Any:
    text = request.form.get("schema", "")
    try:
        _preview(designer.check_form_schema(text))  # a schema the task page could not render is refused too
        new_key = designer.save_form_schema(_ctx(), current_actor(), key, text)
    except (designer.FormRefused, UnsupportedSchema) as err:
        return render_template("designer/form.html", key=key, text=text, preview=None, error=str(err)), 422
    flash(_("Formulaire enregistré sous le nom %(key)s : choisissez-le sur la tâche dans le modeleur, puis "
            "déployez.", key=new_key), "success")
    return redirect(url_for("designer.form", key=new_key))


def _preview(schema: dict[str, Any]) -> Any:
    return build_form_class(schema)(formdata=None, meta={"csrf": False})
