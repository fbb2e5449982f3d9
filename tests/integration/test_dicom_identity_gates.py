"""Identity vigilance of received images (CH-4.1.6, CH-8.1), through every entry point that brings images: the
real C-STORE SCP (DCMTK's storescu), the web upload, and the reception service called directly.

Images are used only after the case's identity check; at least two traits (name, birth date, sex, IPP) must
match the case's and none contradict; every instance is matched to the study's site and patient; every attach
and hold is an event on the case's audit chain."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from engine.store.models import ProcessInstance, Task
from integrations.dicom.ingest import ingest_file
from integrations.dicom.models import DicomHeldInstance
from integrations.dicom.stability import notify_stable_studies
from integrations.dicom.studies import case_images
from tests.demo_app import login
from tests.integration import dicom_support
from tests.integration.dicom_support import (
    QUERE,
    audit_actions,
    check_identity,
    counts,
    demo_case,
    for_case,
    justify_and_protocol,
    open_tasks,
    rewrite,
    storescu,
    study,
)

dicom_ctx, app = dicom_support.dicom_ctx, dicom_support.dicom_app  # fixtures
scp = dicom_support.scp  # fixture
storage = dicom_support.storage  # fixture

DELAY = 30
LE_BIHAN = {"PatientName": "LE BIHAN^NOLWENN", "PatientBirthDate": "19790203", "PatientSex": "F", "PatientID": ""}


def held_instances(ctx) -> list[DicomHeldInstance]:
    with ctx.read() as session:
        return list(session.execute(select(DicomHeldInstance).order_by(DicomHeldInstance.received_at)).scalars())


def attached_quere_study(ctx, port, folder) -> tuple[int, str, str]:
    """The Quéré case (identity checked, at acquisition) with one CT instance attached: (case, accession, uid)."""
    case_id, accession = demo_case(ctx)
    uid = generate_uid()
    sent = storescu(port, rewrite(folder, "CT_small.dcm", study=uid, **for_case(accession)))
    assert sent.returncode == 0, sent.stderr
    assert study(ctx, uid).status == "attached" and counts(ctx) == (1, 1, 1)
    return case_id, accession, uid


# Through the SCP (storescu)

@pytest.mark.charter("CH-4.1.6", negative=True)
def test_scp_images_before_the_identity_check_are_held_and_move_nothing(scp, dicom_ctx, tmp_path, clock):
    case_id, accession = demo_case(dicom_ctx, "LE BIHAN")  # accepted, identity not checked yet
    uid = generate_uid()
    sent = storescu(scp.port, rewrite(tmp_path, "CT_small.dcm", study=uid, AccessionNumber=accession, **LE_BIHAN))
    assert sent.returncode == 0, sent.stderr  # kept safely: the sender need not resend
    held = study(dicom_ctx, uid)
    assert (held.status, held.case_id, held.identity_case_id) == ("held", case_id, None)
    assert "pas encore vérifiée" in held.hold_reason
    assert case_images(dicom_ctx, case_id).series == [] and case_images(dicom_ctx, case_id).held_studies == 1
    assert audit_actions(dicom_ctx, case_id)[-1] == "dicom.study_held"
    clock.advance(seconds=DELAY + 1)
    assert notify_stable_studies(dicom_ctx, clock.now(), DELAY).notified == []
    assert open_tasks(dicom_ctx, case_id) == ["inform_patient"]


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-8.1", negative=True)
def test_scp_an_instance_of_an_attached_study_sent_by_another_site_is_held_out_of_it(scp, dicom_ctx, tmp_path,
                                                                                    clock):
    case_id, accession, uid = attached_quere_study(dicom_ctx, scp.port, tmp_path / "first")
    intruder = rewrite(tmp_path / "morlaix", "CT_small.dcm", study=uid, **for_case(accession))
    sent = storescu(scp.port, intruder, calling="CT_MORLAIX")
    assert sent.returncode == 0, sent.stderr
    assert counts(dicom_ctx) == (1, 1, 1)  # never indexed into the study
    [held] = held_instances(dicom_ctx)
    assert (held.study_uid, held.site_id, held.calling_ae, held.case_id) == (uid, "ch-morlaix", "CT_MORLAIX",
                                                                            case_id)
    assert "autre site" in held.reason
    assert held.sop_instance_uid == str(pydicom.dcmread(intruder).SOPInstanceUID)
    assert audit_actions(dicom_ctx, case_id)[-1] == "dicom.instance_held"
    assert sum(line.images for line in case_images(dicom_ctx, case_id).series) == 1


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_scp_an_instance_of_an_attached_study_with_another_patient_is_held_out_of_it(scp, dicom_ctx, tmp_path):
    case_id, accession, uid = attached_quere_study(dicom_ctx, scp.port, tmp_path / "first")
    other = rewrite(tmp_path / "other", "CT_small.dcm", study=uid, AccessionNumber=accession,
                    PatientName="KERMARREC^YANN", PatientBirthDate="19480517", PatientID="IPP0042", PatientSex="M")
    sent = storescu(scp.port, other)
    assert sent.returncode == 0, sent.stderr
    assert counts(dicom_ctx) == (1, 1, 1)
    [held] = held_instances(dicom_ctx)
    assert held.site_id == "ch-brest" and "patient différent" in held.reason and "date de naissance" in held.reason
    assert audit_actions(dicom_ctx, case_id).count("dicom.instance_held") == 1
    # The same patient again from the same site is indexed into the study.
    same = rewrite(tmp_path / "same", "MR_small.dcm", study=uid, **for_case(accession))
    assert storescu(scp.port, same).returncode == 0
    assert counts(dicom_ctx) == (1, 2, 2) and len(held_instances(dicom_ctx)) == 1


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-8.1", negative=True)
def test_scp_an_instance_without_identity_or_of_another_order_is_held_out_of_the_study(scp, dicom_ctx, tmp_path):
    case_id, accession, uid = attached_quere_study(dicom_ctx, scp.port, tmp_path / "first")
    blank = rewrite(tmp_path / "blank", "CT_small.dcm", study=uid, AccessionNumber=accession, PatientName="",
                    PatientBirthDate="", PatientID="", PatientSex="")
    other_order = rewrite(tmp_path / "order", "MR_small.dcm", study=uid, **{**for_case(accession),
                                                                            "AccessionNumber": "RIS-9999"})
    for path in (blank, other_order):
        assert storescu(scp.port, path).returncode == 0
    assert counts(dicom_ctx) == (1, 1, 1)  # neither joined the study
    reasons = sorted(h.reason for h in held_instances(dicom_ctx))
    assert any("sans identité" in r for r in reasons) and any("numéro d'accession" in r for r in reasons)
    assert audit_actions(dicom_ctx, case_id).count("dicom.instance_held") == 2


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-8.1", negative=True)
def test_scp_a_study_with_only_a_patient_id_never_attaches_to_a_case_without_ipp(scp, dicom_ctx, tmp_path, clock):
    case_id, accession = demo_case(dicom_ctx)  # identity checked; the case records no IPP
    uid = generate_uid()
    bare = rewrite(tmp_path, "CT_small.dcm", study=uid, AccessionNumber=accession, PatientID=QUERE["PatientID"],
                   PatientName="", PatientBirthDate="", PatientSex="")
    assert storescu(scp.port, bare).returncode == 0
    held = study(dicom_ctx, uid)
    assert held.status == "held" and "moins de deux traits concordants" in held.hold_reason
    assert held.identity_case_id is not None  # the technologists reconcile; the case is not told
    clock.advance(seconds=DELAY + 1)
    assert notify_stable_studies(dicom_ctx, clock.now(), DELAY).notified == []
    assert "dicom.study_attached" not in audit_actions(dicom_ctx, case_id)


# The reception service called directly

@pytest.mark.charter("CH-4.1.6", negative=True)
def test_service_held_study_is_compared_at_the_identity_check(dicom_ctx, storage, tmp_path, clock):
    case_id, accession = demo_case(dicom_ctx, "LE BIHAN")
    uid = generate_uid()
    result = ingest_file(dicom_ctx, rewrite(tmp_path, "CT_small.dcm", study=uid, AccessionNumber=accession,
                                            **LE_BIHAN), "ch-brest", "dicom", storage=storage, calling_ae="CT_BREST")
    assert result.status == "stored" and study(dicom_ctx, uid).status == "held"
    assert notify_stable_studies(dicom_ctx, clock.now() + timedelta(minutes=5), DELAY).released == []
    check_identity(dicom_ctx, case_id)
    assert notify_stable_studies(dicom_ctx, clock.now(), DELAY).released == []  # not justified, no protocol yet
    assert "protocole" in study(dicom_ctx, uid).hold_reason or study(dicom_ctx, uid).status == "held"
    justify_and_protocol(dicom_ctx, case_id)
    assert notify_stable_studies(dicom_ctx, clock.now(), DELAY).released == [uid]
    actions = audit_actions(dicom_ctx, case_id)
    assert actions.index("dicom.study_held") < actions.index("dicom.study_attached")


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_service_an_instance_of_another_site_never_joins_a_study_waiting_for_its_case(dicom_ctx, storage, tmp_path):
    uid = generate_uid()  # a study no case claims yet (no order): its site is the first sender's
    first = ingest_file(dicom_ctx, rewrite(tmp_path, "CT_small.dcm", study=uid, **QUERE, AccessionNumber="NONE"),
                        "ch-brest", "dicom", storage=storage, calling_ae="CT_BREST")
    assert first.status == "stored" and study(dicom_ctx, uid).status == "receiving"
    second = ingest_file(dicom_ctx, rewrite(tmp_path, "CT_small.dcm", study=uid, **QUERE, AccessionNumber="NONE"),
                         "ch-morlaix", "dicom", storage=storage, calling_ae="CT_MORLAIX")
    assert second.status == "held" and "autre site" in (second.reason or "")
    assert counts(dicom_ctx) == (1, 1, 1) and held_instances(dicom_ctx)[0].case_id is None


@pytest.mark.charter("CH-4.1.6")
def test_the_identity_check_carries_the_blocked_cases_patient_and_urgency_and_both_link_to_each_other(
        app, dicom_ctx, storage, tmp_path, clock):  # noqa: F811
    case_id, accession = demo_case(dicom_ctx)  # identity checked; the case records no IPP
    uid = generate_uid()
    bare = rewrite(tmp_path, "CT_small.dcm", study=uid, AccessionNumber=accession, PatientID=QUERE["PatientID"],
                   PatientName="", PatientBirthDate="", PatientSex="")
    ingest_file(dicom_ctx, bare, "ch-brest", "dicom", storage=storage, calling_ae="CT_BREST")
    check = study(dicom_ctx, uid).identity_case_id
    assert check is not None
    with dicom_ctx.read() as session:
        blocked, reconciliation = (session.get(ProcessInstance, i) for i in (case_id, check))
        task_urgencies = dict(session.execute(select(Task.instance_id, Task.urgency).where(
            Task.instance_id.in_((case_id, check)), Task.status == "open")).all())
    assert blocked.urgency and reconciliation.urgency == blocked.urgency
    assert task_urgencies[check] == task_urgencies[case_id]  # sorts with the case it blocks
    assert reconciliation.patient_name == blocked.patient_name and f"n° {case_id}" in reconciliation.summary
    client = login(app, dicom_ctx, clock, "merm.leroy")
    page = client.get(f"/cases/{check}").get_data(as_text=True)
    assert f'href="/cases/{case_id}"' in page and "QUÉRÉ" in page.upper() and ">? <" not in page
    assert re.search(r"\d\d/\d\d/\d{4}", page) and "1960-09-21" not in page  # dates as people read them
    assert f'href="/cases/{check}"' in client.get(f"/cases/{case_id}").get_data(as_text=True)


# Through the web upload

@pytest.mark.charter("CH-4.1.6", negative=True)
def test_upload_before_the_identity_check_is_held(app, dicom_ctx, clock, tmp_path):  # noqa: F811
    case_id, accession = demo_case(dicom_ctx, "LE BIHAN")
    path = rewrite(tmp_path, "CT_small.dcm", AccessionNumber=accession, **LE_BIHAN)
    client = login(app, dicom_ctx, clock, "merm.leroy")
    client.post(f"/cases/{case_id}/dicom", data={"dicom_files": (io.BytesIO(path.read_bytes()), "ct.dcm")},
                content_type="multipart/form-data")
    uploaded = study(dicom_ctx, str(pydicom.dcmread(path).StudyInstanceUID))
    assert (uploaded.status, uploaded.case_id, uploaded.identity_case_id) == ("held", case_id, None)
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Des images reçues pour ce dossier sont retenues" in page and "thumbnail.png" not in page
    assert "dicom.study_held" in audit_actions(dicom_ctx, case_id)


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_upload_of_an_instance_of_another_cases_study_is_held_out_of_it(app, dicom_ctx, clock, tmp_path,  # noqa: F811
                                                                       storage):
    quere, accession = demo_case(dicom_ctx)
    uid = generate_uid()
    ingest_file(dicom_ctx, rewrite(tmp_path / "a", "CT_small.dcm", study=uid, **for_case(accession)), "ch-brest",
                "dicom", storage=storage, calling_ae="CT_BREST")
    assert study(dicom_ctx, uid).status == "attached"
    le_bihan, _ = demo_case(dicom_ctx, "LE BIHAN")
    path = rewrite(tmp_path / "b", "MR_small.dcm", study=uid, **for_case(accession))
    client = login(app, dicom_ctx, clock, "merm.leroy")
    response = client.post(f"/cases/{le_bihan}/dicom",
                           data={"dicom_files": (io.BytesIO(path.read_bytes()), "mr.dcm")},
                           content_type="multipart/form-data", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "1 retenue(s) pour vérification d&#39;identité" in page and "autre dossier" in page
    assert counts(dicom_ctx) == (1, 1, 1)
    [held] = held_instances(dicom_ctx)
    assert held.case_id == quere and held.source == "upload"
    assert "dicom.instance_held" in audit_actions(dicom_ctx, quere)
    # Administrators see it for reconciliation with the site.
    admin = login(app, dicom_ctx, clock, "admin").get("/admin/dicom").get_data(as_text=True)
    title = admin.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<" not in title and "Réception DICOM" in title  # the page's title, not the held table
    section = admin.split("Images retenues hors de leur examen")[1]
    assert "rattachée à un autre dossier" in section and f"n° {quere}" in section and "envoi web" in section


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_service_an_instance_bringing_a_trait_its_study_lacks_is_matched_to_the_case(dicom_ctx, storage, tmp_path):
    case_id, accession = demo_case(dicom_ctx)  # Jean Quéré, male
    uid, series = generate_uid(), generate_uid()
    plain = {"PatientName": "QUERE^JEAN", "PatientBirthDate": "19600921", "PatientID": "", "PatientSex": "",
             "AccessionNumber": accession}

    def send(**traits):
        path = rewrite(tmp_path, "CT_small.dcm", study=uid, series=series, **{**plain, **traits})
        return ingest_file(dicom_ctx, path, "ch-brest", "dicom", storage=storage, calling_ae="CT_BREST")

    assert send().status == "stored" and study(dicom_ctx, uid).status == "attached"
    woman = send(PatientSex="F")  # the study says nothing of the sex; the case does
    assert woman.status == "held" and "patient différent de celui du dossier : sexe" in (woman.reason or "")
    assert send(PatientSex="M").status == "stored"
    assert counts(dicom_ctx) == (1, 1, 2) and len(held_instances(dicom_ctx)) == 1
    assert audit_actions(dicom_ctx, case_id).count("dicom.instance_held") == 1
