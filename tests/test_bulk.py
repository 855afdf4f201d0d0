"""Scale: many pages in one run, bulk ingest of CT.gov v2 records, and the benchmark command."""

from __future__ import annotations

import argparse
import gc
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest

from conftest import EMBEDDED_PAGE, FIXTURES, SHARED
from devtools import bench
from pipeline import stages
from pipeline.store import ingest as bulk
from pipeline.store.ingest import ingest_ctgov, iter_study_bytes
from pipeline.cli import main
from pipeline.load.rows import RunInfo
from pipeline.errors import DocumentError, SnapshotError
from pipeline.load.incremental import PreviousState
from pipeline.load.writer import write_outputs
from pipeline.store.snapshots import SnapshotStore

BULK = FIXTURES / "bulk"
NDJSON = BULK / "studies.ndjson"
PAGE = BULK / "page.json"
SINGLE = BULK / "NCT01000001.json"
SAMPLES = SHARED / "samples" / "ctgov_v2"


def _rows(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql).fetchall()


def _labels(source: Path) -> list[str]:
    return [label for label, _ in iter_study_bytes(source)]


# -- reading sources ------------------------------------------------------------------------------


def test_ndjson_yields_each_non_blank_line_labelled_with_its_line_number():
    assert _labels(NDJSON) == [f"{NDJSON}:{n}" for n in (1, 3, 4, 5, 6)]


def test_page_file_yields_each_study_labelled_with_its_index():
    studies = list(iter_study_bytes(PAGE))
    assert [label for label, _ in studies] == [f"{PAGE}#studies[0]", f"{PAGE}#studies[1]"]
    assert [orjson.loads(data)["protocolSection"]["identificationModule"]["nctId"] for _, data in studies] == [
        "NCT01000002", "NCT01000003"]


def test_single_study_file_is_yielded_as_its_own_bytes():
    assert list(iter_study_bytes(SINGLE)) == [(str(SINGLE), SINGLE.read_bytes())]


def test_folder_yields_its_study_files_recursively_in_path_order_skipping_hidden_and_other_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".cache").mkdir()
    shutil.copy(SINGLE, tmp_path / "b" / "NCT01000001.json")
    shutil.copy(PAGE, tmp_path / "a.json")
    shutil.copy(SINGLE, tmp_path / ".hidden.json")
    shutil.copy(SINGLE, tmp_path / ".cache" / "x.json")
    (tmp_path / "notes.txt").write_text("not a study")
    assert _labels(tmp_path) == [
        f"{tmp_path}/a.json#studies[0]", f"{tmp_path}/a.json#studies[1]", f"{tmp_path}/b/NCT01000001.json"]


def test_zip_yields_its_json_members_in_name_order(tmp_path):
    archive = tmp_path / "ctg-studies.json.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("NCT01000003.json", b'{"protocolSection": {}}')
        zf.writestr("NCT01000001.json", SINGLE.read_bytes())
        zf.writestr("readme.txt", b"not a study")
    assert _labels(archive) == [f"{archive}!NCT01000001.json", f"{archive}!NCT01000003.json"]


def test_missing_source_is_a_snapshot_error_naming_it(tmp_path):
    with pytest.raises(SnapshotError, match=f"^{tmp_path}/nope.ndjson: not found$"):
        list(iter_study_bytes(tmp_path / "nope.ndjson"))


def test_file_of_another_kind_is_a_snapshot_error_naming_it(tmp_path):
    (tmp_path / "studies.csv").write_text("nct_id\n")
    with pytest.raises(SnapshotError, match=r"studies.csv: not a .json, .ndjson, .jsonl or .zip file$"):
        list(iter_study_bytes(tmp_path / "studies.csv"))


# -- ingest ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest")
    return out, ingest_ctgov(NDJSON, out)


