"""clinicaltrials.eu pages: only the robust parts are read, and a page with no title fails loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ParseError
from pipeline.models import Identifier, TrialRecord
from pipeline.registries.cteu import parse_cteu

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "registries"


def page(name: str) -> TrialRecord:
    [record] = parse_cteu((FIXTURES / name).read_bytes(), path=f"cteu/{name}")
    return record


def test_page_about_a_trial_takes_the_number_named_in_its_canonical_url() -> None:
    assert page("cteu_trial_page.html").trial_id == "NCT05727904"


def test_og_title_wins_over_h1_and_title() -> None:
    assert page("cteu_trial_page.html").title == "Study of Lifileucel Plus Pembrolizumab in Untreated Advanced Melanoma"


def test_every_other_trial_number_and_the_canonical_url_are_identifiers() -> None:
    assert page("cteu_trial_page.html").identifiers == [
        Identifier(other_id="2022-501234-12-00", id_type="EU_CT", source="named on the page"),
        Identifier(other_id="2022-000123-45", id_type="EUDRACT", source="named on the page"),
        Identifier(other_id="https://clinicaltrials.eu/trial/study-of-lifileucel-plus-pembrolizumab-nct05727904/",
                   id_type="CTEU_URL", source='link[rel="canonical"]@href'),
    ]


def test_meta_description_is_the_summary() -> None:
    assert page("cteu_trial_page.html").brief_summary == (
        "A Phase 3 study comparing lifileucel plus pembrolizumab with pembrolizumab alone.")


def test_title_element_is_used_when_nothing_better_exists() -> None:
    record = page("cteu_page_title_only.html")
    assert (record.trial_id, record.title, record.field_paths["title"]) == (
        "2023-506979-10-00", "Trial 2023-506979-10-00 in pancreatic cancer", "title")


def test_page_without_trial_number_is_named_by_its_canonical_slug() -> None:
    record = page("cteu_page_h1_and_slug.html")
    assert (record.trial_id, record.title) == ("a-study-of-something", "A Study of Something")


def test_page_without_title_raises_parse_error_naming_what_is_missing() -> None:
    with pytest.raises(ParseError) as caught:
        page("cteu_page_without_title.html")
    assert str(caught.value) == "cteu/cteu_page_without_title.html: no title found (no og:title, h1 or title element)"


def test_page_without_number_or_canonical_url_raises_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        page("cteu_page_without_identity.html")
    assert caught.value.problem == "no trial number on the page and no canonical URL to identify it by"


def test_non_html_raises_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_cteu(b'{"title": "json"}', path="cteu/x.html")
    assert caught.value.problem == "not an HTML page (expected a clinicaltrials.eu trial page)"


def test_status_and_phase_are_not_guessed() -> None:
    record = page("cteu_trial_page.html")
    assert (record.status, record.phases, record.enrollment) == (None, [], None)
