"""The demo's conventions, complete (issue 19, item 5): approvals with their dates and documents (small generated
PDFs), the site's medical lead, the pathway including emergencies, the radiologists' duties, the fallback procedure
a refusal applies, the technical part, the remuneration declaration, expiry and renewal dates; then activated."""

from __future__ import annotations

from datetime import timedelta

from engine.domain.actors import Actor
from engine.domain.convention_content import DOCUMENT_KINDS, REMUNERATION
from engine.domain.data_checks import paris_date
from engine.services.context import EngineContext
from engine.services.convention_documents import store_document
from engine.services.conventions import ConventionContent, update_convention_content
from engine.services.directory import create_convention, update_convention

DEMO_LEADS = {"ch-brest": "dr.guillou", "ch-morlaix": "dr.riou", "clinique-landerneau": "dr.abgrall"}
DEMO_MEMBERS = ("dr.legall", "dr.morvan")
DOCUMENT_TITLES = {"cme": "Avis de la CME", "g4": "Approbation du G4 regional",
                   "council": "Avis du conseil departemental de l'Ordre", REMUNERATION: "Document de remuneration"}
FALLBACK = ("En cas de refus motivé du radiologue (informations insuffisantes, images inadaptées ou de qualité "
            "insuffisante) : le médecin demandeur joint le radiologue d'astreinte du territoire voisin ; en urgence "
            "vitale sans radiologue joignable, transfert du patient vers le CHU de Brest selon la procédure SAMU ; "
            "l'examen est refait si la qualité des images est en cause.")


def demo_pdf(title: str) -> bytes:
    """A one-page PDF with its title (ASCII), valid enough for any reader (demo documents only)."""
    text = title.replace("\\", "").replace("(", "").replace(")", "")
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def demo_content(ctx: EngineContext, site_id: str) -> ConventionContent:
    today = paris_date(ctx.clock.now())
    expires_on = today + timedelta(days=3 * 365)
    return ConventionContent(
        cme_validated_on=today - timedelta(days=90), g4_approved_on=today - timedelta(days=60),
        council_approved_on=today - timedelta(days=45), medical_lead=DEMO_LEADS[site_id],
        patient_pathway="Demande par le médecin du site, vérification de l'identité par le manipulateur, "
                        "interprétation à distance, compte-rendu signé renvoyé au dossier et au RIS.",
        emergency_pathway="Urgence vitale : proposition immédiate au territoire puis au radiologue de garde, "
                          "appel téléphonique du radiologue pour tout résultat urgent.",
        emergency_duties="Le radiologue de garde accepte ou décline dans les délais fixés par les administrateurs "
                         "et reste joignable par téléphone.",
        travel_duties="Chaque radiologue vient sur le site au moins une fois par an et s'y déplace quand "
                      "l'examen l'exige.",
        fallback_procedure=FALLBACK,
        equipment="Scanner 64 barrettes, IRM 1,5 T ; consoles de lecture conformes ; PACS du GHT.",
        archiving="Archivage au PACS du GHT pendant 20 ans ; comptes-rendus versés au dossier patient.",
        network_bandwidth_mbps=100, restoration_delay_hours=4,
        expires_on=expires_on, renewal_on=expires_on - timedelta(days=180))


def create_demo_conventions(ctx: EngineContext, actor: Actor, sites: tuple[str, ...]) -> list[int]:
    """One complete, active convention per site binding the demo's radiologists; their numbers."""
    numbers = []
    for site in sites:
        number = create_convention(ctx, actor, site, DEMO_MEMBERS, cme_validated=False, approved_by_g4=False,
                                   approved_by_council=False)
        update_convention_content(ctx, actor, number, demo_content(ctx, site))
        for kind in DOCUMENT_KINDS:
            store_document(ctx, actor, number, kind, f"{kind}-{site}.pdf", demo_pdf(DOCUMENT_TITLES[kind]),
                           no_productivity_or_exclusivity=kind == REMUNERATION)
        update_convention(ctx, actor, number, DEMO_MEMBERS, cme_validated=True, approved_by_g4=True,
                          approved_by_council=True, external_allowed=False, tiers="1,2,3")
        numbers.append(number)
    return numbers
