from datetime import UTC, datetime

from pipeline.load.incremental import PreviousState, classify, registry_counts
from pipeline.models import SnapshotEntry


def _entry(path, sha):
    registry = path.split("/")[0]
    return SnapshotEntry(path=path, registry=registry, url="u", sha256=sha, provenance="captured",
                         fetched_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_classify_tells_new_changed_and_unchanged_snapshots():
    previous = PreviousState(snapshot_shas={"ctgov/NCT00000001.json": "a", "ctgov/NCT00000002.json": "b"})
    entries = [_entry("ctgov/NCT00000001.json", "a"), _entry("ctgov/NCT00000002.json", "c"),
               _entry("ctis/2023-000001-01-00.json", "d")]
    assert classify(entries, previous) == {"ctgov/NCT00000001.json": "unchanged", "ctgov/NCT00000002.json": "changed",
                                           "ctis/2023-000001-01-00.json": "new"}


def test_removed_counts_registry_snapshots_only_not_documents():
    previous = PreviousState(snapshot_shas={"ctgov/NCT00000001.json": "a", "documents/page.txt": "x",
                                            "euctr/2019-000001-01.txt": "e"})
    entries = [_entry("ctgov/NCT00000001.json", "a")]
    counts = registry_counts(entries, classify(entries, previous), previous)
    assert {k: dict(v) for k, v in counts.items()} == {"ctgov": {"unchanged": 1}, "euctr": {"removed": 1}}