def test_ingest_loads_every_good_record_into_the_trial_tables(ingested):
    out, report = ingested
    assert (report.studies, report.records) == (5, 3)
    assert _rows(report.database, "SELECT trial_id, status, enrollment, phases FROM trials ORDER BY 1") == [
        ("NCT01000001", "COMPLETED", 48, ["PHASE2"]),
        ("NCT01000002", "RECRUITING", 30, ["PHASE1", "PHASE2"]),
        ("NCT01000003", "ACTIVE_NOT_RECRUITING", 120, ["PHASE2"]),
    ]
    assert _rows(report.database, "SELECT trial_id, country FROM trial_countries ORDER BY 1, 2") == [
        ("NCT01000001", "FR"), ("NCT01000001", "US"), ("NCT01000002", "DE"),
        ("NCT01000003", "ES"), ("NCT01000003", "IT")]


def test_ingested_rows_name_the_line_they_came_from(ingested):
    out, report = ingested
    assert _rows(report.database, "SELECT trial_id, snapshot_path, provenance FROM trials ORDER BY 1") == [
        ("NCT01000001", f"{NDJSON}:1", "captured"),
        ("NCT01000002", f"{NDJSON}:3", "captured"),
        ("NCT01000003", f"{NDJSON}:6", "captured"),
    ]


def test_bad_records_become_load_errors_naming_their_line_and_the_rest_loads(ingested):
    out, report = ingested
    assert [(e.snapshot, e.registry) for e in report.load_errors] == [(f"{NDJSON}:4", "ctgov"), (f"{NDJSON}:5", "ctgov")]
    assert report.load_errors[0].error.startswith("malformed JSON at line 2 column 1")
    assert report.load_errors[1].error == "required field 'protocolSection.identificationModule.nctId' is missing"
    assert _rows(report.database, "SELECT snapshot FROM load_errors ORDER BY 1") == [
        (f"{NDJSON}:4",), (f"{NDJSON}:5",)]
    assert report.exit_code == 3


def test_ingest_records_one_partial_pipeline_run_with_its_counts(ingested):
    out, report = ingested
    assert _rows(report.database, "SELECT run_id, status, documents, records, load_errors, parsed, work_done "
                                  "FROM pipeline_runs") == [(report.run_id, "partial", 0, 3, 2, 5, True)]


def test_ingest_opens_a_history_row_per_tracked_field(ingested):
    out, report = ingested
    assert _rows(report.database, "SELECT value FROM trial_history WHERE trial_id = 'NCT01000002' "
                                  "AND field IN ('status', 'conditions') ORDER BY field") == [
        ('["Lupus Nephritis", "Systemic Lupus Erythematosus"]',), ("RECRUITING",)]


def test_ingest_exports_the_trial_tables_to_parquet(ingested):
    out, report = ingested
    assert pq.read_table(out / "parquet" / "trials.parquet").num_rows == 3
    assert pq.read_table(out / "parquet" / "trial_conditions.parquet").num_rows == 4


