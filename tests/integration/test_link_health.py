"""Link health (CH-5.5): the last message received per site, the silent-site alert raised at the right time (after 3
times the site's median gap, 2 hours at least, once per silence), the peer probes, and the administrator's page.
The clock starts on Monday 5 January 2026, 08:00 UTC."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from engine.domain.link_silence import is_silent, silence_threshold
from engine.services.link_health import notify_silent_sites, site_links
from engine.services.notification_contacts import SITE_SILENT
from engine.store.directory_models import NotificationOutbox
from integrations.hl7.models import Hl7Message
from integrations.link_probe import Peer, probe_peers, tcp_probe
from tests import demo_app

app, demo_ctx = demo_app.app, demo_app.demo_ctx
login = demo_app.login


def _orders(ctx, site_id, moments):
    with ctx.write() as session:
        session.execute(insert(Hl7Message), [
            {"direction": "in", "control_id": f"{site_id}-{moment.isoformat()}-{i}", "sending_application": "RIS",
             "sending_facility": site_id, "site_id": site_id, "raw": "MSH|", "received_at": moment,
             "status": "processed"} for i, moment in enumerate(moments)])
        session.commit()


def _alerts(ctx):
    with ctx.read() as session:
        return session.execute(select(NotificationOutbox.recipient, NotificationOutbox.site_id).where(
            NotificationOutbox.event == SITE_SILENT)).all()


def test_the_silence_threshold_is_three_median_gaps_and_two_hours_at_least(clock):
    now = clock.now()
    hourly = [now - timedelta(hours=h) for h in range(10, 0, -1)]
    assert silence_threshold(hourly) == timedelta(hours=3)
    assert silence_threshold(hourly[:4]) is None  # too few arrivals: no pattern, never silent
    every_ten_minutes = [now - timedelta(minutes=10 * k) for k in range(10)]
    assert silence_threshold(every_ten_minutes) == timedelta(hours=2)  # the minimum
    assert not is_silent(hourly, hourly[-1] + timedelta(hours=3))
    assert is_silent(hourly, hourly[-1] + timedelta(hours=3, minutes=1))


@pytest.mark.charter("CH-5.5")
def test_CH5_5_a_site_silent_longer_than_its_pattern_is_notified_once(demo_ctx, clock):
    last = clock.now()
    _orders(demo_ctx, "ch-brest", [last - timedelta(hours=h) for h in range(9, -1, -1)])  # hourly until now
    clock.advance(hours=3)
    assert notify_silent_sites(demo_ctx, ("email",)) == 0 and _alerts(demo_ctx) == []  # 3 h: not yet
    brest = next(link for link in site_links(demo_ctx) if link.site_id == "ch-brest")
    assert (brest.last_hl7, brest.arrivals, brest.silent) == (last, 10, False)
    clock.advance(minutes=1)
    written = notify_silent_sites(demo_ctx, ("email",))
    alerts = _alerts(demo_ctx)
    assert written == len(alerts) >= 1 and {site for _, site in alerts} == {"ch-brest"}
    assert "dr.guillou" in {user for user, _ in alerts}  # the site's medical lead
    assert "dr.riou" not in {user for user, _ in alerts}
    clock.advance(hours=1)
    assert notify_silent_sites(demo_ctx, ("email",)) == 0  # the same silence: told once
    _orders(demo_ctx, "ch-brest", [clock.now()])  # the link is back
    assert not next(link for link in site_links(demo_ctx) if link.site_id == "ch-brest").silent


def test_the_probes_tell_an_open_port_from_a_closed_one():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    open_port = server.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        assert tcp_probe("127.0.0.1", open_port, 1.0) is None
        assert "connexion impossible" in (tcp_probe("127.0.0.1", closed_port, 1.0) or "")
        probes = probe_peers([Peer("MLLP", "ch-brest", "127.0.0.1", open_port),
                              Peer("DICOM", "ch-brest", "127.0.0.1", closed_port, "PACS")], timeout=1.0)
        assert [p.reachable for p in probes] == [True, False]
    finally:
        server.close()


@pytest.mark.charter("CH-5.5")
def test_CH5_5_the_link_health_page_is_for_administrators(app, demo_ctx, clock):
    _orders(demo_ctx, "ch-brest", [clock.now() - timedelta(hours=h) for h in range(9, -1, -1)])
    clock.advance(hours=4)
    page = login(app, demo_ctx, clock, "admin").get("/admin/links").get_data(as_text=True)
    assert "Santé des liaisons" in page and 'data-site="ch-brest"' in page and "data-silent" in page
    assert login(app, demo_ctx, clock, "dr.guillou").get("/admin/links").status_code == 403
