from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.errors import IntegrityError, SnapshotError, UnsafePathError
from pipeline.store.snapshots import SnapshotStore, sha256_bytes, snapshot_relpath

from conftest import REPO


def _store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "snapshots")


def test_write_records_file_and_manifest_entry(tmp_path):
    store = _store(tmp_path)
    entry = store.write("ctgov", "NCT00000001", "json", b"{}", registry="ctgov", url="https://x/1",
                        provenance="captured", trial_id="NCT00000001", http_status=200, etag='"e1"',
                        fetched_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert (store.root / "ctgov" / "NCT00000001.json").read_bytes() == b"{}"
    assert store.entries() == [entry]
    assert entry.sha256 == sha256_bytes(b"{}")
    assert entry.etag == '"e1"'


def test_rewriting_a_path_replaces_its_manifest_entry(tmp_path):
    store = _store(tmp_path)
    store.write("ctgov", "NCT00000001", "json", b"{}", registry="ctgov", url="u", provenance="reconstructed")
    store.write("ctgov", "NCT00000001", "json", b"[]", registry="ctgov", url="u", provenance="captured")
    [entry] = store.entries()
    assert entry.provenance == "captured"
    assert store.read(entry) == b"[]"


def test_read_refuses_a_file_whose_sha256_changed(tmp_path):
    store = _store(tmp_path)
    entry = store.write("ctis", "2023-000001-01-00", "json", b"{}", registry="ctis", url="u", provenance="captured")
    (store.root / entry.path).write_bytes(b'{"tampered": true}')
    with pytest.raises(IntegrityError) as exc:
        store.read(entry)
    assert "ctis/2023-000001-01-00.json" in str(exc.value)
    assert store.verify()[0].path.endswith("2023-000001-01-00.json")


def test_read_of_a_missing_file_names_it(tmp_path):
    store = _store(tmp_path)
    entry = store.write("ctgov", "NCT00000002", "json", b"{}", registry="ctgov", url="u", provenance="captured")
    (store.root / entry.path).unlink()
    with pytest.raises(SnapshotError, match="NCT00000002.json: listed in the manifest but missing"):
        store.read(entry)


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "..", ".hidden", "x" * 300, "", "NCT1\x00"])
def test_snapshot_names_cannot_escape_the_store(name):
    with pytest.raises(UnsafePathError):
        snapshot_relpath("ctgov", name, "json")


def test_manifest_path_outside_the_store_is_refused(tmp_path):
    store = _store(tmp_path)
    entry = store.write("ctgov", "NCT00000003", "json", b"{}", registry="ctgov", url="u", provenance="captured")
    evil = entry.model_copy(update={"path": "../../outside.json"})
    with pytest.raises(UnsafePathError):
        store.read(evil)


def test_manifest_listing_a_path_twice_is_refused_with_one_line_naming_it(tmp_path):
    import json

    store = _store(tmp_path)
    store.write("ctgov", "NCT00000001", "json", b"{}", registry="ctgov", url="u", provenance="captured")
    [entry] = json.loads(store.manifest_path.read_bytes())
    store.manifest_path.write_text(json.dumps([entry, entry]))
    with pytest.raises(SnapshotError) as info:
        store.entries()
    assert str(info.value) == f"{store.manifest_path}: manifest lists ctgov/NCT00000001.json twice (entries 1 and 2)"


def test_run_on_a_manifest_listing_a_path_twice_exits_2_and_writes_nothing(tmp_path, capsys):
    import json
    import shutil

    from pipeline.cli import main

    snapshots = tmp_path / "snapshots"
    shutil.copytree(REPO / "snapshots", snapshots)
    entries = json.loads((snapshots / "manifest.json").read_bytes())
    (snapshots / "manifest.json").write_text(json.dumps([*entries, entries[0]]))
    code = main(["run", "--snapshots", str(snapshots), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert (code, len(err)) == (2, 1)
    assert f"manifest lists {entries[0]['path']} twice" in err[0]
    assert not (tmp_path / "out").exists()


def test_mark_stale_flags_only_that_entry(tmp_path):
    store = _store(tmp_path)
    a = store.write("ctgov", "NCT00000004", "json", b"1", registry="ctgov", url="u", provenance="captured")
    store.write("ctgov", "NCT00000005", "json", b"2", registry="ctgov", url="u", provenance="captured")
    store.mark_stale(a.path)
    assert {e.path: e.stale for e in store.entries()} == {
        "ctgov/NCT00000004.json": True, "ctgov/NCT00000005.json": False}


def test_committed_snapshots_match_their_manifest():
    assert SnapshotStore(REPO / "snapshots").verify() == []


def test_embedded_page_is_the_shared_source_document():
    store = SnapshotStore(REPO / "snapshots")
    [doc] = [e for e in store.entries() if e.registry == "document"]
    assert doc.url == "https://clinicaltrials.eu/drug/aldesleukin/"
    assert doc.provenance == "captured text"
    assert store.read(doc) == (REPO.parent / "shared" / "source" / "aldesleukin.txt").read_bytes()


def test_a_url_is_stored_in_the_manifest_without_its_credentials(tmp_path):
    store = SnapshotStore(tmp_path / "snapshots")
    entry = store.write("ctgov", "NCT00000001", "json", b"{}", registry="ctgov", trial_id="NCT00000001",
                        url="https://scott:tiger@clinicaltrials.gov/api/v2/studies/NCT00000001", provenance="captured")
    assert entry.url == "https://clinicaltrials.gov/api/v2/studies/NCT00000001"
    assert b"tiger" not in store.manifest_path.read_bytes()
