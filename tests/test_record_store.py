"""A registry record is parsed once per snapshot sha256: the same bytes at two paths of one
manifest, or at a new path in a later run, are not parsed again (``pipeline.stages.plan_snapshots``)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import duckdb
import pytest

from conftest import REPO
from pipeline import stages
from pipeline.load.incremental import read_previous_state
from pipeline.load.rows import RunInfo
from pipeline.load.writer import DB_NAME, write_outputs
from pipeline.store.snapshots import SnapshotStore

PATH = "ctgov/NCT05727904.json"
COPY = "ctgov/NCT05727904-copy.json"


@pytest.fixture
def store(tmp_path):
    shutil.copytree(REPO / "snapshots", tmp_path / "snapshots")
    return SnapshotStore(tmp_path / "snapshots")


@pytest.fixture
def parses(monkeypatch):
    """The paths :func:`stages.parse_entry` parsed, in order."""
    seen: list[str] = []
    parse = stages.parse_entry

    def counting(store, entry):
        seen.append(entry.path)
        return parse(store, entry)

    monkeypatch.setattr(stages, "parse_entry", counting)
    return seen


def _move(store: SnapshotStore, old: str, new: str, *, keep: bool = False) -> None:
    """The snapshot at ``old`` at ``new`` too (``keep``) or instead, bytes and manifest entry."""
    data = (store.root / old).read_bytes()
    (store.root / new).write_bytes(data)
    entries = store.entries()
    [entry] = [e for e in entries if e.path == old]
    moved = entry.model_copy(update={"path": new})
    if not keep:
        (store.root / old).unlink()
        entries = [e for e in entries if e.path != old]
    store.save_entries([*entries, moved])


def _write_run(store: SnapshotStore, output, previous=None) -> stages.RecordSet:
    """Load the store's records (reusing ``previous``'s) and write them, as a run with no page would."""
    from pipeline.load.incremental import PreviousState

    previous = previous or PreviousState()
    records = stages.load_records(store, previous)
    now = datetime.now(UTC)
    run = RunInfo(run_id=stages.new_run_id(now), started_at=now, finished_at=now)
    batch = stages.run_batch(run, [], records, store, [], previous, "fp")
    write_outputs(batch, output, version=run.run_id)
    return records


def test_two_paths_with_the_same_bytes_are_parsed_once(store, parses):
    _move(store, PATH, COPY, keep=True)
    records = stages.load_records(store)
    assert parses.count(PATH) + parses.count(COPY) == 1
    assert records.by_path[COPY] == records.by_path[PATH]
    assert not records.errors
    # the trial's record once, from the path parsed (the first in the manifest's order)
    assert [e.path for r, e in records.records if r.trial_id == "NCT05727904" and r.registry == "ctgov"] == [
        p for p in parses if p in (PATH, COPY)]


def test_a_later_run_does_not_parse_bytes_it_parsed_at_another_path(store, parses, tmp_path):
    output = tmp_path / "output"
    _write_run(store, output)
    parses.clear()
    _move(store, PATH, COPY)
    records = _write_run(store, output, read_previous_state(output / DB_NAME))
    assert parses == []
    assert records.outcomes[COPY] == "new"
    with duckdb.connect(str(output / DB_NAME), read_only=True) as con:
        paths = con.execute("SELECT snapshot_path FROM trials WHERE trial_id = 'NCT05727904' "
                            "AND registry = 'ctgov'").fetchall()
        cached = con.execute("SELECT snapshot_path FROM record_cache WHERE snapshot_path LIKE '%NCT05727904%'").fetchall()
    assert paths == [(COPY,)]
    assert cached == [(COPY,)]


def test_an_unchanged_store_is_parsed_by_no_later_run(store, parses, tmp_path):
    output = tmp_path / "output"
    first = _write_run(store, output)
    assert parses and set(parses) == first.parsed
    parses.clear()
    again = _write_run(store, output, read_previous_state(output / DB_NAME))
    assert parses == [] and again.parsed == set()
    assert sorted((r.registry, r.trial_id) for r, _ in again.records) == sorted(
        (r.registry, r.trial_id) for r, _ in first.records)


def test_a_file_verified_by_the_plan_is_not_read_again_and_one_not_verified_is(store, tmp_path):
    output = tmp_path / "output"
    _write_run(store, output)
    previous = read_previous_state(output / DB_NAME)
    (store.root / PATH).write_bytes(b"{}")  # changed behind the manifest's back, after a plan verified it
    trusting = stages.plan_snapshots(store, previous, verified={PATH})
    checking = stages.plan_snapshots(store, previous)
    n = [e.path for e in trusting.entries].index(PATH)
    assert stages.load_snapshot(store, trusting.entries[n], trusting.cached[n]).error is None
    assert "sha256" in stages.load_snapshot(store, checking.entries[n], checking.cached[n]).error.error
