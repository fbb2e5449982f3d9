"""Error pages in French, without stack traces; JSON for the API."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError

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


def register_error_pages(app: Flask) -> None:
    def render(status: int, message: str | None = None) -> Any:
        title, default = MESSAGES.get(status, MESSAGES[500])
        if request.path.startswith("/api/"):
            return jsonify({"error": title, "message": message or default}), status
        page = render_template("shared/errors/error.html", title=title, message=message or default, status=status)
        return page, status

    @app.errorhandler(CSRFError)
    def csrf_error(err: CSRFError) -> Any:
        return render(400, _("Le formulaire a expiré ou a été envoyé depuis une autre page : rechargez la page, "
                             "puis validez à nouveau."))

    for status in (400, 403, 404, 405, 413, 500):
        app.register_error_handler(status, lambda err, status=status: render(status))
