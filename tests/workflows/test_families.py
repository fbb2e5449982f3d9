"""CH-1.1: the two process families of the charter are deployed from workflows/bpmn/."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.store.models import ProcessDefinition


@pytest.mark.charter("CH-1.1")
def test_CH1_1_telediagnosis_and_teleexpertise_are_the_deployed_families(charter_ctx):
    with charter_ctx.read() as session:
        deployed = sorted(session.execute(select(ProcessDefinition.process_id)).scalars())
    assert {"telediagnosis", "teleexpertise"} <= set(deployed)
    assert set(deployed) - {"telediagnosis", "teleexpertise"} == {"image_identity_check"}  # CH-4.1.6 support
