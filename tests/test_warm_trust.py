"""The warm fast path trusts only what it has checked on disk, and carries manifest-only changes.

"Nothing changed" is decided from the files themselves: a snapshot edited behind the manifest's
back is refused by the next run as a cold run would refuse it (and by every run after it), while
a file whose bytes are the same (only touched) keeps the fast path. A flag that only the manifest
changed (``stale``, set by a failed refresh) reaches the outputs.
"""

from __future__ import annotations

import os
import shutil

import duckdb
import pytest

from pipeline.store.snapshots import SnapshotStore

from conftest import REPO

pytestmark = pytest.mark.flow

PATH = "ctgov/NCT05727904.json"


@pytest.fixture
def store(tmp_path) -> SnapshotStore:
    shutil.copytree(REPO / "snapshots", tmp_path / "snapshots")
    return SnapshotStore(tmp_path / "snapshots")


def _run(store: SnapshotStore, out):
    from pipeline.orchestrate.flows import trialrecon_flow

    return trialrecon_flow(output_dir=out, snapshots_dir=store.root)


def test_a_snapshot_edited_behind_the_manifest_is_refused_by_the_warm_run_and_every_run_after(
        prefect_harness, store, tmp_path):
    out = tmp_path / "out"
    assert _run(store, out).exit_code == 0
    file = store.root / PATH
    file.write_bytes(file.read_bytes().replace(b"670", b"671", 1))  # the manifest is not touched

    after_edit = _run(store, out)
    again = _run(store, out)

    for summary in (after_edit, again):
        assert summary.work_done
        assert summary.exit_code == 3
        assert [(e.snapshot, e.error.split(" is ")[0]) for e in summary.load_errors] == [(PATH, "sha256")]


def test_a_snapshot_touched_without_changing_its_bytes_is_recorded_once_then_trusted(
        prefect_harness, store, tmp_path):
    out = tmp_path / "out"
    _run(store, out)
    file = store.root / PATH
    stat = file.stat()
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    recorded = _run(store, out)  # hashed, found intact: its new mtime is recorded, nothing parsed
    trusted = _run(store, out)

    assert (recorded.work_done, recorded.parsed, recorded.exit_code) == (True, 0, 0)
    assert (trusted.work_done, trusted.exit_code) == (False, 0)


def test_a_stale_flag_set_after_the_last_run_reaches_the_snapshots_table(prefect_harness, store, tmp_path):
    out = tmp_path / "out"
    _run(store, out)
    store.mark_stale(PATH)

    summary = _run(store, out)

    assert summary.work_done
    with duckdb.connect(str(summary.database), read_only=True) as con:
        stale = con.execute("SELECT path FROM snapshots WHERE stale").fetchall()
    assert stale == [(PATH,)]
