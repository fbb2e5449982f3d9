"""A CCAM table loaded from the CNAM's own workbook through the use case (engine.services.ccam_tables, CH-7.1) on
SQLite and PostgreSQL: the imaging acts stored with CT and MRI valued with the technical fees given, the table's
format and fees recorded and listed, the load audited with what was kept and skipped; a bad file, a CT act without
the CT fee, fees given with a CSV, a radiologist: refused with nothing stored. Prices computed by hand."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.domain.fees import CcamTableError
from engine.errors import Forbidden
from engine.services.ccam_tables import (
    acts_of_table,
    import_table,
    import_upload,
    list_tables,
    load_table,
    table_on,
    technical_fee,
)
from engine.services.fee_statements import Scope, issue_statement, parse_month
from engine.store.fee_models import CcamTable, CcamTableAct
from engine.store.models import AuditEvent
from tests.ccam_ameli_files import ROWS, workbook
from tests.integration import fees_scenario

ADMIN = Actor("admin", frozenset({"administrator"}))
RADIOLOGIST = Actor("dr.legall", frozenset({"radiologist"}))
JANUARY = date(2026, 1, 1)


def _counts(ctx):
    with ctx.read() as session:
        return (session.execute(select(func.count()).select_from(CcamTable)).scalar_one(),
                session.execute(select(func.count()).select_from(CcamTableAct)).scalar_one())


@pytest.mark.charter("CH-7.1")
@pytest.mark.charter("CH-7.2")
def test_CH7_1_a_table_is_loaded_from_the_cnam_workbook_with_the_technical_fees(ctx, tmp_path):
    load_table(ctx, Actor.system(), None, date(2000, 1, 1))  # the SAMPLE, as the demo has it
    path = tmp_path / "CCAM_V80.xlsx"
    path.write_bytes(workbook())
    loaded = import_table(ctx, ADMIN, path, JANUARY, ct_technical_fee=Decimal("60.00"),
                          mri_technical_fee=Decimal("150.00"))
    assert (loaded.source_format, loaded.act_count, loaded.kept) == ("cnam-excel", 5, {"scanner": 2, "irm": 1,
                                                                                          "radiologie": 2})
    assert loaded.skipped == {"no_code": 3, "not_imaging": 2, "other_activity_phase": 2, "no_tariff": 1}
    with ctx.read() as session:
        assert table_on(session, date(2025, 12, 31)).sample
        table = table_on(session, JANUARY)
        assert table.id == loaded.id and not table.sample and table.source_name == "CCAM_V80.xlsx"
        acts = acts_of_table(session, table.id)
        events = session.execute(select(AuditEvent.detail).where(AuditEvent.action == "ccam.table_loaded")
                                 .order_by(AuditEvent.id)).scalars().all()
    assert {code: (a.modality, a.family, a.price_eur, a.technical_share_eur) for code, a in acts.items()} == {
        "ACQK001": ("CT", "scanner", Decimal("85.54"), Decimal("60.00")),  # 25.54 + 60.00
        "ACQH003": ("CT", "scanner", Decimal("85.54"), Decimal("60.00")),
        "ACQN001": ("MR", "irm", Decimal("219.00"), Decimal("150.00")),  # 69.00 + 150.00
        "ZBQK002": ("XR", "radiologie", Decimal("21.28"), None),
        "QEQK004": ("MG", "radiologie", Decimal("66.42"), None)}
    detail = json.loads(events[-1])
    assert detail["format"] == "cnam-excel" and detail["acts"] == 5 and detail["ct_technical_fee_eur"] == "60.00"
    assert detail["skipped"]["other_activity_phase"] == 2 and detail["kept"]["irm"] == 1
    listed = {t.effective_from: t for t in list_tables(ctx)}
    assert (listed[JANUARY].source_format, listed[JANUARY].ct_technical_fee_eur,
            listed[JANUARY].mri_technical_fee_eur, listed[JANUARY].act_count) == (
        "cnam-excel", Decimal("60.00"), Decimal("150.00"), 5)
    sample = listed[date(2000, 1, 1)]
    assert (sample.sample, sample.source_format, sample.ct_technical_fee_eur) == (True, "telerad-csv", None)
    # the same date of effect again: replaced; without MRI acts the MRI fee is not needed nor recorded
    rows = [row for row in ROWS if not row or row[0] != "ACQN001"]
    again = import_upload(ctx, ADMIN, "C:\\CNAM\\CCAM V81.xlsx", workbook(rows), JANUARY,
                          ct_technical_fee=Decimal("65"))
    assert again.source_name == "CCAM V81.xlsx" and again.mri_technical_fee_eur is None
    with ctx.read() as session:
        assert acts_of_table(session, again.id)["ACQK001"].price_eur == Decimal("90.54")  # 25.54 + 65.00
    assert _counts(ctx) == (2, 15 + 4)


@pytest.mark.charter("CH-7.1", negative=True)
@pytest.mark.charter("CH-7.2", negative=True)
def test_CH7_1_a_bad_cnam_file_or_a_missing_fee_is_refused_with_nothing_stored(ctx, tmp_path):
    load_table(ctx, Actor.system(), None, date(2000, 1, 1))
    before = _counts(ctx)
    path = tmp_path / "CCAM_V80.xls"
    fees = {"ct_technical_fee": Decimal("60"), "mri_technical_fee": Decimal("150")}
    for content, given, message in (
            (workbook(), {"mri_technical_fee": Decimal("150")}, "forfait technique de scanner"),
            (workbook(), {"ct_technical_fee": Decimal("60")}, "forfait technique d'IRM"),
            (workbook(header=["Code", "Désignation", "Prix"]), fees, "ligne d'en-tête introuvable"),
            (workbook([*ROWS, ["ZBQK02", "Radiographie du thorax", 1, 0, 21.28]]), fees, "code CCAM invalide"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 truncated", fees, "illisible")):
        path.write_bytes(content)
        with pytest.raises(CcamTableError, match=message):
            import_table(ctx, ADMIN, path, JANUARY, **given)
        with pytest.raises(CcamTableError, match=message):
            import_upload(ctx, ADMIN, path.name, content, JANUARY, **given)
    csv = tmp_path / "ccam.csv"
    csv.write_text("code,label,modality,family,price_eur,technical_share_eur\n"
                   "ACQK001,Scanographie du crâne,CT,scanner,100.00,70.00\n", encoding="utf-8")
    with pytest.raises(CcamTableError, match="ne s'indiquent que pour le fichier CCAM de la CNAM"):
        import_table(ctx, ADMIN, csv, JANUARY, ct_technical_fee=Decimal("60"))
    with pytest.raises(Forbidden):
        import_table(ctx, RADIOLOGIST, path, JANUARY, **fees)
    with pytest.raises(Forbidden):
        import_upload(ctx, RADIOLOGIST, "CCAM.xlsx", workbook(), JANUARY, **fees)
    with pytest.raises(CcamTableError, match="Choisissez le fichier"):
        import_upload(ctx, ADMIN, "..", workbook(), JANUARY, **fees)
    assert _counts(ctx) == before
    csv_table = import_table(ctx, ADMIN, csv, JANUARY)  # a CSV still loads as before, marked as such
    assert (csv_table.source_format, csv_table.kept, csv_table.skipped) == ("telerad-csv", {"scanner": 1}, {})


@pytest.mark.parametrize(("typed", "expected"), [("60", Decimal("60.00")), (" 60,5 ", Decimal("60.50")),
                                                 ("", None), (None, None)])
def test_a_technical_fee_is_read_as_typed(typed, expected):
    assert technical_fee(typed, "Forfait") == expected


@pytest.mark.parametrize("typed", ["soixante", "0", "-5", "NaN", "1e9"])
def test_a_technical_fee_that_is_no_amount_is_refused_in_french(typed):
    with pytest.raises(CcamTableError, match="Forfait"):
        technical_fee(typed, "Forfait")


@pytest.mark.parametrize("typed", ["0.004", "60.001", "0,00", "0.001", "1e3", "100000", "60.5.0"])
def test_a_technical_fee_with_more_than_cents_or_zero_is_refused(typed):
    # CH-7.2 needs a CT or MRI technical share above 0: "0.004" must not round to a share of 0.00
    with pytest.raises(CcamTableError, match="Forfait"):
        technical_fee(typed, "Forfait")


CSV_HEADER = "code,label,modality,family,price_eur,technical_share_eur\n"


def _csv(tmp_path, *lines):
    path = tmp_path / "ccam.csv"
    path.write_text(CSV_HEADER + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_1_odd_amounts_are_refused_in_french_from_the_csv_and_the_cnam_file(ctx, tmp_path):
    before = _counts(ctx)
    for price, share, message in (("1e9999", "", "montant illisible « 1e9999 »"),
                                  ("1e15", "", "montant illisible"), ("NaN", "", "montant illisible"),
                                  ("-Infinity", "", "montant illisible"), ("100000", "", "montant hors limite"),
                                  ("1000000000000.00", "", "montant hors limite"),
                                  ("100.00", "1E1", "montant illisible")):
        family = "scanner" if share else "radiologie"
        modality = "CT" if share else "XR"
        label = "Scanographie du thorax" if share else "Radiographie du thorax"
        path = _csv(tmp_path, f"ZBQK002,{label},{modality},{family},{price},{share}")
        with pytest.raises(CcamTableError, match=f"ligne 2 : {message}"):
            import_table(ctx, ADMIN, path, JANUARY)
    for tariff in ("1e15", 1e15, "1e9999"):
        with pytest.raises(CcamTableError, match="ligne 5 : tarif"):
            import_upload(ctx, ADMIN, "CCAM.xlsx", workbook([["ZBQK002", "Radiographie du thorax", 1, 0, tariff]]),
                          JANUARY)
    assert _counts(ctx) == before
    # the largest amounts allowed are stored as they are, on PostgreSQL too (Numeric(12, 2))
    big = import_table(ctx, ADMIN, _csv(tmp_path, "ZBQK002,Radiographie du thorax,XR,radiologie,99999.99,",
                                        "ACQK001,Scanographie du crâne,CT,scanner,99999.99,99999.99"), JANUARY)
    with ctx.read() as session:
        assert {a.price_eur for a in acts_of_table(session, big.id).values()} == {Decimal("99999.99")}


@pytest.mark.charter("CH-7.1", negative=True)
@pytest.mark.charter("CH-6.4", negative=True)
def test_CH7_1_a_flat_rate_or_a_non_imaging_line_cannot_enter_through_the_csv(ctx, tmp_path):
    before = _counts(ctx)
    for line, message in (
            ("ZZZZ999,Forfait de productivite mensuel,XR,radiologie,3000,", "libellé refusé"),
            ("ZZZZ998,Radiographie du thorax : prime de rendement,XR,radiologie,30,", "libellé refusé"),
            ("ZZZZ997,Radiographie forfaitaire,XR,radiologie,30,", "libellé refusé"),
            ("ZZZZ996,Productivité,XR,radiologie,30,", "libellé refusé"),
            ("ZCQM001,Échographie de l'abdomen,XR,radiologie,56.70,", "n'est pas un acte d'imagerie"),
            ("ZBQK003,Radiographie du thorax,CT,scanner,85.00,60.00", "de la famille scanner"),
            ("ACQK001,Scanographie du crâne,XR,radiologie,25.54,", "de la famille radiologie")):
        with pytest.raises(CcamTableError, match=message):
            import_table(ctx, ADMIN, _csv(tmp_path, "ZBQK002,Radiographie du thorax,XR,radiologie,21.28,", line),
                         JANUARY)
    assert _counts(ctx) == before
    loaded = import_table(ctx, ADMIN, _csv(
        tmp_path, "EBQH001,Angioscanographie thoracique,CT,scanner,85.54,60.00",
        "EAQN001,Angioremnographie du crâne,MR,irm,219.00,150.00", "QEQK004,Mammographie bilatérale,MG,radiologie,"
        "66.42,", "ZBQK002,Radiographie du thorax (imprimée),DX,radiologie,21.28,"), JANUARY)
    assert loaded.kept == {"scanner": 1, "irm": 1, "radiologie": 2}


def test_a_nul_character_of_a_label_is_not_stored_on_any_database(ctx, tmp_path):
    cnam = import_upload(ctx, ADMIN, "CCAM.xlsx", workbook([["ZBQK002", "Radiographie du_x0000_thorax", 1, 0,
                                                              21.28]]), JANUARY)
    csv = import_table(ctx, ADMIN, _csv(tmp_path, "ZBQK002,Radiographie\x00 du thorax,XR,radiologie,21.28,"),
                       date(2026, 2, 1))
    with ctx.read() as session:
        assert acts_of_table(session, cnam.id)["ZBQK002"].label == "Radiographie du thorax"
        assert acts_of_table(session, csv.id)["ZBQK002"].label == "Radiographie du thorax"


fees_ctx = fees_scenario.fees_ctx


@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_1_a_table_cannot_take_effect_in_a_month_whose_statement_is_issued(fees_ctx, tmp_path):
    # The site's December statement issued, a table in effect in December would price the radiologists'
    # statements issued later differently from the site's: refused, naming the month and the first date allowed.
    issue_statement(fees_ctx, ADMIN, Scope("site", "ch-brest"), parse_month("2025-12"))
    before = _counts(fees_ctx)
    path = _csv(tmp_path, "ZBQK002,Radiographie du thorax,XR,radiologie,30.00,")
    for day in (date(2025, 12, 15), date(2025, 12, 1), date(2025, 6, 1), date(2000, 1, 1)):  # 2000: the demo's
        with pytest.raises(CcamTableError, match=r"Date d'effet refusée : le relevé de 2025-12 est déjà émis ; une "
                                                 rf"table CCAM en vigueur le {day.isoformat()} .* à partir du "
                                                 r"2026-01-01"):
            import_table(fees_ctx, ADMIN, path, day)
        with pytest.raises(CcamTableError, match="2025-12 est déjà émis"):
            import_upload(fees_ctx, ADMIN, "CCAM.xlsx", workbook(), day, ct_technical_fee=Decimal("60"),
                          mri_technical_fee=Decimal("150"))
    assert _counts(fees_ctx) == before
    assert import_table(fees_ctx, ADMIN, path, JANUARY).effective_from == JANUARY  # the month after: open
