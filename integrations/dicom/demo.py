"""Demo modalities: the calling AE titles of the demo sites (see web.cli.demo_data).

Try it: storescu -aet CT_BREST -aec TELERAD 127.0.0.1 11112 image.dcm
"""

from __future__ import annotations

import contextlib

from engine.domain.actors import Actor
from engine.services.context import EngineContext
from integrations.dicom.callers import CallerError, add_calling_ae

DEMO_CALLERS = (
    ("ch-brest", "CT_BREST"),
    ("ch-morlaix", "CT_MORLAIX"),
    ("clinique-landerneau", "RX_LANDERNEAU"),
)


def configure_demo_dicom(ctx: EngineContext) -> list[tuple[str, str]]:
    """Allow the demo modalities (idempotent); returns the (site, AE title) pairs now allowed."""
    for site_id, ae_title in DEMO_CALLERS:
        with contextlib.suppress(CallerError):  # already there
            add_calling_ae(ctx, Actor.system(), site_id, ae_title)
    return list(DEMO_CALLERS)
