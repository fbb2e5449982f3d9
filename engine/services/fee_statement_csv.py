"""A fee statement (engine.services.fee_statements) as CSV: its acts, corrections and totals, the SAMPLE table said
on the first line when the statement was computed on it."""

from __future__ import annotations

import csv
import io
from typing import Any

CSV_COLUMNS = ("dossier", "date_liberation", "site", "radiologue", "code_ccam", "libelle", "famille", "urgence",
               "permanence", "teleexpertise", "prix_eur", "part_radiologue_eur", "part_site_eur")


def statement_csv(snapshot: dict[str, Any]) -> str:
    """The statement's acts, adjustments and totals as CSV (UTF-8, comma, dot decimals)."""
    out = io.StringIO()
    writer = csv.writer(out)
    if snapshot.get("sample_table"):
        writer.writerow(["# TABLE CCAM D'EXEMPLE : montants illustratifs, non facturables"])
    writer.writerow(CSV_COLUMNS)
    for x in snapshot["lines"]:
        writer.writerow([x["case_id"], x["released_at"], x["site_id"], x["radiologist"], x["code"], x["label"],
                         x["family"], int(x["urgency"]), int(x["on_call"]), int(x["teleexpertise"]), x["price_eur"],
                         x["radiologist_eur"], x["site_eur"]])
    for a in snapshot["adjustments"]:
        writer.writerow([a["case_id"], a["created_at"], "", a["radiologist"], "CORRECTION", a["reason"], "", "", "",
                         "", "", a["amount_eur"], ""])
    totals = snapshot["totals"]
    writer.writerow(["TOTAL", "", "", "", "", "", "", "", "", "", totals["price_eur"],
                     totals["due_to_radiologists_eur"], totals["site_net_eur"]])
    return out.getvalue()
