import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.errors import OutputLockedError
from pipeline.load.writer import Batch, output_lock, write_outputs


def _doc_batch(doc_id: str, title: str, run_id: str) -> Batch:
    batch = Batch()
    batch.replace_keys("documents", [(doc_id,)])
    batch.add("documents", [{"document_id": doc_id, "title": title, "run_id": run_id}])
    return batch


def _titles(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT document_id, title FROM documents ORDER BY 1").fetchall()


def test_loading_the_same_unit_twice_replaces_its_rows(tmp_path):
    write_outputs(_doc_batch("a", "A", "r1"), tmp_path, "r1")
    result = write_outputs(_doc_batch("a", "A2", "r2"), tmp_path, "r2")
    assert _titles(result.database) == [("a", "A2")]


def test_a_second_document_stands_beside_the_first(tmp_path):
    write_outputs(_doc_batch("a", "A", "r1"), tmp_path, "r1")
    result = write_outputs(_doc_batch("b", "B", "r2"), tmp_path, "r2")
    assert _titles(result.database) == [("a", "A"), ("b", "B")]
    assert pq.read_table(result.parquet_dir / "documents.parquet").num_rows == 2


def test_every_table_but_the_runs_caches_is_exported_to_parquet(tmp_path):
    result = write_outputs(_doc_batch("a", "A", "r1"), tmp_path, "r1")
    from pipeline.load.tables import ALL_TABLES

    exported = sorted(p.stem for p in result.parquet_dir.iterdir())
    assert exported == sorted(t.name for t in ALL_TABLES if t.name not in ("record_cache", "record_keys"))


def test_failed_write_leaves_previous_outputs_intact(tmp_path):
    first = write_outputs(_doc_batch("a", "A", "r1"), tmp_path, "r1")
    bad = _doc_batch("b", "B", "r2")
    bad.add("documents", [{"document_id": "c", "no_such_column": 1, "run_id": "r2"}])
    with pytest.raises(ValueError, match="no_such_column"):
        write_outputs(bad, tmp_path, "r2")
    assert _titles(first.database) == [("a", "A")]
    assert pq.read_table(tmp_path / "parquet" / "documents.parquet").num_rows == 1
    assert not any(p.name.endswith(".staging") for p in tmp_path.iterdir())


def test_old_parquet_versions_are_pruned(tmp_path):
    for i in range(4):
        write_outputs(_doc_batch("a", "A", f"r{i}"), tmp_path, f"r{i}")
    assert sorted(p.name for p in (tmp_path / ".versions").iterdir()) == ["r2", "r3"]


def test_second_writer_is_refused_while_the_lock_is_held(tmp_path):
    with output_lock(tmp_path):
        with pytest.raises(OutputLockedError, match="another trialrecon run"):
            with output_lock(tmp_path, timeout=0.1):
                pass


def test_reconciliation_summary_view_counts_by_verdict(tmp_path):
    batch = Batch()
    rows = [("t1", "match"), ("t1", "mismatch"), ("t1", "mismatch"), ("t2", "unverifiable")]
    batch.add("reconciliation", [
        {"document_id": "d", "claim_id": f"c{i}", "trial_id": t, "field": "phase", "verdict": v,
         "rule": "r", "run_id": "r1"} for i, (t, v) in enumerate(rows)])
    result = write_outputs(batch, tmp_path, "r1")
    with duckdb.connect(str(result.database), read_only=True) as con:
        got = con.execute("SELECT trial_id, match, partial, mismatch, unverifiable, total "
                          "FROM v_reconciliation_summary").fetchall()
    assert got == [("t1", 1, 0, 2, 0, 3), ("t2", 0, 0, 0, 1, 1)]


def _history_batch(value: str, when: str, run_id: str) -> Batch:
    from datetime import datetime

    batch = Batch()
    batch.history["trial_history"] = [{
        "trial_id": "NCT00000001", "registry": "ctgov", "field": "status_normalized", "value": value,
        "valid_from": datetime.fromisoformat(when), "snapshot_sha256": run_id, "run_id": run_id}]
    return batch


def _history(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT value, strftime(valid_from, '%Y-%m-%d'), strftime(valid_to, '%Y-%m-%d') "
                           "FROM trial_history ORDER BY valid_from").fetchall()


def test_history_opens_a_row_for_a_new_value_and_closes_the_old_one(tmp_path):
    write_outputs(_history_batch("RECRUITING", "2026-01-01T00:00:00+00:00", "r1"), tmp_path, "r1")
    result = write_outputs(_history_batch("COMPLETED", "2026-03-01T00:00:00+00:00", "r2"), tmp_path, "r2")
    assert _history(result.database) == [
        ("RECRUITING", "2026-01-01", "2026-03-01"), ("COMPLETED", "2026-03-01", None)]


def test_history_keeps_one_open_row_while_the_value_holds(tmp_path):
    write_outputs(_history_batch("RECRUITING", "2026-01-01T00:00:00+00:00", "r1"), tmp_path, "r1")
    result = write_outputs(_history_batch("RECRUITING", "2026-02-01T00:00:00+00:00", "r2"), tmp_path, "r2")
    assert _history(result.database) == [("RECRUITING", "2026-01-01", None)]


class _Chunks:
    """A row stream of fixed chunks, counting how many chunks have been made."""

    def __init__(self, chunks):
        self._chunks, self.made = chunks, 0

    @property
    def tables(self):
        return frozenset(name for chunk in self._chunks for name in chunk)

    def chunks(self):
        for chunk in self._chunks:
            self.made += 1
            yield chunk


def test_a_streamed_batch_writes_what_the_same_rows_given_at_once_write(tmp_path):
    eager = _doc_batch("a", "A", "r1")
    eager.add("documents", [{"document_id": "b", "title": "B", "run_id": "r1"}])
    streamed = Batch()
    streamed.replace_keys("documents", [("a",)])
    stream = _Chunks([{"documents": [{"document_id": "a", "title": "A", "run_id": "r1"}]},
                      {"documents": [{"document_id": "b", "title": "B", "run_id": "r1"}]}])
    streamed.streams.append(stream)
    assert streamed.touched() == {"documents"}
    one = write_outputs(eager, tmp_path / "eager", "r1")
    two = write_outputs(streamed, tmp_path / "streamed", "r1")
    assert _titles(two.database) == _titles(one.database) == [("a", "A"), ("b", "B")]
    assert stream.made == 2


def test_streamed_history_values_are_folded_in_with_those_given_at_once(tmp_path):
    from datetime import datetime

    write_outputs(_history_batch("RECRUITING", "2026-01-01T00:00:00+00:00", "r1"), tmp_path, "r1")
    batch = _history_batch("COMPLETED", "2026-03-01T00:00:00+00:00", "r2")
    batch.streams.append(_Chunks([{"trial_history": [{
        "trial_id": "NCT00000002", "registry": "ctgov", "field": "status_normalized", "value": "WITHDRAWN",
        "valid_from": datetime.fromisoformat("2026-03-01T00:00:00+00:00"), "snapshot_sha256": "r2", "run_id": "r2"}]}]))
    result = write_outputs(batch, tmp_path, "r2")
    with duckdb.connect(str(result.database), read_only=True) as con:
        got = con.execute("SELECT trial_id, value, valid_to IS NULL FROM trial_history ORDER BY 1, valid_from").fetchall()
    assert got == [("NCT00000001", "RECRUITING", False), ("NCT00000001", "COMPLETED", True),
                   ("NCT00000002", "WITHDRAWN", True)]


def test_a_table_too_wide_for_the_memory_cap_is_exported_under_a_larger_one(tmp_path, monkeypatch, caplog):
    from pipeline.load import writer

    monkeypatch.setattr(writer, "STAGING_MEMORY_LIMIT", "4MB")  # sorting 5,000 wide rows needs more
    batch = Batch()
    batch.add("documents", [{"document_id": f"d{n:05}", "title": "t" * 400, "run_id": "r1"} for n in range(5000)])
    result = write_outputs(batch, tmp_path, "r1")
    exported = pq.read_table(result.parquet_dir / "documents.parquet")
    assert exported.num_rows == 5000
    assert exported.column("document_id").to_pylist() == sorted(exported.column("document_id").to_pylist())
    assert "exporting documents" in caplog.text and "ran out of DuckDB's" in caplog.text
