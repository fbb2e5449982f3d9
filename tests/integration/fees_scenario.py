"""The demo with a few weeks of released cases and their CCAM acts (web.cli.demo_fees), for the fee tests (CH-7)."""

from __future__ import annotations

import pytest

from engine.domain.actors import Actor
from engine.services.definitions import deploy_library
from forms import default_registry
from tests.demo_app import WORKFLOWS
from web.cli.demo_data import create_demo
from web.cli.demo_fees import add_demo_fees
from web.cli.demo_history import add_demo_history

ADMIN = Actor("admin", frozenset({"administrator"}))


@pytest.fixture
def fees_ctx(make_ctx, database_url):
    ctx = make_ctx(operations=None, forms=default_registry(), escalation=None)
    deploy_library(ctx, Actor("designer"), WORKFLOWS)
    accounts = create_demo(ctx)
    add_demo_history(ctx, accounts, database_url, cases=6)
    add_demo_fees(ctx)
    return ctx
