"""Application factory."""

from __future__ import annotations

import logging

from flask import Flask, Response

from engine.services.context import EngineContext, build_context
from web.config import Settings
from web.extensions import TeleradExtension

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'self'; frame-ancestors 'none'; form-action 'self'")


def create_app(settings: Settings | None = None, ctx: EngineContext | None = None) -> Flask:
    settings = settings or Settings.from_env()
    settings.prepare()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(SECRET_KEY=settings.secret_key, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", MAX_CONTENT_LENGTH=64 * 1024 * 1024)
    app.extensions["telerad"] = TeleradExtension(settings, ctx or build_context(settings.database_url))

    from web.health import bp as health_bp

    app.register_blueprint(health_bp)
    app.after_request(_security_headers)
    return app


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
