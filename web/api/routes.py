"""JSON API under /api/v1 with personal bearer tokens and the same permission checks as the pages.

A token expires (401 once it has, until it is renewed) and has a scope: a "read" token may only call the GET
endpoints; any call that writes (claim, unclaim, complete, start a case, post a message) gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask_babel import gettext as _

from engine.domain.actors import Actor
from engine.errors import CharterRefused, Conflict, Forbidden, NotFound
from engine.services.cases import InvalidInput, case_record, list_cases, post_message
from engine.services.instances import start_instance
from engine.services.tasks import claim_task, complete_task, list_tasks, task_with_data, unclaim_task
from engine.services.token_access import token_access
from forms import FormValidationError
from forms.registry import trimmed
from web.api.openapi import OPENAPI
from web.extensions import csrf, telerad
from web.shared.bodies import BadInput, check_parameters, read_json_body, request_parameters
from web.shared.history import history_text

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens, no cookies: CSRF does not apply
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

def _error(status: int, code: str, message: str, **extra: Any) -> Any:
    return jsonify({"error": code, "message": message, **extra}), status


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _space, token = header.partition(" ")
        access = token_access(_ctx(), token.strip()) if scheme.lower() == "bearer" and token else None
        if access is None or access.expired:
            message = (_("Jeton d'accès expiré : renouvelez-le (page « Mes sessions ») ou demandez-en un nouveau.")
                       if access is not None else _("Jeton d'accès absent, invalide ou révoqué."))
            response = _error(401, "token_expired" if access is not None else "unauthorized", message)
            response[0].headers["WWW-Authenticate"] = 'Bearer realm="telerad"'
            return response
        if request.method not in READ_METHODS and not access.may_act:
            return _error(403, "read_only_token", _("Ce jeton est en lecture seule : il ne permet que la "
                                                     "consultation. Utilisez un jeton « lecture et actions »."))
        g.actor = access.profile.actor
        try:
            check_parameters(request_parameters(request.view_args, request.args))
            g.json_body = read_json_body(request) if request.method in ("POST", "PUT", "PATCH") else None
        except BadInput as err:
            return _error(400, "bad_request", str(err))
        try:
            return view(*args, **kwargs)
        except NotFound as err:
            return _error(404, "not_found", str(err) or "Introuvable.")
        except Forbidden as err:
            return _error(403, "forbidden", str(err))
        except CharterRefused as err:
            return _error(409, "charter_refused", str(err),
                          refusals=[{"rule": rule, "reason": reason} for rule, reason in err.refusals])
        except Conflict as err:
            return _error(409, "conflict", str(err))
        except FormValidationError as err:
            return _error(422, "invalid", "Formulaire invalide.", fields=err.errors)
        except InvalidInput as err:
            return _error(422, "invalid", str(err))

    return wrapper


def _ctx() -> Any:
    return telerad(current_app).ctx


def _actor() -> Actor:
    return g.actor  # type: ignore[no-any-return]


def _body() -> dict[str, Any]:
    body = g.json_body  # read and checked once, by token_required
    if not isinstance(body, dict):
        raise InvalidInput("Corps JSON (objet) attendu.")
    return body


def _task_json(task: Any) -> dict[str, Any]:
    return {"id": task.id, "case_id": task.instance_id, "task": task.spec_name, "title": task.title,
            "role": task.lane, "form": task.form_key, "site_id": task.site_id, "assignee": task.assignee,
            "urgency_rank": task.urgency, "due_at": task.due_at.isoformat() if task.due_at else None,
            "created_at": task.created_at.isoformat()}


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(OPENAPI)


@bp.get("/tasks")
@token_required
def tasks() -> Any:
    return jsonify({"tasks": [_task_json(t) for t in list_tasks(_ctx(), _actor())]})


@bp.get("/tasks/<task_id>")
@token_required
def task(task_id: str) -> Any:
    view, data = task_with_data(_ctx(), _actor(), task_id)
    schema = _ctx().forms.schema(view.form_key) if view.form_key else None
    return jsonify({**_task_json(view), "data": data, "schema": schema})


@bp.post("/tasks/<task_id>/claim")
@token_required
def claim(task_id: str) -> Any:
    return jsonify(_task_json(claim_task(_ctx(), _actor(), task_id)))


@bp.post("/tasks/<task_id>/unclaim")
@token_required
def unclaim(task_id: str) -> Any:
    return jsonify(_task_json(unclaim_task(_ctx(), _actor(), task_id)))


@bp.post("/tasks/<task_id>/complete")
@token_required
def complete(task_id: str) -> Any:
    case_id = complete_task(_ctx(), _actor(), task_id, _body())
    return jsonify({"case_id": case_id, "completed": task_id})


@bp.get("/cases")
@token_required
def cases() -> Any:
    lines = list_cases(_ctx(), _actor(), status=request.args.get("status"), query=request.args.get("q"))
    return jsonify({"cases": [_case_json(c) for c in lines]})


def _case_json(line: Any) -> dict[str, Any]:
    return {"id": line.id, "process": line.process_id, "status": line.status, "site_id": line.site_id,
            "patient_name": line.patient_name, "patient_birth_date": line.patient_birth_date,
            "urgency": line.urgency, "accession_number": line.accession_number, "summary": line.summary,
            "started_at": line.started_at.isoformat(), "updated_at": line.updated_at.isoformat()}


@bp.post("/cases")
@token_required
def create_case() -> Any:
    body = _body()
    process = body.get("process")
    if not isinstance(process, str) or not process:
        raise InvalidInput("process attendu : l'identifiant d'un processus déployé (telediagnosis, teleexpertise…).")
    site_id = body.get("site_id")
    if site_id is not None and not isinstance(site_id, str):
        raise InvalidInput("site_id (texte) attendu : l'identifiant d'un de vos sites.")
    if site_id not in _actor().sites:
        raise Forbidden("Vous n'êtes pas membre de ce site.")
    request_data = body.get("request")
    if not isinstance(request_data, dict):
        raise InvalidInput("request (objet) attendu : le formulaire de demande.")
    case_id = start_instance(_ctx(), _actor(), process, {}, site_id=site_id, first_task=request_data)
    return jsonify({"id": case_id}), 201


@bp.get("/cases/<int:case_id>")
@token_required
def case(case_id: int) -> Any:
    record = case_record(_ctx(), _actor(), case_id)
    return jsonify({**_case_json(record.line), "definition_version": record.definition_version,
                    "data": record.data, "open_tasks": [
                        {**t, "due_at": t["due_at"].isoformat() if t["due_at"] else None}
                        for t in record.open_tasks],
                    "steps": [_step_json(step) for step in record.steps],
                    "history": [_history_json(entry) for entry in record.timeline]})


def _step_json(step: Any) -> dict[str, Any]:
    """A completed step as its page shows it: what was recorded, in French labels, by whom and when."""
    done = step.completion
    return {"task_id": done.task_id, "task": done.spec_name, "title": done.title, "by": done.by,
            "by_name": done.by_name, "at": done.at.isoformat(),
            "fields": [{"name": f.name, "label": f.label, "value": f.value} for f in step.fields]}


def _history_json(entry: dict[str, Any]) -> dict[str, Any]:
    return {"at": entry["at"].isoformat() if hasattr(entry["at"], "isoformat") else entry["at"],
            "action": entry.get("action"), "actor": entry.get("actor"), "text": history_text(entry)}


@bp.get("/cases/<int:case_id>/messages")
@token_required
def messages(case_id: int) -> Any:
    record = case_record(_ctx(), _actor(), case_id)
    return jsonify({"messages": [{**m, "at": m["at"].isoformat()} for m in record.messages]})


@bp.post("/cases/<int:case_id>/messages")
@token_required
def add_message(case_id: int) -> Any:
    body = _body()
    text = body.get("body", "")
    if not isinstance(text, str):
        raise InvalidInput("body (texte) attendu : le message.")
    message_id = post_message(_ctx(), _actor(), case_id, trimmed(text))  # invisible characters count as blank
    return jsonify({"id": message_id}), 201
