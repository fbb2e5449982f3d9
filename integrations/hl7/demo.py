"""Demo HL7 configuration: each demo site's RIS may send orders (no report endpoint: none listens in a demo)."""

from __future__ import annotations

from engine.domain.actors import Actor
from engine.services.context import EngineContext
from integrations.hl7.senders import add_sender, list_senders

DEMO_SENDERS = (
    ("ch-brest", "RIS_BREST", "CH_BREST"),
    ("ch-morlaix", "RIS_MORLAIX", "CH_MORLAIX"),
    ("clinique-landerneau", "RIS_LANDERNEAU", "CLIN_LANDERNEAU"),
)


def configure_demo_hl7(ctx: EngineContext) -> None:
    """Attach the demo RIS senders to the demo sites (sites must exist; pairs already attached are kept)."""
    known = {(s.sending_application, s.sending_facility) for s in list_senders(ctx)}
    for site_id, application, facility in DEMO_SENDERS:
        if (application, facility) not in known:
            add_sender(ctx, Actor.system(), site_id, application, facility)
