"""An instance sent again under the same SOP Instance UID with other content is refused and leaves no file
(issue 16: re-sending a SOP Instance UID with different content wrote a new file and kept the first index row:
165 orphan files after fuzzing); `telerad dicom orphans` finds and removes the files no row points at."""

from __future__ import annotations

import json
import os
import time

import pydicom
import pytest
from click.testing import CliRunner

from integrations.dicom.ingest import ingest_file
from tests.integration import dicom_support
from tests.integration.dicom_support import counts, demo_case, for_case, rewrite, stored_files, storescu
from web.cli.main import main

dicom_ctx, scp, storage = dicom_support.dicom_ctx, dicom_support.scp, dicom_support.storage  # fixtures


def altered(path, tmp_path):
    """The same instance (same SOP Instance UID) with other content."""
    dataset = pydicom.dcmread(path)
    dataset.ImageComments = "contenu modifié"
    changed = tmp_path / "changed" / path.name
    changed.parent.mkdir(exist_ok=True)
    dataset.save_as(changed, enforce_file_format=True)
    return changed


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_a_resend_with_other_content_is_refused_without_writing_a_file(dicom_ctx, storage, tmp_path):
    _case_id, accession = demo_case(dicom_ctx)
    first = rewrite(tmp_path / "src", "CT_small.dcm", **for_case(accession))
    assert ingest_file(dicom_ctx, first, "ch-brest", "dicom", storage=storage).status == "stored"
    before = (counts(dicom_ctx), stored_files(storage))
    second = ingest_file(dicom_ctx, altered(first, tmp_path), "ch-brest", "dicom", storage=storage)
    assert second.status == "conflict" and "autre contenu" in second.reason
    assert (counts(dicom_ctx), stored_files(storage)) == before
    assert ingest_file(dicom_ctx, first, "ch-brest", "dicom", storage=storage).status == "duplicate"


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_a_modality_resending_other_content_gets_a_duplicate_sop_instance_failure(scp, dicom_ctx, storage,
                                                                                    tmp_path):
    _case_id, accession = demo_case(dicom_ctx)
    first = rewrite(tmp_path / "src", "CT_small.dcm", **for_case(accession))
    assert storescu(scp.port, first).returncode == 0
    files = stored_files(storage)
    sent = storescu(scp.port, altered(first, tmp_path), options=("-v",))
    output = sent.stdout + sent.stderr
    assert sent.returncode != 0 and "Status: 0x111" in output, output  # 0x0111: duplicate SOP instance (PS3.7)
    assert stored_files(storage) == files


def test_the_orphans_command_lists_then_removes_only_old_unreferenced_files(dicom_ctx, storage, tmp_path,
                                                                             database_url):
    _case_id, accession = demo_case(dicom_ctx)
    kept = rewrite(tmp_path / "src", "CT_small.dcm", **for_case(accession))
    ingest_file(dicom_ctx, kept, "ch-brest", "dicom", storage=storage)
    [referenced] = stored_files(storage)
    old, young = storage / "ab" / ("ab" + "0" * 62), storage / "cd" / ("cd" + "1" * 62)
    interrupted = storage / "ab" / f".{'ab' + '2' * 62}.{'3' * 32}.part"
    for path in (old, young, interrupted):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"stray")
    long_ago = time.time() - 3 * 3600
    for path in (old, interrupted, referenced):
        os.utime(path, (long_ago, long_ago))
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(storage.parent)}
    listed = CliRunner().invoke(main, ["dicom", "orphans", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert sorted(o["path"] for o in json.loads(listed.output)["orphans"]) == sorted([str(old), str(interrupted)])
    assert old.exists()  # listing removes nothing
    removed = CliRunner().invoke(main, ["dicom", "orphans", "--remove"], env=env)
    assert removed.exit_code == 0 and "2 supprimé(s)" in removed.output
    assert not old.exists() and not interrupted.exists() and young.exists() and referenced.exists()
