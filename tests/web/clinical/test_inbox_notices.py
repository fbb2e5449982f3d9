"""Case notices in the inbox of the people who must act (CH-3.3): a case no radiologist took at any tier reaches the
site's medical lead and the administrators, named by its number and site, never by the patient."""

from __future__ import annotations

import pytest

from engine.services.timers import fire_due_timers
from tests.demo_app import app, case_of, demo_ctx, login  # noqa: F401  (fixtures)


@pytest.mark.charter("CH-3.3")
def test_no_radiologist_left_reaches_the_site_lead_and_administrators_inbox(app, demo_ctx, clock):  # noqa: F811
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    for _ in range(12):  # every tier's delay runs out (bounded: at most twelve delays)
        clock.advance(minutes=31)
        fire_due_timers(demo_ctx)
    lead = login(app, demo_ctx, clock, "dr.guillou").get("/inbox").get_data(as_text=True)
    notices = lead.split('id="notices"', 1)[1].split("</section>", 1)[0]
    assert "Aucun radiologue disponible" in notices and f'href="/cases/{case_id}"' in notices
    assert "KERMARREC" not in notices  # the case and its site, never the patient
    admin = login(app, demo_ctx, clock, "admin").get("/inbox").get_data(as_text=True)
    assert f'href="/cases/{case_id}"' in admin.split('id="notices"', 1)[1].split("</section>", 1)[0]
    technologist = login(app, demo_ctx, clock, "merm.leroy").get("/inbox").get_data(as_text=True)
    assert 'id="notices"' not in technologist
