"""EU Clinical Trials Register: full-text download, protocol page, search page."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import MissingFieldError, ParseError
from pipeline.models import Identifier, Intervention, Outcome, Phase, TrialRecord, TrialStatus
from pipeline.registries.euctr import parse_euctr_html, parse_euctr_text

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "euctr"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "registries"
FULLTEXT = "euctr_fulltext_download_2022-002568-62_2021-002179-21.txt"


def text_fixture(name: str) -> list[TrialRecord]:
    return parse_euctr_text((FIXTURES / name).read_bytes(), path=f"euctr/{name}")


def download() -> list[TrialRecord]:
    return parse_euctr_text((SAMPLES / FULLTEXT).read_bytes(), path=FULLTEXT)


def protocol_page() -> TrialRecord:
    name = "euctr_trial_2015-000590-12_DE.html"
    [record] = parse_euctr_html((SAMPLES / name).read_bytes(), path=name)
    return record


def test_download_gives_one_record_per_eudract_number() -> None:
    assert [r.trial_id for r in download()] == ["2022-002568-62", "2021-002179-21"]


def test_member_state_records_merge_countries_and_keep_each_status() -> None:
    first = download()[0]
    assert (first.status, first.status_raw) == (TrialStatus.ONGOING, "ES: Ongoing; SE: Ongoing")
    assert first.countries == ["BE", "ES", "FR", "GB", "IT", "NL", "PL", "SE", "US"]


def test_differing_member_state_statuses_give_the_liveliest_overall() -> None:
    [record] = text_fixture("euctr_two_states_differ.txt")
    assert (record.status, record.status_raw) == (TrialStatus.ONGOING, "ES: Ongoing; SE: Completed")


def test_countries_include_member_states_and_non_eea_countries_listed_over_several_lines() -> None:
    [record] = text_fixture("euctr_two_states_differ.txt")
    assert record.countries == ["CH", "ES", "SE", "US"]


def test_trial_ended_early_where_it_still_reports_is_terminated() -> None:
    [record] = text_fixture("euctr_all_states_ended_early.txt")
    assert (record.status, record.status_raw) == (
        TrialStatus.TERMINATED, "DE: Prematurely Ended; GB: GB - no longer in EU/EEA")


def test_enrollment_is_the_figure_most_member_states_give() -> None:
    # ES and one SE record say 15 for the whole trial, the other SE record 9.
    first = download()[0]
    assert (first.enrollment, first.enrollment_type, first.enrollment_scope) == (15, "estimated", "whole_trial")


def test_enrollment_falls_back_to_the_eea_figure() -> None:
    [record] = text_fixture("euctr_two_states_differ.txt")
    assert (record.enrollment, record.enrollment_scope, record.field_paths["enrollment"]) == (
        60, "eea", "F.4.2.1 In the EEA")


def test_single_member_state_figure_is_the_whole_trial() -> None:
    record = protocol_page()
    assert (record.enrollment, record.enrollment_scope) == (744, "whole_trial")


def test_phases_come_from_the_yes_rows_of_e7() -> None:
    [record] = text_fixture("euctr_two_states_differ.txt")
    assert (record.phases, record.phase_raw) == (
        [Phase.PHASE2, Phase.PHASE3], "Therapeutic exploratory (Phase II); Therapeutic confirmatory (Phase III)")


def test_translations_are_skipped() -> None:
    [record] = text_fixture("euctr_two_states_differ.txt")
    assert record.official_title == "A made-up randomised, double-blind trial"


def test_section_a_identifiers_are_kept() -> None:
    [record] = text_fixture("euctr_two_states_differ.txt")
    assert record.identifiers == [
        Identifier(other_id="EX-16", id_type="SPONSOR_PROTOCOL", source="A.4.1 Sponsor's protocol code number"),
        Identifier(other_id="ISRCTN87654321", id_type="ISRCTN",
                   source="A.5.1 ISRCTN (International Standard Randomised Controlled Trial) Number"),
        Identifier(other_id="NCT09000004", id_type="NCT", source="A.5.2 US NCT (ClinicalTrials.gov registry) number"),
    ]


def test_imp_becomes_an_intervention_typed_by_its_origin() -> None:
    [record] = text_fixture("euctr_two_states_differ.txt")
    assert record.interventions == [
        Intervention(type="BIOLOGICAL", name="Proleukin", other_names=["ALDESLEUKIN"], description="Test")]


def test_end_points_keep_their_time_frame() -> None:
    [record] = text_fixture("euctr_two_states_differ.txt")
    assert record.outcomes == [Outcome(kind="primary", measure="Progression-free survival", time_frame="24 months")]


def test_global_end_date_is_the_completion_date() -> None:
    [record] = text_fixture("euctr_two_states_differ.txt")
    assert record.completion_date.value == "2019-11-30"


def test_design_rows_map_to_ctgov_vocabulary() -> None:
    [record] = text_fixture("euctr_two_states_differ.txt")
    assert (record.design.allocation, record.design.masking) == ("RANDOMIZED", "DOUBLE")


def test_block_without_eudract_number_raises_missing_field_error() -> None:
    with pytest.raises(MissingFieldError) as caught:
        text_fixture("euctr_block_without_eudract.txt")
    assert caught.value.field_path == "record 1: EudraCT Number"


def test_text_without_summary_block_raises_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_euctr_text(b"hello\nworld\n", path="euctr/x.txt")
    assert str(caught.value) == "euctr/x.txt: not an EU CTR full-text download (no 'Summary' block)"


def test_protocol_page_rows_are_read() -> None:
    record = protocol_page()
    assert (record.trial_id, record.sponsor, record.status_raw, record.phases) == (
        "2015-000590-12", "Novartis Pharma GmbH", "DE: Completed", [Phase.PHASE3])


def test_protocol_page_design_open_label_randomised_parallel() -> None:
    design = protocol_page().design
    assert (design.allocation, design.masking, design.intervention_model, design.primary_purpose) == (
        "RANDOMIZED", "NONE", "PARALLEL", "TREATMENT")


def test_protocol_page_imps_are_distinct_products_with_roles() -> None:
    interventions = protocol_page().interventions
    assert [(i.name, i.description) for i in interventions][:2] == [
        ("Certican 0,25 mg", "Test"), ("Certican 0,5 mg", "Test")]
    assert len(interventions) == 10


def test_search_page_gives_trial_status_and_countries_it_shows() -> None:
    name = "euctr_search_query_2015-000590-12.html"
    [record] = parse_euctr_html((SAMPLES / name).read_bytes(), path=name)
    assert (record.trial_id, record.status, record.status_raw, record.countries, record.start_date.value) == (
        "2015-000590-12", TrialStatus.COMPLETED, "DE: Completed", ["DE"], "2015-09-03")


def test_html_that_is_neither_page_raises_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_euctr_html((FIXTURES / "euctr_unrelated.html").read_bytes(), path="euctr/x.html")
    assert "neither an EU CTR protocol page" in caught.value.problem


def test_member_state_is_read_from_the_link_when_no_authority_is_named() -> None:
    [record] = text_fixture("euctr_state_from_link.txt")
    assert (record.status, record.status_raw, record.countries) == (
        TrialStatus.UNKNOWN, "NL: Trial now transitioned", ["NL"])
