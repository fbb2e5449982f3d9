"""`telerad demo`: the CCAM acts of the demo history's released cases (web.cli.demo_history), chosen by each case's
radiologist through engine.services.case_acts, on the SAMPLE CCAM table, so that the finance view (/fees) shows a
statement per radiologist computed by the charter split (CH-7). Urgent and vital cases carry the urgency modifier;
a case released at night (18:30-08:00, Paris time, the demo's on-call hours) is marked done on call."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from engine.domain.actors import Actor
from engine.services.case_acts import add_case_act, released_cases_without_acts
from engine.services.ccam_tables import ensure_sample_table
from engine.services.context import EngineContext

PARIS = ZoneInfo("Europe/Paris")
DEMO_ACTS = {"CT": "ACQK001", "XR": "NBQK001", "MR": "ACQN001", "MG": "QEQK004"}


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
    return given
