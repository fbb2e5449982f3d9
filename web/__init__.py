"""The entry points of Telerad for people and operators: the Flask application (app.create_app) with one package
per audience (clinical, admin, designer, api, auth, ops; shared for what they all use) and the `telerad`
command line (cli). See docs/architecture.md."""

from web.app import create_app

__all__ = ["create_app"]
