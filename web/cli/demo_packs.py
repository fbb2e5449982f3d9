"""`telerad demo`: the charter packs (CH-9.1) and the teleradiology share (CH-3.5) of the demo.

The Pays de Brest follows the 2020 charter from today. Each demo radiologist declares his total activity of the
past year, against the reports he signed in the demo's history (web.cli.demo_history): dr.legall's signed reports
are a third of his declared activity, dr.morvan's a small part of his. When an administrator switches the Pays de
Brest to the 2025 charter (Administration -> Versions de la charte), dr.legall is over the 20 % cap: a new CH de
Brest request skips him, with the reason on the case's timeline, and goes to dr.morvan (Pays de Morlaix)."""

from __future__ import annotations

from datetime import timedelta

from engine.domain.actors import Actor
from engine.domain.data_checks import paris_date
from engine.services.charter_packs import assign_pack
from engine.services.context import EngineContext
from engine.services.teleradiology_share import declare_activity, shares

ADMIN = Actor("cli", frozenset({"administrator"}))
OVER_CAP, WITHIN_CAP = "dr.legall", "dr.morvan"


def create_demo_packs(ctx: EngineContext) -> None:
    today = paris_date(ctx.clock.now())
    assign_pack(ctx, ADMIN, "territory:brest", "2020", today)
    acts = {s.username: s.teleradiology_acts for s in shares(ctx, ADMIN)}
    start, end = today - timedelta(days=364), today
    # A third of his activity by teleradiology (over the 2025 cap), at least one act declared beside them.
    declare_activity(ctx, Actor(OVER_CAP, frozenset({"radiologist"})), OVER_CAP, start, end,
                     max(3 * acts.get(OVER_CAP, 0), 1), "Activité du cabinet et de l'hôpital, tous actes")
    declare_activity(ctx, ADMIN, WITHIN_CAP, start, end, 20 * acts.get(WITHIN_CAP, 0) + 2000,
                     "Déclaré par l'organisation")
