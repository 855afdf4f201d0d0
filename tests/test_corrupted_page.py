"""A page with one damaged line: the damage is an error naming a line, or every other row is kept.

A summary-table row someone mistyped (an id that lost a digit, a lower-case ``nct``) used to end
the table there and turn every later row into a heading: 4 rows instead of 15, exit 0, ``check``
OK. Now a line inside the table that resembles a row is read as one or is an error naming its
line, and a row found after the table ended is an error too. The property test damages one
character of a table row, a claim or an ongoing entry of the embedded page and checks that the
count of table rows never silently drops.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.errors import DocumentError
from pipeline.extract import extract_document
from pipeline.models import ExtractedDocument

from conftest import EMBEDDED_PAGE

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
PAGE_LINES = EMBEDDED_PAGE.read_text(encoding="utf-8").split("\n")
HEADER_INDEX = next(i for i, line in enumerate(PAGE_LINES) if line.startswith("Trial ID Phase"))
ONGOING_INDEX = next(i for i, line in enumerate(PAGE_LINES) if line.startswith("Ongoing Clinical Trials"))
GLOSSARY_INDEX = PAGE_LINES.index("Glossary")
# 0-based indexes of the lines a corruption may hit, by what they are.
TABLE_ROWS = [i for i in range(HEADER_INDEX + 1, ONGOING_INDEX) if PAGE_LINES[i].strip()]
CLAIM_LINES = [i for i in range(1, HEADER_INDEX) if re.search(r"\[\d+\]", PAGE_LINES[i])]
ONGOING_LINES = [i for i in range(ONGOING_INDEX + 1, GLOSSARY_INDEX) if PAGE_LINES[i].strip()]
MELANOMA_ROW = next(i for i in TABLE_ROWS if PAGE_LINES[i].startswith("NCT05727904"))


def _extract(lines: list[str]) -> ExtractedDocument:
    return extract_document("\n".join(lines), source_url="file:///page.txt", sha256="0" * 64,
                            extracted_at=WHEN, path="page.txt")


ORIGINAL = _extract(PAGE_LINES)
ORIGINAL_ROWS = [(t.trial_id, t.phase, t.condition, t.status, t.enrollment) for t in ORIGINAL.trials]


def _with_line(index: int, text: str) -> list[str]:
    lines = list(PAGE_LINES)
    lines[index] = text
    return lines


@pytest.mark.parametrize("row", [
    "NCT0572790Phase 3Untreated advanced melanomaAuthorised810",   # a digit lost
    "nct05727904Phase 3Untreated advanced melanomaAuthorised810",  # lower case
    "NCT05727904Phse 3Untreated advanced melanomaAuthorised810",   # the phase cell damaged
    "NCT05727904Phase 3Untreated advanced melanomaAuthorisd810",   # the status damaged
])
def test_malformed_table_row_is_an_error_naming_its_line_not_a_truncated_table(row):
    with pytest.raises(DocumentError) as exc:
        _extract(_with_line(MELANOMA_ROW, row))
    assert str(exc.value).startswith(f"page.txt: line {MELANOMA_ROW + 1}: summary table row")
    assert row[:40] in str(exc.value)


def test_row_after_a_table_that_ended_early_is_an_error_naming_both_lines():
    # Rows kept apart by blank lines: a damaged row after a blank line ends the table, so the
    # rows after it stand outside it. They must not become headings.
    lines = list(PAGE_LINES)
    lines[MELANOMA_ROW] = "\nNCT0572790Phase 3Untreated advanced melanomaAuthorised810\n"
    lines = "\n".join(lines).split("\n")
    with pytest.raises(DocumentError) as exc:
        _extract(lines)
    message = str(exc.value)
    assert message.startswith(f"page.txt: line {MELANOMA_ROW + 4}: summary table row outside the table "
                              f"(line {MELANOMA_ROW + 2} ended the table)")


def test_malformed_table_row_makes_run_exit_2_naming_the_line_and_writes_nothing(tmp_path, capsys):
    page = tmp_path / "page.txt"
    page.write_text("\n".join(_with_line(MELANOMA_ROW, "NCT0572790Phase 3Untreated advanced melanomaAuthorised810")))
    out = tmp_path / "out"
    code = main(["run", "--document", str(page), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and f"{page}: line {MELANOMA_ROW + 1}:" in err
    assert not out.exists()


def test_heading_right_after_the_table_still_ends_it():
    lines = _with_line(TABLE_ROWS[-1] + 1, "Ongoing Clinical Trials on Aldesleukin")
    del lines[ONGOING_INDEX]
    assert [t.trial_id for t in _extract(lines).trials] == [r[0] for r in ORIGINAL_ROWS]


_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@st.composite
def _corruptions(draw: st.DrawFn) -> tuple[int, list[str]]:
    index = draw(st.sampled_from(TABLE_ROWS + CLAIM_LINES + ONGOING_LINES))
    line = PAGE_LINES[index]
    at = draw(st.integers(0, len(line) - 1))
    kind = draw(st.sampled_from(["change", "delete", "double"]))
    if kind == "change":
        damaged = line[:at] + draw(_PRINTABLE.filter(lambda c: c != line[at])) + line[at + 1:]
    elif kind == "delete":
        damaged = line[:at] + line[at + 1:]
    else:
        damaged = line[:at] + line[at] + line[at:]
    return index, _with_line(index, damaged)


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_corruptions())
def test_one_damaged_line_is_an_error_naming_a_line_or_every_other_row_is_kept(corruption):
    index, lines = corruption
    try:
        doc = _extract(lines)
    except DocumentError as exc:
        assert re.match(r"page\.txt: line \d+: ", str(exc)), str(exc)
        assert "\n" not in str(exc)
        return
    rows = [(t.trial_id, t.phase, t.condition, t.status, t.enrollment) for t in doc.trials]
    assert len(rows) == len(ORIGINAL_ROWS)
    if index in TABLE_ROWS:
        damaged = TABLE_ROWS.index(index)
        assert rows[:damaged] + rows[damaged + 1:] == ORIGINAL_ROWS[:damaged] + ORIGINAL_ROWS[damaged + 1:]
    else:
        assert rows == ORIGINAL_ROWS
