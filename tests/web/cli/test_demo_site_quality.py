"""`telerad demo`'s site quality records (web.cli.demo_site_quality): visits with one overdue, a validated and a
not yet validated device, a reading workstation (CH-5.6, CH-5.2)."""

from __future__ import annotations

import pytest

from engine.domain.actors import Actor
from engine.domain.data_checks import paris_date
from engine.services.reading_stations import list_stations
from engine.services.site_devices import list_devices
from engine.services.site_visits import list_visits, overdue_visits
from tests import demo_app
from web.cli.demo_site_quality import create_demo_site_quality

demo_ctx = demo_app.demo_ctx
ADMIN = Actor("admin", frozenset({"administrator"}))


@pytest.mark.charter("CH-5.6")
def test_the_demo_has_one_overdue_visit_one_validated_device_and_a_reading_station(demo_ctx):
    create_demo_site_quality(demo_ctx)
    assert len(list_visits(demo_ctx, ADMIN)) == 6
    overdue = overdue_visits(demo_ctx, paris_date(demo_ctx.clock.now()))
    assert [(v.site_id, v.radiologist) for v in overdue] == [("ch-morlaix", "dr.morvan")]
    assert sorted((d.modality, d.validated) for d in list_devices(demo_ctx, ADMIN)) == [("CT", True), ("DX", False)]
    assert [s.username for s in list_stations(demo_ctx, ADMIN)] == ["dr.legall"]
