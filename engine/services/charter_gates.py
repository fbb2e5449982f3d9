"""The hard gates of the charter, checked on every save of a case whatever the entry point (page, API, HL7,
DICOM, timer, service call) and whatever the deployed diagram: see engine.domain.gates.

`check_save` runs inside prepare_save, on the workflow as it would be saved; a refusal raises CharterRefused
before anything is written (engine.services.refusals then traces the refused attempt).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.domain import gates
from engine.domain.actors import Actor
from engine.domain.charter_roles import FAMILY_REQUIRED_ROLES, label
from engine.domain.credentials import credential_problems
from engine.domain.data_checks import paris_date
from engine.domain.protocols import DEFAULT_CATALOGUE, ProtocolCatalogue
from engine.errors import CharterRefused
from engine.runtime import LiveWorkflow, Snapshot
from engine.services.context import EngineContext
from engine.services.eligibility import check_expert
from engine.services.report_signature import check_report_signature


def catalogue(ctx: EngineContext) -> ProtocolCatalogue:
    return ctx.protocol_catalogue() if ctx.protocol_catalogue is not None else DEFAULT_CATALOGUE


def radiologist_problems(ctx: EngineContext, data: Mapping[str, Any]) -> list[str] | None:
    """Credential problems of the case's radiologist today in Paris (None when no radiologist took the case)."""
    radiologist_id = data.get("radiologist_id")
    if not isinstance(radiologist_id, str) or not radiologist_id:
        return None
    person = ctx.directory.radiologist(radiologist_id) if ctx.directory is not None else None
    if person is None:
        return ["radiologue inconnu de l'annuaire."]
    return credential_problems(person.credentials, paris_date(ctx.clock.now()))


def case_view(ctx: EngineContext, live: LiveWorkflow) -> gates.CaseView:
    data = live.latest_data()
    facts = live.charter_facts()
    protocol_fact = gates.fact(facts, "protocol")
    protocol_id = protocol_fact.get("values", {}).get("protocol") if protocol_fact else None
    return gates.CaseView(data=data, facts=facts, protocol=catalogue(ctx).get(protocol_id),
                          today=paris_date(ctx.clock.now()), radiologist_problems=radiologist_problems(ctx, data))


def roles_reached(live: LiveWorkflow, before: Snapshot | None, after: Snapshot) -> tuple[set[str], set[str]]:
    """The charter roles a change recorded a fact of, and those of the user tasks it opened."""
    since = before.facts_seq if before is not None else 0
    recorded = set() if after.facts_seq == since else {
        entry["role"] for entry in live.charter_facts().get("history", ())
        if int(entry.get("seq", 0)) > since and not entry.get("withdrawn")}
    old_tasks = {t.task_id for t in before.user_tasks} if before is not None else set()
    opened = {t.charter_role for t in after.user_tasks if t.task_id not in old_tasks and t.charter_role}
    return recorded, opened


def check_save(ctx: EngineContext, process_id: str, live: LiveWorkflow, before: Snapshot | None,
               after: Snapshot) -> set[str]:
    """Raise CharterRefused if the change from `before` to `after` passes a gate it may not pass; otherwise the
    charter roles the change recorded (the save adds their audit events, e.g. the report's signature).

    A version deployed before charter roles existed records no facts: its running cases finish as they started
    (no deployment accepts such a version of a family any more; `telerad` can migrate them to the current one)."""
    if not live.definition.charter_roles:
        return set()
    facts = live.charter_facts()
    recorded, opened = roles_reached(live, before, after)
    reached = recorded | opened
    refusals: list[tuple[str, list[gates.Refusal]]] = []
    if "acquisition" in reached:
        refusals.append(("acquisition", gates.before_acquisition(case_view(ctx, live))))
    if "injection" in reached:
        refusals.append(("injection", gates.before_injection(facts, live.latest_data())))
    if "expert_opinion" in reached:
        refusals.append(("expert_opinion", gates.before_expert_opinion(facts)))
    if "report_release" in recorded:
        refusals.append(("report_release", gates.before_release(facts, live.latest_data())))
    if after.completed and (before is None or not before.completed) and process_id in FAMILY_REQUIRED_ROLES:
        refusals.append(("closing", gates.before_closing(facts)))
    found = [(step, r) for step, rs in refusals for r in rs]
    if found:
        step = found[0][0]
        message = gates.describe([r for _, r in found], _step_label(step))
        raise CharterRefused(message, [(r.rule, r.message) for _, r in found])
    # Last, once every other gate passed: checking the signature uses up the author's code (CH-5.3).
    check_report_signature(ctx, live, recorded)
    return recorded


def check_radiologist_step(ctx: EngineContext, actor: Actor, role: str | None, data: Mapping[str, Any],
                           site_id: str | None) -> None:
    """A radiologist whose authorization or insurance lapsed (Paris date) cannot accept, justify, protocol or
    report; only the radiologist who accepted the case justifies, chooses the protocol and reports; a tele-expert
    gives his opinion only while bound to the site by an active convention with valid credentials."""
    if role in gates.CASE_RADIOLOGIST_STEPS and data.get("radiologist_id") != actor.user_id:
        reason = "seul le radiologue qui a accepté le dossier prend cette décision"
        raise CharterRefused(gates.describe([gates.Refusal("CH-4.1.2", reason)], label(role)),
                             [("CH-4.1.2", reason)])
    if role == "expert_opinion":
        unfit = check_expert(ctx, site_id, {"expert_id": actor.user_id}, data)
        if unfit:
            reason = " ".join(unfit.values())
            raise CharterRefused(gates.describe([gates.Refusal("CH-3.4", reason)], label(role)), [("CH-3.4", reason)])
    if role not in gates.RADIOLOGIST_ROLES or ctx.directory is None:
        return
    person = ctx.directory.radiologist(actor.user_id)
    if person is None:
        return  # not a radiologist of the directory: the lane and offers decide who may act
    problems = credential_problems(person.credentials, paris_date(ctx.clock.now()))
    if problems:
        raise CharterRefused(
            gates.describe([gates.Refusal("CH-3.1", " ".join(problems))], label(role))
            + " Le dossier doit être confié à un autre radiologue.", [("CH-3.1", " ".join(problems))])


def _step_label(step: str) -> str:
    return {"closing": "clôture du dossier"}.get(step, label(step))
