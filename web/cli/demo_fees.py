"""`telerad demo`: the CCAM acts of the demo history's released cases (web.cli.demo_history), chosen by each case's
radiologist through engine.services.case_acts, on the SAMPLE CCAM table, so that the finance view (/fees) shows a
statement per radiologist computed by the charter split (CH-7). Urgent and vital cases carry the urgency modifier;
a case released at night (18:30-08:00, Paris time, the demo's on-call hours) is marked done on call. The CH de
Morlaix's own remuneration document fixes its monthly transmission costs (a site's value, engine.services.fee_settings)
so that the "Paramètres de rémunération" page shows one; the demo's statements (all at ch-brest) keep the defaults."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from engine.domain.actors import Actor
from engine.services.case_acts import add_case_act, released_cases_without_acts
from engine.services.ccam_tables import ensure_sample_table
from engine.services.context import EngineContext
from engine.services.fee_settings import TRANSMISSION_COSTS, set_setting, settings_overview

PARIS = ZoneInfo("Europe/Paris")
DEMO_ACTS = {"CT": "ACQK001", "XR": "NBQK001", "MR": "ACQN001", "MG": "QEQK004"}
DEMO_SITE_SETTING = ("ch-morlaix", TRANSMISSION_COSTS, "120.00", "Convention de rémunération du CH de Morlaix, "
                     "article 6 (démonstration)")


def add_demo_fees(ctx: EngineContext) -> int:
    """Give each released demo case without an act the act of its modality; returns how many were given."""
    ensure_sample_table(ctx)
    given = 0
    for case in released_cases_without_acts(ctx):
        code = DEMO_ACTS.get(case.modality or "")
        if code is None:
            continue
        moment = case.released_at.astimezone(PARIS).time()
        night = moment.hour * 60 + moment.minute >= 18 * 60 + 30 or moment.hour < 8
        add_case_act(ctx, Actor(case.radiologist, frozenset({"radiologist"})), case.case_id, code,
                     urgency=case.urgency in ("vital", "urgent"), on_call=night)
        given += 1
    _demo_site_setting(ctx)
    return given


def _demo_site_setting(ctx: EngineContext) -> None:
    """The CH de Morlaix's transmission costs from the first day of the year before (once)."""
    system = Actor.system()
    if settings_overview(ctx, system).sites:
        return
    site_id, name, amount, reason = DEMO_SITE_SETTING
    start = date(ctx.clock.now().astimezone(PARIS).year - 1, 1, 1)
    set_setting(ctx, system, name, amount, start, reason, site_id=site_id)
