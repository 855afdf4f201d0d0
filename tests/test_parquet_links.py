"""A new Parquet version exports again only the tables a batch changes; the others are
hard-linked from the version published with the database, when that one can be trusted."""

import os

import duckdb
import pyarrow.parquet as pq

from pipeline.load.tables import PARQUET_TABLES
from pipeline.load.writer import Batch, write_outputs


def _write(out, version, documents=(), runs=(), **options):
    batch = Batch()
    if documents:
        batch.add("documents", [{"document_id": d, "title": d.upper(), "run_id": version} for d in documents])
    if runs:
        batch.add("pipeline_runs", [{"run_id": r} for r in runs])
    return write_outputs(batch, out, version, **options)


def _inode(out, table):
    return os.stat(out / "parquet" / f"{table}.parquet").st_ino


def _agree(out):
    """Every Parquet file holds its table's rows as the database does."""
    with duckdb.connect(str(out / "trialrecon.duckdb"), read_only=True) as con:
        for table in PARQUET_TABLES:
            in_db = con.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0]
            assert pq.read_metadata(out / "parquet" / f"{table.name}.parquet").num_rows == in_db, table.name


def test_a_table_the_batch_leaves_alone_is_linked_from_the_published_version(tmp_path):
    out = tmp_path / "out"
    _write(out, "r1", documents=["a"], runs=["r1"])
    before = {t: _inode(out, t) for t in ("documents", "pipeline_runs")}
    _write(out, "r2", runs=["r2"])
    assert _inode(out, "documents") == before["documents"]  # the same file, not exported again
    assert _inode(out, "pipeline_runs") != before["pipeline_runs"]
    assert pq.read_table(out / "parquet" / "pipeline_runs.parquet").num_rows == 2
    _agree(out)


def test_the_linked_file_outlives_the_version_it_came_from(tmp_path):
    out = tmp_path / "out"
    _write(out, "r1", documents=["a"], runs=["r1"])
    for n in range(2, 5):  # older versions are pruned; the file linked from them stays
        _write(out, f"r{n}", runs=[f"r{n}"])
    assert not (out / ".versions" / "r1").exists()
    assert pq.read_table(out / "parquet" / "documents.parquet").column("document_id").to_pylist() == ["a"]
    _agree(out)


def test_nothing_is_linked_when_the_caller_says_the_published_outputs_may_disagree(tmp_path):
    out = tmp_path / "out"
    _write(out, "r1", documents=["a"], runs=["r1"])
    before = _inode(out, "documents")
    _write(out, "r2", runs=["r2"], link_unchanged=False)
    assert _inode(out, "documents") != before
    _agree(out)


def test_nothing_is_linked_after_another_runs_publish_was_interrupted(tmp_path):
    out = tmp_path / "out"
    _write(out, "r1", documents=["a"], runs=["r1"])
    before = _inode(out, "documents")
    (out / ".publishing").write_text("r-killed\n")  # a run stopped between the database and Parquet
    _write(out, "r2", runs=["r2"])
    assert _inode(out, "documents") != before
    _agree(out)


def test_a_published_file_without_a_column_the_table_has_now_is_exported_again(tmp_path):
    out = tmp_path / "out"
    _write(out, "r1", documents=["a"], runs=["r1"])
    kept = out / "parquet" / "documents.parquet"
    table = pq.read_table(kept)
    os.unlink(kept)  # as an older version of the code wrote it: one column fewer
    pq.write_table(table.drop_columns([table.column_names[-1]]), kept)
    _write(out, "r2", runs=["r2"])
    assert pq.read_schema(out / "parquet" / "documents.parquet").names == table.column_names
    _agree(out)
