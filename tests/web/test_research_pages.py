"""The research export pages (CH-8.2): a researcher files a request (bad input refused in French), an
administrator approves it, the export is produced in the background with its progress on the request's page, and
its requester downloads it once (the second download is refused in French, the file is gone); nothing is
downloadable before approval; other users get 403. The command line: `telerad research export` after approval
only, once."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile

import pytest
from click.testing import CliRunner

from engine.services.keyring import KeyRing
from integrations.dicom import research_export
from tests import demo_app

app, demo_ctx = demo_app.app, demo_app.demo_ctx
login = demo_app.login
FORM = {"protocol": "ETUDE-AVC-2026", "approval_ref": "CNIL MR-004 n° 2226789", "period_start": "2000-01-01",
        "period_end": "2100-12-31", "sites": ["ch-brest"], "fields": ["process", "sex", "question"], "images": "1"}


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _request(client, **changes) -> int:
    response = client.post("/research", data={**FORM, **changes})
    assert response.status_code == 302, _text(response)
    return int(re.search(r"/research/(\d+)$", response.headers["Location"]).group(1))


def _finish_background() -> None:
    for thread in list(research_export.RUNNING):
        thread.join(timeout=60)


@pytest.mark.charter("CH-8.2")
def test_a_request_approved_is_produced_and_downloaded_once(app, demo_ctx, clock):
    researcher = login(app, demo_ctx, clock, "c.leroux")
    assert "Recherche" in _text(researcher.get("/inbox", follow_redirects=True))
    request_id = _request(researcher)
    page = _text(researcher.get(f"/research/{request_id}"))
    assert "En attente d'approbation" in page and "Approuver" not in page
    assert "Dr Claire Le Roux" in page and "c.leroux" not in page  # people by their names, not their login
    assert researcher.get(f"/research/{request_id}/download").status_code == 409
    admin = login(app, demo_ctx, clock, "admin")
    assert "ETUDE-AVC-2026" in _text(admin.get("/research"))
    assert admin.post(f"/research/{request_id}/decision", data={"decision": "approve"}).status_code == 302
    _finish_background()
    page = _text(researcher.get(f"/research/{request_id}"))
    assert "Export prêt" in page and "Télécharger l’export" in page, page
    first = researcher.get(f"/research/{request_id}/download")
    assert first.status_code == 200 and first.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(first.get_data())) as archive:
        rows = json.loads(archive.read("cases.json"))
    assert rows and all(set(row) == {"patient", "case", "process", "sex", "question"} for row in rows)
    first.close()
    assert not list(research_export.research_dir(app.extensions["telerad"].settings.instance_path).glob("*.zip"))
    second = researcher.get(f"/research/{request_id}/download")
    assert second.status_code == 409 and "déjà été téléchargé" in _text(second)
    page = _text(admin.get(f"/research/{request_id}"))
    assert "Export téléchargé" in page and "Administrateur Telerad" in page


@pytest.mark.charter("CH-8.2", negative=True)
def test_requests_need_an_administrator_and_stay_with_their_requester(app, demo_ctx, clock):
    researcher = login(app, demo_ctx, clock, "c.leroux")
    refused = researcher.post("/research", data={**FORM, "approval_ref": ""})
    assert refused.status_code == 400 and "référence de l'autorisation" in _text(refused)
    refused = researcher.post("/research", data={**FORM, "period_start": "hier"})
    assert refused.status_code == 400 and "dates de la période" in _text(refused)
    request_id = _request(researcher)
    assert researcher.post(f"/research/{request_id}/decision", data={"decision": "approve"}).status_code == 403
    admin = login(app, demo_ctx, clock, "admin")
    refusal = admin.post(f"/research/{request_id}/decision", data={"decision": "refuse"})
    assert refusal.status_code == 400 and "motif du refus" in _text(refusal)
    admin.post(f"/research/{request_id}/decision", data={"decision": "refuse", "note": "Protocole incomplet"})
    assert "Refusée" in _text(researcher.get(f"/research/{request_id}"))
    assert researcher.get(f"/research/{request_id}/download").status_code == 409
    assert admin.post("/research", data=FORM).status_code == 403  # an administrator does not file requests
    for username in ("dr.guillou", "auditor", "dr.legall"):
        other = login(app, demo_ctx, clock, username)
        assert other.get("/research").status_code == 403
        assert other.get(f"/research/{request_id}").status_code == 403
        assert other.get(f"/research/{request_id}/download").status_code == 403


@pytest.mark.charter("CH-8.2", negative=True)
def test_the_command_exports_after_approval_only_and_once(app, demo_ctx, clock, tmp_path, monkeypatch,
                                                          database_url):
    from web.cli.main import main

    researcher = login(app, demo_ctx, clock, "c.leroux")
    request_id = _request(researcher)
    key_file = tmp_path / "keys.json"
    KeyRing.development().save(key_file)
    runner = CliRunner(env={"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
                            "TELERAD_KEYS_FILE": str(key_file), "TELERAD_AUDIT_SYSLOG": ""})
    refused = runner.invoke(main, ["research", "export", str(request_id), "--out", str(tmp_path / "out")])
    assert refused.exit_code != 0 and "pas approuvée" in refused.output, refused.output
    admin = login(app, demo_ctx, clock, "admin")
    admin.post(f"/research/{request_id}/decision", data={"decision": "refuse", "note": "Non"})
    refused = runner.invoke(main, ["research", "export", str(request_id), "--out", str(tmp_path / "out")])
    assert refused.exit_code != 0 and "pas approuvée" in refused.output
    second_id = _request(researcher)
    monkeypatch.setattr("web.clinical.research.start_in_background", lambda *args: None)
    admin.post(f"/research/{second_id}/decision", data={"decision": "approve"})
    done = runner.invoke(main, ["research", "export", str(second_id), "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "out" / f"export-recherche-{second_id}.zip").is_file()
    again = runner.invoke(main, ["research", "export", str(second_id), "--out", str(tmp_path / "out")])
    assert again.exit_code != 0 and "déjà été téléchargé" in again.output


@pytest.mark.charter("CH-8.2")
def test_the_request_page_lists_the_images_cleaned_of_their_burned_in_text(app, demo_ctx, clock):
    from engine.store.research_models import ResearchRequest

    researcher = login(app, demo_ctx, clock, "c.leroux")
    request_id = _request(researcher, clean_pixels="1")
    admin = login(app, demo_ctx, clock, "admin")
    assert admin.post(f"/research/{request_id}/decision", data={"decision": "approve"}).status_code == 302
    _finish_background()
    with demo_ctx.write() as session:  # as the producer records an image cleaned by deid's rule
        row = session.get(ResearchRequest, request_id)
        manifest = json.loads(row.manifest)
        manifest["cleaned"] = [{"case": "x", "series": 2, "rule": "Philips IU22", "regions": ["0,0,640,47"]}]
        row.manifest = json.dumps(manifest)
        session.commit()
    page = _text(researcher.get(f"/research/{request_id}"))
    assert "nettoyage des pixels demandé" in page
    assert "Série 2 : texte incrusté effacé (règle « Philips IU22 »)" in page
