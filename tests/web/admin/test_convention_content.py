"""The convention's page (issue 19, item 5): activation refused in French with what is missing, the content form,
document uploads checked by content and size (French error, nothing written), downloads for administrators,
auditors and the site's medical leads only (another site's lead: 403); and the refusal's task page shows the
convention's fallback procedure (CH-4.1.14). SQLite and PostgreSQL."""

from __future__ import annotations

import html
import io
import re

import pytest
from sqlalchemy import func, select

from engine.services import convention_documents
from engine.services.conventions import list_conventions
from engine.services.directory import create_convention
from engine.services.tasks import complete_task
from engine.store.convention_models import ConventionDocument
from engine.store.models import AuditEvent
from tests import demo_app
from tests.convention_support import ADMIN
from tests.demo_app import case_of, login, open_task
from tests.signing import signature_code
from web.cli.demo_conventions import FALLBACK, demo_pdf
from web.cli.demo_data import _actor as demo_actor

app, demo_ctx = demo_app.app, demo_app.demo_ctx


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def written(ctx) -> tuple[int, int]:
    with ctx.read() as session:
        return (session.execute(select(func.count()).select_from(ConventionDocument)).scalar_one(),
                session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


def draft(ctx) -> int:
    return create_convention(ctx, ADMIN, "ch-brest", ("dr.legall",), cme_validated=False, approved_by_g4=False,
                             approved_by_council=False)


def brest(ctx) -> int:
    return next(c.id for c in list_conventions(ctx, ADMIN) if c.site_id == "ch-brest")


@pytest.mark.charter("CH-3.4", negative=True)
@pytest.mark.charter("CH-6.1", negative=True)
def test_the_page_refuses_activation_and_lists_what_is_missing(app, demo_ctx, clock):
    number = draft(demo_ctx)
    client = login(app, demo_ctx, clock, "admin")
    page = text(client.get(f"/admin/directory/conventions/{number}"))
    assert "Pour pouvoir l’activer, il manque :" in page and "<li>le parcours des urgences</li>" in page
    before = written(demo_ctx)
    refused = text(client.post(f"/admin/directory/conventions/{number}", data={
        "convention-radiologists": ["dr.legall"], "convention-cme_validated": "y", "convention-approved_by_g4": "y",
        "convention-approved_by_council": "y", "convention-tiers": ["1"], "convention-submit": "x"}))
    assert "Modification refusée :" in refused and "La convention ne peut pas être activée : il manque" in refused
    assert "la procédure dégradée appliquée en cas de refus" in refused
    assert written(demo_ctx) == before
    assert not next(c for c in list_conventions(demo_ctx, ADMIN) if c.id == number).active
    listing = text(client.get("/admin/directory"))
    row = re.search(rf'<tr id="convention-{number}">(.*?)</tr>', listing, re.S).group(1)
    assert "Inactive" in row and "élément(s) manquant(s)" in row


def test_the_content_form_records_and_refuses_in_french(app, demo_ctx, clock):
    number = draft(demo_ctx)
    client = login(app, demo_ctx, clock, "admin")
    form = {"content-medical_lead": "dr.guillou", "content-patient_pathway": "Parcours",
            "content-fallback_procedure": "Appeler le CHU", "content-network_bandwidth_mbps": "100",
            "content-expires_on": "2029-12-31", "content-renewal_on": "2029-06-30",
            "content-visit_interval_days": "180", "content-submit": "x"}
    response = client.post(f"/admin/directory/conventions/{number}/content", data=form)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/conventions/{number}#convention-content")
    summary = next(c for c in list_conventions(demo_ctx, ADMIN) if c.id == number)
    assert summary.content["fallback_procedure"] == "Appeler le CHU" and summary.visit_interval_days == 180
    assert summary.content["medical_lead"] == "dr.guillou"
    page = text(client.post(f"/admin/directory/conventions/{number}/content",
                            data={**form, "content-medical_lead": "dr.riou", "content-patient_pathway": "Nouveau"}))
    assert "n'est pas un médecin responsable actif de ce site" in page and "Nouveau</textarea>" in page
    page = text(client.post(f"/admin/directory/conventions/{number}/content",
                            data={**form, "content-network_bandwidth_mbps": "-3", "content-expires_on": "31/02",
                                  "content-restoration_delay_hours": "quatre"}))
    assert "Un nombre entier entre 1 et 100000." in page and "Date invalide" in page
    assert "Saisissez un nombre entier." in page and "Not a valid" not in page
    assert next(c for c in list_conventions(demo_ctx, ADMIN) if c.id == number).content["patient_pathway"] == \
        "Parcours"


def upload(client, number: int, content: bytes, filename: str = "cme.pdf", kind: str = "cme", **extra: str):
    return client.post(f"/admin/directory/conventions/{number}/documents", content_type="multipart/form-data",
                       data={"document-kind": kind, "document-document": (io.BytesIO(content), filename),
                             "document-submit": "x", **extra})


@pytest.mark.charter("CH-6.4", negative=True)
def test_uploads_through_the_page(app, demo_ctx, clock, monkeypatch):
    number = draft(demo_ctx)
    client = login(app, demo_ctx, clock, "admin")
    before = written(demo_ctx)
    wrong = upload(client, number, b"MZ\x90\x00 an executable", "approbation.pdf")
    assert wrong.status_code == 200 and "Type de fichier non accepté : déposez un PDF" in text(wrong)
    monkeypatch.setattr(convention_documents, "MAX_DOCUMENT_BYTES", 1024 * 1024)
    big = upload(client, number, b"%PDF-1.4\n" + b"0" * (1024 * 1024))
    assert big.status_code == 200 and "Le fichier est trop volumineux : 1 Mo au plus." in text(big)
    undeclared = upload(client, number, demo_pdf("r"), "remuneration.pdf", "remuneration")
    assert "ni clause de productivité ni clause d'exclusivité (CH-6.4)" in text(undeclared)
    missing = client.post(f"/admin/directory/conventions/{number}/documents",
                          data={"document-kind": "cme", "document-submit": "x"})
    assert "Choisissez le fichier du document." in text(missing)
    assert written(demo_ctx) == before
    done = upload(client, number, demo_pdf("r"), "remuneration.pdf", "remuneration",
                  **{"document-no_productivity_or_exclusivity": "y"})
    assert done.status_code == 302 and done.headers["Location"].endswith("#documents")
    page = text(client.get(f"/admin/directory/conventions/{number}"))
    assert "remuneration.pdf" in page and "déclarée par admin (CH-6.4)" in page


def test_document_downloads_admin_auditor_and_own_lead_only(app, demo_ctx, clock):
    number = brest(demo_ctx)
    with demo_ctx.read() as session:
        document_id = session.execute(select(ConventionDocument.id).where(
            ConventionDocument.convention_id == number).order_by(ConventionDocument.id)).scalars().first()
    url = f"/admin/directory/conventions/{number}/documents/{document_id}"
    clients = {username: login(app, demo_ctx, clock, username)  # one login each (a TOTP code is used once)
               for username in ("admin", "auditor", "dr.guillou", "dr.riou", "dr.abgrall", "dr.martin", "dr.legall")}
    for username in ("admin", "auditor", "dr.guillou"):
        response = clients[username].get(url)
        assert response.status_code == 200, username
        assert response.data.startswith(b"%PDF-") and response.mimetype == "application/pdf"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Disposition"].startswith("attachment;")
    for username in ("dr.riou", "dr.abgrall", "dr.martin", "dr.legall"):  # other sites' leads, clinicians
        assert clients[username].get(url).status_code == 403, username
    assert clients["admin"].get(f"/admin/directory/conventions/{number}/documents/999999").status_code == 404
    other = next(c.id for c in list_conventions(demo_ctx, ADMIN) if c.site_id == "ch-morlaix")
    assert clients["admin"].get(
        f"/admin/directory/conventions/{other}/documents/{document_id}").status_code == 404  # not its document
    assert app.test_client().get(url).status_code == 302  # anonymous: to the login page
    assert clients["auditor"].post(f"/admin/directory/conventions/{number}/documents").status_code == 403


@pytest.mark.charter("CH-4.1.14")
def test_the_refusal_steps_show_the_conventions_fallback_procedure(app, demo_ctx, clock):
    case_id = case_of(demo_ctx, patient_name="QUÉRÉ JEAN")  # wrist X-ray of ch-brest, accepted by dr.legall
    complete_task(demo_ctx, demo_actor("merm.leroy"), open_task(demo_ctx, case_id, "acquire_images"),
                  {"images_sent": True, "protocol_followed": True, "technical_difficulty": False})
    radiologist = login(app, demo_ctx, clock, "dr.legall")
    interpret = open_task(demo_ctx, case_id, "interpret")
    assert "convention-fallback" not in text(radiologist.get(f"/tasks/{interpret}"))  # not a refusal step
    complete_task(demo_ctx, demo_actor("dr.legall"), interpret,
                  {"outcome": "refuse", "signature_code": signature_code(demo_ctx, "dr.legall")})
    page = text(radiologist.get(f"/tasks/{open_task(demo_ctx, case_id, 'state_refusal')}"))
    assert "Procédure dégradée prévue par la convention du site" in page and FALLBACK in page
    complete_task(demo_ctx, demo_actor("dr.legall"), open_task(demo_ctx, case_id, "state_refusal"), {
        "refusal_reason": "insufficient_quality", "refusal_detail": "Images floues, cinétique du poignet.",
        "refusal_follow_up": "convention_fallback"})
    requester = login(app, demo_ctx, clock, "dr.martin")  # the requester applies it, with the procedure in view
    page = text(requester.get(f"/tasks/{open_task(demo_ctx, case_id, 'apply_fallback')}"))
    assert "Procédure dégradée prévue par la convention du site" in page and FALLBACK in page
