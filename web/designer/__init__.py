"""The process designer: diagrams and their forms, drafts, versions, deployment, migration of running cases."""

from web.designer.views import bp

BLUEPRINTS = (bp,)
