"""Python operations callable from service tasks, by name. Diagrams can call these and nothing else.

Each operation takes the evaluated parameters of the service task and returns JSON-compatible data,
stored in the task's result variable.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date
from typing import Any

from engine.domain import radioprotection, routing
from engine.domain.credentials import extraterritorial_notice, may_be_assigned
from engine.domain.data_checks import paris_date
from engine.domain.oncall import is_out_of_hours
from engine.domain.protocols import DEFAULT_CATALOGUE, ProtocolCatalogue
from engine.domain.teleexpertise import report_recipients
from engine.ports import Clock, Directory
from engine.runtime import OperationRegistry
from engine.runtime.script_engine import service_data
from engine.services.charter_routing import PackRouting, for_directory


def register_all(registry: OperationRegistry, directory: Directory, clock: Clock,
                 catalogue: Callable[[], ProtocolCatalogue] = lambda: DEFAULT_CATALOGUE,
                 pack_routing: PackRouting | None = None) -> None:
    """`pack_routing`: how the pools apply the charter pack of each case (engine.services.charter_routing); by
    default the database directory's, none for an in-memory directory (the 2020 charter)."""
    screen = pack_routing if pack_routing is not None else for_directory(directory)

    def today() -> date:
        return paris_date(clock.now())

    def new_accession_number(site_id: str | None = None, existing: str | None = None) -> str:
        """Keep the accession number a RIS order brought; otherwise number the request."""
        if isinstance(existing, str) and existing.strip():
            return existing.strip()
        return f"TR{clock.now():%y%m%d}{secrets.token_hex(4).upper()}"

    def patient_facts(birth_date: str, sex: str | None, modality: str) -> dict[str, Any]:
        flags = radioprotection.radioprotection_flags(modality, sex, date.fromisoformat(birth_date), today())
        return {"age": radioprotection.age_on(date.fromisoformat(birth_date), today()), "ionizing": flags.ionizing,
                "minor": flags.minor, "childbearing_age": flags.childbearing_age,
                "substitution_candidates": list(flags.substitution_candidates)}

    def routing_start(site_id: str | None = None) -> dict[str, Any]:
        """Out of hours, the site's on-call radiologist is offered the case first (tier 0)."""
        site = directory.site(site_id or "")
        if site is not None and is_out_of_hours(clock.now()) and directory.on_call(site.territory_id, clock.now()):
            return _with_pack({"tier": routing.ON_CALL}, site_id)
        return _with_pack({"tier": routing.LOCAL}, site_id)

    def routing_next(tier: int) -> dict[str, Any]:
        offer = service_data().get("offer")
        carried = {key: offer[key] for key in ("pack", "screens") if key in offer} if isinstance(offer, dict) else {}
        return {"tier": int(tier) + 1, **carried}

    def _with_pack(offer: dict[str, Any], site_id: str | None) -> dict[str, Any]:
        """The case's charter pack travels in its offer from the first routing step (CH-9.1)."""
        if screen is None:
            return offer
        return {**offer, "pack": screen.pack_of_case(site_id, today()).pack}

    def _screened(site_id: str | None, offer: dict[str, Any]) -> dict[str, Any]:
        """Every pool goes through the case's charter pack: the 2025 share cap and exclusivity (CH-3.5)."""
        if screen is None:
            return offer
        return screen.screen(site_id, offer, today(), clock.now().isoformat())

    def candidate_pool(site_id: str | None, tier: int) -> dict[str, Any]:
        tier = int(tier)
        site = directory.site(site_id or "")
        conventions = directory.conventions(site_id or "")
        last = routing.last_tier(site_id or "", conventions) if site else routing.LOCAL
        if tier == routing.ON_CALL and site is not None:
            on_duty = directory.on_call(site.territory_id, clock.now())
            eligible = routing.candidate_pool(site, routing.LOCAL, directory.radiologists(), conventions,
                                              directory.territories(), today())
            eligible += routing.candidate_pool(site, routing.NEIGHBOURS, directory.radiologists(), conventions,
                                               directory.territories(), today())
            return _screened(site_id, {"tier": tier, "candidates": [on_duty] if on_duty in eligible else [],
                                       "exhausted": False, "setting": "accept_oncall"})
        candidates = [] if site is None or tier > last else routing.candidate_pool(
            site, tier, directory.radiologists(), conventions, directory.territories(), today())
        return _screened(site_id, {"tier": tier, "candidates": candidates, "exhausted": site is None or tier >= last,
                                   "setting": f"accept_tier{min(tier, routing.MAX_TIER)}"})

    def routing_decline(offer: dict[str, Any], radiologist_id: str) -> dict[str, Any]:
        return {**offer, "candidates": [c for c in offer.get("candidates", []) if c != radiologist_id]}

    def radiologist_profile(radiologist_id: str) -> dict[str, Any]:
        person = directory.radiologist(radiologist_id)
        if person is None:
            return {"id": radiologist_id, "name": radiologist_id, "known": False, "assignable": False}
        creds = person.credentials
        return {"id": person.user_id, "name": person.name, "known": True,
                "assignable": may_be_assigned(creds, today()), "rpps": creds.rpps,
                "authorization_expires": creds.authorization_expires.isoformat()
                if creds.authorization_expires else None,
                "extraterritorial": creds.extraterritorial, "not_reimbursed": creds.extraterritorial,
                "notice": extraterritorial_notice(creds)}

    def protocol_facts(protocol: str, birth_date: str, sex: str | None = None,
                       pregnancy_status: str | None = None) -> dict[str, Any]:
        """What the chosen protocol implies (catalogue): modality, ionizing, contrast; and whether the pregnancy
        status must still be stated before exposure on this final modality (CH-4.1.3)."""
        found = catalogue().get(protocol)
        if found is None:
            return {"known": False, "protocol": protocol, "modality": None, "ionizing": True, "contrast": False,
                    "agent_class": None, "label": str(protocol), "pregnancy_block": False}
        flags = radioprotection.radioprotection_flags(found.modality, sex, date.fromisoformat(birth_date), today())
        return {"known": True, "protocol": found.id, "modality": found.modality, "ionizing": found.ionizing,
                "contrast": found.contrast, "agent_class": found.agent_class, "label": found.label,
                "pregnancy_block": bool(flags.pregnancy_status_required
                                        and pregnancy_status in (None, "", radioprotection.UNKNOWN))}

    def contrast_outcome(contrast_decision: str | None, requester_contraindication: bool | None = None,
                         joint_decision: str | None = None) -> str:
        """Inject, or change the protocol: a contraindication retained by the radiologist, or flagged by the
        requester and not overruled by a documented joint decision, changes the protocol (CH-4.1.10)."""
        if contrast_decision != "cleared":
            return "change_protocol"
        if requester_contraindication is True and joint_decision != "maintain":
            return "change_protocol"
        return "inject"

    def notify_overdue(what: str) -> dict[str, Any]:
        return {"what": what, "overdue_at": clock.now().isoformat()}

    def release_report(radiologist_id: str, conclusion: str = "") -> dict[str, Any]:
        return {"released_at": clock.now().isoformat(), "released_by": radiologist_id}

    def teleexpertise_recipients(send_to_requester: bool, patient_requested: bool,
                                 local_radiologist_agrees: bool) -> dict[str, Any]:
        return {"recipients": report_recipients(bool(send_to_requester), bool(patient_requested),
                                                bool(local_radiologist_agrees))}

    operations: dict[str, Callable[..., Any]] = {
        "telerad.new_accession_number": new_accession_number,
        "telerad.patient_facts": patient_facts,
        "telerad.routing_start": routing_start,
        "telerad.routing_next": routing_next,
        "telerad.candidate_pool": candidate_pool,
        "telerad.routing_decline": routing_decline,
        "telerad.radiologist_profile": radiologist_profile,
        "telerad.release_report": release_report,
        "telerad.notify_overdue": notify_overdue,
        "telerad.protocol_facts": protocol_facts,
        "telerad.contrast_outcome": contrast_outcome,
        "telerad.teleexpertise_recipients": teleexpertise_recipients,
    }
    booleans = (True, False)
    # What the deployment-time charter checks may assume of these results (engine.runtime.charter_paths).
    result_domains: dict[str, dict[str, tuple[Any, ...]]] = {
        "telerad.protocol_facts": {"known": booleans, "ionizing": booleans, "contrast": booleans,
                                   "pregnancy_block": booleans},
        "telerad.patient_facts": {"ionizing": booleans, "minor": booleans, "childbearing_age": booleans},
        "telerad.candidate_pool": {"exhausted": booleans},
        "telerad.radiologist_profile": {"known": booleans, "assignable": booleans, "extraterritorial": booleans,
                                        "not_reimbursed": booleans},
    }
    result_values = {"telerad.contrast_outcome": ("inject", "change_protocol")}
    for name, operation in operations.items():
        registry.register(name, operation, result_domains=result_domains.get(name),
                          result_values=result_values.get(name))
