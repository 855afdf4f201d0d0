"""A registry record moves forward in time: history records it, `changes` shows it, verdicts follow
(two runs of the pipeline's sequence in this process, over a copy of the store)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import duckdb
import pytest

from pipeline import run
from pipeline.paths import DEFAULT_BASELINE_DIR
from pipeline.outputs.changes import changes_since, format_changes
from pipeline.store.snapshots import SnapshotStore

from conftest import REPO

TRIAL = "NCT05727904"  # the page: "Authorised", enrollment 810; CT.gov: RECRUITING, 670


def _advance(store: SnapshotStore, when: datetime) -> None:
    """The record as a later capture would give it: completed, enrollment revised to 810."""
    entry = store.entry_for("ctgov", TRIAL)
    study = json.loads(store.read(entry))
    study["protocolSection"]["statusModule"]["overallStatus"] = "COMPLETED"
    study["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 810, "type": "ACTUAL"}
    store.write("ctgov", TRIAL, "json", (json.dumps(study, indent=2) + "\n").encode(), registry="ctgov",
                trial_id=TRIAL, url=entry.url, provenance="captured", http_status=200, fetched_at=when)


def _verdict(db, claim_id, registry="ctgov"):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT verdict FROM reconciliation WHERE claim_id = ? AND registry = ? AND trial_id = ?",
                           [claim_id, registry, TRIAL]).fetchone()[0]


def _run(snapshots, out):
    """One run of the pipeline's sequence in this process (the flow runs the same one as tasks:
    the history logic is the same either way; runs through the flow: test_site_incremental.py)."""
    return run.run_pipeline(run.read_inputs(None, snapshots), out, DEFAULT_BASELINE_DIR)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("history")
    snapshots = root / "snapshots"
    shutil.copytree(REPO / "snapshots", snapshots)
    out = root / "out"
    first = _run(snapshots, out)
    before = {c: _verdict(first.database, c) for c in ("table:5:status", "table:5:enrollment")}
    between = datetime.now(UTC)
    _advance(SnapshotStore(snapshots), between)
    second = _run(snapshots, out)
    return first, second, before, between


def test_the_changed_snapshot_alone_is_parsed_again(two_runs):
    first, second, _, _ = two_runs
    assert second.parsed == 1
    assert {c["registry"]: c["changed"] for c in second.registry_counts}["ctgov"] == 1


def test_history_keeps_the_old_and_the_new_value(two_runs):
    _, second, _, _ = two_runs
    with duckdb.connect(str(second.database), read_only=True) as con:
        rows = con.execute(
            "SELECT field, value, valid_to IS NULL FROM trial_history WHERE trial_id = ? AND registry = 'ctgov' "
            "AND field IN ('status_normalized', 'enrollment') ORDER BY field, valid_from", [TRIAL]).fetchall()
    assert rows == [("enrollment", "670", False), ("enrollment", "810", True),
                    ("status_normalized", "RECRUITING", False), ("status_normalized", "COMPLETED", True)]


def test_verdicts_that_depended_on_the_record_change(two_runs):
    _, second, before, _ = two_runs
    assert before == {"table:5:status": "match", "table:5:enrollment": "mismatch"}
    assert _verdict(second.database, "table:5:status") == "mismatch"
    assert _verdict(second.database, "table:5:enrollment") == "match"


def test_changes_lists_the_registry_change_and_the_verdicts_it_moved(two_runs):
    _, second, _, between = two_runs
    report = changes_since(second.database, between)
    assert {(c.trial_id, c.field, c.old, c.new) for c in report.records} >= {
        (TRIAL, "status_normalized", "RECRUITING", "COMPLETED"), (TRIAL, "enrollment", "670", "810")}
    text = format_changes(report)
    assert f"- {TRIAL} [ctgov] status_normalized: RECRUITING -> COMPLETED" in text
    assert "claim table:5:enrollment (enrollment, enrollment.equal): mismatch -> match" in text
