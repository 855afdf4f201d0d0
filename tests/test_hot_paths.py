"""The per-record hot paths keep their results when made cheaper: cached vocabularies, the
trials row built once for history, the unknown-column check of Arrow loading."""

from datetime import UTC, datetime

import pytest

from pipeline.dataset import history_rows, record_rows, trial_row
from pipeline.load import arrow_table
from pipeline.models import PartialDate, Phase, SnapshotEntry, TrialRecord, TrialStatus
from pipeline.tables import TABLES_BY_NAME
from pipeline.vocab import normalize_country, normalize_status, parse_partial_date, parse_phases

OBSERVED = datetime(2026, 1, 1, tzinfo=UTC)


def _entry() -> SnapshotEntry:
    return SnapshotEntry(
        registry="ctgov", trial_id="NCT00000001", url="https://clinicaltrials.gov/api/v2/studies/NCT00000001",
        path="ctgov/NCT00000001.json", sha256="0" * 64, provenance="captured",
    )


def _record() -> TrialRecord:
    return TrialRecord(
        trial_id="NCT00000001", registry="ctgov", title="A trial", phases=[Phase.PHASE2], status=TrialStatus.RECRUITING,
        status_raw="RECRUITING", enrollment=40, start_date=PartialDate(value="2024-03", precision="month"),
        conditions=["Melanoma"], countries=["NL", "FR"],
    )


def test_status_true_is_not_read_as_ctis_code_1_after_code_1_was_cached() -> None:
    assert normalize_status("1") is TrialStatus.NOT_YET_RECRUITING
    assert normalize_status(True) is None


def test_status_of_a_repeated_label_depends_on_the_registry_named() -> None:
    assert normalize_status("4", "ctis") is TrialStatus.RECRUITING
    assert normalize_status("4", "ctgov") is TrialStatus.UNKNOWN


def test_phases_of_a_repeated_value_are_the_same_list_each_time() -> None:
    first = parse_phases(["PHASE1", "PHASE2"])
    first.append(Phase.PHASE4)  # a caller changing its list must not change the next answer
    assert parse_phases(["PHASE1", "PHASE2"]) == [Phase.PHASE1, Phase.PHASE2]


def test_country_asked_twice_gives_the_same_code() -> None:
    assert [normalize_country("Korea, Republic of"), normalize_country("Korea, Republic of")] == ["KR", "KR"]


def test_partial_date_asked_twice_keeps_its_raw_text() -> None:
    assert parse_partial_date("March 2023") == PartialDate(value="2023-03", precision="month", raw="March 2023")
    assert parse_partial_date("March 2023") == PartialDate(value="2023-03", precision="month", raw="March 2023")


def test_history_from_a_given_trials_row_equals_history_built_from_the_record() -> None:
    record, entry = _record(), _entry()
    [trial] = record_rows(record, entry)["trials"]
    assert history_rows(record, entry, OBSERVED, trial) == history_rows(record, entry, OBSERVED)


def test_trial_row_is_the_trials_row_of_record_rows() -> None:
    record, entry = _record(), _entry()
    assert record_rows(record, entry)["trials"] == [trial_row(record, entry)]


def test_history_rows_read_tracked_fields_from_the_trials_row() -> None:
    rows = history_rows(_record(), _entry(), OBSERVED)
    values = {r["field"]: r["value"] for r in rows}
    assert values == {
        "title": "A trial", "sponsor": None, "phases": '["PHASE2"]', "status": "RECRUITING",
        "status_normalized": "RECRUITING", "enrollment": "40", "enrollment_type": None, "enrollment_scope": None,
        "start_date": "2024-03", "completion_date": None, "last_updated": None,
        "conditions": '["Melanoma"]', "countries": '["FR", "NL"]',
    }


def test_arrow_table_rejects_a_row_with_a_column_the_table_lacks_after_good_rows() -> None:
    good = {"document_id": "a", "title": "A", "run_id": "r1"}
    with pytest.raises(ValueError, match=r"table documents: unknown columns \['colour'\]"):
        arrow_table(TABLES_BY_NAME["documents"], [good, good, {**good, "colour": "red"}])


def test_arrow_table_fills_missing_columns_with_null() -> None:
    table = arrow_table(TABLES_BY_NAME["documents"], [{"document_id": "a"}, {"document_id": "b", "title": "B"}])
    assert table.column("title").to_pylist() == [None, "B"]
