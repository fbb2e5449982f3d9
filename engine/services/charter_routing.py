"""The charter pack in routing (CH-9.1, CH-3.5): which pack a case follows, the teleradiology share screen of the
candidate pools, and the case timeline entries of the radiologists it skipped.

Every offer of a case goes through the diagram operation ``telerad.candidate_pool`` (engine.services.operations):
the first offer, the escalation timers (next tier), the on-call offer, a reassignment (back to the routing step)
and the cases an HL7 order created. That operation calls `PackRouting.screen` here, so each path applies the pack.
A teleexpertise names its tele-expert instead: engine.services.eligibility applies the same screen
(engine.services.charter_screen.screened_out) to the experts offered and to the one chosen.

The pack of a case: the one its offer carries (set by the first routing step, kept by the next ones); else the one
recorded for the case (table case_charter_pack, found by its accession number); else the one in force today for
its site (a new case). `CharterPackHook`, a save hook, records the pack of a new case and writes on its timeline,
once per screen, the radiologists skipped or warned about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.domain import charter_packs as packs
from engine.domain.charter import enforces
from engine.domain.data_checks import paris_date
from engine.runtime.script_engine import service_data
from engine.services.charter_screen import assignment_for_site, share_facts
from engine.services.context import EngineContext
from engine.services.persistence import InstanceRow, append_case_events
from engine.store import audit
from engine.store.charter_pack_models import CaseCharterPack
from engine.store.directory_models import User
from engine.store.models import ProcessInstance

SKIPPED_EVENT, WARNED_EVENT = "routing.radiologist_skipped", "routing.radiologist_warned"
MAX_SCREENS = 8  # screens an offer carries (tiers passed since the last save)


class PackRouting:
    """What the routing operations ask of the database about packs and shares."""

    def __init__(self, reader: sessionmaker[Session]):
        self._reader = reader

    def pack_of_case(self, site_id: str | None, today: date) -> packs.PackAssignment:
        data = service_data()
        offer = data.get("offer")
        with self._reader() as session:
            assignment = assignment_for_site(session, site_id, today)
            carried = offer.get("pack") if isinstance(offer, Mapping) else None
            if carried not in packs.PACKS:
                carried = self._recorded(session, site_id, data.get("accession_number"))
            if carried in packs.PACKS and carried != assignment.pack:
                # The case keeps the pack it started under; the organisation's settings of that pack, if any.
                return packs.PackAssignment(str(carried), date.min, None, assignment.over_cap_mode)
            return assignment

    @staticmethod
    def _recorded(session: Session, site_id: str | None, accession: object) -> str | None:
        if not isinstance(accession, str) or not accession:
            return None
        return session.execute(
            select(CaseCharterPack.pack).join(ProcessInstance, ProcessInstance.id == CaseCharterPack.instance_id)
            .where(ProcessInstance.accession_number == accession, ProcessInstance.site_id == site_id,
                   ProcessInstance.status == "running").order_by(ProcessInstance.id.desc()).limit(1)).scalar()

    @enforces("CH-9.1", "CH-3.5.1", "CH-3.5.2")
    def screen(self, site_id: str | None, offer: dict[str, Any], today: date, moment: str) -> dict[str, Any]:
        """The offer with the pack applied: with a pack that caps the share, the radiologists over the cap or
        exclusive are taken out of the candidates (or only warned about); the screen is recorded in the offer for
        the case timeline (CharterPackHook)."""
        assignment = self.pack_of_case(site_id, today)
        pack = packs.get_pack(assignment.pack)
        result = {**offer, "pack": pack.id}
        # Screens of the tiers passed in the same step come along (the hook writes those not yet written).
        earlier = service_data().get("offer")
        carried = earlier.get("screens") if isinstance(earlier, Mapping) else None
        if isinstance(carried, list) and carried:
            result["screens"] = carried[-MAX_SCREENS:]
        candidates: Sequence[str] = offer.get("candidates") or []
        if not candidates or not (pack.share_cap or pack.refuse_exclusive):
            return result
        window = int(str(pack.parameters.get("share_window_days", packs.DEFAULT_SHARE_WINDOW_DAYS)))
        with self._reader() as session:
            facts = share_facts(session, candidates, today, window)
        screening = packs.screen_pool(pack, assignment, candidates, facts)
        result["candidates"] = screening.kept
        if screening.skipped or screening.warned:
            result["screens"] = [*result.get("screens", []), {
                "key": f"{moment}#{offer.get('tier')}", "tier": offer.get("tier"),
                "cap": packs.share_cap_percent(pack, assignment),
                "skipped": [_screened(s) for s in screening.skipped],
                "warned": [_screened(s) for s in screening.warned]}]
        return result


def _screened(item: packs.Screened) -> dict[str, Any]:
    return {"radiologist": item.radiologist, "reason": item.reason,
            "share": None if item.share is None else round(item.share, 4)}


def for_directory(directory: object) -> PackRouting | None:
    """The pack routing of a database directory (engine.store.sql_directory.SqlDirectory); None for the in-memory
    directories of engine tests, whose routing stays the 2020 charter's unless they give one."""
    reader = getattr(directory, "_reader", None)
    return PackRouting(reader) if reader is not None else None


