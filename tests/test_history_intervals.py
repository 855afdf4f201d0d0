"""History intervals only move forward, and `changes` lists only values that differ."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from pipeline.outputs.changes import changes_since, format_changes
from pipeline.load.writer import Batch, write_outputs

T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 2, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _write(out, run_id: str, values: dict[str, str], fetched_at: datetime) -> None:
    batch = Batch()
    batch.history["trial_history"] = [{
        "trial_id": "NCT00000001", "registry": "ctgov", "field": field, "value": value, "valid_from": fetched_at,
        "snapshot_sha256": run_id, "run_id": run_id} for field, value in values.items()]
    write_outputs(batch, out, run_id)


def _intervals(out) -> dict[str, list[tuple[str, datetime, datetime | None]]]:
    with duckdb.connect(str(out / "trialrecon.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT field, value, valid_from, valid_to FROM trial_history "
                           "ORDER BY field, valid_from").fetchall()
    by_field: dict[str, list[tuple[str, datetime, datetime | None]]] = {}
    for field, value, start, end in rows:
        by_field.setdefault(field, []).append((value, start, end))
    return by_field


def _assert_monotonic(intervals: list[tuple[str, datetime, datetime | None]]) -> None:
    for (_, start, end), (_, next_start, _) in zip(intervals, intervals[1:], strict=False):
        assert end is not None and start < end == next_start
    assert intervals[-1][2] is None


def test_a_value_from_an_older_fetch_starts_after_the_open_interval_never_before_it(tmp_path):
    out = tmp_path / "out"
    _write(out, "r1", {"enrollment": "24"}, T2)
    _write(out, "r2", {"enrollment": "30"}, T1)  # an older capture restored: fetched_at goes back

    [old, new] = _intervals(out)["enrollment"]
    _assert_monotonic([old, new])
    assert (old[0], old[1], new[0]) == ("24", T2, "30")


def test_values_changing_under_one_fetched_at_give_intervals_of_positive_length(tmp_path):
    out = tmp_path / "out"
    for run_id, value in (("r1", "24"), ("r2", "30"), ("r3", "24")):
        _write(out, run_id, {"enrollment": value, "status": "RECRUITING"}, T1)

    enrollment = _intervals(out)["enrollment"]
    _assert_monotonic(enrollment)
    assert [v for v, _, _ in enrollment] == ["24", "30", "24"]
    assert len(_intervals(out)["status"]) == 1


def test_changes_lists_only_values_that_differ(tmp_path):
    out = tmp_path / "out"
    for run_id, value in (("r1", "24"), ("r2", "30"), ("r3", "24")):
        _write(out, run_id, {"enrollment": value, "status": "RECRUITING"}, T1)

    report = changes_since(out / "trialrecon.duckdb", EPOCH)

    assert [(c.field, c.old, c.new) for c in report.records] == [("enrollment", "24", "30"), ("enrollment", "30", "24")]
    assert "24 -> 24" not in format_changes(report)


def test_changes_skips_a_history_row_that_repeats_the_value_before_it(tmp_path):
    out = tmp_path / "out"
    _write(out, "r1", {"enrollment": "24"}, T1)
    with duckdb.connect(str(out / "trialrecon.duckdb")) as con:  # as an older version could leave it
        con.execute("UPDATE trial_history SET valid_to = ?", [T2])
        con.execute("INSERT INTO trial_history VALUES ('NCT00000001', 'ctgov', 'enrollment', '24', ?, NULL, 's', 'r2')",
                    [T2])

    assert changes_since(out / "trialrecon.duckdb", EPOCH).records == []
