"""`check` is the CI gate: known, accepted discrepancies pass; a new one fails and is named."""

import pytest

from pipeline.cli import main

from conftest import EMBEDDED_PAGE, REPO

BASELINE = REPO / "baseline" / "aldesleukin.json"


def _check(page, capsys):
    code = main(["check", "--document", str(page), "--baseline", str(BASELINE)])
    return code, capsys.readouterr().out


def test_untouched_page_passes_against_the_committed_baseline(capsys):
    code, out = _check(EMBEDDED_PAGE, capsys)
    assert code == 0, out
    assert "unaccepted discrepancies: 0" in out


@pytest.mark.parametrize(
    ("old", "new", "claim", "field"),
    [
        # the phase cell of row 6 (NCT03645928)
        ("NCT03645928Phase 2Solid", "NCT03645928Phase 3Solid", "table:6:phase", "phase"),
        # the enrollment cell of row 15 (NCT02919644)
        ("Stage IV colorectal cancerAuthorised19", "Stage IV colorectal cancerAuthorised91", "table:15:enrollment",
         "enrollment"),
        # the status cell of row 5 (NCT05727904, recruiting on ClinicalTrials.gov)
        ("Untreated advanced melanomaAuthorised810", "Untreated advanced melanomaCompleted810", "table:5:status",
         "status"),
    ],
)
def test_changing_one_stated_value_fails_check_and_names_the_claim(tmp_path, capsys, old, new, claim, field):
    text = EMBEDDED_PAGE.read_text(encoding="utf-8")
    assert text.count(old) == 1
    page = tmp_path / "aldesleukin.txt"
    page.write_text(text.replace(old, new), encoding="utf-8")
    code, out = _check(page, capsys)
    assert code == 1
    assert f"[{claim}]" in out
    assert f" {field} " in out


def _store_with_one_spoiled_snapshot(tmp_path):
    import shutil

    snapshots = tmp_path / "snapshots"
    shutil.copytree(REPO / "snapshots", snapshots)
    spoiled = snapshots / "ctgov" / "NCT05727904.json"
    spoiled.write_bytes(spoiled.read_bytes().replace(b"670", b"671", 1))  # its sha256 no longer matches
    return snapshots


def test_a_snapshot_that_cannot_be_used_fails_check_with_exit_3_and_names_it(tmp_path, capsys):
    snapshots = _store_with_one_spoiled_snapshot(tmp_path)
    code = main(["check", "--snapshots", str(snapshots), "--baseline", str(BASELINE)])
    out = capsys.readouterr().out
    assert code == 3
    assert "result: OK" not in out
    assert "result: FAIL (incomplete: 1 snapshot(s) could not be used)" in out
    assert "  ctgov/NCT05727904.json: sha256 is " in out


def test_check_result_with_an_unusable_snapshot_never_passes_even_without_discrepancies():
    from pipeline.outputs.baseline import check

    assert check([], [], unusable=["ctgov/NCT00000001.json: listed in the manifest but missing"]).exit_code == 3
    assert check([], []).exit_code == 0
