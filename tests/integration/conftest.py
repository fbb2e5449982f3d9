from __future__ import annotations

import pytest

from engine.domain.actors import Actor
from engine.services.definitions import deploy_library
from tests.conftest import DATA


@pytest.fixture
def deployed(ctx):
    deploy_library(ctx, Actor("designer"), DATA / "bpmn")
    return ctx
