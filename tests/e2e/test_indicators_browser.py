"""The quality indicators dashboard in Chromium (issue 19, item 1; CH-6.3): with the demo's history (`telerad
demo`, web/cli/demo_history.py), an administrator sees the three charts drawn by Chart.js (within-delay share by
urgency, turnaround distribution, weekly trend), each canvas painted, beside their tables, with no console error
and no CSP report; the CSV downloads; the CH de Brest's medical lead sees his site and the Morlaix lead is refused
the Brest figures (403)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.domain.urgency import LEVELS

CHARTS = ("chart-within", "chart-distribution", "chart-weekly")
# Painted pixels of a canvas (alpha > 0), and whether Chart.js holds a chart on it.
PAINTED = """id => {
  const canvas = document.getElementById(id);
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) painted += 1; }
  return { painted, width: canvas.width, height: canvas.height, chart: Boolean(canvas.chart) };
}"""


def _period() -> str:
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    return f"from={(today - timedelta(days=48)).isoformat()}&to={today.isoformat()}"


@pytest.mark.charter("CH-6.3")
def test_CH6_3_the_dashboard_draws_its_charts_with_the_demo_data(login, browser_log, shoot):
    from playwright.sync_api import expect

    start = browser_log.mark()
    page = login("admin")
    page.get_by_role("link", name="Indicateurs", exact=True).click()
    expect(page.get_by_role("heading", name="Indicateurs qualité")).to_be_visible()
    page.goto(f"/admin/indicators?{_period()}&site=ch-brest")
    expect(page.get_by_role("heading", name="Comptes-rendus dans le délai, par niveau d’urgence")).to_be_visible()
    data = json.loads(page.locator("#indicators-data").text_content())
    assert sum(data["weekly_requests"]) >= 24, data  # the demo's finished cases of the past weeks
    assert any(data["within"][level] is not None for level in LEVELS), data
    for chart in CHARTS:
        page.wait_for_function("id => Boolean(document.getElementById(id).chart)", arg=chart)
        drawn = page.evaluate(PAINTED, chart)
        assert drawn["chart"] and drawn["width"] > 100 and drawn["height"] > 50, (chart, drawn)
        assert drawn["painted"] > 500, (chart, drawn)  # bars, axes and labels, not an empty canvas
    # The tables beside the charts carry the same numbers.
    expect(page.locator("table").filter(has_text="Délai attendu")).to_contain_text("Urgence vitale")
    expect(page.locator("table").filter(has_text="Semaine du")).to_contain_text(data["weeks"][-2])
    shoot(page, "indicators-dashboard")
    response = page.request.get(f"/admin/indicators/export.csv?{_period()}&site=ch-brest")
    assert response.status == 200 and "text/csv" in response.headers["content-type"]
    assert "Demandes (télédiagnostic et téléexpertise)" in response.text()
    csp = browser_log.matching("Content Security Policy", start)
    assert not csp, "\n".join(csp)
    errors = browser_log.errors(start)
    assert not errors, "\n".join(errors)


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_site_leads_see_their_own_site_only(login, browser_log):
    from playwright.sync_api import expect

    brest = login("dr.guillou")
    brest.goto(f"/admin/indicators?{_period()}")
    expect(brest.locator("#f-site")).to_have_value("ch-brest")
    assert sum(json.loads(brest.locator("#indicators-data").text_content())["weekly_requests"]) >= 24
    start = browser_log.mark()
    morlaix = login("dr.riou")
    response = morlaix.goto(f"/admin/indicators?{_period()}&site=ch-brest")
    assert response is not None and response.status == 403
    expect(morlaix.get_by_role("heading", name="Accès refusé")).to_be_visible()
    assert morlaix.request.get("/admin/indicators/export.csv?site=ch-brest").status == 403
    assert all(" 403 " in entry for entry in browser_log.errors(start)), browser_log.errors(start)
