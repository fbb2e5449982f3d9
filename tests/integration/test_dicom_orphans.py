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
from integrations.dicom.preview_queue import ask_for_preview
from integrations.dicom.previews import cache_of, render_into_cache
from integrations.dicom.storage import path_of
from integrations.dicomweb.rendered import rendered_png
from integrations.dicomweb.transcode import transcoded
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


def _age(paths, seconds: float = 3 * 3600) -> None:
    long_ago = time.time() - seconds
    for path in paths:
        os.utime(path, (long_ago, long_ago))


def _derived(storage, sha256: str) -> list:
    """The cached files made from a stored file, through the code that makes them: its preview, a rendered image
    (DICOMweb /rendered) and its transcoded copy."""
    render_into_cache(storage, cache_of(storage), sha256)
    assert rendered_png(storage, sha256, 64) is not None
    transcoded(storage, path_of(storage, sha256), sha256)  # the copy, or the marker that there is none: cached
    made = sorted(p for p in cache_of(storage).rglob(f"{sha256}-*") if p.is_file())
    assert {p.relative_to(cache_of(storage)).parts[0] for p in made} == {sha256[:2], "rendered", "transcoded"}
    return made


def test_cached_previews_renderings_and_transcodings_of_a_gone_file_are_orphans(dicom_ctx, storage, tmp_path,
                                                                                 database_url):
    _case_id, accession = demo_case(dicom_ctx)
    sources = [rewrite(tmp_path / "src", "CT_small.dcm", **for_case(accession)) for _ in range(2)]
    for source in sources:
        assert ingest_file(dicom_ctx, source, "ch-brest", "dicom", storage=storage).status == "stored"
    kept_file, gone_file = stored_files(storage)
    kept, gone = _derived(storage, kept_file.name), _derived(storage, gone_file.name)
    gone_file.unlink()  # its source gone (removed by hand, a restore...): its decoded copies must go too
    # An unreferenced stored file and its cached copies: all found in the same run.
    stray = storage / "ef" / ("ef" + "4" * 62)
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(kept_file.read_bytes())
    stray_copies = [p.with_name(p.name.replace(kept_file.name, stray.name)).parent.parent / stray.name[:2]
                    / p.name.replace(kept_file.name, stray.name) for p in kept]
    for copy, original in zip(stray_copies, kept, strict=True):
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(original.read_bytes())
    young = cache_of(storage) / "rendered" / "12" / (("12" + "5" * 62) + "-1-64.png")  # a source gone, but new
    young.parent.mkdir(parents=True)
    young.write_bytes(b"png")
    ask_for_preview(cache_of(storage), "1.2.3")  # the preview queue's marker is not a derived file
    markers = [p for p in (cache_of(storage) / "pending").rglob("*") if p.is_file()]
    assert markers
    _age([kept_file, stray, *kept, *gone, *stray_copies, *markers])
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(storage.parent)}
    listed = CliRunner().invoke(main, ["dicom", "orphans", "--json", "--remove"], env=env)
    assert listed.exit_code == 0, listed.output
    expected = sorted(str(p) for p in [*gone, stray, *stray_copies])
    assert sorted(o["path"] for o in json.loads(listed.output)["orphans"]) == expected
    assert json.loads(listed.output)["removed"] == len(expected)
    assert not any(p.exists() for p in [*gone, stray, *stray_copies])
    assert all(p.exists() for p in [kept_file, *kept, young, *markers])
