"""A snapshot is the record of the trial its manifest entry names, and a trial has one record per registry.

A file that holds another trial than its entry says is refused with a line naming both; two
snapshots giving one trial with different values keep the first (in path order) and the second
becomes a load error naming both snapshots and the fields that differ; two identical ones give
one record.
"""

from __future__ import annotations

import json

from pipeline import stages
from pipeline.load.incremental import PreviousState
from pipeline.store.snapshots import SnapshotStore

from conftest import SHARED

SAMPLE = SHARED / "samples" / "ctgov_v2" / "NCT00184067.json"


def _write(store: SnapshotStore, name: str, trial_id: str, content: bytes) -> None:
    store.write("ctgov", name, "json", content, registry="ctgov", trial_id=trial_id,
                url=f"https://registry.example/{name}", provenance="captured")


def _page_of(study: bytes) -> bytes:
    """The same study inside a CT.gov /studies page (one snapshot that holds it among others)."""
    return json.dumps({"studies": [json.loads(study)]}).encode()


def test_a_snapshot_holding_another_trial_than_its_entry_is_a_load_error_naming_both(tmp_path):
    store = SnapshotStore(tmp_path)
    _write(store, "NCT03064438", "NCT03064438", SAMPLE.read_bytes())  # NCT00184067's record under another name

    records = stages.load_records(store)

    assert records.records == []
    [error] = records.errors
    assert (error.snapshot, error.trial_id) == ("ctgov/NCT03064438.json", "NCT03064438")
    assert error.error == "holds the record of NCT00184067, not of NCT03064438"


def test_a_cached_record_of_another_trial_is_refused_as_well(tmp_path):
    from pipeline.load.incremental import records_json

    store = SnapshotStore(tmp_path)
    _write(store, "NCT03064438", "NCT03064438", SAMPLE.read_bytes())
    [entry] = store.entries()
    from pipeline.registries import parse_snapshot

    cached = records_json(parse_snapshot(SAMPLE.read_bytes(), path="x", registry="ctgov"))
    previous = PreviousState({entry.path: entry.sha256}, {(entry.path, entry.sha256): cached})

    records = stages.load_records(store, previous)

    assert [e.error for e in records.errors] == ["holds the record of NCT00184067, not of NCT03064438"]


def test_two_snapshots_of_one_trial_with_different_values_keep_the_first_and_report_the_second(tmp_path):
    store = SnapshotStore(tmp_path)
    study = json.loads(SAMPLE.read_bytes())
    _write(store, "NCT00184067", "NCT00184067", SAMPLE.read_bytes())
    study["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = 9999
    _write(store, "search-page", "NCT00184067", _page_of(json.dumps(study).encode()))

    records = stages.load_records(store)

    assert [(r.trial_id, r.enrollment != 9999, e.path) for r, e in records.records] == [
        ("NCT00184067", True, "ctgov/NCT00184067.json")]
    [error] = records.errors
    assert error.snapshot == "ctgov/search-page.json"
    assert error.error == ("duplicate record of NCT00184067: ctgov/NCT00184067.json gives it too, with other "
                           "values (enrollment); this snapshot's record is not used")


def test_two_snapshots_of_one_trial_with_the_same_values_give_one_record_and_no_error(tmp_path):
    store = SnapshotStore(tmp_path)
    _write(store, "NCT00184067", "NCT00184067", SAMPLE.read_bytes())
    _write(store, "search-page", "NCT00184067", _page_of(SAMPLE.read_bytes()))

    records = stages.load_records(store)

    assert ([r.trial_id for r, _ in records.records], records.errors) == (["NCT00184067"], [])
    # The cache keeps what each snapshot gave, so the next run sees the duplicate again.
    assert sorted(records.by_path) == ["ctgov/NCT00184067.json", "ctgov/search-page.json"]
