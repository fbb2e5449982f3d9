"""The live inbox (issue 17, item 2): one server-sent events stream per open inbox page, authenticated by the
session, saying "your list changed" within the poll interval when a case the person may see changes, never for
another site's case, with heartbeats, a per-process limit refused with a retry hint, and a bounded database cost
whatever the number of streams (one loop per process)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event

from engine.domain.actors import Actor
from engine.services.inbox_version import CaseChange, ChangeFeed
from tests import demo_app
from tests.demo_app import case_of, login, open_task
from tests.web.clinical.test_worklist_columns import submit
from web.clinical.live import hub_of

app, demo_ctx = demo_app.app, demo_app.demo_ctx
POLL_S = 0.1


@pytest.fixture
def live_app(app):
    app.config.update(TELERAD_LIVE_POLL_SECONDS=POLL_S, TELERAD_LIVE_HEARTBEAT_SECONDS=0.5,
                      TELERAD_LIVE_MAX_STREAMS=60)
    return app


class Stream:
    """An open stream of the test client, read chunk by chunk in a thread (a read blocks until the server
    writes)."""

    def __init__(self, client, app=None, user=None):
        self.app, self.user = app, user
        self.response = client.get("/inbox/events", buffered=False)
        self.chunks: list[tuple[float, str]] = []
        self._iterator = iter(self.response.response)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for chunk in self._iterator:
            self.chunks.append((time.monotonic(), chunk.decode() if isinstance(chunk, bytes) else chunk))

    def wait_for(self, text: str, timeout: float = 3.0) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, chunk in list(self.chunks):
                if text in chunk:
                    return at
            time.sleep(0.02)
        return None

    def text(self) -> str:
        return "".join(chunk for _, chunk in self.chunks)

    def close(self):
        """Ends the server's side (as a vanished browser does at its next write), then the response."""
        hub = hub_of(self.app)
        for subscriber in list(hub._subscribers):
            if subscriber.actor.user_id == self.user:
                hub.unsubscribe(subscriber)
        self._thread.join(timeout=3)
        self.response.close()


def test_no_session_no_stream(live_app):
    response = live_app.test_client().get("/inbox/events")
    assert response.status_code == 401 and "rechargez la page" in response.get_data(as_text=True)


@pytest.mark.charter("CH-5.3")
def test_new_urgent_case_reaches_the_offered_radiologist_within_the_poll_interval(live_app, demo_ctx, clock):
    radiologist = Stream(login(live_app, demo_ctx, clock, "dr.legall"), live_app, "dr.legall")
    other_site = Stream(login(live_app, demo_ctx, clock, "dr.kerbrat"), live_app, "dr.kerbrat")  # ch-morlaix only
    try:
        assert radiologist.wait_for("event: ready") and other_site.wait_for("event: ready")
        assert radiologist.response.headers["Content-Type"].startswith("text/event-stream")
        assert radiologist.response.headers["X-Accel-Buffering"] == "no"
        assert "retry: " in radiologist.text()
        time.sleep(2 * POLL_S)  # the loop has its starting point
        started = time.monotonic()
        assert submit(login(live_app, demo_ctx, clock, "dr.martin")).status_code == 302
        arrived = radiologist.wait_for("event: inbox")
        assert arrived is not None and arrived - started < 1.0
        time.sleep(5 * POLL_S)
        assert "event: inbox" not in other_site.text()  # a ch-brest case: nothing for ch-morlaix
        assert "LE GOFF" not in radiologist.text()  # a signal, never the case itself
    finally:
        radiologist.close()
        other_site.close()


def test_a_colleague_claiming_moves_the_list_and_heartbeats_keep_the_stream_open(live_app, demo_ctx, clock):
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    requester_page = Stream(login(live_app, demo_ctx, clock, "dr.guillou"), live_app, "dr.guillou")  # ch-brest lead
    try:
        assert requester_page.wait_for("event: ready")
        assert requester_page.wait_for(": heartbeat", timeout=2.0)
        time.sleep(2 * POLL_S)
        radiologist = login(live_app, demo_ctx, clock, "dr.legall")
        radiologist.post(f"/tasks/{open_task(demo_ctx, case_id, 'accept_case')}/claim")
        assert requester_page.wait_for("event: inbox")
    finally:
        requester_page.close()


