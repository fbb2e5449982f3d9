"""The tele-expert chooses the original study of a teleexpertise from the requesting site's PACS (issue 18, item 5;
CH-4.2.2), against a real PACS: Orthanc from Debian (the fixtures of test_dicom_priors) as CH de Morlaix's PACS.

Yann Kermarrec has three studies on Morlaix's PACS (and another patient one): after the priors tick, the expert's
check offers those three by date, modality and description in French; a UID not offered is refused by the service,
the page and the API; the study chosen is moved to Telerad and attached to the case as its examined study, seen on
the case page and in the viewer; another site's case of a namesake offers nothing. Skipped on a machine without
Orthanc; under CI=true it must run."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from engine.services.accounts import issue_api_token
from engine.services.instances import case_data, start_instance
from engine.services.pacs_studies import pacs_study_choices, study_label
from engine.services.tasks import complete_task, get_task
from forms import FormValidationError
from integrations.dicom.pacs import case_priors, set_pacs
from integrations.dicom.pacs_models import CasePacsStudy, OriginalStudyFetch
from integrations.dicom.priors import PriorsSettings, fetch_priors
from tests.demo_app import login
from tests.integration import test_dicom_priors as priors_tests
from tests.integration.dicom_support import DEMO_ACTORS, complete_step, open_tasks, study

dicom_ctx, storage, scp, dicom_app, pacs = (priors_tests.dicom_ctx, priors_tests.storage, priors_tests.scp,
                                            priors_tests.dicom_app, priors_tests.pacs)  # fixtures
ADMIN, PACS_AE = priors_tests.ADMIN, priors_tests.PACS_AE
KERMARREC = {"PatientName": "KERMARREC^YANN", "PatientBirthDate": "19500302", "PatientSex": "M",
             "PatientID": "IPP-MORLAIX-7"}
PATIENT = {"birth_name": "KERMARREC", "first_names": "Yann", "birth_date": "1950-03-02", "sex": "M",
           "site_patient_id": "IPP-MORLAIX-7", "identity_status": "qualified"}
REFUSED = "ne fait pas partie des examens de ce patient"
NO_SETTINGS = PriorsSettings(max_studies=0)  # no prior moved: what reaches Telerad is the study chosen


def _expertise(ctx, site_id: str = "ch-morlaix") -> int:
    case_id = start_instance(ctx, DEMO_ACTORS["dr.kerbrat"], "teleexpertise", {}, site_id=site_id)
    complete_step(ctx, case_id, "te_request", "dr.kerbrat", {
        "patient": PATIENT, "expert_id": "dr.legall", "question": "Lésion rénale gauche : kyste ou lésion tissulaire ?",
        "clinical_context": "Découverte fortuite.", "study_reference": "MX-2", "prior_imaging": "scanner 2023",
        "interventional_decision_possible": True})
    complete_step(ctx, case_id, "te_consent", "dr.kerbrat", {"patient_informed": True, "consent": "given"})
    return case_id


def _check_task(ctx, case_id: int) -> str:
    from engine.services.tasks import list_tasks

    return next(t.id for t in list_tasks(ctx, DEMO_ACTORS["dr.legall"])
                if t.instance_id == case_id and t.spec_name == "te_check")


@pytest.mark.charter("CH-4.2.2")
def test_the_expert_chooses_the_original_study_among_the_requesting_site_pacs_studies(dicom_ctx, pacs, tmp_path,
                                                                                      dicom_app, clock):
    ctx = dicom_ctx
    files = tmp_path / "pacs-files"
    upload = priors_tests._upload
    abdomen = upload(pacs, files, "CT_small.dcm", StudyDate="20230912", StudyDescription="Scanner abdominal",
                     AccessionNumber="MX-1", **KERMARREC)
    kidney = upload(pacs, files, "MR_small.dcm", StudyDate="20240105", StudyDescription="IRM rénale",
                    AccessionNumber="MX-2", **KERMARREC)
    chest = upload(pacs, files, "MR_small.dcm", Modality="CR", StudyDate="20220310",
                   StudyDescription="Thorax face", AccessionNumber="MX-3", **KERMARREC)
    other = upload(pacs, files, "CT_small.dcm", StudyDate="20240201", StudyDescription="Scanner cérébral",
                   AccessionNumber="MX-9", PatientName="MARTIN^PAUL", PatientBirthDate="19700101",
                   PatientID="IPP-MORLAIX-9")
    set_pacs(ctx, ADMIN, "ch-morlaix", PACS_AE, "127.0.0.1", pacs.dicom_port)
    case_id = _expertise(ctx)
    known = case_data(ctx, case_id)
    assert pacs_study_choices(ctx, known) == []  # the PACS is not asked yet

    report = fetch_priors(ctx, "TELERAD", NO_SETTINGS)
    assert case_id in report.fetched and case_priors(ctx, case_id) == []
    with ctx.read() as session:
        kept = set(session.execute(select(CasePacsStudy.study_uid).where(CasePacsStudy.case_id == case_id))
                   .scalars())
    assert kept == {abdomen, kidney, chest}
    # The three studies of the patient, newest first, in French; never the other patient's.
    assert pacs_study_choices(ctx, case_data(ctx, case_id)) == [
        (kidney, "05/01/2024 — IRM — IRM rénale (n° d'examen MX-2)"),
        (abdomen, "12/09/2023 — scanner — Scanner abdominal (n° d'examen MX-1)"),
        (chest, "10/03/2022 — radiographie — Thorax face (n° d'examen MX-3)")]

    # The expert's form offers them (labels, not bare UIDs).
    task_id = _check_task(ctx, case_id)
    expert = login(dicom_app, ctx, clock, "dr.legall")
    form = html.unescape(expert.get(f"/tasks/{task_id}").get_data(as_text=True))
    assert 'name="original_study_uid"' in form
    for uid, label in ((kidney, "05/01/2024 — IRM — IRM rénale"), (abdomen, "12/09/2023 — scanner — Scanner abdominal"),
                       (chest, "10/03/2022 — radiographie — Thorax face")):
        assert f'value="{uid}">{label}' in form
    assert other not in form and "Scanner cérébral" not in form

    # A study not offered is refused by the service, the page and the API, in French; nothing is queued.
    with pytest.raises(FormValidationError) as refused:
        complete_task(ctx, DEMO_ACTORS["dr.legall"], task_id, {"file_complete": True, "original_study_uid": other})
    assert REFUSED in refused.value.errors["original_study_uid"]
    shown = html.unescape(expert.post(f"/tasks/{task_id}", data={
        "file_complete": "y", "original_study_uid": "1.2.3.4"}).get_data(as_text=True))
    assert REFUSED in shown
    token = issue_api_token(ctx, "dr.legall", "tests")
    answer = dicom_app.test_client().post(f"/api/v1/tasks/{task_id}/complete", headers={
        "Authorization": f"Bearer {token}"}, json={"file_complete": True, "original_study_uid": other})
    assert answer.status_code == 422 and REFUSED in answer.get_json()["fields"]["original_study_uid"]
    assert open_tasks(ctx, case_id) == ["te_check"]

    # Another radiologist may not open the expert's step; a case of another site offers nothing.
    with pytest.raises(Exception):  # noqa: B017 - NotFound or Forbidden: he is not offered the task
        get_task(ctx, DEMO_ACTORS["dr.morvan"], task_id)
    assert login(dicom_app, ctx, clock, "dr.morvan").get(f"/tasks/{task_id}").status_code in (302, 403, 404)
    assert pacs_study_choices(ctx, {**known, "site_id": "ch-brest"}) == []
    assert study_label(ctx, known, kidney) == "05/01/2024 — IRM — IRM rénale (n° d'examen MX-2)"
    assert study_label(ctx, {**known, "site_id": "ch-brest"}, kidney) \
        == f"examen du PACS de l'établissement demandeur (UID {kidney})"

    # The expert chooses the kidney MRI on the page: moved from the PACS by the next tick, attached as the examined
    # study (not a prior), identity-checked, audited.
    assert expert.post(f"/tasks/{task_id}", data={"file_complete": "y", "original_study_uid": kidney}
                       ).status_code == 302
    assert study(ctx, kidney) is None  # nothing moved on the request path
    report = fetch_priors(ctx, "TELERAD", NO_SETTINGS)
    assert report.original["queued"] == [case_id] and report.original["fetched"] == [case_id]
    received = study(ctx, kidney)
    assert (received.case_id, received.status, received.hold_reason) == (case_id, "attached", None)
    assert received.notified_at is not None
    assert case_priors(ctx, case_id) == [] and study(ctx, abdomen) is None and study(ctx, other) is None
    with ctx.read() as session:
        row = session.get(OriginalStudyFetch, case_id)
    assert (row.study_uid, row.status, row.outcome, row.requested_by) == (kidney, "done", "attached", "dr.legall")
    chain = priors_tests._chain(ctx, case_id)
    requested = [d for a, d in chain if a == "dicom.original_study_requested"]
    assert requested == [{"study_uid": kidney, "date": "2024-01-05", "modalities": "MR", "description": "IRM rénale",
                          "chosen_by": "dr.legall"}]
    assert [d for a, d in chain if a == "dicom.original_study_fetched"] == [{"study_uid": kidney, "status": "attached"}]
    assert ("dicom.study_attached", kidney) in [(a, d.get("study_uid")) for a, d in chain]

    # Read once: the next ticks do nothing more.
    assert fetch_priors(ctx, "TELERAD", NO_SETTINGS).original == {"queued": [], "fetched": [], "retried": [],
                                                                   "failed": []}

    # The expert sees it on the case page (its series, the viewer's link) and in the viewer; the requester of
    # another site sees nothing.
    page = expert.get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'id="open-viewer"' in page and ">Examens antérieurs<" not in page  # no prior listed
    # the step's record names the chosen study by its date, modality and description, never by its UID alone
    steps = html.unescape(page.split('id="steps"', 1)[1].split("</section>", 1)[0])
    assert "05/01/2024 — IRM — IRM rénale" in steps and kidney not in steps
    assert expert.get(f"/cases/{case_id}/viewer").status_code == 200
    qido = expert.get(f"/dicomweb/studies?StudyInstanceUID={kidney}")
    assert qido.status_code == 200 and kidney in qido.get_data(as_text=True)
    stranger = login(dicom_app, ctx, clock, "dr.martin")
    assert stranger.get(f"/cases/{case_id}/viewer").status_code in (403, 404)
    assert kidney not in stranger.get(f"/dicomweb/studies?StudyInstanceUID={kidney}").get_data(as_text=True)


@pytest.mark.charter("CH-4.2.2")
def test_an_original_study_of_another_patient_is_held_for_the_technologists(dicom_ctx, pacs, tmp_path, clock):
    """The PACS answers the C-FIND by IPP: a study it files under that IPP with another patient's identity is held
    (with a reconciliation) when chosen, as any image."""
    ctx = dicom_ctx
    wrong = priors_tests._upload(pacs, tmp_path / "pacs-files", "MR_small.dcm", StudyDate="20240105",
                                 StudyDescription="IRM rénale", AccessionNumber="MX-2",
                                 **{**KERMARREC, "PatientName": "LE FLOCH^ANNE", "PatientBirthDate": "19810704",
                                    "PatientSex": "F"})
    set_pacs(ctx, ADMIN, "ch-morlaix", PACS_AE, "127.0.0.1", pacs.dicom_port)
    case_id = _expertise(ctx)
    fetch_priors(ctx, "TELERAD", NO_SETTINGS)
    assert [uid for uid, _label in pacs_study_choices(ctx, case_data(ctx, case_id))] == [wrong]
    complete_step(ctx, case_id, "te_check", "dr.legall", {"file_complete": True, "original_study_uid": wrong})
    # The PACS does not answer: retried later, nothing crashes; it answers again: fetched.
    set_pacs(ctx, ADMIN, "ch-morlaix", PACS_AE, "127.0.0.1", priors_tests._free_port())
    assert fetch_priors(ctx, "TELERAD", NO_SETTINGS).original["retried"] == [case_id]
    with ctx.read() as session:
        row = session.get(OriginalStudyFetch, case_id)
    assert (row.status, row.attempts) == ("pending", 1) and "injoignable" in row.last_error
    set_pacs(ctx, ADMIN, "ch-morlaix", PACS_AE, "127.0.0.1", pacs.dicom_port)
    assert fetch_priors(ctx, "TELERAD", NO_SETTINGS).original["fetched"] == []  # not due before its delay
    clock.advance(minutes=2)
    assert fetch_priors(ctx, "TELERAD", NO_SETTINGS).original["fetched"] == [case_id]
    held = study(ctx, wrong)
    assert (held.case_id, held.status) == (case_id, "held") and "identité différente" in held.hold_reason
    assert held.identity_case_id is not None  # a reconciliation for the technologists
    assert [d for a, d in priors_tests._chain(ctx, case_id) if a == "dicom.original_study_fetched"] \
        == [{"study_uid": wrong, "status": "held"}]


@pytest.mark.charter("CH-4.2.2")
def test_a_prior_chosen_as_the_original_study_becomes_the_examined_study(dicom_ctx, pacs, tmp_path):
    ctx = dicom_ctx
    previous = priors_tests._upload(pacs, tmp_path / "pacs-files", "CT_small.dcm", StudyDate="20230912",
                                    StudyDescription="Scanner abdominal", AccessionNumber="MX-1", **KERMARREC)
    set_pacs(ctx, ADMIN, "ch-morlaix", PACS_AE, "127.0.0.1", pacs.dicom_port)
    case_id = _expertise(ctx)
    fetch_priors(ctx, "TELERAD", PriorsSettings(max_studies=3))
    assert [(p.study_uid, p.status) for p in case_priors(ctx, case_id)] == [(previous, "attached")]
    complete_step(ctx, case_id, "te_check", "dr.legall", {"file_complete": True, "original_study_uid": previous})
    assert fetch_priors(ctx, "TELERAD", NO_SETTINGS).original["fetched"] == [case_id]
    assert case_priors(ctx, case_id) == [] and (study(ctx, previous).case_id, study(ctx, previous).status) \
        == (case_id, "attached")
    assert [d for a, d in priors_tests._chain(ctx, case_id) if a == "dicom.original_study_fetched"] \
        == [{"study_uid": previous, "status": "attached"}]


def test_labels_and_patient_keys_without_a_pacs():
    from engine.services.pacs_studies import PacsStudy, patient_key

    assert PacsStudy("1.2.3", None, None, None, None).label() \
        == "date inconnue — modalité non précisée — sans description"
    assert PacsStudy("1.2.3", "2021-02-03", "CT\\SR", "Scanner", None).label() == "03/02/2021 — scanner, SR — Scanner"
    assert patient_key({"site_patient_id": " IPP-1 ", "birth_name": "X"}) == "ipp:IPP-1"
    assert patient_key({"birth_name": "Le Bihan-Quéré", "birth_date": "1979-02-03"}) == "name:LE BIHAN QUERE|1979-02-03"
    assert patient_key({"birth_name": "Le Bihan"}) is None and patient_key(None) is None
