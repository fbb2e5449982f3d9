"""Application factory."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, Response, request, session
from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_wtf.csrf import CSRFProtect

from engine.services.context import EngineContext
from engine.services.bootstrap import build_context
from web.config import Settings
from web.extensions import TeleradExtension
from web.sessions import PagesOnlySessionInterface

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'self'; frame-ancestors 'none'; form-action 'self'")
PARIS = ZoneInfo("Europe/Paris")
LANGUAGES = ("fr", "en")

csrf = CSRFProtect()
babel = Babel()


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
    )
    app.session_interface = PagesOnlySessionInterface()
    app.extensions["telerad"] = TeleradExtension(settings, ctx or build_context(settings.database_url))
    from web.listeners import install_hooks

    install_hooks(app.extensions["telerad"].ctx)  # every process that saves cases queues HL7 reports
    csrf.init_app(app)
    Bootstrap5(app)
    babel.init_app(app, locale_selector=_select_locale, timezone_selector=lambda: "Europe/Paris")

    from web.security import init_security

    init_security(app, settings.idle_minutes)
    _register_blueprints(app)
    from web.errors import register_error_pages

    register_error_pages(app)
    app.jinja_env.filters["paris"] = paris_time
    from web.labels import register_label_filters

    register_label_filters(app)
    app.after_request(_security_headers)
    if settings.sql_stats:
        from web.sql_stats import install

        install(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from web.health import bp as health_bp

    app.register_blueprint(health_bp)
    blueprints = ("web.auth", "web.inbox", "web.cases", "web.admin", "web.escalation_admin", "web.oncall_admin",
                  "web.api", "web.hl7_admin", "web.dicom_pages", "web.designer", "web.conformance_pages",
                  "web.protocols_admin")
    for module_name in blueprints:
        try:
            module = __import__(module_name, fromlist=["bp"])
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue
        app.register_blueprint(module.bp)


def _select_locale() -> str:
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return str(chosen)
    return "fr"


def paris_time(moment: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """Times are stored in UTC and shown in Europe/Paris."""
    if moment is None:
        return "—"
    return moment.astimezone(PARIS).strftime(fmt)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
