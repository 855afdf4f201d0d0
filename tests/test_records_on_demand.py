"""A warm run holds the cached records by their keys and validates only those a page reaches
(``pipeline.reconcile.records.LazyRecord``, the ``record_keys`` table), with the rows of a cold run."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import duckdb
import pytest

from conftest import REPO, small_site
from devtools.site import change_one_page, change_one_record
from pipeline import run, stages
from pipeline.errors import OutputError
from pipeline.load.incremental import (
    CachedJSON, RecordCache, code_version, read_previous_state, records_from_json, records_json, sha_key,
)
from pipeline.load.writer import DB_NAME
from pipeline.reconcile.records import LazyRecord, cached_records, keys_from_json, keys_json, record_key
from pipeline.registries import parse_snapshot
from pipeline.store.snapshots import SnapshotStore

NO_BASELINES = Path("/nonexistent-baselines")
RECORDS = 120


@pytest.fixture
def site(tmp_path):
    return small_site(tmp_path, RECORDS)


def _run(site, output):
    return run.run_pipeline(run.read_inputs([site.pages], site.store), output, NO_BASELINES)


def _rows(output):
    with duckdb.connect(str(output / DB_NAME), read_only=True) as con:
        return con.execute(
            "SELECT * EXCLUDE (run_id) FROM reconciliation ORDER BY document_id, claim_id, trial_id, field, registry, "
            "rule").fetchall()


def _warm_reconcile(site, output) -> run.Reconciled:
    """What a warm run into ``output`` reconciles (the reconcile step alone, as run_pipeline calls it)."""
    inputs = run.read_inputs([site.pages], site.store)
    previous = read_previous_state(output / DB_NAME)
    plan = stages.plan_run(inputs.pages, inputs.store, previous)
    return run.reconcile(inputs, run.Steps(), lambda docs: {}, previous, plan.basis, verified=plan.verified)


def test_warm_run_with_one_page_changed_validates_only_the_records_that_page_reaches(site, tmp_path):
    _run(site, tmp_path / "out")
    change_one_page(site)
    done = _warm_reconcile(site, tmp_path / "out")
    whole = {loaded.key.trial_id for loaded in done.records.loaded if loaded.held.materialised}
    [page] = done.page_records
    assert (len(done.docs), whole) == (1, {loaded.key.trial_id for loaded in page.records})
    assert len(whole) < len(done.records.loaded) / 2


def test_warm_run_with_nothing_parsed_indexes_the_store_without_validating_a_record(site, tmp_path, monkeypatch):
    _run(site, tmp_path / "out")
    change_one_page(site)
    validated = []
    monkeypatch.setattr("pipeline.reconcile.records.records_from_json",
                        lambda raw, parse=stages.records_from_json: validated.append(raw) or parse(raw))
    inputs = run.read_inputs([site.pages], site.store)
    previous = read_previous_state(tmp_path / "out" / DB_NAME)
    plan = stages.plan_run(inputs.pages, inputs.store, previous)
    jobs = stages.plan_snapshots(inputs.store, previous, plan.verified)
    records = stages.collect_records(jobs, stages.load_snapshots(inputs.store, jobs))
    records.run_records()
    assert (len(records.loaded), records.parsed, validated) == (RECORDS, set(), [])


def test_warm_runs_give_the_rows_of_a_cold_run_of_the_same_inputs(site, tmp_path):
    _run(site, tmp_path / "warm")
    change_one_page(site)
    _run(site, tmp_path / "warm")
    change_one_record(site, name="page-00002.txt")
    _run(site, tmp_path / "warm")
    _run(site, tmp_path / "cold")
    assert _rows(tmp_path / "warm") == _rows(tmp_path / "cold")


def test_stored_keys_are_those_computed_from_the_records(site, tmp_path):
    _run(site, tmp_path / "out")
    store = SnapshotStore(site.store)
    previous = read_previous_state(tmp_path / "out" / DB_NAME)
    keys = previous.keys_by_sha()
    for entry in store.entries():
        records = parse_snapshot(store.read(entry), path=entry.path, registry=entry.registry)
        assert keys_from_json(keys[(entry.registry, entry.sha256)]) == [record_key(r) for r in records]


def test_keys_stored_by_another_version_of_the_code_are_computed_again_and_stored(site, tmp_path):
    out = tmp_path / "out"
    _run(site, out)
    with duckdb.connect(str(out / DB_NAME)) as con:
        con.execute("UPDATE record_keys SET key_version = 'older code'")
    change_one_page(site)
    done = _warm_reconcile(site, out)
    assert all(loaded.held.materialised for loaded in done.records.loaded)
    _run(site, out)
    with duckdb.connect(str(out / DB_NAME), read_only=True) as con:
        assert con.execute("SELECT DISTINCT key_version FROM record_keys").fetchall() == [(code_version(),)]


def test_a_cached_record_sent_to_another_process_is_validated_there_to_the_same_record():
    data = (REPO / "snapshots" / "ctgov" / "NCT05727904.json").read_bytes()
    [record] = parse_snapshot(data, path="ctgov/NCT05727904.json", registry="ctgov")
    [held] = cached_records(records_json([record]), keys_json([record_key(record)]))
    sent = pickle.loads(pickle.dumps(held))
    assert (held.materialised, sent.materialised) == (False, False)
    assert (sent.key, sent.record) == (record_key(record), record)


def test_warm_run_with_one_page_changed_reads_the_cached_json_of_only_the_records_that_page_reaches(site, tmp_path):
    _run(site, tmp_path / "out")
    change_one_page(site)
    inputs = run.read_inputs([site.pages], site.store)
    previous = read_previous_state(tmp_path / "out" / DB_NAME)
    plan = stages.plan_run(inputs.pages, inputs.store, previous)
    done = run.reconcile(inputs, run.Steps(), lambda docs: {}, previous, plan.basis, verified=plan.verified)
    [page] = done.page_records
    assert previous.cached_records.read == len({loaded.entry.path for loaded in page.records})
    assert previous.cached_records.read < len(previous.cached_records) / 2


def test_after_a_change_of_code_the_whole_record_cache_is_read_in_one_query(site, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _run(site, out)
    with duckdb.connect(str(out / DB_NAME)) as con:
        con.execute("UPDATE record_keys SET key_version = 'older code'")  # every record validated as loaded
    previous = read_previous_state(out / DB_NAME)
    cache = previous.cached_records
    queries = []
    real_load = RecordCache.load
    monkeypatch.setattr(RecordCache, "load", lambda self, keys: (queries.append(1), real_load(self, keys))[1])
    jobs = stages.plan_snapshots(SnapshotStore(site.store).pinned(), previous)
    stages.load_snapshots(SnapshotStore(site.store).pinned(), jobs)
    assert cache.read == len(cache) > 100
    assert len(queries) == 1


def test_a_cached_record_sent_to_a_worker_carries_its_json_and_needs_no_database(site, tmp_path):
    out = tmp_path / "out"
    _run(site, out)
    cache = RecordCache.of(out / DB_NAME)
    path, sha = key = min(cache)
    stored_keys = read_previous_state(out / DB_NAME).keys_by_sha()[sha_key(path, sha)]
    [held, *_] = cached_records(CachedJSON(cache, key), stored_keys)
    sent = pickle.dumps(held)
    shutil.rmtree(out)
    assert pickle.loads(sent).record == records_from_json(cache[key])[0]


def test_a_record_cache_that_no_longer_holds_a_snapshot_is_an_output_error_naming_the_database(site, tmp_path):
    out = tmp_path / "out"
    _run(site, out)
    cache = RecordCache.of(out / DB_NAME)
    path, sha = key = min(cache)
    with duckdb.connect(str(out / DB_NAME)) as con:
        con.execute("DELETE FROM record_cache WHERE snapshot_path = ?", [path])
    with pytest.raises(OutputError, match=f"{DB_NAME}.*{path}"):
        cache[key]


def test_a_lazy_record_needs_its_record_or_its_key_and_cache():
    with pytest.raises(TypeError):
        LazyRecord(key=None)


def test_a_store_without_symlinks_is_planned_without_resolving_a_snapshot_path(tmp_path, monkeypatch):
    shutil.copytree(REPO / "snapshots", tmp_path / "snapshots")
    inputs = run.read_inputs(None, tmp_path / "snapshots")
    resolved = []
    resolve = Path.resolve
    monkeypatch.setattr(Path, "resolve", lambda self, *a, **k: resolved.append(self) or resolve(self, *a, **k))
    plan = stages.plan_run(inputs.pages, inputs.store, read_previous_state(tmp_path / "out" / DB_NAME))
    assert plan.verified and not [p for p in resolved if "snapshots" in p.parts]
