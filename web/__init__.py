"""Flask application: create_app(), configuration, CLI, scheduler start-up, blueprints."""

from web.app import create_app

__all__ = ["create_app"]
