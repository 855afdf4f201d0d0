"""``reconciliation_history`` holds every verdict a comparison has had: a run's comparisons are
read back from the ``reconciliation`` rows it wrote and folded in, a changed value closing the
open row of its comparison and opening one."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from conftest import small_site
from devtools.site import change_one_page
from pipeline import run
from pipeline.load.tables import HISTORY_KEYS, RECONCILIATION_HISTORY_TABLE, RECONCILIATION_TABLE
from pipeline.load.writer import VALIDITY_COLUMNS

NO_BASELINES = Path("/nonexistent-baselines")
KEYS, VALUES = HISTORY_KEYS["reconciliation_history"]
COLUMNS = ", ".join((*KEYS, *VALUES))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """(output, first run, second run, changed document id) over a small site whose page changed between the runs."""
    folder = tmp_path_factory.mktemp("history")
    site = small_site(folder, 60, pages=3, seed=11)
    out = folder / "out"
    first = run.run_pipeline(run.read_inputs([site.pages], site.store), out, NO_BASELINES)
    changed = change_one_page(site, "page-00001.txt")
    second = run.run_pipeline(run.read_inputs([site.pages], site.store), out, NO_BASELINES)
    return out, first, second, changed


def _query(out: Path, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    with duckdb.connect(str(out / "trialrecon.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_every_history_column_but_its_validity_is_a_reconciliation_column():
    values = [c for c in RECONCILIATION_HISTORY_TABLE.column_names if c not in VALIDITY_COLUMNS]
    assert set(values) <= set(RECONCILIATION_TABLE.column_names)
    assert set(values) == {*KEYS, *VALUES}


def test_every_comparison_has_an_open_history_row_with_its_values(two_runs):
    out, *_ = two_runs
    current = _query(out, f"SELECT {COLUMNS} FROM reconciliation ORDER BY ALL")
    open_rows = _query(out, f"SELECT {COLUMNS} FROM reconciliation_history WHERE valid_to IS NULL ORDER BY ALL")
    assert current == open_rows
    assert len(current) > 100


def test_a_first_runs_history_rows_start_when_it_started_and_name_it(two_runs):
    out, first, _, changed = two_runs
    rows = _query(out, "SELECT DISTINCT run_id, valid_from FROM reconciliation_history WHERE document_id <> ?", [changed])
    [(run_id, valid_from)] = rows
    assert run_id == first.run_id
    assert valid_from == _query(out, "SELECT started_at FROM pipeline_runs WHERE run_id = ?", [first.run_id])[0][0]


def test_a_changed_value_closes_its_open_row_when_the_new_one_starts(two_runs):
    out, first, second, changed = two_runs
    [(started,)] = _query(out, "SELECT started_at FROM pipeline_runs WHERE run_id = ?", [second.run_id])
    closed = _query(out, "SELECT field, stated_value, run_id, valid_to FROM reconciliation_history "
                         "WHERE document_id = ? AND valid_to IS NOT NULL", [changed])
    assert closed, "the page's changed enrollment closed no history row"
    assert {(run_id, valid_to) for _, _, run_id, valid_to in closed} == {(first.run_id, started)}
    opened = _query(out, "SELECT DISTINCT stated_value FROM reconciliation_history WHERE document_id = ? "
                         "AND field = 'enrollment' AND valid_to IS NULL AND run_id = ?", [changed, second.run_id])
    assert any("12345" in str(value) for (value,) in opened)
