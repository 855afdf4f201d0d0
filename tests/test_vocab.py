"""Vocabularies: statuses, phases, countries and partial dates on one scale each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.models import PartialDate, Phase, TrialStatus
from pipeline.registries.vocab import (
    CTIS_PHASE_CODES,
    CTIS_STATUS_CODES,
    STATUS_MAP,
    ctis_status_label,
    normalize_country,
    normalize_status,
    overall_status,
    parse_partial_date,
    parse_phases,
    status_key,
    status_mapping_rows,
)
from pipeline.ids import find_trial_ids, trial_id_type

S = TrialStatus
P = Phase
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OAS = SHARED / "samples" / "ctgov_v2" / "ctg-oas-v2_2.0.5.yaml"

# ---------------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------------

CTGOV_STATUSES = [
    ("RECRUITING", S.RECRUITING),
    ("ACTIVE_NOT_RECRUITING", S.ACTIVE_NOT_RECRUITING),
    ("NOT_YET_RECRUITING", S.NOT_YET_RECRUITING),
    ("ENROLLING_BY_INVITATION", S.ENROLLING_BY_INVITATION),
    ("SUSPENDED", S.SUSPENDED),
    ("TERMINATED", S.TERMINATED),
    ("COMPLETED", S.COMPLETED),
    ("WITHDRAWN", S.WITHDRAWN),
    ("UNKNOWN", S.UNKNOWN),
    ("AVAILABLE", S.RECRUITING),
    ("NO_LONGER_AVAILABLE", S.COMPLETED),
    ("TEMPORARILY_NOT_AVAILABLE", S.SUSPENDED),
    ("APPROVED_FOR_MARKETING", S.COMPLETED),
    ("WITHHELD", S.UNKNOWN),
]

CTIS_LABELS = [
    ("Authorised", S.ONGOING),
    ("Authorised, recruiting", S.RECRUITING),
    ("Authorised, not started", S.NOT_YET_RECRUITING),
    ("Authorised, recruitment pending", S.NOT_YET_RECRUITING),
    ("Ongoing, recruiting", S.RECRUITING),
    ("Ongoing, recruitment ended", S.ACTIVE_NOT_RECRUITING),
    ("Ongoing, not recruiting", S.ACTIVE_NOT_RECRUITING),
    ("Ended", S.COMPLETED),
    ("Halted", S.SUSPENDED),
    ("Temporarily halted", S.SUSPENDED),
    ("Suspended", S.SUSPENDED),
    ("Restarted", S.ONGOING),
    ("Revoked", S.WITHDRAWN),
    ("Withdrawn", S.WITHDRAWN),
    ("Not authorised", S.WITHDRAWN),
    ("Cancelled", S.WITHDRAWN),
    ("Expired", S.WITHDRAWN),
    ("Under evaluation", S.NOT_YET_RECRUITING),
]

CTIS_CODES = [
    (1, S.NOT_YET_RECRUITING),
    (2, S.NOT_YET_RECRUITING),
    (3, S.RECRUITING),
    (4, S.RECRUITING),
    (5, S.ACTIVE_NOT_RECRUITING),
    (6, S.SUSPENDED),
    (7, S.SUSPENDED),
    (8, S.COMPLETED),
    (9, S.WITHDRAWN),
    (10, S.WITHDRAWN),
    (11, S.WITHDRAWN),
    (12, S.WITHDRAWN),
]

EUCTR_LABELS = [
    ("Ongoing", S.ONGOING),
    ("Completed", S.COMPLETED),
    ("Prematurely Ended", S.TERMINATED),
    ("Temporarily Halted", S.SUSPENDED),
    ("Restarted", S.ONGOING),
    ("Not Authorised", S.WITHDRAWN),
    ("Prohibited by CA", S.WITHDRAWN),
    ("GB - no longer in EU/EEA", S.UNKNOWN),
    ("Trial now transitioned", S.UNKNOWN),
]

PAGE_LABELS = [
    ("Recruiting", S.RECRUITING),
    ("Completed", S.COMPLETED),
    ("Authorised", S.ONGOING),
    ("Not yet recruiting", S.NOT_YET_RECRUITING),
    ("Active, not recruiting", S.ACTIVE_NOT_RECRUITING),
    ("Terminated", S.TERMINATED),
    ("Enrolling by invitation", S.ENROLLING_BY_INVITATION),
    ("Unknown status", S.UNKNOWN),
]


@pytest.mark.parametrize(("raw", "expected"), CTGOV_STATUSES)
def test_ctgov_status_enum_maps_to_common_status(raw: str, expected: TrialStatus) -> None:
    assert normalize_status(raw, "ctgov") is expected


@pytest.mark.parametrize(("raw", "expected"), CTIS_LABELS)
def test_ctis_status_label_maps_to_common_status(raw: str, expected: TrialStatus) -> None:
    assert normalize_status(raw, "ctis") is expected


@pytest.mark.parametrize(("code", "expected"), CTIS_CODES)
def test_ctis_numeric_status_code_maps_to_common_status(code: int, expected: TrialStatus) -> None:
    assert normalize_status(code, "ctis") is expected


@pytest.mark.parametrize(("code", "expected"), CTIS_CODES)
def test_ctis_numeric_status_code_given_as_text_maps_like_the_number(code: int, expected: TrialStatus) -> None:
    assert normalize_status(str(code), "ctis") is expected


@pytest.mark.parametrize(("raw", "expected"), EUCTR_LABELS)
def test_euctr_status_label_maps_to_common_status(raw: str, expected: TrialStatus) -> None:
    assert normalize_status(raw, "euctr") is expected


@pytest.mark.parametrize(("raw", "expected"), PAGE_LABELS)
def test_plain_language_status_label_maps_to_common_status(raw: str, expected: TrialStatus) -> None:
    assert normalize_status(raw) is expected


@pytest.mark.parametrize("raw", ["active not recruiting", "ACTIVE, NOT RECRUITING", " Active ,  not-recruiting "])
def test_status_label_is_matched_whatever_its_case_spacing_and_punctuation(raw: str) -> None:
    assert normalize_status(raw) is S.ACTIVE_NOT_RECRUITING


@pytest.mark.parametrize(("raw", "expected"), [
    ("NL:Authorised, not started", S.NOT_YET_RECRUITING),
    ("Poland:4", S.RECRUITING),
    ("DE: Ended", S.COMPLETED),
])
def test_status_with_member_state_prefix_is_read_after_the_colon(raw: str, expected: TrialStatus) -> None:
    assert normalize_status(raw, "ctis") is expected


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_missing_status_is_none(raw: str | None) -> None:
    assert normalize_status(raw) is None


@pytest.mark.parametrize("raw", ["Recruitment paused for lunch", "42", 99, "xyz"])
def test_unknown_status_is_unknown_never_an_error(raw: str | int) -> None:
    assert normalize_status(raw, "ctis") is S.UNKNOWN


def test_numeric_status_without_registry_is_read_as_ctis_code() -> None:
    assert normalize_status(5) is S.ACTIVE_NOT_RECRUITING


@pytest.mark.parametrize("registry", ["ctgov", "euctr", "cteu"])
def test_numeric_status_of_registry_without_codes_is_unknown(registry: str) -> None:
    assert normalize_status(4, registry) is S.UNKNOWN


def test_status_map_keys_are_normalized_labels() -> None:
    assert all(key == status_key(key) for key in STATUS_MAP)


def test_status_key_collapses_case_punctuation_and_accents() -> None:
    assert status_key("  Ongoing,  Recruitment-ENDED ") == "ongoing recruitment ended"


def test_status_map_covers_every_ctgov_overall_status_in_the_openapi_spec() -> None:
    spec = yaml.safe_load(OAS.read_text(encoding="utf-8"))
    enum = spec["components"]["schemas"]["Status"]["enum"]
    assert sorted(status_key(v) for v in enum if status_key(v) not in STATUS_MAP) == []


def test_ctis_label_of_numeric_code_is_the_code_table_label() -> None:
    assert ctis_status_label(4) == "Ongoing, recruiting"


def test_ctis_label_passes_a_label_through() -> None:
    assert ctis_status_label("Authorised, not started") == "Authorised, not started"


def test_status_mapping_rows_list_every_label_and_every_ctis_code() -> None:
    rows = status_mapping_rows()
    labels = CTGOV_STATUSES + CTIS_LABELS + EUCTR_LABELS
    assert len(rows) == len(set(rows))
    assert {(raw, status.value) for raw, status in labels} <= {(raw, norm) for _, raw, norm in rows}
    assert [r for r in rows if r[1].startswith("4 (")] == [("ctis", "4 (Ongoing, recruiting)", "RECRUITING")]
    assert sum(1 for reg, raw, _ in rows if reg == "ctis" and re.match(r"\d+ \(", raw)) == len(CTIS_STATUS_CODES)


def test_status_mapping_rows_name_only_known_registries() -> None:
    assert {reg for reg, _, _ in status_mapping_rows()} == {"ctgov", "ctis", "euctr", "page"}


# ---------------------------------------------------------------------------------------------
# Phase
# ---------------------------------------------------------------------------------------------

PHASES = [
    ("Phase 1/2", [P.PHASE1, P.PHASE2]),
    ("Phase 1/2a", [P.PHASE1, P.PHASE2]),
    ("Phase 1b/2", [P.PHASE1, P.PHASE2]),
    ("Phase I/II", [P.PHASE1, P.PHASE2]),
    ("Phase II/III", [P.PHASE2, P.PHASE3]),
    ("Phase 2-3", [P.PHASE2, P.PHASE3]),
    ("Phase 2/Phase 3", [P.PHASE2, P.PHASE3]),
    ("PHASE1 / PHASE2", [P.PHASE1, P.PHASE2]),
    ("Phase 1", [P.PHASE1]),
    ("Phase 3", [P.PHASE3]),
    ("Phase IV", [P.PHASE4]),
    ("Phase IIb", [P.PHASE2]),
    ("PHASE2", [P.PHASE2]),
    ("PHASE4", [P.PHASE4]),
    ("Early Phase 1", [P.EARLY_PHASE1]),
    ("EARLY_PHASE1", [P.EARLY_PHASE1]),
    ("N/A", [P.NA]),
    ("NA", [P.NA]),
    ("Not Applicable", [P.NA]),
    ("Therapeutic exploratory (Phase II)", [P.PHASE2]),
    ("Therapeutic confirmatory (Phase III)", [P.PHASE3]),
    ("Therapeutic use (Phase IV)", [P.PHASE4]),
    ("Human pharmacology (Phase I) - First administration to humans", [P.PHASE1]),
    ("Phase I and Phase II (Integrated) - Other", [P.PHASE1, P.PHASE2]),
    ("Phase II and Phase III (Integrated)", [P.PHASE2, P.PHASE3]),
    ("Phase III and phase IV (Integrated)", [P.PHASE3, P.PHASE4]),
]


@pytest.mark.parametrize(("raw", "expected"), PHASES)
def test_phase_text_is_read_as_phases(raw: str, expected: list[Phase]) -> None:
    assert parse_phases(raw) == expected


@pytest.mark.parametrize(("code", "expected"), [
    ("1", [P.PHASE1]), ("2", [P.PHASE1]), ("3", [P.PHASE1]), ("4", [P.PHASE2]), ("5", [P.PHASE3]),
    ("6", [P.PHASE4]), ("7", [P.PHASE1, P.PHASE2]), ("8", [P.PHASE1, P.PHASE2]),
    ("9", [P.PHASE1, P.PHASE2]), ("10", [P.PHASE2, P.PHASE3]), ("11", [P.PHASE3, P.PHASE4]),
])
def test_ctis_phase_code_is_read_as_phases(code: str, expected: list[Phase]) -> None:
    assert parse_phases(code) == expected


@pytest.mark.parametrize(("code", "label_phases"), sorted(CTIS_PHASE_CODES.items()))
def test_ctis_phase_code_label_reads_as_the_code_does(code: int, label_phases: tuple[str, tuple[Phase, ...]]) -> None:
    label, phases = label_phases
    assert parse_phases(label) == list(phases)


def test_phase_list_is_merged_sorted_and_deduplicated() -> None:
    assert parse_phases(["PHASE3", "PHASE2", "Phase 2"]) == [P.PHASE2, P.PHASE3]


@pytest.mark.parametrize("raw", [None, "", "Phase 5", "unknown", "12", "phased rollout", []])
def test_unknown_phase_is_empty_never_an_error(raw: str | list[str] | None) -> None:
    assert parse_phases(raw) == []


def test_phase_parsing_covers_every_ctgov_phase_in_the_openapi_spec() -> None:
    spec = yaml.safe_load(OAS.read_text(encoding="utf-8"))
    enum = spec["components"]["schemas"]["Phase"]["enum"]
    assert [parse_phases(v) for v in enum] == [[Phase(v)] for v in enum]


# ---------------------------------------------------------------------------------------------
# Country
# ---------------------------------------------------------------------------------------------

COUNTRIES = [
    ("The Netherlands", "NL"),
    ("Netherlands", "NL"),
    ("Czechia", "CZ"),
    ("Czech Republic", "CZ"),
    ("UK", "GB"),
    ("United Kingdom", "GB"),
    ("Turkey", "TR"),
    ("Türkiye", "TR"),
    ("Korea, Republic of", "KR"),
    ("South Korea", "KR"),
    ("Russia", "RU"),
    ("Russian Federation", "RU"),
    ("Macedonia", "MK"),
    ("North Macedonia", "MK"),
    ("United States", "US"),
    ("Germany", "DE"),
    ("Spain", "ES"),
    ("Taiwan", "TW"),
    ("Viet Nam", "VN"),
    ("Iran, Islamic Republic of", "IR"),
    ("Côte D'Ivoire", "CI"),
    ("Réunion", "RE"),
    ("NL", "NL"),
    ("nl", "NL"),
    ("EL", "GR"),
    ("NLD", "NL"),
    ("NL:Authorised", "NL"),
    ("NL:Authorised, not started", "NL"),
    ("Poland:4", "PL"),
    (" spain ", "ES"),
]


@pytest.mark.parametrize(("raw", "expected"), COUNTRIES)
def test_country_is_normalized_to_alpha2(raw: str, expected: str) -> None:
    assert normalize_country(raw) == expected


@pytest.mark.parametrize("raw", ["", "Atlantis", "XX", "Former Serbia and Montenegro", ":Authorised"])
def test_unknown_country_is_none(raw: str) -> None:
    assert normalize_country(raw) is None


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------

DATES = [
    ("2023", PartialDate(value="2023", precision="year")),
    ("2023-03", PartialDate(value="2023-03", precision="month")),
    ("2023-03-30", PartialDate(value="2023-03-30", precision="day")),
    ("March 2023", PartialDate(value="2023-03", precision="month", raw="March 2023")),
    ("Mar 2023", PartialDate(value="2023-03", precision="month", raw="Mar 2023")),
    ("March 30, 2023", PartialDate(value="2023-03-30", precision="day", raw="March 30, 2023")),
    ("30 March 2023", PartialDate(value="2023-03-30", precision="day", raw="30 March 2023")),
    ("30/03/2023", PartialDate(value="2023-03-30", precision="day", raw="30/03/2023")),
    ("5/1/2021", PartialDate(value="2021-01-05", precision="day", raw="5/1/2021")),
    ("2024-04-24T15:14:59.077", PartialDate(value="2024-04-24", precision="day", raw="2024-04-24T15:14:59.077")),
    ("2025-08-20T03:46:14.147548867", PartialDate(value="2025-08-20", precision="day",
                                                  raw="2025-08-20T03:46:14.147548867")),
    ("2024-01-03T10:00:00Z", PartialDate(value="2024-01-03", precision="day", raw="2024-01-03T10:00:00Z")),
]


@pytest.mark.parametrize(("raw", "expected"), DATES)
def test_partial_date_keeps_the_precision_given(raw: str, expected: PartialDate) -> None:
    assert parse_partial_date(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "  ", "2023-02-30", "31/04/2023", "Smarch 2023", "2023-13", "soon"])
def test_unreadable_or_impossible_date_is_none(raw: str | None) -> None:
    assert parse_partial_date(raw) is None


# ---------------------------------------------------------------------------------------------
# Trial numbers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [
    ("NCT04243499", "NCT"), ("nct04243499", "NCT"), ("2023-506979-10-00", "EU_CT"),
    ("2015-000590-12", "EUDRACT"), ("ISRCTN12345678", "ISRCTN"), (" 2025-521227-70-00 ", "EU_CT"),
])
def test_trial_number_kind_is_told_by_its_form(text: str, kind: str) -> None:
    assert trial_id_type(text) == kind


@pytest.mark.parametrize("text", [
    "NCT0424349", "NCT042434991", "2015-000590-1", "see NCT04243499",
    "NCT\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff11", "NCT0000000\u0661", "\u0662\u0660\u0662\u0663-000001-01-00",
])
def test_text_that_is_not_exactly_a_trial_number_has_no_kind(text: str) -> None:
    assert trial_id_type(text) is None


def test_trial_numbers_are_found_in_order_without_repeats() -> None:
    text = "NCT04243499 then 2023-506979-10-00 (EudraCT 2015-000590-12), again nct04243499; ISRCTN12345678."
    assert find_trial_ids(text) == [
        ("NCT04243499", "NCT"), ("2023-506979-10-00", "EU_CT"), ("2015-000590-12", "EUDRACT"),
        ("ISRCTN12345678", "ISRCTN")]


def test_eudract_number_inside_a_longer_number_is_not_found() -> None:
    assert find_trial_ids("12015-000590-12 and 2015-000590-123") == []


def test_date_in_non_ascii_digits_is_not_read() -> None:
    assert parse_partial_date("\u0662\u0660\u0662\u0663-01-01") is None


# ---------------------------------------------------------------------------------------------
# Overall status of member states
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("statuses", "expected"), [
    ([S.COMPLETED, S.ONGOING], S.ONGOING),
    ([S.TERMINATED, S.COMPLETED], S.COMPLETED),
    ([S.TERMINATED, S.UNKNOWN], S.TERMINATED),
    ([S.SUSPENDED, S.COMPLETED], S.SUSPENDED),
    ([S.UNKNOWN], S.UNKNOWN),
    ([S.RECRUITING, S.ACTIVE_NOT_RECRUITING], S.RECRUITING),
    ([None], None),
    ([], None),
])
def test_overall_status_is_the_liveliest_member_state_status(statuses: list, expected: TrialStatus | None) -> None:
    assert overall_status(statuses) is expected


# ---------------------------------------------------------------------------------------------
# Never raising
# ---------------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(), st.integers()))
def test_normalize_status_never_raises(raw: str | int | None) -> None:
    assert normalize_status(raw) in (None, *TrialStatus)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(), st.lists(st.text(), max_size=4)))
def test_parse_phases_never_raises_and_is_sorted_unique(raw: str | list[str] | None) -> None:
    phases = parse_phases(raw)
    assert phases == sorted(set(phases), key=list(Phase).index)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalize_country_never_raises_and_gives_two_letters(raw: str) -> None:
    code = normalize_country(raw)
    assert code is None or (len(code) == 2 and code.isupper())


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text()))
def test_parse_partial_date_never_raises_and_value_matches_precision(raw: str | None) -> None:
    parsed = parse_partial_date(raw)
    assert parsed is None or len(parsed.value) == {"year": 4, "month": 7, "day": 10}[parsed.precision]
