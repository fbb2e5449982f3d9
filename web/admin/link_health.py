"""Health of the links (CH-5.5), for administrators: per site, the last HL7 order and DICOM study received and
whether the site is silent longer than its usual pattern (engine.services.link_health); on request, whether each
configured MLLP endpoint and PACS answers now (integrations.link_probe: TCP, C-ECHO)."""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_login import login_required

from engine.services.link_health import WINDOW, site_links
from integrations.link_probe import configured_peers, probe_peers
from web.auth.access import roles_required
from web.extensions import telerad

bp = Blueprint("link_health", __name__, url_prefix="/admin/links")


@bp.get("")
@login_required
@roles_required("administrator")
def index() -> Any:
    ctx = telerad(current_app).ctx
    peers = configured_peers(ctx)
    probes = None
    if request.args.get("probe") == "1":
        probes = probe_peers(peers, (os.environ.get("TELERAD_DICOM_AE_TITLE") or "TELERAD").strip())
    return render_template("admin/link_health/index.html", links=site_links(ctx), peers=peers, probes=probes,
                           window_days=WINDOW.days, now=ctx.clock.now())