def test_reading_a_case_moves_nobody_s_list(live_app, demo_ctx, clock):
    watcher = Stream(login(live_app, demo_ctx, clock, "dr.guillou"), live_app, "dr.guillou")
    try:
        assert watcher.wait_for("event: ready")
        time.sleep(2 * POLL_S)
        login(live_app, demo_ctx, clock, "dr.martin").get(f"/cases/{case_of(demo_ctx, patient_name='KERMARREC YANN')}")
        assert watcher.wait_for("event: inbox", timeout=6 * POLL_S) is None
    finally:
        watcher.close()


def test_extra_streams_are_refused_with_a_retry_hint_and_a_third_tab_ends_the_oldest(app, demo_ctx, clock):
    app.config.update(TELERAD_LIVE_POLL_SECONDS=POLL_S, TELERAD_LIVE_HEARTBEAT_SECONDS=0.5,
                      TELERAD_LIVE_MAX_STREAMS=2)
    client = login(app, demo_ctx, clock, "dr.legall")
    first, second = Stream(client, app, "dr.legall"), Stream(client, app, "dr.legall")
    third = None
    try:
        assert first.wait_for("event: ready") and second.wait_for("event: ready")
        busy = login(app, demo_ctx, clock, "dr.martin").get("/inbox/events")
        assert busy.status_code == 200 and busy.headers["Retry-After"] == "30"
        text = busy.get_data(as_text=True)  # a short stream: the browser reconnects in 30 s, no error status
        assert text.startswith("retry: 30000\n") and "event: busy" in text and "nouvel essai automatique" in text
        third = Stream(client, app, "dr.legall")  # the same person: his oldest page gives way
        assert third.wait_for("event: ready")
        assert first.wait_for('"superseded"')
    finally:
        for stream in (first, second, third):
            if stream is not None:
                stream.close()


def test_fifty_streams_cost_the_same_statements_as_one(live_app, demo_ctx, clock):
    """The database cost of one process's loop does not depend on the number of streams: with 50 subscribers,
    one statement per poll when nothing changes (and four when something does)."""
    hub = hub_of(live_app)
    actors = [Actor(f"user{i}", frozenset({"radiologist"}), frozenset({"ch-brest"})) for i in range(50)]
    statements = []
    listener = lambda *args: statements.append(1)  # noqa: E731
    event.listen(demo_ctx.engine, "before_cursor_execute", listener)
    subscribers = [hub.subscribe(actor) for actor in actors]
    try:
        time.sleep(2.0)
        quiet = len(statements)
        assert quiet <= 2.0 / POLL_S + 2, quiet
        versions = [s.version for s in subscribers]
        assert submit(login(live_app, demo_ctx, clock, "dr.martin")).status_code == 302
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(s.version == v for s, v in zip(subscribers, versions, strict=True)):
            time.sleep(0.02)
        assert all(s.version > v for s, v in zip(subscribers, versions, strict=True))  # every ch-brest page told
        print(f"\n50 streams, poll {POLL_S} s: {quiet} statements in 2 s without changes "
              f"({quiet / 2.0:.1f}/s)")
    finally:
        event.remove(demo_ctx.engine, "before_cursor_execute", listener)
        for subscriber in subscribers:
            hub.unsubscribe(subscriber)


def test_change_feed_reports_late_commits_once_and_skips_reads(demo_ctx):
    now = [0.0]
    feed = ChangeFeed(demo_ctx, window=10.0, monotonic=lambda: now[0])
    assert feed.poll() == []  # starting point
    assert feed.poll() == []
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    from engine.services.tasks import claim_task

    claim_task(demo_ctx, Actor("dr.legall", frozenset({"radiologist"})), open_task(demo_ctx, case_id, "accept_case"))
    now[0] += 1
    changes = feed.poll()
    assert [c.case_id for c in changes] == [case_id] and "dr.legall" in changes[0].users
    now[0] += 1
    assert feed.poll() == []  # seen once


def test_a_change_concerns_its_site_its_offered_people_and_its_notice_roles():
    change = CaseChange(7, "ch-brest", frozenset({"dr.legall"}), frozenset({"administrator"}))
    assert change.concerns(Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"})))
    assert change.concerns(Actor("dr.legall", frozenset({"radiologist"})))
    assert change.concerns(Actor("admin", frozenset({"administrator"})))
    assert not change.concerns(Actor("dr.kerbrat", frozenset({"local_radiologist"}), frozenset({"ch-morlaix"})))
