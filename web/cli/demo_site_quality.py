"""Demo site quality records (`telerad demo`, CH-5.6, CH-5.2): visits of the demo radiologists to the demo sites,
all up to date but one overdue (dr.morvan at the CH de Morlaix, last there 400 days ago), the imaging devices of
the CH de Brest (the CT validated by dr.legall, the X-ray room not yet), and dr.legall's reading workstation."""

from __future__ import annotations

from datetime import timedelta

from engine.domain.actors import Actor
from engine.domain.data_checks import paris_date
from engine.services.context import EngineContext
from engine.services.reading_stations import declare_station
from engine.services.site_devices import add_device, validate_device
from engine.services.site_visits import record_visit

SYSTEM = Actor.system()
LEGALL = Actor("dr.legall", frozenset({"radiologist", "tele_expert"}))
RADIOLOGISTS = ("dr.legall", "dr.morvan")
SITES = ("ch-brest", "ch-morlaix", "clinique-landerneau")
OVERDUE = ("ch-morlaix", "dr.morvan")
FINDINGS = ("Salle de scanner et poste du manipulateur vérifiés ; débit réseau mesuré conforme à la convention "
            "technique. Procédure de panne relue avec le cadre de santé.")


def create_demo_site_quality(ctx: EngineContext) -> None:
    """Visits (one overdue), two devices (one validated, one not) and a reading workstation."""
    today = paris_date(ctx.clock.now())
    for number, site in enumerate(SITES):
        for radiologist in RADIOLOGISTS:
            ago = 400 if (site, radiologist) == OVERDUE else 30 + 20 * number
            record_visit(ctx, SYSTEM, site, radiologist, today - timedelta(days=ago), FINDINGS,
                         ["ct_head_plain", "ct_head_contrast", "xr_chest"])
    scanner = add_device(ctx, SYSTEM, "ch-brest", "CT", "Siemens Healthineers", "Somatom go.Up", "BRE-CT-01",
                         today - timedelta(days=900))
    validate_device(ctx, LEGALL, scanner, today - timedelta(days=60),
                    "Protocoles cérébraux et thoraciques vérifiés sur la console ; contrôle qualité à jour.")
    add_device(ctx, SYSTEM, "ch-brest", "DX", "Fujifilm", "FDR Smart X", "BRE-DX-02", today - timedelta(days=20))
    declare_station(ctx, LEGALL, "Poste de garde (domicile)", "Barco Coronis Fusion 6MP", True,
                    today - timedelta(days=90), "Écran de diagnostic médical ; contrôle de qualité annuel "
                    "(calibration DICOM GSDF) effectué par le prestataire.")