def test_a_trial_given_twice_keeps_its_last_record(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(NDJSON, folder / "a.ndjson")
    shutil.copy(PAGE, folder / "b.json")  # NCT01000003 again, COMPLETED
    report = ingest_ctgov(folder, tmp_path / "out")
    assert _rows(report.database, "SELECT status, snapshot_path FROM trials WHERE trial_id = 'NCT01000003'") == [
        ("COMPLETED", f"{folder}/b.json#studies[1]")]
    assert _rows(report.database, "SELECT count(*) FROM trial_conditions WHERE trial_id = 'NCT01000003'") == [(1,)]


def test_ingesting_again_replaces_the_records_rows_instead_of_adding_to_them(tmp_path):
    ingest_ctgov(NDJSON, tmp_path)
    report = ingest_ctgov(PAGE, tmp_path)
    assert _rows(report.database, "SELECT trial_id, status FROM trials ORDER BY 1") == [
        ("NCT01000001", "COMPLETED"), ("NCT01000002", "RECRUITING"), ("NCT01000003", "COMPLETED")]
    assert report.row_counts["trial_interventions"] == 5
    assert report.row_counts["pipeline_runs"] == 2


def test_reingesting_a_changed_status_closes_its_history_row(tmp_path):
    ingest_ctgov(NDJSON, tmp_path)
    report = ingest_ctgov(PAGE, tmp_path)
    rows = _rows(report.database, "SELECT value, valid_to IS NULL FROM trial_history WHERE trial_id = 'NCT01000003' "
                                  "AND field = 'status' ORDER BY valid_from")
    assert rows == [("ACTIVE_NOT_RECRUITING", False), ("COMPLETED", True)]


def test_python_engine_applies_one_batch_per_chunk(tmp_path, monkeypatch):
    applied = []
    real_apply = bulk.apply_batch
    monkeypatch.setattr(bulk, "apply_batch", lambda con, batch: (applied.append(batch), real_apply(con, batch))[1])
    ingest_ctgov(NDJSON, tmp_path, chunk_size=2, engine="python")
    # 5 studies in chunks of 2, 2 and 1, then the run's own row
    assert [len(b.rows.get("trials", [])) + len(b.rows.get("load_errors", [])) for b in applied] == [2, 2, 1, 0]
    assert [len(b.rows.get("pipeline_runs", [])) for b in applied] == [0, 0, 0, 1]


def test_small_chunks_give_the_same_tables_as_one_chunk(tmp_path):
    one = ingest_ctgov(BULK, tmp_path / "one")
    small = ingest_ctgov(BULK, tmp_path / "small", chunk_size=1)
    for table in ("trials", "trial_conditions", "trial_interventions", "trial_outcomes", "trial_countries",
                  "trial_identifiers"):
        sql = f"SELECT * EXCLUDE (run_id) FROM {table} ORDER BY ALL"
        assert _rows(one.database, sql) == _rows(small.database, sql), table


def test_a_failure_while_loading_leaves_the_previous_outputs_whole(tmp_path, monkeypatch):
    first = ingest_ctgov(PAGE, tmp_path)
    real_apply = bulk.apply_batch
    calls = []

    def fail_second(con, batch):
        calls.append(batch)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real_apply(con, batch)

    monkeypatch.setattr(bulk, "apply_batch", fail_second)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_ctgov(NDJSON, tmp_path, chunk_size=2, engine="python")
    assert _rows(first.database, "SELECT trial_id, status FROM trials ORDER BY 1") == [
        ("NCT01000002", "RECRUITING"), ("NCT01000003", "COMPLETED")]
    assert pq.read_table(tmp_path / "parquet" / "trials.parquet").num_rows == 2
    assert not [p.name for p in tmp_path.iterdir() if "staging" in p.name]


def test_ingest_leaves_the_cyclic_garbage_collector_as_it_found_it(tmp_path):
    assert gc.isenabled()
    ingest_ctgov(NDJSON, tmp_path)
    assert gc.isenabled()


def test_source_with_no_studies_fails_before_the_output_folder_is_touched(tmp_path):
    (tmp_path / "empty.ndjson").write_text("\n\n")
    with pytest.raises(SnapshotError, match="empty.ndjson: holds no studies$"):
        ingest_ctgov(tmp_path / "empty.ndjson", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ingest_reads_the_real_samples_folder_with_its_pages(tmp_path):
    report = ingest_ctgov(SAMPLES, tmp_path)
    assert (report.studies, report.records, len(report.load_errors)) == (37, 37, 0)
    assert report.row_counts["trials"] == 36  # NCT00184067 is both a sample file and on a page


def test_cli_ingest_prints_counts_names_bad_records_and_exits_3(tmp_path, capsys):
    code = main(["ingest", str(NDJSON), "--output", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 3
    assert "5 studies read" in out and "3 records loaded, 2 load errors" in out
    assert err.splitlines()[0].startswith(f"could not use {NDJSON}:4: malformed JSON")


def test_cli_ingest_of_a_missing_path_is_one_line_with_exit_2_and_no_output(tmp_path, capsys):
    code = main(["ingest", str(tmp_path / "missing"), "--output", str(tmp_path / "out")])
    assert code == 2
    assert capsys.readouterr().err == f"error: {tmp_path}/missing: not found\n"
    assert not (tmp_path / "out").exists()


# -- many pages -----------------------------------------------------------------------------------


@pytest.fixture
def two_pages(tmp_path):
    """The embedded page and a variant of it about 'Proleukin', in one folder (with a non-page file)."""
    folder = tmp_path / "pages"
    folder.mkdir()
    text = EMBEDDED_PAGE.read_text()
    (folder / "b-proleukin.txt").write_text(text.replace("Aldesleukin", "Proleukin", 1))
    (folder / "a-aldesleukin.txt").write_text(text)
    (folder / "notes.md").write_text("not a page")
    return folder


def test_a_folder_of_pages_means_every_txt_in_it_sorted(two_pages):
    sources = stages.document_sources([two_pages], SnapshotStore())
    assert [s.path.name for s in sources] == ["a-aldesleukin.txt", "b-proleukin.txt"]


def test_a_page_named_twice_is_extracted_once(two_pages):
    sources = stages.document_sources([two_pages / "b-proleukin.txt", two_pages], SnapshotStore())
    assert [s.path.name for s in sources] == ["b-proleukin.txt", "a-aldesleukin.txt"]


def test_a_folder_without_pages_is_a_document_error_naming_it(tmp_path):
    with pytest.raises(DocumentError, match=f"^{tmp_path}: folder holds no \\*.txt documents$"):
        stages.document_sources([tmp_path], SnapshotStore())


def test_a_trial_stated_by_two_pages_is_fetched_once(two_pages):
    store = SnapshotStore()
    both = stages.extract_documents(stages.document_sources([two_pages], store))
    targets = stages.refresh_targets(store, both)
    assert len(targets) == len(set(targets))
    assert targets == stages.refresh_targets(store, both[:1])


def test_two_pages_stand_apart_by_document_id_and_share_one_parse_per_snapshot(two_pages, tmp_path, monkeypatch):
    parsed: list[str] = []
    real_parse = stages.parse_entry
    monkeypatch.setattr(stages, "parse_entry", lambda store, entry: (parsed.append(entry.path), real_parse(store, entry))[1])
    store = SnapshotStore()
    sources = stages.document_sources([two_pages], store)
    docs = stages.extract_documents(sources)
    records = stages.load_records(store)
    rows = stages.reconcile_documents(docs, records)
    previous = PreviousState()
    plan = stages.plan_run(stages.read_pages(sources), store, previous)
    run = RunInfo(run_id="r1", started_at=datetime.now(UTC), finished_at=datetime.now(UTC))
    result = write_outputs(stages.run_batch(run, docs, records, store, rows, previous, plan.fingerprint), tmp_path, "r1")

    assert sorted(parsed) == sorted(e.path for e in store.entries() if e.registry in stages.REGISTRIES)
    assert _rows(result.database, "SELECT document_id, count(*) FROM document_trials GROUP BY 1 ORDER BY 1") == [
        ("aldesleukin", 15), ("proleukin", 15)]
    assert _rows(result.database, "SELECT DISTINCT document_id FROM reconciliation ORDER BY 1") == [
        ("aldesleukin",), ("proleukin",)]
    assert result.row_counts["trials"] == len(records.records)


# -- the benchmark --------------------------------------------------------------------------------


def test_corpus_is_the_same_for_the_same_seed_and_grows_by_appending(tmp_path):
    small = bench.build_corpus(SAMPLES, 30, tmp_path / "a.ndjson", seed=3)
    again = bench.build_corpus(SAMPLES, 30, tmp_path / "b.ndjson", seed=3)
    large = bench.build_corpus(SAMPLES, 40, tmp_path / "c.ndjson", seed=3)
    assert small.path.read_bytes() == again.path.read_bytes()
    assert large.path.read_bytes().startswith(small.path.read_bytes())


def test_corpus_records_are_varied_not_copies(tmp_path):
    corpus = bench.build_corpus(SAMPLES, 200, tmp_path / "c.ndjson")
    studies = [orjson.loads(line) for line in corpus.path.read_bytes().splitlines()]
    ids = {s["protocolSection"]["identificationModule"]["nctId"] for s in studies}
    titles = {s["protocolSection"]["identificationModule"]["briefTitle"] for s in studies}
    statuses = {s["protocolSection"]["statusModule"]["overallStatus"] for s in studies}
    counts = {s["protocolSection"]["designModule"]["enrollmentInfo"]["count"] for s in studies}
    assert (len(ids), len(titles)) == (200, 200)
    assert statuses == set(bench.STATUSES)
    assert len(counts) > 100
    assert 0 < sum("resultsSection" in s for s in studies) < 60


@pytest.mark.parametrize(("date", "months", "shifted"), [
    ("2019-03", 11, "2020-02"), ("2019-03-31", -3, "2018-12-28"), ("2019", 30, "2021"), ("soon", 5, "soon")])
def test_shifted_dates_keep_their_precision(date, months, shifted):
    assert bench.shift_date(date, months) == shifted


def test_bench_takes_the_median_run_of_load_and_decode_and_the_largest_peak(tmp_path, monkeypatch):
    times = {"ingest": iter([3.0, 9.0, 2.0]), "decode": iter([1.0, 1.5, 4.0])}
    peaks = {"ingest": iter([500, 900, 600]), "decode": iter([80, 90, 70])}

    def fake(kind, *args):
        return {"seconds": next(times[kind]), "cpu_seconds": 1.0, "peak_rss": next(peaks[kind]), "records": 1}

    monkeypatch.setattr(bench, "in_subprocess", fake)
    load, floor = bench.measure_load_and_floor(tmp_path / "corpus.ndjson", tmp_path / "out", repeat=3)
    assert (load["seconds"], load["peak_rss"]) == (3.0, 900)
    assert (floor["seconds"], floor["peak_rss"]) == (1.5, 90)


def test_bench_on_a_tiny_corpus_prints_every_figure(tmp_path, monkeypatch, capsys):
    # make run and an empty flow each start a Prefect server (~10 s): stand-ins keep the test fast
    # while the timing, the medians and the report run as they do for real.
    monkeypatch.setattr(bench, "startup_commands", lambda scratch: {
        "make run": ["true"], "empty flow": ["true"]})
    # The re-run against a Prefect server starts a real one (~15 s): its figures stand in too.
    monkeypatch.setattr(bench, "measure_server_rerun", lambda workdir, repeat: {
        "server_start_seconds": 12.0, "local": 3.1, "local_cpu": 2.0, "temporary": 14.0, "temporary_cpu": 9.0})
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--records", "60", "--fetch-records", "12", "--fetch-latency-ms", "5",
                              "--repeat", "1", "--workdir", str(tmp_path)])
    report = bench.main(args)
    out = capsys.readouterr().out
    for figure in ("rec/s", "MB/s", "ratio", "peak RSS load", "peak RSS decode", "against a bound of",
                   "cold", "warm", "make run (cold output)", "empty Prefect flow",
                   "local Prefect server running: 3.10 s (cpu 2.00 s); temporary server: 14.00 s (cpu 9.00 s)"):
        assert figure in out, figure
    assert [name for name, _ in report.verdicts] == [
        "parse+load within 2x of orjson (60 records)", "peak RSS under 1 GiB (60 records)",
        "peak RSS under 1 GiB (100,000 records)", "fetch within 1.25x of its bound",
        "warm re-run under 10% of the cold run (60 snapshots)", "make run within 1.3x of an empty flow",
        "warm re-run under 4 s with a local server running"]
    assert "0 failed" in out and "work done: cold True, warm False" in out
    assert "embedded default (20 snapshots)" in out and "embedded default + 60 corpus snapshots" in out
