"""Application factory."""

from __future__ import annotations

import logging

from flask import Flask, Response, request, session
from flask_bootstrap import Bootstrap5
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.services.bootstrap import build_context
from engine.services.context import EngineContext
from web.auth.sessions import PagesOnlySessionInterface
from web.config import Settings
from web.extensions import TeleradExtension, babel, csrf
from web.shared.csp import CSP
from web.shared.formatting import LANGUAGES, french_date, paris_time


def create_app(settings: Settings | None = None, ctx: EngineContext | None = None) -> Flask:
    settings = settings or Settings.from_env()
    settings.prepare()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # SpiffWorkflow logs every task state change at INFO: noise in an operator's log (and I/O on every step);
    # its messages come back with TELERAD_LOG_LEVEL=DEBUG.
    if logging.getLevelName(settings.log_level) != logging.DEBUG:
        logging.getLogger("spiff").setLevel(logging.WARNING)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="telerad_session", MAX_CONTENT_LENGTH=64 * 1024 * 1024,
        BOOTSTRAP_SERVE_LOCAL=True, BABEL_DEFAULT_LOCALE="fr", BABEL_DEFAULT_TIMEZONE="Europe/Paris",
        WTF_CSRF_TIME_LIMIT=None,
        # Over TLS (TELERAD_PUBLIC_URL https://...) the session cookie never travels in clear.
        SESSION_COOKIE_SECURE=settings.https, PREFERRED_URL_SCHEME="https" if settings.https else "http",
    )
    if settings.trusted_proxies:
        # Client address, scheme and host as the reverse proxy saw them (only from that many proxies).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=settings.trusted_proxies, x_host=settings.trusted_proxies)
    app.session_interface = PagesOnlySessionInterface()
    ctx = ctx or build_context(settings.database_url, keys=settings.key_ring())
    app.extensions["telerad"] = TeleradExtension(settings, ctx)
    from web.ops.listeners import install_hooks

    install_hooks(app.extensions["telerad"].ctx)  # every process that saves cases queues HL7 reports
    csrf.init_app(app)
    Bootstrap5(app)
    babel.init_app(app, locale_selector=_select_locale, timezone_selector=lambda: "Europe/Paris")

    from web.auth.access import init_security

    init_security(app, settings.idle_minutes)
    _register_blueprints(app)
    from web.shared.errors import register_error_pages

    register_error_pages(app)
    app.jinja_env.filters["paris"] = paris_time
    app.jinja_env.filters["french_date"] = french_date
    from web.shared.labels import register_label_filters

    register_label_filters(app)
    from web.shared.history import register_history_filters

    register_history_filters(app)
    app.after_request(_security_headers)
    if settings.https:
        app.after_request(_strict_transport)
    if settings.sql_stats:
        from web.ops.sql_stats import install

        install(app)
    return app


def _register_blueprints(app: Flask) -> None:
    """Each area (a package of web/) lists its blueprints; imported here, not at the top, so that the commands
    that never build the app (`telerad worker`, `telerad validate`) do not load the views."""
    from web import admin, api, auth, clinical, designer, dicomweb, ops

    for area in (ops, auth, clinical, admin, api, designer, dicomweb):
        for blueprint in area.BLUEPRINTS:
            app.register_blueprint(blueprint)


def _select_locale() -> str:
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return str(chosen)
    return "fr"


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _strict_transport(response: Response) -> Response:
    """Browsers that reached the https address once never try http again (a year; RFC 6797)."""
    response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response
