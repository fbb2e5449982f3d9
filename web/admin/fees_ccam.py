"""CCAM tables (CH-7.1), for administrators only: the tables loaded (date of effect, file, format, sample or not, acts,
technical fees, who loaded them and when) and a form to load one, the CNAM's CCAM workbook of ameli.fr or Telerad's
CSV, with the CT and MRI technical fees of the remuneration document (engine.services.ccam_tables.import_upload,
audited as from the command line). A bad file is answered in French (400) with nothing loaded."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.domain.fees import CcamTableError
from engine.errors import Forbidden
from engine.services.ccam_tables import MAX_TABLE_BYTES, LoadedTable, import_upload, list_tables, technical_fee
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("fees_ccam", __name__)
ACCEPT = ".xls,.xlsx,.ods,.csv"


def _ctx() -> Any:
    return telerad(current_app).ctx


def _page(error: str | None = None, status: int = 200) -> Any:
    return render_template("admin/fees/ccam.html", tables=list_tables(_ctx()), error=error, form=request.form,
                           accept=ACCEPT, max_megabytes=MAX_TABLE_BYTES // 2**20), status


@bp.get("/fees/ccam")
@login_required
@roles_required("administrator")
def index() -> Any:
    return _page()


def _effective(value: str | None) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise CcamTableError(_("Date d’effet invalide (exemple : 2026-01-01).")) from None


@bp.post("/fees/ccam")
@login_required
@roles_required("administrator")
def load() -> Any:
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise CcamTableError(_("Choisissez le fichier de la table CCAM (.xls, .xlsx, .ods ou .csv)."))
        day = _effective(request.form.get("effective"))
        ct_fee = technical_fee(request.form.get("ct_technical_fee"), _("Forfait technique de scanner"))
        mri_fee = technical_fee(request.form.get("mri_technical_fee"), _("Forfait technique d’IRM"))
        content = upload.stream.read(MAX_TABLE_BYTES + 1)
        if len(content) > MAX_TABLE_BYTES:
            raise CcamTableError(_("Fichier trop volumineux (%(size)d Mo au plus).", size=MAX_TABLE_BYTES // 2**20))
        table = import_upload(_ctx(), current_actor(), upload.filename, content, day, ct_technical_fee=ct_fee,
                              mri_technical_fee=mri_fee)
    except Forbidden:
        return _page(_("Seul un administrateur charge une table CCAM."), 403)
    except CcamTableError as err:
        return _page(_("%(error)s ; rien n’a été chargé.", error=str(err)), 400)
    flash(_("Table CCAM chargée : %(acts)d acte(s) en vigueur à partir du %(day)s (%(name)s).",
            acts=table.act_count, day=table.effective_from.strftime("%d/%m/%Y"), name=table.source_name), "success")
    flash(summary(table), "info")
    return redirect(url_for("fees_ccam.index"))


def summary(table: LoadedTable) -> str:
    """What was kept per family and skipped per reason, in a sentence."""
    families = {"scanner": _("actes de scanner :"), "irm": _("actes d’IRM :"),
                "radiologie": _("actes de radiologie conventionnelle :")}
    reasons = {"no_code": _("ligne(s) sans code CCAM (titres, chapitres, notes)"),
               "not_imaging": _("acte(s) hors imagerie"),
               "other_activity_phase": _("acte(s) d’imagerie d’une autre activité que 1 ou d’une autre phase que 0"),
               "no_tariff": _("acte(s) d’imagerie sans tarif")}
    kept = ", ".join(f"{families.get(family, family)} {count}" for family, count in sorted(table.kept.items()))
    skipped = ", ".join(f"{count} {reasons.get(reason, reason)}" for reason, count in table.skipped.items() if count)
    text = _("Actes chargés : %(kept)s.", kept=kept)
    if not skipped:
        return text
    left_out = _("Écartés : %(skipped)s.", skipped=skipped)
    return f"{text} {left_out}"
