"""Health of each site's links, as seen from what arrives (CH-5.5): the last HL7 order and the last DICOM study
received per site, and whether the site has been silent longer than its usual pattern (engine.domain.link_silence:
3 times its median gap between arrivals over the last 30 days, 2 hours at least). ``notify_silent_sites`` (a job
of web.ops.scheduler) tells the site's medical leads and the administrators through the notification outbox, once
per silence. Whether the peers answer at all (TCP, C-ECHO) is integrations.link_probe's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import column, select, table

from engine.domain.charter import enforces
from engine.domain.link_silence import silence_threshold
from engine.services.context import EngineContext
from engine.services.notification_contacts import CHANNELS, SITE_SILENT
from engine.services.notifications import CaseFacts, Event, holders, write_rows
from engine.store.directory_models import NotificationOutbox, SiteRow
from engine.store.models import UTCDateTime

WINDOW = timedelta(days=30)
# Tables of integrations.hl7.models and integrations.dicom.models (one metadata), typed for reading.
HL7_IN = table("hl7_message", column("site_id"), column("direction"), column("received_at", UTCDateTime()))
STUDIES = table("dicom_study", column("site_id"), column("first_received_at", UTCDateTime()))


@dataclass(frozen=True)
class SiteLink:
    site_id: str
    site_name: str
    last_hl7: datetime | None
    last_study: datetime | None
    arrivals: int
    threshold: timedelta | None  # None: too few arrivals over the window to know the site's pattern
    silent: bool

    @property
    def last_arrival(self) -> datetime | None:
        known = [m for m in (self.last_hl7, self.last_study) if m is not None]
        return max(known) if known else None


def _arrivals(session: object, since: datetime) -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = defaultdict(list)
    hl7 = select(HL7_IN.c.site_id, HL7_IN.c.received_at).where(
        HL7_IN.c.direction == "in", HL7_IN.c.site_id.is_not(None), HL7_IN.c.received_at >= since)
    studies = select(STUDIES.c.site_id, STUDIES.c.first_received_at).where(
        STUDIES.c.site_id.is_not(None), STUDIES.c.first_received_at >= since)
    for statement in (hl7, studies):
        for site_id, moment in session.execute(statement).tuples():  # type: ignore[attr-defined]
            found[site_id].append(moment)
    return found


def _last(session: object, statement: object) -> dict[str, datetime]:
    return dict(session.execute(statement).tuples().all())  # type: ignore[attr-defined]


def site_links(ctx: EngineContext) -> list[SiteLink]:
    """Every site with its last arrivals and whether it is silent now."""
    from sqlalchemy import func

    now = ctx.clock.now()
    with ctx.read() as session:
        names = dict(session.execute(select(SiteRow.id, SiteRow.name).order_by(SiteRow.id)).tuples().all())
        arrivals = _arrivals(session, now - WINDOW)
        last_hl7 = _last(session, select(HL7_IN.c.site_id, func.max(HL7_IN.c.received_at)).where(
            HL7_IN.c.direction == "in", HL7_IN.c.site_id.is_not(None)).group_by(HL7_IN.c.site_id))
        last_study = _last(session, select(STUDIES.c.site_id, func.max(STUDIES.c.first_received_at)).where(
            STUDIES.c.site_id.is_not(None)).group_by(STUDIES.c.site_id))
    links = []
    for site_id, name in names.items():
        times = arrivals.get(site_id, [])
        threshold = silence_threshold(times)
        link = SiteLink(site_id, name, last_hl7.get(site_id), last_study.get(site_id), len(times), threshold, False)
        last = link.last_arrival
        silent = threshold is not None and last is not None and now - last > threshold
        links.append(SiteLink(site_id, name, link.last_hl7, link.last_study, len(times), threshold, silent))
    return links


@enforces("CH-5.5")
def notify_silent_sites(ctx: EngineContext, channels: Sequence[str] = CHANNELS) -> int:
    """The job: tell the medical leads of each silent site and the administrators, once per silence (the key is
    the site and its last arrival). Returns how many outbox rows were written."""
    channels = tuple(c for c in channels if c in CHANNELS)
    silent = [link for link in site_links(ctx) if link.silent and link.last_arrival is not None]
    if not channels or not silent:
        return 0
    now = ctx.clock.now()
    written = 0
    with ctx.write() as session:
        for link in silent:
            assert link.last_arrival is not None
            key = f"site_silent:{link.site_id}:{link.last_arrival.isoformat()}"[:128]
            if session.execute(select(NotificationOutbox.id).where(
                    NotificationOutbox.event == SITE_SILENT, NotificationOutbox.event_key == key).limit(1)).first():
                continue
            people = tuple(holders(session, ["site_lead", "administrator"], link.site_id))
            written += write_rows(session, CaseFacts(None, link.site_id, None), [Event(SITE_SILENT, key, people)],
                                  channels, now)
        session.commit()
    return written
