"""The live inbox's own requests (its stream, its refreshes) are not the person's activity: an inbox left open
does not keep a session alive past the idle timeout (TELERAD_IDLE_MINUTES, 30 by default)."""

from __future__ import annotations

import pytest

from tests import demo_app

app, demo_ctx = demo_app.app, demo_app.demo_ctx
BACKGROUND = {"X-Telerad-Background": "1"}


@pytest.mark.charter("CH-8.1", negative=True)
def test_an_open_live_inbox_does_not_keep_an_idle_session_alive(app, demo_ctx, clock):
    client = demo_app.login(app, demo_ctx, clock, "dr.legall")
    for _ in range(4):  # 40 minutes of refreshes made by the page alone, every 10 minutes
        clock.advance(minutes=10)
        answer = client.get("/inbox", headers=BACKGROUND)
        assert answer.status_code in (200, 302)
    answer = client.get("/inbox")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_the_persons_own_requests_keep_it_alive(app, demo_ctx, clock):
    client = demo_app.login(app, demo_ctx, clock, "dr.legall")
    for _ in range(4):
        clock.advance(minutes=10)
        assert client.get("/inbox").status_code == 200
