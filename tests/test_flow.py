"""End to end through the Prefect flow, offline from the committed snapshots.

All flow tests share one temporary Prefect server (the session fixture ``prefect_harness``).
"""

from __future__ import annotations


import duckdb
import pyarrow.parquet as pq
import pytest

from conftest import EMBEDDED_PAGE

pytestmark = pytest.mark.flow

VOLATILE = {"run_id", "extracted_at", "started_at", "finished_at", "valid_from", "valid_to"}


def _run(**kwargs):
    from pipeline.orchestrate.flows import trialrecon_flow

    return trialrecon_flow(**kwargs)


def _table(db, name):
    with duckdb.connect(str(db), read_only=True) as con:
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [name]).fetchall()]
        keep = [c for c in cols if c not in VOLATILE]
        return con.execute(f'SELECT {", ".join(keep)} FROM "{name}" ORDER BY ALL').fetchall()


@pytest.fixture(scope="module")
def first_run(prefect_harness, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return out, _run(output_dir=out)


def test_run_loads_the_pages_stated_facts(first_run):
    out, summary = first_run
    counts = summary.row_counts
    assert summary.documents == ["aldesleukin"]
    assert (counts["documents"], counts["document_trials"], counts["document_references"],
            counts["document_ongoing"], counts["document_glossary"]) == (1, 15, 14, 10, 12)
    assert counts["document_claims"] > 20


def test_run_writes_every_table_but_its_caches_to_parquet(first_run):
    from pipeline.load.tables import TABLES_BY_NAME

    out, summary = first_run
    for table, count in summary.row_counts.items():
        path = out / "parquet" / f"{table}.parquet"
        if TABLES_BY_NAME[table].parquet:
            assert pq.read_table(path).num_rows == count, table
        else:
            assert not path.exists() and count > 0, table


def test_run_loads_a_record_per_snapshot_and_names_trials_without_one(first_run):
    out, summary = first_run
    assert summary.records == summary.row_counts["trials"] > 0
    for trial in ("NCT05607420", "2023-504632-17-00", "2023-506400-99-00", "2024-515357-16-00"):
        assert trial in summary.trials_without_records


def test_second_run_with_nothing_changed_does_no_work_and_leaves_data_identical(first_run):
    out, summary = first_run
    before = {t: _table(summary.database, t) for t in summary.row_counts if t not in ("pipeline_runs", "run_registry_counts")}
    again = _run(output_dir=out)
    assert (again.work_done, again.parsed, again.records) == (False, 0, 0)
    assert {t: _table(again.database, t) for t in before} == before
    assert again.row_counts["pipeline_runs"] == summary.row_counts["pipeline_runs"] + 1


def test_a_second_document_stands_beside_the_first(prefect_harness, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text(EMBEDDED_PAGE.read_text().replace("Aldesleukin", "Proleukin", 1))
    summary = _run(documents=[EMBEDDED_PAGE, other], output_dir=tmp_path / "out")
    assert sorted(summary.documents) == ["aldesleukin", "proleukin"]
    rows = _table(summary.database, "document_trials")
    assert len(rows) == 30


def test_run_publishes_the_verdict_counts_as_a_prefect_artifact(first_run):
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    out, summary = first_run
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["trialrecon-reconciliation"])))
    with duckdb.connect(str(summary.database), read_only=True) as con:
        counts = dict(con.execute("SELECT verdict, count(*) FROM reconciliation GROUP BY 1").fetchall())
    expected = [{"verdict": v, "comparisons": counts.get(v, 0)} for v in ("match", "partial", "mismatch", "unverifiable")]
    published = [a.data if isinstance(a.data, list) else json.loads(a.data) for a in artifacts]
    assert expected in published


def test_run_summary_leads_with_verdicts_findings_and_the_report(first_run):
    out, summary = first_run
    assert summary.findings[0].startswith("verdicts: mismatch ")
    assert summary.findings[1].startswith("findings: 7 facts of the page contradicted by a registry")
    assert summary.findings[2] == "unaccepted discrepancies: 0 (16 accepted by the baseline)"
    assert summary.findings[-1] == f"report: {out / 'report.html'}"
    assert summary.report == out / "report.html" and summary.report.exists()
    assert summary.record_provenance == {"captured": 0, "reconstructed": 20}


def test_run_with_a_bad_baseline_is_refused_before_writing_anything(prefect_harness, tmp_path):
    from pipeline.outputs.baseline import BaselineError

    bad = tmp_path / "baselines"
    bad.mkdir()
    (bad / "aldesleukin.json").write_text("{not json")
    with pytest.raises(BaselineError, match="aldesleukin.json"):
        _run(output_dir=tmp_path / "out", baseline_dir=bad)
    assert not (tmp_path / "out" / "trialrecon.duckdb").exists()


def test_a_run_with_nothing_changed_still_leads_with_the_findings(first_run):
    out, summary = first_run
    again = _run(output_dir=out)
    assert again.work_done is False
    assert again.findings == summary.findings


def test_the_default_runner_runs_a_flows_tasks_one_at_a_time(first_run):
    """The steps are CPU-bound Python: tasks side by side in threads only contend for the GIL."""
    from collections import defaultdict

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs()
    by_flow_run = defaultdict(list)
    for task_run in task_runs:
        if task_run.start_time and task_run.end_time:
            by_flow_run[task_run.flow_run_id].append((task_run.start_time, task_run.end_time))
    assert any(len(spans) > 5 for spans in by_flow_run.values())  # the run's snapshots were loaded by tasks
    for spans in by_flow_run.values():
        spans.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))
