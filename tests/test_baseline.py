"""The CI gate: accepted discrepancies, the check against them and its summary."""

from __future__ import annotations

import json

import pytest

from pipeline.outputs.baseline import (
    AcceptedDiscrepancy,
    BaselineError,
    CheckResult,
    baseline_from_rows,
    check,
    dump_baseline,
    format_check,
    load_baseline,
)
from pipeline.errors import InputError
from pipeline.models import Evidence, ReconciliationRow


def _row(verdict: str = "mismatch", registry_value: str | None = "670", claim_id: str = "table:5:enrollment",
         **fields) -> ReconciliationRow:
    values = dict(
        document_id="aldesleukin", claim_id=claim_id, trial_id="NCT05727904", field="enrollment",
        stated_value="810", registry_value=registry_value, registry="ctgov", verdict=verdict,
        rule="enrollment.equal", detail="registry 670, stated 810: stated is 140 higher",
        evidence=Evidence(snapshot_path="ctgov/NCT05727904.json", snapshot_sha256="ec64c3a72f44" + "0" * 52,
                          provenance="reconstructed", registry_trial_id="NCT05727904",
                          field_path="protocolSection.designModule.enrollmentInfo.count"),
    )
    values.update(fields)
    return ReconciliationRow(**values)


def _accepting(row: ReconciliationRow, reason: str = "page counts screened patients") -> AcceptedDiscrepancy:
    [entry] = baseline_from_rows([row], reason)
    return entry


def test_missing_baseline_file_is_an_empty_baseline(tmp_path):
    assert load_baseline(tmp_path / "none.json") == []


def test_baseline_round_trips_through_its_file(tmp_path):
    entry = _accepting(_row())
    path = tmp_path / "aldesleukin.json"
    path.write_text(dump_baseline([entry]))
    assert load_baseline(path) == [entry]


def test_baseline_that_is_not_json_is_an_input_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("[{")
    with pytest.raises(InputError) as err:
        load_baseline(path)
    assert str(err.value).startswith(f"{path}: not valid JSON")


def test_baseline_entry_without_a_reason_is_refused(tmp_path):
    entry = _accepting(_row()).model_dump(mode="json")
    entry["reason"] = "   "
    path = tmp_path / "blank.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(BaselineError) as err:
        load_baseline(path)
    assert str(err.value) == f"{path}: entry 0.reason: Value error, reason must not be blank"


def test_baseline_entry_missing_a_field_is_refused(tmp_path):
    entry = _accepting(_row()).model_dump(mode="json")
    del entry["reason"]
    path = tmp_path / "short.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(BaselineError) as err:
        load_baseline(path)
    assert str(err.value) == f"{path}: entry 0.reason: Field required"


def test_baseline_that_accepts_a_discrepancy_twice_is_refused(tmp_path):
    entry = _accepting(_row()).model_dump(mode="json")
    path = tmp_path / "twice.json"
    path.write_text(json.dumps([entry, {**entry, "reason": "again"}]))
    with pytest.raises(BaselineError) as err:
        load_baseline(path)
    assert str(err.value) == f"{path}: entry 1 accepts the same discrepancy as entry 0"


def test_baseline_from_rows_seeds_one_entry_per_discrepancy_only():
    rows = [_row(), _row(), _row(verdict="match", claim_id="table:5:phase"),
            _row(verdict="unverifiable", claim_id="table:5:status")]
    assert [(e.claim_id, e.reason) for e in baseline_from_rows(rows, "to review")] == [
        ("table:5:enrollment", "to review")]


def test_unaccepted_discrepancy_fails_the_check():
    result = check([_row()], [])
    assert (len(result.unaccepted), result.exit_code) == (1, 1)


def test_accepted_discrepancy_passes_the_check():
    row = _row()
    result = check([row], [_accepting(row)])
    assert (result.unaccepted, result.accepted, result.stale_entries, result.exit_code) == ([], [row], [], 0)


def test_partial_rows_gate_like_mismatches():
    assert check([_row(verdict="partial")], []).exit_code == 1


def test_match_and_unverifiable_rows_never_gate():
    rows = [_row(verdict="match"), _row(verdict="unverifiable", claim_id="table:5:status")]
    assert check(rows, []).exit_code == 0


def test_changed_registry_value_reopens_an_accepted_discrepancy_and_leaves_the_entry_stale():
    entry = _accepting(_row(registry_value="670"))
    result = check([_row(registry_value="600")], [entry])
    assert ([r.registry_value for r in result.unaccepted], result.stale_entries, result.exit_code) == (
        ["600"], [entry], 1)


def test_entry_for_a_row_that_is_now_a_match_is_stale():
    entry = _accepting(_row())
    result = check([_row(verdict="match")], [entry])
    assert (result.stale_entries, result.exit_code) == ([entry], 0)


def test_counts_give_every_verdict():
    rows = [_row(), _row(verdict="match", claim_id="a"), _row(verdict="match", claim_id="b")]
    assert check(rows, []).counts == {"match": 2, "partial": 0, "mismatch": 1, "unverifiable": 0}


