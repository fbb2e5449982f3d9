"""The charter conformance matrix in the product, for administrators and auditors: for each rule, its status
(appliquée, déclarée seulement, manquante, hors logiciel), every enforcement with where the product reaches it
from, and the tests that prove it. Computed for the deployed versions of the diagrams (engine.services.conformance).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from engine.domain.charter_packs import PACKS
from engine.services.conformance import STATUSES, RuleCoverage, conformance_matrix, for_pack, summary
from engine.services.conformance_sources import deployed_diagrams, registry_forms
from web.auth.access import roles_required
from web.extensions import telerad

bp = Blueprint("conformance", __name__, url_prefix="/admin/conformance")
log = logging.getLogger(__name__)
ROLES = ("administrator", "auditor")
STATUS_LABELS = {"enforced": _l("Appliquée"), "declared_only": _l("Déclarée seulement"),
                 "missing": _l("Manquante"), "outside": _l("Hors logiciel")}
STATUS_BADGES = {"enforced": "text-bg-success", "declared_only": "text-bg-danger", "missing": "text-bg-warning",
                 "outside": "text-bg-secondary"}
KIND_LABELS = {"diagram": _l("élément de diagramme"), "charter_role": _l("rôle de charte d'un élément"),
               "form": _l("champ de formulaire"), "code": _l("règle du code")}
SHOWN_ORIGINS = 5  # the others behind a "show more" disclosure


@bp.get("")
@login_required
@roles_required(*ROLES)
def index() -> Any:
    from web.config import PROJECT_ROOT

    ctx = telerad(current_app).ctx
    chosen = request.args.get("status", "")
    if chosen not in STATUSES:
        chosen = ""
    pack = request.args.get("charter", "")  # one version of the charter (rule pack, CH-9.1); all rules by default
    if pack not in PACKS:
        pack = ""
    try:
        rules = conformance_matrix(PROJECT_ROOT, deployed_diagrams(ctx), registry_forms(ctx))
    except OSError:
        log.exception("conformance matrix: the charter catalogue or the sources cannot be read")
        return render_template("admin/conformance/index.html", rules=[], counts={}, chosen=chosen, unavailable=True,
                               packs=PACKS, pack=pack, **_labels()), 503
    if pack:
        rules = for_pack(rules, pack)
    shown: list[RuleCoverage] = [r for r in rules if not chosen or r.status == chosen]
    return render_template("admin/conformance/index.html", rules=shown, counts=summary(rules), total=len(rules),
                           chosen=chosen, unavailable=False, shown_origins=SHOWN_ORIGINS, packs=PACKS, pack=pack,
                           **_labels())


def _labels() -> dict[str, Any]:
    return {"statuses": STATUSES, "status_labels": STATUS_LABELS, "status_badges": STATUS_BADGES,
            "kind_labels": KIND_LABELS}
