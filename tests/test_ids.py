"""Trial numbers have one home (pipeline.ids): every test of "is this a number, of which
registry" agrees, on every number of the tests' corpus and on its look-alikes."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import UnsafePathError
from pipeline.extract import extract_document
from pipeline.fetch.client import validate_trial_id
from pipeline.ids import (
    REGISTRY_OF_KIND,
    canonical_trial_id,
    find_trial_ids,
    registry_of,
    registry_of_leading,
    trial_id_type,
)

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "pipeline"
SHARED_SAMPLES = REPO.parent / "shared" / "samples"
WHEN = datetime(2026, 1, 1, tzinfo=UTC)

# Deliberately broader than any kind (ASCII digits, any case), so the corpus is not chosen by the
# patterns under test.
_ANY_NUMBER = re.compile(r"(?<![0-9A-Za-z-])(?:(?:NCT|ISRCTN)[0-9]{8}|[0-9]{4}-[0-9]{6}-[0-9]{2}(?:-[0-9]{2})?)"
                         r"(?![0-9A-Za-z]|-[0-9])", re.IGNORECASE)


def _corpus() -> list[str]:
    """Every trial number in tests/fixtures, the embedded store (the page and its snapshots) and
    ../shared/samples (when it stands beside the repository)."""
    roots = [REPO / "tests" / "fixtures", REPO / "snapshots", SHARED_SAMPLES]
    found: set[str] = set()
    for root in roots:
        for path in sorted(root.rglob("*")) if root.is_dir() else ():
            if path.is_file() and path.stat().st_size < 20_000_000:
                found.update(_ANY_NUMBER.findall(path.read_text("utf-8", errors="replace")))
    return sorted(found)


CORPUS = _corpus()

# Look-alikes a capture or a word processor puts into a number.
FULL_WIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}
ARABIC_INDIC = {str(d): chr(0x0660 + d) for d in range(10)}
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
DASHES = ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d"]


def test_the_corpus_holds_every_kind_of_number():
    kinds = {trial_id_type(n) for n in CORPUS}
    assert {"NCT", "EU_CT", "EUDRACT"} <= kinds, kinds
    assert len(CORPUS) > 40


@pytest.mark.parametrize("number", CORPUS)
def test_every_number_of_the_corpus_has_a_kind_and_the_registry_of_its_kind(number):
    kind = trial_id_type(number)
    assert kind is not None
    assert registry_of(number) == REGISTRY_OF_KIND.get(kind)
    assert canonical_trial_id(number) == number.upper()


@given(number=st.sampled_from(CORPUS), before=st.sampled_from(["", " ", "\t", "\u00a0"]),
       after=st.sampled_from(["", " ", "\n"]), lower=st.booleans())
def test_case_and_surrounding_whitespace_do_not_change_a_number(number, before, after, lower):
    text = before + (number.lower() if lower else number.upper()) + after
    assert trial_id_type(text) == trial_id_type(number)
    assert registry_of(text) == registry_of(number)
    assert canonical_trial_id(text) == number.upper()
    assert find_trial_ids(f"see {text}.") == [(number.upper(), trial_id_type(number))]


@st.composite
def look_alikes(draw) -> tuple[str, str]:
    """(number, the number with one look-alike inside): a digit in full-width or Arabic-Indic
    form, an invisible character between two of its characters, or another dash for a hyphen."""
    number = draw(st.sampled_from(CORPUS))
    how = draw(st.sampled_from(["full-width", "arabic-indic", "invisible", "dash"]))
    if how == "dash" and "-" not in number:
        how = "full-width"
    if how == "invisible":
        at = draw(st.integers(1, len(number) - 1))
        return number, number[:at] + draw(st.sampled_from(INVISIBLE)) + number[at:]
    if how == "dash":
        at = draw(st.sampled_from([i for i, c in enumerate(number) if c == "-"]))
        return number, number[:at] + draw(st.sampled_from(DASHES)) + number[at + 1:]
    table = FULL_WIDTH if how == "full-width" else ARABIC_INDIC
    at = draw(st.sampled_from([i for i, c in enumerate(number) if c.isdigit()]))
    return number, number[:at] + table[number[at]] + number[at + 1:]


@settings(max_examples=300)
@given(case=look_alikes())
def test_a_look_alike_inside_a_number_makes_it_no_number_for_every_test(case):
    number, look_alike = case
    assert trial_id_type(look_alike) is None
    assert registry_of(look_alike) is None
    assert canonical_trial_id(look_alike) is None
    assert find_trial_ids(f"The trial {look_alike} enrolled 40 people.") == []
    with pytest.raises(UnsafePathError):
        validate_trial_id(registry_of(number) or "ctgov", look_alike)


@settings(max_examples=40, deadline=None)
@given(case=look_alikes())
def test_the_extractor_names_no_trial_for_a_look_alike(case):
    number, look_alike = case
    page = (f"Drug\n\nNotes\n\nThe trial {look_alike} enrolled 40 people.[1]\n\n"
            "Trial ID Phase Condition Status Enrollment\nNCT00000001Phase 1CancerCompleted5\n")
    doc = extract_document(page, source_url="file:///page.txt", sha256="0" * 64, extracted_at=WHEN, path="page.txt")
    assert [c.trial_ids for c in doc.claims] == [[]]


@given(text=st.text(max_size=40))
def test_registry_of_is_the_registry_of_trial_id_type_for_any_text(text):
    kind = trial_id_type(text)
    assert registry_of(text) == (REGISTRY_OF_KIND.get(kind) if kind else None)


@pytest.mark.parametrize("number", [n for n in CORPUS if registry_of(n)])
def test_the_fetch_client_accepts_exactly_the_numbers_of_its_registry(number):
    assert validate_trial_id(registry_of(number), number.upper()) == number.upper()
    for other in {"ctgov", "ctis", "euctr"} - {registry_of(number)}:
        with pytest.raises(UnsafePathError):
            validate_trial_id(other, number.upper())


@pytest.mark.parametrize("number", [n for n in CORPUS if registry_of(n)])
def test_a_snapshot_named_by_its_number_is_told_the_same_registry(number):
    assert registry_of_leading(f"{number.lower()}.json") == registry_of(number)


# ---------------------------------------------------------------------------------------------
# One definition each, found by reading the package
# ---------------------------------------------------------------------------------------------

def _package_sources() -> dict[str, str]:
    return {str(p.relative_to(REPO)): p.read_text("utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


# How each kind's form is written as a pattern, whichever way a module writes digits.
_ID_PATTERN_SOURCES = {
    "NCT": re.compile(r"NCT(?:\\d|\[0-9\])"),
    "ISRCTN": re.compile(r"ISRCTN(?:\\d|\[0-9\])"),
    "EU_CT or EudraCT": re.compile(r"(?:\\d|\[0-9\])\{4\}-"),
}


@pytest.mark.parametrize("kind", list(_ID_PATTERN_SOURCES))
def test_each_trial_number_pattern_is_written_once_in_the_package(kind):
    where = {path: len(_ID_PATTERN_SOURCES[kind].findall(text)) for path, text in _package_sources().items()}
    where = {path: n for path, n in where.items() if n}
    expected = {"NCT": 1, "ISRCTN": 1, "EU_CT or EudraCT": 2}[kind]  # EU CT and EudraCT: one line each
    assert where == {"pipeline/ids.py": expected}


@pytest.mark.parametrize("host", ["clinicaltrials.gov", "euclinicaltrials.eu", "www.clinicaltrialsregister.eu",
                                  "clinicaltrials.eu"])
def test_each_registry_address_is_written_once_in_the_package(host):
    url = re.compile(rf"https?://{re.escape(host)}(?![\w.-])")
    where = {path: len(url.findall(text)) for path, text in _package_sources().items()}
    assert {path: n for path, n in where.items() if n} == {"pipeline/constants.py": 1}


def _registry_lists(text: str) -> int:
    """How many tuples, lists or sets (a Literal's included) of the source spell out two or more
    registries' names."""
    names = {"ctgov", "ctis", "euctr", "cteu"}
    count = 0
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            spelled = {e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in names}
            count += len(spelled) >= 2
    return count


def test_the_registry_list_is_written_once_in_the_package():
    where = {path: _registry_lists(text) for path, text in _package_sources().items()}
    # models.Registry (every source) and constants.TrialRegistry (those that issue numbers)
    assert {path: n for path, n in where.items() if n} == {"pipeline/models.py": 1, "pipeline/constants.py": 1}
