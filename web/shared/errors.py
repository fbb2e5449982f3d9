"""Error pages in French, without stack traces; JSON for the API and for JSON requests. Input that no page can
store (a NUL byte, an id beyond 64 bits, malformed JSON) is refused here with a 400 (404 for the id) before any
view runs: on PostgreSQL it would otherwise end in a 500."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest

from web.shared.bodies import BadInput, check_parameters, id_in_range, read_json_body

MESSAGES = {
    400: (_l("Requête invalide"),
          _l("La demande n'a pas pu être comprise. Revenez à la page précédente et réessayez.")),
    403: (_l("Accès refusé"), _l("Votre rôle ne vous permet pas d'accéder à cette page.")),
    404: (_l("Page introuvable"), _l("Cette page n'existe pas, ou vous n'avez pas accès à ce dossier.")),
    405: (_l("Méthode non autorisée"), _l("Cette adresse n'accepte pas ce type de requête.")),
    413: (_l("Fichier trop volumineux"), _l("Le fichier dépasse la taille autorisée.")),
    500: (_l("Erreur interne"),
          _l("Une erreur inattendue s'est produite ; elle a été enregistrée. Réessayez plus tard.")),
}
#: Pages whose form values go through FormRegistry.validate, which names the field holding a forbidden character
#: (forms.validation.forbidden_characters) and shows the form again: only their path and query are checked here.
FIELD_CHECKED_ENDPOINTS = frozenset({"inbox.task", "cases.new"})


class UnstorableInput(BadRequest):
    """A page request carrying what no column can store; its description is the French message shown."""


def register_error_pages(app: Flask) -> None:
    def render(status: int, message: str | None = None) -> Any:
        title, default = MESSAGES.get(status, MESSAGES[500])
        if request.path.startswith("/api/") or request.is_json:
            return jsonify({"error": title, "message": message or default}), status
        page = render_template("shared/errors/error.html", title=title, message=message or default, status=status)
        return page, status

    @app.errorhandler(CSRFError)
    def csrf_error(err: CSRFError) -> Any:
        return render(400, _("Le formulaire a expiré ou a été envoyé depuis une autre page : rechargez la page, "
                             "puis validez à nouveau."))

    @app.errorhandler(UnstorableInput)
    def unstorable_input(err: UnstorableInput) -> Any:
        return render(400, err.description)

    for status in (400, 403, 404, 405, 413, 500):
        app.register_error_handler(status, lambda err, status=status: render(status))
    app.before_request(refuse_unstorable_input)


def refuse_unstorable_input() -> None:
    """Before any page view: the API checks its own input after authentication (web.api.routes)."""
    if request.path.startswith("/api/"):
        return
    if any(isinstance(value, int) and not id_in_range(value) for value in (request.view_args or {}).values()):
        abort(404)  # no record has such an id
    values = [*(request.view_args or {}).items(), *request.args.items(multi=True)]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data") \
            and request.endpoint not in FIELD_CHECKED_ENDPOINTS:
        values += [*request.form.items(multi=True),
                   *((name, upload.filename) for name, upload in request.files.items(multi=True))]
    try:
        check_parameters(values)
        if request.is_json:
            read_json_body(request)
    except BadInput as err:
        raise UnstorableInput(str(err)) from err