def test_exit_code_of_an_empty_result_is_zero():
    assert CheckResult().exit_code == 0


def test_format_check_lists_each_unaccepted_discrepancy_with_its_evidence():
    text = format_check(check([_row(), _row(verdict="match", claim_id="table:5:phase")], []))
    assert text == "\n".join([
        "verdicts: mismatch 1, partial 0, unverifiable 0, match 1 (2 comparisons)",
        "unaccepted discrepancies: 1",
        "  MISMATCH NCT05727904 enrollment [table:5:enrollment] enrollment.equal vs ctgov",
        "    stated:   810",
        "    registry: 670",
        "    why:      registry 670, stated 810: stated is 140 higher",
        "    evidence: ctgov/NCT05727904.json, sha256 ec64c3a72f44, reconstructed, "
        "at protocolSection.designModule.enrollmentInfo.count",
        "accepted discrepancies (baseline): 0",
        "stale baseline entries: 0",
        "result: FAIL",
    ])


def test_format_check_lists_stale_entries_with_their_reason():
    entry = _accepting(_row(registry_value="670"), "EU share")
    text = format_check(check([_row(verdict="match")], [entry]))
    assert text.splitlines()[-3:] == [
        "stale baseline entries: 1",
        "  NCT05727904 enrollment [table:5:enrollment] enrollment.equal vs ctgov: stated 810, registry 670 "
        "(reason: EU share)",
        "result: OK",
    ]


def test_format_check_says_when_a_row_compares_the_page_with_itself():
    row = _row(registry="document", rule="self.table_vs_ongoing.status", evidence=Evidence(field_path="table:5:status"))
    assert "    evidence: the page itself (table:5:status)" in format_check(check([row], [])).splitlines()


def _cross_row(compared_value: str = "TERMINATED") -> ReconciliationRow:
    return _row(claim_id="cross:NCT03108495", trial_id="NCT03108495", field="status", stated_value=None,
                registry="euctr", registry_value="ONGOING", rule="cross.status",
                compared_registry="ctgov", compared_value=compared_value)


def test_a_registry_vs_registry_entry_reopens_when_the_compared_registrys_value_changes():
    baseline = [_accepting(_cross_row("TERMINATED"))]
    assert check([_cross_row("TERMINATED")], baseline).exit_code == 0
    changed = check([_cross_row("COMPLETED")], baseline)
    assert (changed.exit_code, len(changed.stale_entries)) == (1, 1)


def test_dumped_baseline_names_the_compared_value_only_for_registry_vs_registry_entries():
    dumped = json.loads(dump_baseline([_accepting(_cross_row()), _accepting(_row())]))
    assert [("compared_value" in e, e["stated_value"]) for e in dumped] == [(True, None), (False, "810")]
    assert dumped[0]["compared_value"] == "TERMINATED"


def test_check_shows_the_compared_registrys_value_of_a_registry_vs_registry_discrepancy():
    text = format_check(check([_cross_row()], []))
    assert "    compared: TERMINATED (ctgov)" in text and "stated:" not in text


def _discrepancy(n: int) -> ReconciliationRow:
    return ReconciliationRow(document_id="d", claim_id=f"table:{n}:enrollment", trial_id=f"NCT{n:08d}",
                             field="enrollment", stated_value=str(100 + n), registry_value="90", registry="ctgov",
                             verdict="mismatch", rule="enrollment.equal")


def test_run_findings_show_at_most_ten_unaccepted_then_how_many_more_and_the_report():
    from pathlib import Path

    from pipeline.outputs.baseline import check, format_findings

    result = check([_discrepancy(n) for n in range(1, 14)], [])
    lines = format_findings([result], Path("out/report.html"))
    assert lines[:3] == ["verdicts: mismatch 13, partial 0, unverifiable 0, match 0 (13 comparisons)",
                         "findings: 13 facts of the page contradicted by a registry (SELECT * FROM v_findings)",
                         "unaccepted discrepancies: 13 (0 accepted by the baseline)"]
    assert lines[3] == "  MISMATCH NCT00000001 enrollment [table:1:enrollment]: page 101, ctgov 90"
    assert len([line for line in lines if line.startswith("  MISMATCH")]) == 10
    assert lines[-2:] == ["  and 3 more: see out/report.html", "report: out/report.html"]


def test_a_registry_vs_registry_discrepancy_names_both_registries():
    from pipeline.outputs.baseline import discrepancy_line

    row = ReconciliationRow(document_id="d", claim_id="cross:NCT00000001", trial_id="NCT00000001", field="status",
                            stated_value=None, registry_value="ONGOING", registry="euctr", verdict="mismatch",
                            rule="cross.status", compared_registry="ctgov", compared_value="TERMINATED")
    assert discrepancy_line(row) == "MISMATCH NCT00000001 status [cross:NCT00000001]: ctgov TERMINATED, euctr ONGOING"
