"""The fee statements in Chromium (issue 20, item 1; CH-7): with the demo's history and its CCAM acts (`telerad
demo`, web/cli/demo_fees.py), the finance view (an administrator) lists last month's statement of each radiologist
computed by the charter split on the SAMPLE table (marked so), opens one, its print button and stylesheet load with
no console error and no CSP report, the CSV downloads, the statement is issued and then frozen; a radiologist reads
his own statement and is refused another's (403)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest


def _last_month() -> str:
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    return f"{today.year - 1}-12" if today.month == 1 else f"{today.year}-{today.month - 1:02d}"


@pytest.mark.charter("CH-7.2")
@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_the_finance_view_shows_and_issues_a_radiologists_statement(login, browser_log, shoot):
    from playwright.sync_api import expect

    start = browser_log.mark()
    page = login("admin")
    page.get_by_role("link", name="Honoraires", exact=True).click()
    expect(page.get_by_role("heading", name="Honoraires", exact=True)).to_be_visible()
    month = _last_month()
    page.goto(f"/fees?month={month}")
    rows = page.locator("#fee-month tbody tr[data-radiologist]")
    expect(rows.first).to_be_visible()
    row = page.locator('#fee-month tr[data-radiologist="dr.legall"]')
    expect(row).to_contain_text("EXEMPLE")
    due = row.locator("td").nth(2).text_content().strip()
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Relevé d’honoraires — Dr Yann Le Gall (radiologue)")).to_be_visible()
    expect(page.locator("#fee-due")).to_have_text(due)
    expect(page.locator("#fee-sample")).to_contain_text("EXEMPLE")
    expect(page.locator("#fee-lines tbody tr[data-code]").first).to_be_visible()
    expect(page.get_by_role("button", name="Imprimer / PDF")).to_be_visible()
    shoot(page, "fees-statement-preview")
    csv = page.request.get(f"/fees/statement.csv?scope=radiologist:dr.legall&month={month}")
    assert csv.status == 200 and "text/csv" in csv.headers["content-type"] and "EXEMPLE" in csv.text()
    assert csv.text().strip().splitlines()[-1].split(",")[11] == due
    page.get_by_role("button", name="Émettre le relevé").click()
    expect(page.locator("#fee-issued")).to_contain_text("ne change plus")
    expect(page.locator("#fee-due")).to_have_text(due)
    expect(page.get_by_role("button", name="Émettre le relevé")).to_have_count(0)
    issued_url = page.url
    shoot(page, "fees-statement-issued")
    csp = browser_log.matching("Content Security Policy", start)
    assert not csp, "\n".join(csp)
    errors = browser_log.errors(start)
    assert not errors, "\n".join(errors)
    # dr.legall reads his own issued statement; dr.morvan is refused it.
    legall = login("dr.legall")
    legall.goto(issued_url)
    expect(legall.locator("#fee-due")).to_have_text(due)
    start = browser_log.mark()
    morvan = login("dr.morvan")
    response = morvan.goto(issued_url)
    assert response is not None and response.status == 403
    assert all(" 403 " in entry for entry in browser_log.errors(start)), browser_log.errors(start)
