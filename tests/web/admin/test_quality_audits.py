"""The quality audit pages (CH-6.3): an administrator previews a site's quarter, issues it (frozen, a new version each
time), prints it, adds and closes follow-up actions; a site's medical lead issues his site's only; auditors read;
others are refused; bad input is answered in French."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from sqlalchemy import func, select

from engine.store.models import AuditEvent
from engine.store.quality_audit_models import QualityAuditAction, QualityAuditReport
from tests import demo_app
from tests.integration import quality_audit_scenario as scenario

app, demo_ctx = demo_app.app, demo_app.demo_ctx
login = demo_app.login
PREVIEW = "/admin/quality-audits/preview?scope=site:ch-brest&quarter=2026-Q1"


def _reports(ctx) -> list[tuple[str, int]]:
    with ctx.read() as session:
        return [(r.scope_id, r.version) for r in session.execute(
            select(QualityAuditReport).order_by(QualityAuditReport.id)).scalars()]


def _issue(client, scope="site:ch-brest", quarter="2026-Q1"):
    return client.post("/admin/quality-audits/issue", data={"scope": scope, "quarter": quarter})


def _report_id(response) -> int:
    found = re.search(r"/admin/quality-audits/(\d+)$", response.headers["Location"])
    assert found, response.headers["Location"]
    return int(found.group(1))


@pytest.mark.charter("CH-6.3")
def test_CH6_3_an_administrator_previews_issues_and_prints_a_sites_quarter(app, demo_ctx, clock):
    built = scenario.build(demo_ctx, clock)
    client = login(app, demo_ctx, clock, "admin")
    index = client.get("/admin/quality-audits").get_data(as_text=True)
    assert "Audits qualité" in index and 'value="2025-Q4"' in index  # the last quarter over, by default
    assert 'value="site:ch-brest"' in index and 'value="territory:brest"' in index
    page = client.get(PREVIEW).get_data(as_text=True)
    assert "Aperçu" in page and "CH de Brest (urgences)" in page and "Trimestre en cours" in page
    assert "Comptes-rendus en retard" in page and "Refus motivés" in page and "Demandes" in page
    for case_id in (built.vital, built.refused, built.wrist):
        assert f'data-case-id="{case_id}"' in page
    assert f'href="/cases/{built.vital}"' not in page and "masqué" in page  # an administrator of no site
    assert 'data-print-report' in page and "Imprimer / PDF" in page and "js/quality-audit.js" in page
    assert "css/quality-audit.css" in page and "<script>" not in page and " style=" not in page  # CSP
    assert _reports(demo_ctx) == []  # a preview stores nothing
    response = _issue(client)
    assert response.status_code == 302
    report_id = _report_id(response)
    issued = client.get(f"/admin/quality-audits/{report_id}").get_data(as_text=True)
    assert "Version 1, émise le 05/01/2026 11:35 par Administrateur Telerad" in issued
    assert 'id="audit-issue-form"' not in issued
    assert 'id="audit-action-form"' in issued
    assert "Délai moyen d&#39;acceptation" in issued and "Urgence vitale" in issued  # the dashboard's French lines
    download = client.get(f"/admin/quality-audits/{report_id}.json")
    with demo_ctx.read() as session:
        stored = session.get(QualityAuditReport, report_id)
    assert download.get_data(as_text=True) == stored.snapshot and stored.sha256[:16] in issued
    assert hashlib.sha256(download.data).hexdigest() == stored.sha256
    assert json.loads(download.data)["notable_counts"] == {"overdue": 1, "refusal": 1, "tier4": 1, "identity_hold": 1}
    second = _report_id(_issue(client))
    assert _reports(demo_ctx) == [("ch-brest", 1), ("ch-brest", 2)]
    page = client.get(f"/admin/quality-audits/{second}").get_data(as_text=True)
    assert "Version 2" in page and f'href="/admin/quality-audits/{report_id}"' in page
    listed = client.get("/admin/quality-audits").get_data(as_text=True)
    assert listed.count('data-report-id="') == 2
    with demo_ctx.read() as session:
        assert session.execute(select(func.count()).where(AuditEvent.action == "quality_audit.issued")).scalar() == 2


@pytest.mark.charter("CH-6.3")
def test_CH6_3_the_sites_lead_sees_and_opens_his_sites_notable_cases(app, demo_ctx, clock):
    built = scenario.build(demo_ctx, clock)
    client = login(app, demo_ctx, clock, "dr.guillou")
    assert 'href="/admin/quality-audits"' in client.get("/inbox").get_data(as_text=True)  # the menu
    index = client.get("/admin/quality-audits").get_data(as_text=True)
    assert 'value="site:ch-brest"' in index and "ch-morlaix" not in index and "territory:" not in index
    page = client.get(PREVIEW).get_data(as_text=True)
    assert f'href="/cases/{built.vital}"' in page and "KERMARREC" in page  # a member of the case's site
    report_id = _report_id(_issue(client))
    page = client.get(f"/admin/quality-audits/{report_id}").get_data(as_text=True)
    assert "par Dr Marie Guillou" in page and 'id="audit-action-form"' not in page  # actions: administrators only


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_forged_sites_and_reports_are_refused_to_the_site_lead(app, demo_ctx, clock):
    admin = login(app, demo_ctx, clock, "admin")
    morlaix = _report_id(_issue(admin, "site:ch-morlaix"))
    organisation = _report_id(_issue(admin, "territory:brest"))
    client = login(app, demo_ctx, clock, "dr.guillou")
    assert client.get("/admin/quality-audits/preview?scope=site:ch-morlaix&quarter=2026-Q1").status_code == 403
    assert client.get("/admin/quality-audits/preview?scope=territory:brest&quarter=2026-Q1").status_code == 403
    assert _issue(client, "site:ch-morlaix").status_code == 403
    assert _issue(client, "territory:brest").status_code == 403
    for forged in (morlaix, organisation, organisation + 1):
        assert client.get(f"/admin/quality-audits/{forged}").status_code == 404
        assert client.get(f"/admin/quality-audits/{forged}.json").status_code == 404
    assert client.post(f"/admin/quality-audits/{morlaix}/actions",
                       data={"text": "x", "owner": "y", "due_date": "2026-03-01"}).status_code == 403
    assert _reports(demo_ctx) == [("ch-morlaix", 1), ("brest", 1)]


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_auditors_read_only_and_other_roles_are_refused(app, demo_ctx, clock):
    admin = login(app, demo_ctx, clock, "admin")
    report_id = _report_id(_issue(admin))
    action = admin.post(f"/admin/quality-audits/{report_id}/actions",
                        data={"text": "Former l'équipe de nuit", "owner": "Dr Guillou", "due_date": "2026-03-01"})
    assert action.status_code == 302
    auditor = login(app, demo_ctx, clock, "auditor")
    assert 'href="/admin/quality-audits"' in auditor.get("/inbox").get_data(as_text=True)
    assert auditor.get("/admin/quality-audits").status_code == 200
    page = auditor.get(f"/admin/quality-audits/{report_id}").get_data(as_text=True)
    assert "Former l&#39;équipe de nuit" in page
    assert "Marquer comme faite" not in page and "audit-action-form" not in page
    assert 'id="audit-issue-form"' not in auditor.get(PREVIEW).get_data(as_text=True)
    assert _issue(auditor).status_code == 403
    assert auditor.post(f"/admin/quality-audits/{report_id}/actions",
                        data={"text": "x", "owner": "y", "due_date": "2026-03-01"}).status_code == 403
    with demo_ctx.read() as session:
        action_id = session.execute(select(QualityAuditAction.id)).scalar_one()
    assert auditor.post(f"/admin/quality-audits/{report_id}/actions/{action_id}/done").status_code == 403
    requester = login(app, demo_ctx, clock, "dr.martin")
    assert 'href="/admin/quality-audits"' not in requester.get("/inbox").get_data(as_text=True)
    assert auditor.get(f"/admin/quality-audits/{report_id}.json").status_code == 200
    for url in ("/admin/quality-audits", PREVIEW, f"/admin/quality-audits/{report_id}",
                f"/admin/quality-audits/{report_id}.json"):
        assert requester.get(url).status_code == 403
    assert _issue(requester).status_code == 403
    with demo_ctx.read() as session:
        assert session.execute(select(QualityAuditAction.done_at)).scalars().all() == [None]
    assert _reports(demo_ctx) == [("ch-brest", 1)]


@pytest.mark.charter("CH-6.3")
def test_CH6_3_an_administrator_adds_and_closes_follow_up_actions(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    report_id = _report_id(_issue(client))
    response = client.post(f"/admin/quality-audits/{report_id}/actions",
                           data={"text": "Revoir le délai d'acceptation de nuit", "owner": "Dr Guillou",
                                 "due_date": "2026-01-04"})
    assert response.status_code == 302
    page = client.get(f"/admin/quality-audits/{report_id}").get_data(as_text=True)
    assert "Revoir le délai d&#39;acceptation de nuit" in page and "04/01/2026" in page and "en retard" in page
    with demo_ctx.read() as session:
        action_id = session.execute(select(QualityAuditAction.id)).scalar_one()
    assert client.post(f"/admin/quality-audits/{report_id}/actions/{action_id}/done").status_code == 302
    page = client.get(f"/admin/quality-audits/{report_id}").get_data(as_text=True)
    assert "Faite" in page and "par Administrateur Telerad" in page and "Marquer comme faite" not in page
    again = client.post(f"/admin/quality-audits/{report_id}/actions/{action_id}/done", follow_redirects=True)
    assert "déjà close" in again.get_data(as_text=True)
    assert client.post(f"/admin/quality-audits/{report_id + 1}/actions/{action_id}/done").status_code == 404
    listed = client.get("/admin/quality-audits").get_data(as_text=True)
    assert re.search(r"<td>0</td>\s*</tr>", listed)  # no action left open


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_bad_input_is_refused_in_french_never_a_500(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    for url in ("/admin/quality-audits/preview?scope=site:ch-brest&quarter=2026-Q5",
                "/admin/quality-audits/preview?scope=site:nowhere&quarter=2026-Q1",
                "/admin/quality-audits/preview?scope=region:x&quarter=2026-Q1",
                "/admin/quality-audits/preview"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert 'role="alert"' in response.get_data(as_text=True)
    page = client.get("/admin/quality-audits/preview?scope=site:ch-brest&quarter=2026-Q5").get_data(as_text=True)
    assert "Trimestre invalide : « 2026-Q5 »" in page and 'value="2026-Q5"' in page  # what was typed is kept
    response = _issue(client, quarter="2026-Q5")
    assert response.status_code == 400 and "Trimestre invalide" in response.get_data(as_text=True)
    response = _issue(client, quarter="2026-Q3")
    assert response.status_code == 400 and "n&#39;a pas commencé" in response.get_data(as_text=True)
    assert _reports(demo_ctx) == []
    report_id = _report_id(_issue(client))
    for data, message in (({"text": "", "owner": "Dr X", "due_date": "2026-03-01"}, "Décrivez l&#39;action"),
                          ({"text": "Agir", "owner": "Dr X", "due_date": "01/03/2026x"}, "échéance"),
                          ({"text": "Agir", "owner": "", "due_date": "2026-03-01"}, "qui porte")):
        response = client.post(f"/admin/quality-audits/{report_id}/actions", data=data)
        body = response.get_data(as_text=True)
        assert response.status_code == 400 and message in body, data
        assert f'>{data["text"]}</textarea>' in body and f'value="{data["owner"]}"' in body  # typed text kept
    with demo_ctx.read() as session:
        assert session.execute(select(QualityAuditAction)).first() is None
    assert client.post("/admin/quality-audits/999/actions",
                       data={"text": "Agir", "owner": "Dr X", "due_date": "2026-03-01"}).status_code == 404


def test_no_route_changes_an_issued_report(app):
    """CH-6.3: the only writes under /admin/quality-audits are issuing a new version and the follow-up actions."""
    writes = sorted(rule.rule for rule in app.url_map.iter_rules()
                    if rule.endpoint.startswith("quality_audits.") and rule.methods & {"POST", "PUT", "PATCH",
                                                                                        "DELETE"})
    assert writes == ["/admin/quality-audits/<int:report_id>/actions",
                      "/admin/quality-audits/<int:report_id>/actions/<int:action_id>/done",
                      "/admin/quality-audits/issue"]
