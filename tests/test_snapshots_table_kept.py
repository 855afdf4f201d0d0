"""A run whose store is as the last working run left it keeps the ``snapshots`` and ``trial_links``
tables (and their Parquet files) as they are: a warm run with one page changed rewrote 20,000 rows."""
from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from conftest import small_site
from devtools.site import change_one_page, change_one_record, document_id_for, drug_name
from pipeline import run
from pipeline.load.incremental import read_previous_state
from pipeline.load.writer import DB_NAME
from pipeline.store.snapshots import sha256_bytes

NO_BASELINES = Path("/nonexistent-baselines")
RECORDS = 60


@pytest.fixture
def site(tmp_path):
    return small_site(tmp_path, RECORDS, pages=4, seed=5)


def _run(site, output) -> run.RunSummary:
    return run.run_pipeline(run.read_inputs([site.pages], site.store), output, NO_BASELINES)


def _snapshots(output) -> list[tuple]:
    with duckdb.connect(str(output / DB_NAME), read_only=True) as con:
        return con.execute("SELECT path, sha256, file_size, file_mtime_ns, run_id FROM snapshots ORDER BY path").fetchall()


def _inode(output) -> int:
    return os.stat(output / "parquet" / "snapshots.parquet").st_ino


def test_a_page_changed_alone_leaves_the_snapshots_table_and_its_parquet_file_as_they_were(site, tmp_path):
    out = tmp_path / "out"
    first = _run(site, out)
    before, inode = _snapshots(out), _inode(out)
    assert not _run(site, out).work_done  # a run with nothing to do between: it writes no snapshots
    change_one_page(site)
    second = _run(site, out)
    assert second.work_done and second.run_id != first.run_id
    assert _snapshots(out) == before and {row[-1] for row in before} == {first.run_id}
    assert _inode(out) == inode  # linked from the last version, not exported again


def test_a_record_changed_rewrites_the_snapshots_table(site, tmp_path):
    out = tmp_path / "out"
    _run(site, out)
    nct, _ = change_one_record(site)
    second = _run(site, out)
    rows = _snapshots(out)
    assert {row[-1] for row in rows} == {second.run_id}
    [changed] = [row for row in rows if row[0] == f"ctgov/{nct}.json"]
    assert changed[1] == sha256_bytes((site.store / changed[0]).read_bytes())


def test_a_snapshot_file_touched_rewrites_the_snapshots_table_with_its_new_time(site, tmp_path):
    out = tmp_path / "out"
    _run(site, out)
    [path, *_] = [row[0] for row in _snapshots(out)]
    stat = (site.store / path).stat()
    os.utime(site.store / path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = _run(site, out)
    rows = {row[0]: row for row in _snapshots(out)}
    assert rows[path][3] == stat.st_mtime_ns + 1_000_000_000
    assert {row[-1] for row in rows.values()} == {second.run_id}


def test_an_output_whose_runs_never_recorded_the_snapshots_fingerprint_rewrites_the_table(site, tmp_path):
    out = tmp_path / "out"
    first = _run(site, out)
    with duckdb.connect(str(out / DB_NAME)) as con:
        con.execute("UPDATE pipeline_runs SET snapshots_fingerprint = NULL")
    change_one_page(site)
    second = _run(site, out)
    assert {row[-1] for row in _snapshots(out)} == {second.run_id} != {first.run_id}


def test_an_output_from_before_the_snapshots_fingerprint_keeps_its_state_and_rewrites_the_table(site, tmp_path):
    out = tmp_path / "out"
    first = _run(site, out)
    with duckdb.connect(str(out / DB_NAME)) as con:
        con.execute("ALTER TABLE pipeline_runs DROP COLUMN snapshots_fingerprint")
    previous = read_previous_state(out / DB_NAME)
    assert previous.snapshots_fingerprint is None and previous.fingerprint == first.fingerprint
    change_one_page(site)
    second = _run(site, out)
    assert second.documents == [document_id_for(drug_name(0))]  # one page, not a first run's every page
    assert {row[-1] for row in _snapshots(out)} == {second.run_id}
