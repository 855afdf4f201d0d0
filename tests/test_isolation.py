"""Record-level isolation: a bad snapshot costs its own records and nothing else.

A store holds good snapshots (CT.gov, CTIS, EU CTR) beside bad ones: truncated JSON, an HTML
error page where JSON was expected, CTIS's ``{}`` for "not found", a file changed behind the
manifest's back, a missing file, and a folder where a file should be. Each bad one becomes one
``load_errors`` row naming it; every good record loads; the run says it was partial (exit 3).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline import stages
from pipeline.load.incremental import PreviousState, records_json
from pipeline.store.snapshots import SnapshotStore

from conftest import EMBEDDED_PAGE, SHARED

SAMPLES = SHARED / "samples"
HTML_ERROR_PAGE = b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>"

GOOD = [
    # (folder, name, ext, registry, trial id, sample file)
    ("ctgov", "NCT00184067", "json", "ctgov", "NCT00184067", "ctgov_v2/NCT00184067.json"),
    ("ctis", "2024-510663-34-00", "json", "ctis", "2024-510663-34-00", "ctis/2024-510663-34-00.json"),
    ("euctr", "2022-002568-62", "txt", "euctr", "2022-002568-62",
     "euctr/euctr_fulltext_download_2022-002568-62_2021-002179-21.txt"),
]
GOOD_RECORDS = [
    ("ctgov", "NCT00184067"), ("ctis", "2024-510663-34-00"), ("euctr", "2021-002179-21"), ("euctr", "2022-002568-62"),
]

# snapshot path -> (registry, trial id, the error's text)
BAD = {
    "ctgov/NCT00973089.json": ("ctgov", "NCT00973089", "malformed JSON at line"),
    "ctgov/NCT03418623.json": ("ctgov", "NCT03418623", "sha256 is "),
    "ctgov/NCT03475563.json": ("ctgov", "NCT03475563", "listed in the manifest but missing"),
    "ctgov/NCT06171568.json": ("ctgov", "NCT06171568", "is a directory, not a file"),
    "ctis/2023-505613-24-00.json": ("ctis", "2023-505613-24-00", "expected JSON, got HTML"),
    "ctis/2023-508143-51-01.json": ("ctis", "2023-508143-51-01", "CTIS returned an empty record (trial not found)"),
}


def _write(store: SnapshotStore, path: str, registry: str, trial_id: str, content: bytes) -> None:
    folder, _, filename = path.partition("/")
    name, _, ext = filename.rpartition(".")
    store.write(folder, name, ext, content, registry=registry, url=f"https://registry.example/{trial_id}",
                provenance="captured", trial_id=trial_id)


def build_store(root: Path, *, with_document: bool = False) -> SnapshotStore:
    """A store with the good snapshots and one of each kind of bad snapshot."""
    store = SnapshotStore(root)
    if with_document:
        store.write("documents", "aldesleukin", "txt", EMBEDDED_PAGE.read_bytes(), registry="document",
                    url="https://clinicaltrials.eu/drug/aldesleukin/", provenance="captured text")
    for folder, name, ext, registry, trial_id, sample in GOOD:
        _write(store, f"{folder}/{name}.{ext}", registry, trial_id, (SAMPLES / sample).read_bytes())

    truncated = (SAMPLES / "ctgov_v2/NCT00973089.json").read_bytes()[:700]
    _write(store, "ctgov/NCT00973089.json", "ctgov", "NCT00973089", truncated)
    _write(store, "ctis/2023-505613-24-00.json", "ctis", "2023-505613-24-00", HTML_ERROR_PAGE)
    _write(store, "ctis/2023-508143-51-01.json", "ctis", "2023-508143-51-01", b"{}")

    # Written whole, then spoiled behind the manifest's back.
    for path in ("ctgov/NCT03418623.json", "ctgov/NCT03475563.json", "ctgov/NCT06171568.json"):
        registry, trial_id, _ = BAD[path]
        _write(store, path, registry, trial_id, (SAMPLES / "ctgov_v2" / path.split("/")[1]).read_bytes())
    (store.root / "ctgov/NCT03418623.json").write_bytes(b'{"protocolSection": {"tampered": true}}')
    (store.root / "ctgov/NCT03475563.json").unlink()
    (store.root / "ctgov/NCT06171568.json").unlink()
    (store.root / "ctgov/NCT06171568.json").mkdir()
    return store


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return build_store(tmp_path / "snapshots")


def test_each_bad_snapshot_becomes_one_load_error_naming_it(store):
    result = stages.load_records(store)
    assert [(e.snapshot, e.registry, e.trial_id) for e in result.errors] == [
        (path, registry, trial_id) for path, (registry, trial_id, _) in sorted(BAD.items())]


@pytest.mark.parametrize("path", sorted(BAD))
def test_load_error_says_what_is_wrong_with_the_snapshot(store, path):
    [error] = [e for e in stages.load_records(store).errors if e.snapshot == path]
    assert BAD[path][2] in error.error


def test_every_good_record_still_loads_beside_the_bad_snapshots(store):
    result = stages.load_records(store)
    assert sorted((r.registry, r.trial_id) for r, _ in result.records) == GOOD_RECORDS


def test_bad_snapshots_are_counted_failed_and_good_ones_new(store):
    result = stages.load_records(store)
    assert result.outcomes == {
        **{path: "failed" for path in BAD},
        **{f"{folder}/{name}.{ext}": "new" for folder, name, ext, *_ in GOOD},
    }


def test_file_changed_since_last_run_is_refused_even_though_its_records_are_cached(tmp_path):
    store = SnapshotStore(tmp_path / "snapshots")
    _write(store, "ctgov/NCT00184067.json", "ctgov", "NCT00184067",
           (SAMPLES / "ctgov_v2/NCT00184067.json").read_bytes())
    [entry] = store.entries()
    first = stages.load_records(store)
    previous = PreviousState(snapshot_shas={entry.path: entry.sha256},
                             cached_records={(entry.path, entry.sha256): records_json([r for r, _ in first.records])})
    (store.root / entry.path).write_bytes(b"{}")
    result = stages.load_records(store, previous)
    assert (result.records, [(e.snapshot, e.error[:9]) for e in result.errors]) == (
        [], [("ctgov/NCT00184067.json", "sha256 is")])


def test_load_error_row_carries_the_run_snapshot_registry_trial_and_error(store):
    from datetime import UTC, datetime

    from pipeline.load.rows import RunInfo, build_batch

    result = stages.load_records(store)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    batch = build_batch(RunInfo("r1", now, now), [], result.to_load(), store.entries(), [], [], result.errors)
    rows = batch.rows["load_errors"]
    assert [(r["run_id"], r["snapshot"], r["registry"], r["trial_id"]) for r in rows] == [
        ("r1", path, registry, trial_id) for path, (registry, trial_id, _) in sorted(BAD.items())]
    assert all(BAD[r["snapshot"]][2] in r["error"] for r in rows)


# -- through the command line -----------------------------------------------------------------------


@pytest.mark.flow
def test_run_with_bad_snapshots_exits_3_records_each_and_loads_the_rest(prefect_harness, tmp_path, capsys):
    # In this process, on the session's Prefect harness: `python -m pipeline` passing main's exit
    # status on is tested once with a subprocess (test_serve), and a subprocess here cost a
    # temporary Prefect server of its own (~17 s) to test nothing more.
    from pipeline.cli import main

    store = build_store(tmp_path / "snapshots", with_document=True)
    out = tmp_path / "out"
    assert main(["run", "--snapshots", str(store.root), "--output", str(out)]) == 3
    err = capsys.readouterr().err
    for path in BAD:
        assert f"could not use {path}: " in err
    with duckdb.connect(str(out / "trialrecon.duckdb"), read_only=True) as con:
        [(run_id, status)] = con.execute("SELECT run_id, status FROM pipeline_runs").fetchall()
        errors = con.execute("SELECT run_id, snapshot, registry, trial_id FROM load_errors ORDER BY snapshot").fetchall()
        trials = con.execute("SELECT registry, trial_id FROM trials ORDER BY registry, trial_id").fetchall()
    assert status == "partial"
    assert errors == [(run_id, path, registry, trial_id) for path, (registry, trial_id, _) in sorted(BAD.items())]
    assert trials == GOOD_RECORDS


def test_snapshot_symlinked_outside_the_store_is_one_load_error_not_a_failed_run(store, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_bytes((SAMPLES / "ctgov_v2/NCT00763412.json").read_bytes())
    _write(store, "ctgov/NCT00763412.json", "ctgov", "NCT00763412", outside.read_bytes())
    (store.root / "ctgov/NCT00763412.json").unlink()
    (store.root / "ctgov/NCT00763412.json").symlink_to(outside)
    result = stages.load_records(store)
    [error] = [e for e in result.errors if e.snapshot == "ctgov/NCT00763412.json"]
    assert error.error.startswith("refused:")
    assert sorted((r.registry, r.trial_id) for r, _ in result.records) == GOOD_RECORDS
