"""Telling the registry from the content, and dispatching to its parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ParseError
from pipeline.registries import detect_registry, parse_snapshot

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "registries"


def test_content_wins_over_a_misleading_file_name() -> None:
    data = (SAMPLES / "ctgov_v2" / "NCT00973089.json").read_bytes()
    assert detect_registry(data, "ctis/2023-506979-10-00.json") == "ctgov"


@pytest.mark.parametrize(("filename", "registry"), [
    ("ctis/2023-506979-10-00.json", "ctis"),
    ("snapshots/ctgov/NCT00000001.json", "ctgov"),
    ("NCT00000001.json", "ctgov"),
    ("2023-506979-10-00.json", "ctis"),
])
def test_file_name_breaks_the_tie_when_content_says_nothing(filename: str, registry: str) -> None:
    assert detect_registry(b"{}", filename) == registry


def test_html_error_page_is_told_by_its_folder() -> None:
    assert detect_registry((FIXTURES / "html_error_page.html").read_bytes(), "cteu/some-trial.html") == "cteu"


def test_html_error_page_saved_as_ctgov_fails_as_not_json() -> None:
    with pytest.raises(ParseError) as caught:
        parse_snapshot((FIXTURES / "html_error_page.html").read_bytes(), path="ctgov/NCT00000001.json")
    assert caught.value.problem == "expected JSON, got HTML"


def test_empty_ctis_object_fails_as_trial_not_found() -> None:
    with pytest.raises(ParseError) as caught:
        parse_snapshot(b"{}", path="ctis/2023-506979-10-00.json")
    assert caught.value.problem == "CTIS returned an empty record (trial not found)"


def test_content_and_name_that_tell_nothing_raise_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        detect_registry(b"just some words", "notes.txt")
    assert str(caught.value) == "notes.txt: cannot tell which registry wrote this content"


def test_malformed_json_without_a_telling_name_reports_the_json_error() -> None:
    with pytest.raises(ParseError) as caught:
        detect_registry((FIXTURES / "ctgov_truncated.json").read_bytes(), "upload.json")
    assert caught.value.problem.startswith("malformed JSON at line ")


def test_euctr_text_is_told_by_its_eudract_number_line() -> None:
    assert detect_registry((FIXTURES / "euctr_two_states_differ.txt").read_bytes()) == "euctr"


def test_cteu_page_is_told_by_its_site() -> None:
    assert detect_registry((FIXTURES / "cteu_trial_page.html").read_bytes()) == "cteu"


def test_registry_given_by_the_manifest_is_used() -> None:
    records = parse_snapshot((FIXTURES / "cteu_page_title_only.html").read_bytes(), path="x.html", registry="cteu")
    assert [r.trial_id for r in records] == ["2023-506979-10-00"]


def test_euctr_html_and_text_go_to_their_own_parsers() -> None:
    html = parse_snapshot((SAMPLES / "euctr" / "euctr_trial_2015-000590-12_DE.html").read_bytes(),
                          path="p", registry="euctr")
    text = parse_snapshot((FIXTURES / "euctr_two_states_differ.txt").read_bytes(), path="t", registry="euctr")
    assert ([r.trial_id for r in html], [r.trial_id for r in text]) == (["2015-000590-12"], ["2016-001234-56"])


def test_document_snapshots_have_no_registry_parser() -> None:
    with pytest.raises(ParseError) as caught:
        parse_snapshot(b"text", path="documents/a.txt", registry="document")  # type: ignore[arg-type]
    assert caught.value.problem == "no parser for registry 'document'"
