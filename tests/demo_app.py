"""The web application on the demo data (web.cli.demo_data), shared by the page tests and the integration tests
that go through pages: the fixtures `demo_ctx` and `app` (import them into a test module to use them) and the
helpers to log in and find cases and tasks."""

from __future__ import annotations

from dataclasses import replace

import pyotp
import pytest
from sqlalchemy import select

from engine.services.definitions import deploy_library
from engine.store.directory_models import User
from engine.store.models import ProcessInstance, Task
from forms import default_registry
from web.app import create_app
from web.cli.demo_data import DEMO_PASSWORD, create_demo
from web.config import PROJECT_ROOT, Settings

WORKFLOWS = PROJECT_ROOT / "workflows" / "bpmn"


@pytest.fixture
def demo_ctx(make_ctx):
    ctx = make_ctx(operations=None, forms=default_registry(), escalation=None)
    from engine.domain.actors import Actor

    deploy_library(ctx, Actor("designer"), WORKFLOWS)
    create_demo(ctx)
    return ctx


def web_app(ctx, database_url, tmp_path):
    """The web application on `ctx`, its instance folder under tmp_path, CSRF off (it has its own tests in
    tests/web/auth/)."""
    settings = replace(Settings.from_env({"TELERAD_INSTANCE_PATH": str(tmp_path / "instance")}),
                       database_url=database_url)
    application = create_app(settings, ctx)
    application.config["WTF_CSRF_ENABLED"] = False
    return application


@pytest.fixture
def app(demo_ctx, database_url, tmp_path):
    return web_app(demo_ctx, database_url, tmp_path)


def login(app, ctx, clock, username, client=None):
    """A client signed in as `username` (both factors); `client` to sign in an existing one."""
    client = client or app.test_client()
    response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    with ctx.read() as session:
        secret = ctx.keys.decrypt_secret(session.get(User, username).totp_secret)
    code = pyotp.TOTP(secret).at(clock.now())
    response = client.post("/login/totp", data={"code": code})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    return client


def case_of(ctx, **where):
    with ctx.read() as session:
        query = select(ProcessInstance.id)
        for name, value in where.items():
            query = query.where(getattr(ProcessInstance, name) == value)
        return session.execute(query.order_by(ProcessInstance.id)).scalars().first()


def open_task(ctx, case_id, spec_name):
    with ctx.read() as session:
        return session.execute(select(Task.id).where(Task.instance_id == case_id, Task.spec_name == spec_name,
                                                     Task.status == "open")).scalar_one()
