"""Outputs are one unit: a run stopped after the database was replaced but before the reports
were is repaired by the next run, which writes every output again instead of saying that
nothing changed."""

from __future__ import annotations

import json
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline import stages
from pipeline.load.writer import interrupted_publish
from pipeline.store.snapshots import SnapshotStore

from conftest import REPO

pytestmark = pytest.mark.flow

TRIAL = "NCT05727904"


class Killed(BaseException):
    """Stands for a kill between two outputs being replaced."""


def _revise_enrollment(store: SnapshotStore, count: int) -> None:
    entry = store.entry_for("ctgov", TRIAL)
    study = json.loads(store.read(entry))
    study["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": count, "type": "ACTUAL"}
    store.write("ctgov", TRIAL, "json", json.dumps(study).encode(), registry="ctgov", trial_id=TRIAL,
                url=entry.url, provenance="captured", http_status=200)


def test_a_run_stopped_between_the_database_and_the_reports_is_repaired_by_the_next_run(
        prefect_harness, tmp_path, monkeypatch):
    from pipeline.orchestrate.flows import trialrecon_flow

    shutil.copytree(REPO / "snapshots", tmp_path / "snapshots")
    store = SnapshotStore(tmp_path / "snapshots")
    out = tmp_path / "out"
    trialrecon_flow(output_dir=out, snapshots_dir=store.root)
    assert "4321" not in (out / "report.md").read_text()

    _revise_enrollment(store, 4321)
    write_reports = stages.write_reports

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(stages, "write_reports", killed)
    with pytest.raises(Killed):
        trialrecon_flow(output_dir=out, snapshots_dir=store.root)
    monkeypatch.setattr(stages, "write_reports", write_reports)
    assert interrupted_publish(out) is not None
    assert "4321" not in (out / "report.md").read_text()  # the database has it, the report not yet

    repaired = trialrecon_flow(output_dir=out, snapshots_dir=store.root)

    assert repaired.work_done
    assert interrupted_publish(out) is None
    assert "4321" in (out / "report.md").read_text()
    with duckdb.connect(str(out / "trialrecon.duckdb"), read_only=True) as con:
        runs = sorted(r[0] for r in con.execute("SELECT run_id FROM pipeline_runs").fetchall())
    assert sorted(pq.read_table(out / "parquet" / "pipeline_runs.parquet").column("run_id").to_pylist()) == runs
    assert repaired.run_id in runs
