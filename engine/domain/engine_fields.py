"""The case data only the engine writes.

The shipped service operations write these variables (their ``resultVariable``) and the charter checks trust them:
the offer's charter pack and tier, the released report, the radiologist's or the expert's profile, the accession
number... No form may declare them (engine.services.designer refuses such a form) and no answer may carry them
(engine.services.tasks refuses the completion, whatever its form says). Kept equal to the diagrams' result variables
by tests/unit/test_engine_owned_fields.py."""

from __future__ import annotations

ENGINE_OWNED_FIELDS = frozenset({
    "offer", "release", "radiologist", "expert", "facts", "protocol_facts", "distribution", "accession_number",
    "contrast_outcome", "no_radiologist_notice", "report_overdue_notice", "answer_overdue_notice",
})
ENGINE_OWNED_MESSAGE = "Donnée écrite par le moteur : elle ne se saisit pas dans un formulaire."
