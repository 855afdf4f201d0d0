"""A run with nothing to do: one connection reads the previous state and records the run."""

from datetime import UTC, datetime

import duckdb

from pipeline.load.rows import RunInfo, run_row
from pipeline.load.incremental import parser_version, read_previous_state
from pipeline.load.writer import DB_NAME, Batch, open_output_database, record_run_only, row_counts, write_outputs

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _first_run(output_dir, parsed_by: str | None = None) -> None:
    run = RunInfo(run_id="r1", started_at=T0, finished_at=T0)
    batch = Batch()
    batch.add("snapshots", [{"path": "ctgov/NCT00000001.json", "registry": "ctgov", "url": "u", "sha256": "s1",
                             "provenance": "captured", "run_id": "r1"}])
    batch.add("record_cache", [{"snapshot_path": "ctgov/NCT00000001.json", "sha256": "s1", "records_json": "[]",
                                "parser_version": parsed_by or parser_version(), "run_id": "r1"}])
    batch.add("pipeline_runs", [run_row(run, documents=1, records=1, load_errors=0, rows=[], parsed=1, reused=0,
                                        work_done=True, fingerprint="fp1")])
    write_outputs(batch, output_dir, "r1")


def _unchanged_rows(run_id: str) -> dict[str, list[dict[str, object]]]:
    run = RunInfo(run_id=run_id, started_at=T0, finished_at=T0)
    return {
        "pipeline_runs": [run_row(run, documents=0, records=0, load_errors=0, rows=None, parsed=0, reused=1,
                                  work_done=False, fingerprint="fp1")],
        "run_registry_counts": [{"registry": "ctgov", "unchanged": 1, "run_id": run_id}],
    }


def test_previous_state_read_through_the_runs_connection_has_fingerprint_and_shas(tmp_path):
    _first_run(tmp_path)
    with open_output_database(tmp_path) as con:
        previous = read_previous_state(tmp_path / DB_NAME, con)
    assert (previous.fingerprint, previous.snapshot_shas) == ("fp1", {"ctgov/NCT00000001.json": "s1"})


def test_record_cache_is_read_when_first_asked_for(tmp_path):
    _first_run(tmp_path)
    previous = read_previous_state(tmp_path / DB_NAME)
    assert "not read yet" in repr(previous)
    assert previous.cached_records == {("ctgov/NCT00000001.json", "s1"): "[]"}


def test_records_parsed_by_another_version_of_the_parsers_are_not_reused(tmp_path):
    _first_run(tmp_path, parsed_by="an older parser")
    assert read_previous_state(tmp_path / DB_NAME).cached_records == {}


def test_no_database_yet_gives_no_connection_and_an_empty_state(tmp_path):
    with open_output_database(tmp_path) as con:
        previous = read_previous_state(tmp_path / DB_NAME, con)
    assert (con, previous.fingerprint, previous.snapshot_shas, previous.cached_records) == (None, None, {}, {})


def test_unchanged_run_recorded_through_the_shared_connection_is_in_the_database_and_parquet(tmp_path):
    import pyarrow.parquet as pq

    _first_run(tmp_path)
    with open_output_database(tmp_path) as con:
        result = record_run_only(tmp_path, _unchanged_rows("r2"), con)
    assert result.row_counts == row_counts(tmp_path / DB_NAME)
    assert result.row_counts["pipeline_runs"] == 2
    assert sorted(pq.read_table(result.parquet_dir / "pipeline_runs.parquet").column("run_id").to_pylist()) == [
        "r1", "r2"]
    assert not (tmp_path / f"{DB_NAME}.wal").exists()


def test_unchanged_run_on_a_database_lacking_a_column_adds_it_first(tmp_path):
    _first_run(tmp_path)
    with duckdb.connect(str(tmp_path / DB_NAME)) as con:
        con.execute('ALTER TABLE run_registry_counts DROP COLUMN "failed"')  # as an older version wrote it
    result = record_run_only(tmp_path, _unchanged_rows("r2"))
    with duckdb.connect(str(result.database), read_only=True) as con:
        assert con.execute("SELECT registry, unchanged, failed FROM run_registry_counts").fetchall() == [
            ("ctgov", 1, None)]
