"""A run killed at any point leaves the previous outputs readable and complete."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.load.writer import Batch, interrupted_publish, write_outputs

from conftest import REPO

# The child writes a second batch and stops (SIGSTOP-free: it sleeps) at the chosen point, after
# telling us through a marker file; the test then kills it with SIGKILL.
CHILD = r"""
import sys, time
from pathlib import Path
import pipeline.load.writer as load

out, point, marker = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

def pause():
    marker.write_text("ready")
    time.sleep(600)

if point == "between":
    real_swap = load._swap_symlink
    def pause_before_swap(link, target):
        pause()   # the database is the new one; parquet/ still the old one
    load._swap_symlink = pause_before_swap
elif point == "duckdb":
    real_apply = load._apply
    def apply_then_pause(con, batch, *rest):
        real_apply(con, batch, *rest)   # rows are in the staging database, not published
        pause()
    load._apply = apply_then_pause
else:
    real_export = load._export_parquet
    def export_then_pause(con, folder, *kept):
        real_export(con, folder, *kept)   # the new version folder is complete but not swapped in
        pause()
    load._export_parquet = export_then_pause

batch = load.Batch()
batch.replace_keys("documents", [("b",)])
batch.add("documents", [{"document_id": "b", "title": "B", "run_id": "r2"}])
load.write_outputs(batch, out, "r2")
"""


def _first_output(out: Path) -> None:
    batch = Batch()
    batch.add("documents", [{"document_id": "a", "title": "A", "run_id": "r1"}])
    write_outputs(batch, out, "r1")


def _documents(out: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(out / "trialrecon.duckdb"), read_only=True) as con:
        db_rows = con.execute("SELECT document_id, title FROM documents ORDER BY 1").fetchall()
    pq_rows = pq.read_table(out / "parquet" / "documents.parquet").select(["document_id", "title"]).to_pylist()
    assert [(r["document_id"], r["title"]) for r in pq_rows] == db_rows
    return db_rows


def _kill_writer_at(tmp_path: Path, out: Path, point: str) -> None:
    marker = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), point, str(marker)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "child exited before reaching the kill point"
            assert time.monotonic() < deadline, "child never reached the kill point"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


@pytest.mark.parametrize("point", ["duckdb", "parquet"])
def test_run_killed_while_writing_leaves_previous_output_whole(tmp_path, point):
    out = tmp_path / "out"
    _first_output(out)
    _kill_writer_at(tmp_path, out, point)
    assert _documents(out) == [("a", "A")]
    assert interrupted_publish(out) is None  # nothing was published: nothing to repair

    # The next run cleans up what the killed one left and writes whole.
    batch = Batch()
    batch.add("documents", [{"document_id": "c", "title": "C", "run_id": "r3"}])
    write_outputs(batch, out, "r3")
    assert _documents(out) == [("a", "A"), ("c", "C")]
    assert not list(out.glob(".trialrecon.duckdb.*"))


def test_run_killed_between_the_database_and_parquet_leaves_a_marker_and_the_next_write_makes_them_agree(tmp_path):
    out = tmp_path / "out"
    _first_output(out)
    _kill_writer_at(tmp_path, out, "between")

    assert interrupted_publish(out) == "r2"  # the next run knows the outputs may disagree
    with pytest.raises(AssertionError):
        _documents(out)  # they do: the database has b, parquet/ does not

    batch = Batch()
    batch.add("documents", [{"document_id": "c", "title": "C", "run_id": "r3"}])
    write_outputs(batch, out, "r3")
    assert _documents(out) == [("a", "A"), ("b", "B"), ("c", "C")]
