"""The JSON API under /api/v1 (bearer tokens) and its OpenAPI description."""

from web.api.routes import bp

BLUEPRINTS = (bp,)