class CharterPackHook:
    """Save hook (engine.services.persistence.write_save): records the pack of a new case, and writes on the case's
    timeline the radiologists the screens since the last save skipped or warned about (each screen once: its key,
    the moment and the tier, is later than the last one written)."""

    def __init__(self, ctx: EngineContext):
        self.ctx = ctx

    def __call__(self, session: Session, saved: InstanceRow, data: Mapping[str, Any]) -> None:
        offer = data.get("offer")
        offer = offer if isinstance(offer, Mapping) else {}
        screens = [s for s in offer.get("screens") or () if isinstance(s, Mapping) and s.get("key")]
        if saved.version != 2 and not screens:
            return
        now = self.ctx.clock.now()
        row = session.get(CaseCharterPack, saved.id)
        if row is None:
            carried = offer.get("pack")
            pack_id = carried if carried in packs.PACKS else assignment_for_site(
                session, saved.site_id, paris_date(now)).pack
            row = CaseCharterPack(instance_id=saved.id, pack=pack_id, version=packs.get_pack(pack_id).version,
                                  recorded_at=now)
            session.add(row)
        new = [s for s in screens if row.last_screen is None or str(s["key"]) > row.last_screen]
        if new:
            row.last_screen = max(str(s["key"]) for s in new)[:64]
        session.flush()
        if new:
            append_case_events(session, saved, self._events(session, saved.id, row.pack, new), now)

    @staticmethod
    def _events(session: Session, case_id: int, pack: str, screens: list[Mapping[str, Any]]) -> list[Any]:
        people = {str(p.get("radiologist")) for s in screens for kind in ("skipped", "warned")
                  for p in s.get(kind) or () if isinstance(p, Mapping)}
        names = {u: n for u, n in session.execute(
            select(User.username, User.display_name).where(User.username.in_(sorted(people)))).all()}
        events = []
        for screen in screens:
            for kind, event in (("skipped", SKIPPED_EVENT), ("warned", WARNED_EVENT)):
                for item in screen.get(kind) or ():
                    who = str(item.get("radiologist"))
                    events.append(audit.AuditEntry("system", event, case_id, {
                        "radiologist": who, "radiologist_name": names.get(who, who), "reason": item.get("reason"),
                        "share": item.get("share"), "cap": screen.get("cap"), "pack": pack,
                        "tier": screen.get("tier")}))
        return events


def install(ctx: EngineContext) -> None:
    """Register the hook on a context (idempotent): every context that saves cases (engine.services.bootstrap)."""
    if not any(isinstance(hook, CharterPackHook) for hook in ctx.save_hooks):
        ctx.save_hooks.append(CharterPackHook(ctx))

