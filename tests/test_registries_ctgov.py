"""ClinicalTrials.gov API v2 parser."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.errors import MissingFieldError, ParseError
from pipeline.models import Identifier, Phase, TrialRecord, TrialStatus
from pipeline.registries.ctgov import parse_ctgov, parse_study

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "ctgov_v2"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "registries"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse_one(name: str) -> TrialRecord:
    [record] = parse_ctgov(fixture(name), path=f"ctgov/{name}")
    return record


def test_unknown_fields_at_every_level_are_ignored() -> None:
    record = parse_one("ctgov_study_with_extras.json")
    assert (record.trial_id, record.title, record.status) == ("NCT09000001", "A Made-Up Study", TrialStatus.RECRUITING)


def test_study_with_unknown_fields_parses_like_the_study_without_them() -> None:
    study = orjson.loads(fixture("ctgov_study_with_extras.json"))
    plain = orjson.loads(fixture("ctgov_study_with_extras.json"))
    del plain["futureSection"]
    del plain["protocolSection"]["futureModule"]
    del plain["protocolSection"]["identificationModule"]["brandNewKey"]
    del plain["protocolSection"]["identificationModule"]["orgStudyIdInfo"]["futureField"]
    assert parse_study(study, path="a") == parse_study(plain, path="a")


def test_missing_nct_id_raises_missing_field_error_naming_file_and_path() -> None:
    with pytest.raises(MissingFieldError) as caught:
        parse_ctgov(fixture("ctgov_study_without_nctid.json"), path="ctgov/broken.json")
    assert (caught.value.path, caught.value.field_path) == (
        "ctgov/broken.json", "protocolSection.identificationModule.nctId")
    assert str(caught.value) == (
        "ctgov/broken.json: required field 'protocolSection.identificationModule.nctId' is missing")


def test_missing_nct_id_in_a_page_names_the_study_position() -> None:
    with pytest.raises(MissingFieldError) as caught:
        parse_ctgov(fixture("ctgov_page_second_study_without_nctid.json"), path="page.json")
    assert caught.value.field_path == "studies[1].protocolSection.identificationModule.nctId"


def test_truncated_json_raises_parse_error_with_path_and_position() -> None:
    with pytest.raises(ParseError) as caught:
        parse_ctgov(fixture("ctgov_truncated.json"), path="ctgov/NCT00973089.json")
    assert caught.value.path == "ctgov/NCT00973089.json"
    assert caught.value.problem.startswith("malformed JSON at line ")
    assert "(char " in caught.value.problem


def test_html_given_as_ctgov_raises_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_ctgov(fixture("html_error_page.html"), path="ctgov/NCT00000001.json")
    assert str(caught.value) == "ctgov/NCT00000001.json: expected JSON, got HTML"


def test_json_that_is_not_a_study_raises_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_ctgov(b'{"error": "not found"}', path="x.json")
    assert "no 'protocolSection' or 'studies' key" in caught.value.problem


def test_empty_body_raises_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_ctgov(b"  \n", path="x.json")
    assert caught.value.problem == "expected JSON, got an empty body"


def test_field_of_the_wrong_type_raises_parse_error_naming_it() -> None:
    with pytest.raises(ParseError) as caught:
        parse_ctgov(fixture("ctgov_enrollment_as_text.json"), path="x.json")
    assert caught.value.problem == "protocolSection.designModule.enrollmentInfo.count is str, expected an integer"


def test_countries_are_alpha2_sorted_unique_and_unknown_names_dropped() -> None:
    assert parse_one("ctgov_study_with_extras.json").countries == ["CZ", "KR", "NL"]


def test_every_other_identifier_is_kept_with_our_type_names() -> None:
    assert parse_one("ctgov_study_with_extras.json").identifiers == [
        Identifier(other_id="PROTO-1", id_type="SPONSOR_PROTOCOL", source="Example Sponsor"),
        Identifier(other_id="2020-001803-17", id_type="EUDRACT"),
        Identifier(other_id="2023-506979-10-00", id_type="EU_CT"),
        Identifier(other_id="NCT09000003", id_type="NCT", source="REGISTRY"),
        Identifier(other_id="ABC-42", id_type="OTHER", source="Some Group"),
        Identifier(other_id="NCT09000002", id_type="NCT", source="nctIdAliases"),
    ]


def test_phases_keep_raw_beside_normalized() -> None:
    record = parse_one("ctgov_study_with_extras.json")
    assert (record.phases, record.phase_raw) == ([Phase.PHASE1, Phase.PHASE2], "PHASE1, PHASE2")


def test_enrollment_has_type_and_whole_trial_scope() -> None:
    record = parse_one("ctgov_study_with_extras.json")
    assert (record.enrollment, record.enrollment_type, record.enrollment_scope) == (88, "actual", "whole_trial")


def test_dates_keep_their_precision() -> None:
    record = parse_one("ctgov_study_with_extras.json")
    assert (record.start_date.value, record.start_date.precision) == ("2023-03", "month")
    assert (record.completion_date.value, record.completion_date.precision) == ("2026-12-31", "day")


def test_field_paths_name_the_native_path_of_each_value() -> None:
    paths = parse_one("ctgov_study_with_extras.json").field_paths
    assert paths["status"] == "protocolSection.statusModule.overallStatus"
    assert paths["enrollment"] == "protocolSection.designModule.enrollmentInfo.count"
    assert paths["countries"] == "protocolSection.contactsLocationsModule.locations[].country"


def test_fields_filtered_partial_record_parses_with_what_it_has() -> None:
    data = (SAMPLES / "page_biomcp_search_keytruda_limit3_20260811.json").read_bytes()
    first = parse_ctgov(data, path="page.json")[0]
    assert (first.enrollment, first.enrollment_type, first.countries, first.age_groups) == (40, None, [], [])


@pytest.mark.parametrize(("sample", "count"), [
    ("page_biomcp_search_keytruda_limit3_20260811.json", 3),
    ("page_biomcp_search_phelan_next_20260811.json", 5),
    ("page_biomcp_search_nsclc_egfr_l858r_20260811.json", 2),
    ("page_cyanheads_2025-06-17T11-15-33.json", 1),
    ("studies-wrapper_NCT03281889.json", 1),
    ("NCT00973089.json", 1),
])
def test_a_page_gives_a_record_per_study_and_a_single_study_one(sample: str, count: int) -> None:
    assert len(parse_ctgov((SAMPLES / sample).read_bytes(), path=sample)) == count


@pytest.mark.parametrize(("page", "problem"), [
    (b'{"studies": [], "nextPageToken": 7}', "'nextPageToken' is int, expected a string"),
    (b'{"studies": [], "totalCount": "12"}', "'totalCount' is str, expected an integer"),
    (b'{"studies": [], "totalCount": true}', "'totalCount' is bool, expected an integer"),
    (b'{"studies": {"protocolSection": {}}}', "'studies' is not a list of study objects"),
    (b'{"studies": [1]}', "'studies' is not a list of study objects"),
    (b'{"nctId": "NCT00000001"}', "not a ClinicalTrials.gov study nor a page of studies "
                                  "(no 'protocolSection' or 'studies' key)"),
])
def test_a_body_that_is_not_a_study_nor_a_page_as_the_api_sends_is_a_parse_error(page: bytes, problem: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_ctgov(page, path="page.json")
    assert (exc.value.path, exc.value.problem) == ("page.json", problem)


def test_empty_page_gives_no_records() -> None:
    assert parse_ctgov(b'{"studies": [], "totalCount": 0}', path="empty.json") == []


def test_observational_study_uses_its_observational_model() -> None:
    [record] = parse_ctgov((SAMPLES / "NCT03475563.json").read_bytes(), path="x")
    assert (record.design.study_type, record.design.intervention_model, record.phases) == (
        "OBSERVATIONAL", "CASE_ONLY", [])
