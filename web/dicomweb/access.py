"""Who calls DICOMweb, and its errors in the protocol (JSON bodies, never a login page or an HTML error page).

A caller is authenticated by an API bearer token (engine.services.token_access: a "read" token may only GET) or
by the session cookie of a signed-in person (a viewer in the browser, same origin). A call that writes (STOW-RS)
with a session must carry the session's CSRF token (header X-CSRFToken); a bearer token needs none.

A bearer token may also be a viewer token (engine.services.viewer_tokens, issued by "Ouvrir dans Weasis"): it
only reads, and only the one study it was issued for (the study of the path, of WADO-URI's studyUID, or the single
StudyInstanceUID key of a search); any other study is answered 404, as one the caller may not see.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from engine.domain.actors import Actor
from engine.errors import Forbidden, NotFound
from engine.services.token_access import token_access
from engine.services.viewer_tokens import ViewerAccess, viewer_access
from integrations.dicomweb.frames import FrameError
from integrations.dicomweb.keys import BadQuery
from integrations.dicomweb.multipart import BadBody
from integrations.dicomweb.rendered import Busy
from web.extensions import csrf, telerad

PREFIX = "/dicomweb"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotAcceptable(Exception):
    """No media type of the Accept header can be given (HTTP 406)."""


def error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="telerad"'
    return response


def ctx() -> Any:
    return telerad(current_app).ctx


def actor() -> Actor:
    return g.dicomweb_actor  # type: ignore[no-any-return]


def _authenticate() -> Response | None:
    """Set g.dicomweb_actor, or the error answer (401, 403)."""
    scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        viewer = viewer_access(ctx(), token.strip())
        if viewer is not None:
            return _viewer_refusal(viewer)
        access = token_access(ctx(), token.strip())
        if access is None:
            return error(401, "unauthorized", _("Jeton d'accès absent, invalide ou révoqué."))
        if access.expired:
            return error(401, "token_expired", _("Jeton d'accès expiré : renouvelez-le (page « Mes sessions ») "
                                                 "ou demandez-en un nouveau."))
        if request.method not in READ_METHODS and not access.may_act:
            return error(403, "read_only_token", _("Ce jeton est en lecture seule : il ne permet que la "
                                                    "consultation. Utilisez un jeton « lecture et actions »."))
        g.dicomweb_actor = access.profile.actor
        return None
    if current_user.is_authenticated:
        if request.method not in READ_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
            try:
                csrf.protect()
            except CSRFError:
                return error(403, "csrf", _("Jeton CSRF absent ou invalide (en-tête X-CSRFToken) : un envoi avec "
                                            "la session du navigateur doit le porter."))
        g.dicomweb_actor = current_user.actor
        return None
    return error(401, "unauthorized", _("Identification requise : session ou jeton d'accès (Authorization: "
                                        "Bearer)."))


def _requested_study() -> str | None:
    """The one study a request is about, None when it is not about exactly one."""
    view_args = request.view_args or {}
    if "study" in view_args:
        return str(view_args["study"])
    if request.path == PREFIX + "/wado":
        return request.args.get("studyUID")
    asked = [value for key, value in request.args.items(multi=True)
             if key == "StudyInstanceUID" or key.upper() == "0020000D"]  # by keyword or by tag, as Weasis asks
    return asked[0] if len(asked) == 1 else None


def _viewer_refusal(viewer: ViewerAccess) -> Response | None:
    """Set g.dicomweb_actor for a viewer token that opens this request, or the error answer (401, 403, 404)."""
    if viewer.expired:
        return error(401, "token_expired", _("Lien de visualisation expiré : relancez « Ouvrir dans Weasis » depuis "
                                             "la page du dossier."))
    if request.method not in READ_METHODS:
        return error(403, "read_only_token", _("Ce lien de visualisation ne permet que la consultation."))
    if _requested_study() != viewer.study_uid:
        return error(404, "not_found", _("Introuvable."))
    g.dicomweb_actor = viewer.profile.actor
    return None


def dicomweb_view(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate, then answer the protocol's errors: 400 bad input, 403, 404 (unknown, or not visible to the
    caller: the same answer), 406, 503 (renderer busy)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        refused = _authenticate()
        if refused is not None:
            return refused
        try:
            return view(*args, **kwargs)
        except (BadQuery, BadBody, FrameError) as err:
            return error(400, "bad_request", str(err))
        except NotAcceptable:
            return error(406, "not_acceptable", _("Aucun des types demandés (en-tête Accept) ne peut être fourni."))
        except NotFound:
            return error(404, "not_found", _("Introuvable."))
        except Forbidden as err:
            return error(403, "forbidden", str(err))
        except Busy:
            response = error(503, "busy", _("Rendu d'image occupé : réessayez dans quelques secondes."))
            response.headers["Retry-After"] = "5"
            return response
        except OSError:  # a stored file unreadable, the disk full while storing: the caller may try again later
            current_app.logger.exception("DICOMweb %s %s", request.method, request.path)
            response = error(503, "storage_unavailable", _("Stockage des images indisponible : réessayez plus tard."))
            response.headers["Retry-After"] = "30"
            return response

    return wrapper


def install_protocol_answers(bp: Blueprint) -> None:
    """Whatever answers a /dicomweb request before or around its view (an expired session sent to the login
    page, the HTML error pages of routing errors and of the input checks of web.shared.errors) is answered in
    the protocol: 401 or a JSON error with the same status."""
    csrf.exempt(bp)  # checked by _authenticate for sessions; bearer tokens carry no cookie

    @bp.after_app_request
    def _protocol_answer(response: Response) -> Response:
        if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
            return response
        if response.status_code in (301, 302, 303, 307, 308):
            return error(401, "unauthorized", _("Session expirée ou absente : identifiez-vous à nouveau."))
        if response.status_code >= 400 and response.mimetype == "text/html":
            codes = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                     413: "too_large"}
            return error(response.status_code, codes.get(response.status_code, "error"),
                         _("Requête refusée (%(status)s).", status=response.status_code))
        return response
