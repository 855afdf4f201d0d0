"""EU CTIS public API parser: both layouts, search responses, and the ways a body can be wrong."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.errors import MissingFieldError, ParseError
from pipeline.models import Identifier, Phase, TrialRecord, TrialStatus
from pipeline.registries.ctis import parse_ctis

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "ctis"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "registries"


def sample(name: str) -> TrialRecord:
    [record] = parse_ctis((SAMPLES / name).read_bytes(), path=f"ctis/{name}")
    return record


def fixture(name: str) -> list[TrialRecord]:
    return parse_ctis((FIXTURES / name).read_bytes(), path=f"ctis/{name}")


def test_empty_object_means_trial_not_found() -> None:
    with pytest.raises(ParseError) as caught:
        fixture("ctis_empty.json")
    assert str(caught.value) == "ctis/ctis_empty.json: CTIS returned an empty record (trial not found)"


def test_html_where_json_was_expected_raises_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_ctis((FIXTURES / "html_error_page.html").read_bytes(), path="ctis/2023-506979-10-00.json")
    assert str(caught.value) == "ctis/2023-506979-10-00.json: expected JSON, got HTML"


def test_missing_ct_number_raises_missing_field_error() -> None:
    with pytest.raises(MissingFieldError) as caught:
        fixture("ctis_without_ctnumber.json")
    assert (caught.value.path, caught.value.field_path) == ("ctis/ctis_without_ctnumber.json", "ctNumber")


def test_truncated_json_raises_parse_error_with_position() -> None:
    data = (SAMPLES / "2024-510663-34-00.json").read_bytes()[:5000]
    with pytest.raises(ParseError) as caught:
        parse_ctis(data, path="ctis/cut.json")
    assert caught.value.problem.startswith("malformed JSON at line ")


def test_json_list_is_not_a_ctis_record() -> None:
    with pytest.raises(ParseError) as caught:
        parse_ctis(b"[1, 2]", path="x.json")
    assert caught.value.problem == "expected a CTIS record object, got a JSON list"


def test_new_layout_numeric_status_keeps_code_and_label_as_raw() -> None:
    record = sample("2024-510663-34-00.json")
    assert (record.status, record.status_raw) == (TrialStatus.RECRUITING, "4 (Ongoing, recruiting)")


def test_old_layout_status_label_is_read_as_given() -> None:
    record = sample("2023-508143-51-01.json")
    assert (record.status, record.status_raw) == (TrialStatus.NOT_YET_RECRUITING, "Authorised, not started")


def test_enrollment_is_the_planned_eea_figure() -> None:
    record = sample("2023-505613-24-00.json")
    assert (record.enrollment, record.enrollment_type, record.enrollment_scope) == (13, "estimated", "eea")
    assert record.field_paths["enrollment"] == "totalNumberEnrolled"


def test_enrollment_without_overview_is_the_sum_of_member_state_figures() -> None:
    [record] = fixture("ctis_minimal_new_layout.json")
    assert (record.enrollment, record.field_paths["enrollment"]) == (
        12, "sum of authorizedApplication.authorizedPartsII[].recruitmentSubjectCount")


def test_countries_are_member_states_and_current_rest_of_world_countries() -> None:
    [record] = fixture("ctis_minimal_new_layout.json")
    assert record.countries == ["CH", "DK", "NL"]


def test_countries_from_named_trial_country_entries() -> None:
    assert sample("2024-510663-34-00.json").countries == ["ES", "IT"]


def test_phase_code_is_read_when_the_overview_label_is_absent() -> None:
    [record] = fixture("ctis_minimal_new_layout.json")
    assert (record.phases, record.phase_raw) == ([Phase.PHASE1, Phase.PHASE2], "7")


def test_primary_sponsor_is_chosen_over_co_sponsors() -> None:
    [record] = fixture("ctis_minimal_new_layout.json")
    assert record.sponsor == "Main Sponsor"


def test_transitioned_trial_names_its_eudract_number() -> None:
    assert sample("2024-510663-34-00.json").identifiers[0] == Identifier(
        other_id="2019-001588-63", id_type="EUDRACT", source="transitioned from EudraCT")


def test_secondary_numbers_become_identifiers_typed_by_their_form() -> None:
    [record] = fixture("ctis_minimal_new_layout.json")
    assert record.identifiers == [
        Identifier(other_id="TIL-001", id_type="SPONSOR_PROTOCOL", source="shortTitle"),
        Identifier(other_id="ISRCTN12345678", id_type="ISRCTN", source="isrctnNumber"),
        Identifier(other_id="NCT09000009", id_type="NCT", source="ClinicalTrials.gov"),
    ]


def test_age_groups_from_the_overview() -> None:
    assert sample("2022-500244-37-00.json").age_groups == ["ADULT", "OLDER_ADULT"]


def test_start_date_keeps_the_day_first_raw_text() -> None:
    start = sample("2023-505613-24-00.json").start_date
    assert (start.value, start.precision, start.raw) == ("2021-04-28", "day", "28/04/2021")


def test_unknown_fields_are_ignored() -> None:
    payload = orjson.loads((SAMPLES / "2024-510663-34-00.json").read_bytes())
    payload["somethingNew"] = {"deep": [1, 2]}
    payload["authorizedApplication"]["authorizedPartI"]["anotherNewThing"] = "x"
    assert parse_ctis(orjson.dumps(payload), path="a") == parse_ctis(
        (SAMPLES / "2024-510663-34-00.json").read_bytes(), path="a")


def test_search_response_gives_one_record_per_item() -> None:
    records = fixture("ctis_search_response.json")
    assert [(r.trial_id, r.status, r.countries) for r in records] == [
        ("2023-506979-10-00", TrialStatus.COMPLETED, ["BE", "FR"]),
        ("2024-515357-16-00", TrialStatus.RECRUITING, ["ES"]),
    ]


def test_wrong_type_raises_parse_error_naming_the_field() -> None:
    with pytest.raises(ParseError) as caught:
        parse_ctis(b'{"ctNumber": "2023-506979-10-00", "totalNumberEnrolled": "many"}', path="x.json")
    assert caught.value.problem == "totalNumberEnrolled is str, expected a whole number"
