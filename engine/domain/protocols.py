"""The protocol catalogue (CH-4.1.9, CH-4.1.10, CH-4.1.3): what each acquisition protocol is.

The radiologist chooses a protocol; whether contrast is injected, whether the technique is ionizing and on
which modality it runs all follow from the chosen protocol, never from a separate tick box. Administrators
edit the catalogue (engine.services.protocols); the default below seeds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engine.domain.charter import enforces
from engine.domain.radioprotection import is_ionizing, normalise_modality

AGENT_CLASSES = {"iodine": "produit de contraste iodé", "gadolinium": "chélate de gadolinium",
                 "ultrasound": "produit de contraste ultrasonore"}
PATIENT_GROUPS = {"adult": "adulte", "child": "enfant", "pregnant": "femme enceinte"}
MODALITY_LABELS = {"CT": "scanner", "MR": "IRM", "US": "échographie", "XR": "radiographie", "CR": "radiographie",
                   "DX": "radiographie", "MG": "mammographie", "XA": "angiographie", "RF": "radioscopie",
                   "NM": "scintigraphie", "PT": "TEP"}


@dataclass(frozen=True)
class Protocol:
    id: str
    label: str
    modality: str
    body_region: str
    agent_class: str | None = None  # None: no injection
    patient_groups: tuple[str, ...] = ("adult", "child")
    active: bool = True

    @property
    def contrast(self) -> bool:
        return self.agent_class is not None

    @property
    def ionizing(self) -> bool:
        return is_ionizing(self.modality)

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "label": self.label, "modality": self.modality, "body_region": self.body_region,
                "agent_class": self.agent_class, "contrast": self.contrast, "ionizing": self.ionizing,
                "patient_groups": list(self.patient_groups), "active": self.active}


class InvalidProtocol(ValueError):
    """A catalogue entry that cannot be used (message in French)."""


def check_protocol(protocol: Protocol) -> Protocol:
    """The entry with its modality normalised; raise InvalidProtocol with a French message otherwise."""
    if not protocol.id or not protocol.id.replace("_", "").isalnum() or len(protocol.id) > 64:
        raise InvalidProtocol("Identifiant de protocole invalide : lettres, chiffres et « _ » (64 au plus).")
    if not protocol.label.strip():
        raise InvalidProtocol("Le libellé du protocole est obligatoire.")
    if len(protocol.label.strip()) > 200:
        raise InvalidProtocol("Le libellé du protocole compte 200 caractères au plus.")
    if not protocol.body_region.strip() or len(protocol.body_region.strip()) > 64:
        raise InvalidProtocol("La région anatomique est obligatoire (64 caractères au plus).")
    try:
        modality = normalise_modality(protocol.modality)
    except ValueError as err:
        raise InvalidProtocol(str(err)) from err
    if protocol.agent_class is not None and protocol.agent_class not in AGENT_CLASSES:
        raise InvalidProtocol("Classe de produit de contraste inconnue.")
    unknown = [g for g in protocol.patient_groups if g not in PATIENT_GROUPS]
    if unknown or not protocol.patient_groups:
        raise InvalidProtocol("Groupes de patients : choisissez parmi adulte, enfant, femme enceinte.")
    return Protocol(protocol.id, protocol.label.strip(), modality, protocol.body_region.strip(), protocol.agent_class,
                    tuple(dict.fromkeys(protocol.patient_groups)), protocol.active)


@dataclass(frozen=True)
class ProtocolCatalogue:
    protocols: Mapping[str, Protocol] = field(default_factory=dict)

    @classmethod
    def of(cls, protocols: Iterable[Protocol]) -> ProtocolCatalogue:
        return cls({p.id: p for p in protocols})

    def get(self, protocol_id: object) -> Protocol | None:
        return self.protocols.get(protocol_id) if isinstance(protocol_id, str) else None

    @enforces("CH-4.1.9")
    def for_modality(self, modality: str | None) -> list[Protocol]:
        """Active protocols of a modality (all active ones when the modality is unknown), by label."""
        wanted = None
        if modality:
            try:
                wanted = normalise_modality(modality)
            except ValueError:
                wanted = None
        return sorted((p for p in self.protocols.values() if p.active and (wanted is None or p.modality == wanted)),
                      key=lambda p: p.label)


def modality_label(modality: str | None) -> str:
    """The French name of a modality code ("CT" -> "scanner"); an unknown code is shown as it is."""
    return MODALITY_LABELS.get(modality or "", modality or "modalité non précisée")


def final_modality(case: Mapping[str, object]) -> str | None:
    """The modality the exam will use: the radiologist's substitution or modification when the justification
    decided so, else the requested one; None when none is known (or the code is not a modality)."""
    decision = case.get("justification")
    candidates = (case.get("substitute_modality") if decision == "substitute" else None,
                  case.get("modified_modality") if decision == "modify" else None, case.get("modality"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            try:
                return normalise_modality(candidate)
            except ValueError:
                return None
    return None


DEFAULT_PROTOCOLS = (
    Protocol("ct_head_plain", "Scanner cérébral sans injection", "CT", "tête"),
    Protocol("ct_head_contrast", "Scanner cérébral avec injection", "CT", "tête", "iodine"),
    Protocol("ct_chest_plain", "Scanner thoracique sans injection", "CT", "thorax"),
    Protocol("ct_chest_angio", "Angioscanner thoracique (embolie pulmonaire)", "CT", "thorax", "iodine"),
    Protocol("ct_abdomen_contrast", "Scanner abdomino-pelvien avec injection", "CT", "abdomen", "iodine"),
    Protocol("ct_spine_plain", "Scanner du rachis sans injection", "CT", "rachis"),
    Protocol("mr_brain", "IRM cérébrale", "MR", "tête", None, ("adult", "child", "pregnant")),
    Protocol("mr_brain_gadolinium", "IRM cérébrale avec injection de gadolinium", "MR", "tête", "gadolinium"),
    Protocol("mr_spine", "IRM du rachis", "MR", "rachis", None, ("adult", "child", "pregnant")),
    Protocol("us_abdomen", "Échographie abdominale", "US", "abdomen", None, ("adult", "child", "pregnant")),
    Protocol("us_pelvis", "Échographie pelvienne", "US", "pelvis", None, ("adult", "child", "pregnant")),
    Protocol("xr_chest", "Radiographie thoracique", "XR", "thorax"),
    Protocol("xr_limb", "Radiographie de membre", "XR", "membres"),
    Protocol("mg_bilateral", "Mammographie bilatérale", "MG", "sein", None, ("adult",)),
)
DEFAULT_CATALOGUE = ProtocolCatalogue.of(DEFAULT_PROTOCOLS)
