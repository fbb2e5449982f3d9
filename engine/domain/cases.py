"""What a case shows in lists, and who may open it (CH-5.3 professional secrecy)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.domain.actors import Actor
from engine.domain.charter import enforces


@dataclass(frozen=True)
class CaseSummary:
    patient_name: str | None
    patient_birth_date: str | None
    urgency: str | None
    accession_number: str | None
    summary: str | None
    patient_ref: str | None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def case_summary(data: Mapping[str, Any]) -> CaseSummary:
    """The patient banner and list line of a case, from the data its tasks gathered."""
    patient = data.get("patient") if isinstance(data.get("patient"), dict) else {}
    assert isinstance(patient, dict)
    name = " ".join(p for p in (_text(patient.get("birth_name"), 150), _text(patient.get("first_names"), 140)) if p)
    return CaseSummary(
        patient_name=name.upper() if name else None,
        patient_birth_date=_text(patient.get("birth_date"), 10),
        urgency=_text(data.get("urgency"), 16),
        accession_number=_text(data.get("accession_number"), 64),
        summary=_text(data.get("requested_exam") or data.get("question") or data.get("summary"), 300),
        patient_ref=_text(patient.get("site_patient_id"), 64),
    )


@enforces("CH-5.3", "CH-8.1")
def may_see_case(actor: Actor, site_id: str | None, involved: bool) -> bool:
    """A case is visible to the members of its site and to the people routing involved in it (offered,
    assigned, or who acted on one of its tasks); to nobody else."""
    return involved or (site_id is not None and site_id in actor.sites)
