"""reconcile_document end to end on a small hand-built page and records (tests/fixtures/reconcile).

The page (minipage.json) has four table rows: NCT00000001 with a CT.gov record that lists its
CTIS number (so the CTIS record is reached by a confirmed link), an EU CT number with no record,
an EU CT number reachable only through a candidate link, and NCT00000004 whose snapshot is stale.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pipeline.models import Claim, ExtractedDocument, Identifier, ReconciliationRow, SnapshotEntry, TrialLink, TrialRecord
from pipeline.reconcile import LoadedRecord, reconcile_document, row_order
from pipeline.reconcile.claims import follow_on_trials

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reconcile"


def _load() -> tuple[ExtractedDocument, list[LoadedRecord], list[TrialLink]]:
    doc = ExtractedDocument.model_validate_json((FIXTURES / "minipage.json").read_text())
    records = [
        LoadedRecord(TrialRecord.model_validate(x["record"]), SnapshotEntry.model_validate(x["entry"]))
        for x in json.loads((FIXTURES / "records.json").read_text())
    ]
    links = [TrialLink.model_validate(x) for x in json.loads((FIXTURES / "links.json").read_text())]
    return doc, records, links


@pytest.fixture(scope="module")
def rows() -> list[ReconciliationRow]:
    return reconcile_document(*_load())


def _one(rows: list[ReconciliationRow], claim_id: str, registry: str | None, rule: str | None = None) -> ReconciliationRow:
    found = [r for r in rows if r.claim_id == claim_id and r.registry == registry and (rule is None or r.rule == rule)]
    assert len(found) == 1, found
    return found[0]


def test_enrollment_above_the_registry_figure_is_a_mismatch_saying_by_how_much_and_naming_the_eea_figure(rows):
    row = _one(rows, "table:1:enrollment", "ctgov")
    assert (row.verdict, row.stated_value, row.registry_value, row.detail) == (
        "mismatch", "20", "80",
        "registry 80, stated 20: stated is 60 lower; registry figure is estimated; "
        "the stated figure equals the EEA-only figure of the ctis record 2023-000001-11-00",
    )


def test_record_listing_the_other_number_is_reached_by_a_confirmed_link(rows):
    row = _one(rows, "table:1:enrollment", "ctis")
    assert (row.verdict, row.detail, row.evidence.link) == (
        "match", "equal; registry figure is EEA-only", "ctgov record NCT00000001 lists 2023-000001-11-00 (EU_CT)")


def test_evidence_names_snapshot_sha256_provenance_record_and_field_path(rows):
    ev = _one(rows, "table:1:phase", "ctgov").evidence
    assert (ev.snapshot_path, ev.snapshot_sha256, ev.provenance, ev.registry_trial_id, ev.field_path) == (
        "ctgov/NCT00000001.json", "a" * 64, "reconstructed", "NCT00000001", "protocolSection.designModule.phases")


def test_stated_authorised_against_recruiting_is_a_match_that_says_it_is_less_specific(rows):
    row = _one(rows, "table:1:status", "ctgov")
    assert (row.verdict, row.registry_value, row.detail) == (
        "match", "RECRUITING (RECRUITING)", "stated value is less specific")


def test_overlapping_phases_are_partial(rows):
    row = _one(rows, "table:1:phase", "ctis")
    assert (row.verdict, row.detail) == ("partial", "both have PHASE2; only the stated value has PHASE1")


def test_trial_without_a_record_is_unverifiable_for_every_cell(rows):
    table_rows = [r for r in rows if r.claim_id.startswith("table:2:")]
    assert [(r.field, r.registry, r.verdict, r.detail) for r in table_rows] == [
        ("condition", "ctis", "unverifiable", "no registry record"),
        ("enrollment", "ctis", "unverifiable", "no registry record"),
        ("phase", "ctis", "unverifiable", "no registry record"),
        ("status", "ctis", "unverifiable", "no registry record"),
    ]


def test_record_reached_only_by_a_candidate_link_gives_unverifiable_with_the_verdict_it_would_get(rows):
    row = _one(rows, "table:3:phase", "ctgov")
    assert (row.verdict, row.registry_value, row.detail, row.evidence.link) == (
        "unverifiable", "PHASE2",
        "candidate record NCT00000003, link not confirmed: mismatch (no phase in common)",
        "candidate link 2024-000003-33-00 -> NCT00000003 (https://example.org/guess)",
    )


def test_stale_snapshot_is_named_in_the_detail(rows):
    assert _one(rows, "table:4:enrollment", "ctgov").detail == "equal; snapshot is stale (its last refresh failed)"


def test_narrative_phase_is_compared_with_the_registry(rows):
    row = _one(rows, "c001", "ctgov", "phase.set_equal")
    assert (row.field, row.stated_value, row.verdict) == ("phase", "Phase 1/2", "match")


def test_narrative_design_word_is_checked_against_allocation(rows):
    row = _one(rows, "c001", "ctgov", "design.terms")
    assert (row.stated_value, row.verdict, row.registry_value) == ("randomized", "match", "allocation RANDOMIZED")


def test_narrative_population_is_checked_against_age_groups(rows):
    row = _one(rows, "c001", "ctgov", "population.age_groups")
    assert (row.stated_value, row.verdict) == ("ADULT", "match")


def test_drug_named_among_listed_interventions_matches(rows):
    row = _one(rows, "c001", "ctgov", "intervention.named")
    assert (row.stated_value, row.verdict, row.detail) == (
        "aldesleukin", "match", "Aldesleukin is the listed intervention 'Aldesleukin'")


def test_record_without_the_value_gives_unverifiable_not_mismatch(rows):
    row = _one(rows, "c001", "ctis", "intervention.named")
    assert (row.verdict, row.detail) == ("unverifiable", "the ctis record lists no interventions")


def test_follow_on_sentence_is_compared_against_the_trial_of_the_sentence_before(rows):
    row = _one(rows, "c002", "ctgov", "endpoint.terms")
    assert (row.trial_id, row.stated_value, row.verdict, row.detail) == (
        "NCT00000001", "ORR", "match",
        "registry terms ORR; primary: ORR; trial told by the sentence before, which cites the same reference [1]",
    )


def test_general_sentence_in_another_section_is_not_attributed_to_a_trial(rows):
    assert [r for r in rows if r.claim_id == "c004"] == []


def test_table_phase_and_narrative_phase_of_one_trial_are_compared(rows):
    row = _one(rows, "c001", "document", "self.table_vs_narrative.phase")
    assert (row.stated_value, row.registry_value, row.verdict) == ("Phase 1/2", "Phase 1/2", "match")


def test_table_completed_against_ongoing_recruiting_is_a_self_mismatch(rows):
    row = _one(rows, "ongoing:3", "document", "self.table_vs_ongoing.status")
    assert (row.stated_value, row.registry_value, row.verdict) == ("Recruiting", "Completed", "mismatch")


def test_ongoing_entry_resolves_to_the_record_with_the_most_similar_title(rows):
    row = _one(rows, "ongoing:1", "ctgov", "ongoing.resolve")
    assert (row.trial_id, row.verdict, row.score) == ("NCT00000001", "match", 100.0)


def test_ongoing_entry_without_a_similar_title_is_unverifiable_naming_the_best_candidate(rows):
    row = _one(rows, "ongoing:2", "document", "ongoing.resolve")
    assert (row.trial_id, row.verdict) == (None, "unverifiable")
    assert row.detail.startswith("best score 30.2 is below 85; best NCT00000004 at 30.2 (reference 3")


def test_unresolved_ongoing_entry_gives_no_status_or_country_rows(rows):
    assert [r.rule for r in rows if r.claim_id == "ongoing:2"] == ["ongoing.resolve"]


def test_ongoing_countries_shown_with_plus_n_are_a_match_when_among_the_registrys(rows):
    row = _one(rows, "ongoing:1", "ctgov", "ongoing.countries")
    assert (row.stated_value, row.registry_value, row.verdict, row.detail) == (
        "France", "DE, FR, US", "match",
        "the page shows 1 of the registry's 2 and '+1'; registry also lists outside the EEA: US; "
        "entry resolved by title to NCT00000001 (score 100.0)")


def test_ongoing_country_count_is_compared_with_the_registrys_eea_count(rows):
    row = _one(rows, "ongoing:1", "ctgov", "ongoing.more_countries")
    assert (row.stated_value, row.registry_value, row.verdict) == ("1 shown + 1", "3", "match")


def test_ongoing_country_the_registry_lacks_makes_it_partial(rows):
    row = _one(rows, "ongoing:3", "ctgov", "ongoing.countries")
    assert (row.verdict, row.detail) == (
        "partial", "not in the registry: NO; snapshot is stale (its last refresh failed); "
        "entry resolved by title to NCT00000004 (score 100.0)")


def test_eu_ct_number_under_a_clinicaltrials_gov_url_is_flagged(rows):
    row = _one(rows, "ref:2", "ctgov")
    assert (row.rule, row.verdict, row.trial_id) == ("reference.registry_url", "mismatch", "2024-000002-22-00")
    assert row.detail.startswith("an EU CT number under a ClinicalTrials.gov URL")


def test_reference_to_the_citing_trials_record_matches(rows):
    row = _one(rows, "ref:1", "ctgov")
    assert (row.rule, row.verdict, row.registry_value) == ("reference.points_at_trial", "match", "NCT00000001")


def test_clinicaltrials_eu_reference_without_a_snapshot_is_unverifiable(rows):
    row = _one(rows, "ref:3", "cteu")
    assert (row.verdict, row.detail) == (
        "unverifiable",
        "a clinicaltrials.eu page, not a registry record, and no snapshot of it; cited by sentences about NCT00000004")


def test_records_of_one_trial_in_two_registries_are_compared_with_each_other(rows):
    cross = [(r.field, r.compared_registry, r.compared_value, r.registry, r.registry_value, r.verdict)
             for r in rows if r.rule.startswith("cross.")]
    assert cross == [
        ("condition", "ctgov", "Melanoma", "ctis", "Metastatic melanoma", "match"),
        ("enrollment", "ctgov", "80", "ctis", "20", "unverifiable"),
        ("phase", "ctgov", "PHASE1, PHASE2", "ctis", "PHASE2", "partial"),
        ("status", "ctgov", "RECRUITING", "ctis", "ONGOING", "match"),
    ]


def test_registry_vs_registry_rows_state_nothing_for_the_page(rows):
    cross = [r for r in rows if r.claim_id.startswith("cross:")]
    others = [r for r in rows if not r.claim_id.startswith("cross:")]
    assert cross and {r.stated_value for r in cross} == {None}
    assert {(r.compared_registry, r.compared_value) for r in others} == {(None, None)}


def test_cross_registry_detail_names_the_first_records_snapshot(rows):
    row = _one(rows, "cross:NCT00000001", "ctis", "cross.status")
    assert row.detail == (
        "ctgov NCT00000001 (ctgov/NCT00000001.json, sha256 aaaaaaaaaaaa, reconstructed at "
        "protocolSection.statusModule.overallStatus) says RECRUITING; registry value is less specific")


def test_rows_come_sorted_by_claim_id_with_numbers_by_value(rows):
    assert rows == sorted(rows, key=row_order)
    claim_ids = list(dict.fromkeys(r.claim_id for r in rows if r.claim_id.startswith("table:")))
    assert claim_ids[:4] == ["table:1:condition", "table:1:enrollment", "table:1:phase", "table:1:status"]


def test_no_two_rows_share_the_history_key(rows):
    keys = [(r.claim_id, r.trial_id, r.field, r.registry, r.rule) for r in rows]
    assert len(keys) == len(set(keys))


def test_reconciliation_does_not_depend_on_the_order_of_records_and_links(rows):
    doc, records, links = _load()
    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    assert reconcile_document(doc, shuffled, list(reversed(links))) == rows


def test_table_row_verdicts_at_a_glance(rows):
    table = [(r.claim_id, r.registry, r.verdict) for r in rows if r.claim_id.startswith("table:4:")]
    assert table == [
        ("table:4:condition", "ctgov", "match"),
        ("table:4:enrollment", "ctgov", "match"),
        ("table:4:phase", "ctgov", "match"),
        ("table:4:status", "ctgov", "mismatch"),
    ]


def _cteu_page(trial_id: str, slug: str) -> LoadedRecord:
    url = f"https://clinicaltrials.eu/trial/{slug}/"
    record = TrialRecord(trial_id=trial_id, registry="cteu", title=slug.replace("-", " "),
                         identifiers=[Identifier(other_id=url, id_type="CTEU_URL")])
    entry = SnapshotEntry(path=f"cteu/{slug}.html", registry="cteu", trial_id=trial_id, url=url, sha256="e" * 64,
                          provenance="captured")
    return LoadedRecord(record, entry)


PANCREAS_SLUG = "study-on-low-dose-aldesleukin-for-patients-with-resectable-pancreatic-cancer"


def test_clinicaltrials_eu_reference_with_a_snapshot_about_the_citing_trial_matches():
    doc, records, links = _load()
    rows = reconcile_document(doc, [*records, _cteu_page("NCT00000004", PANCREAS_SLUG)], links)
    row = _one(rows, "ref:3", "cteu")
    assert (row.verdict, row.registry_value, row.evidence.snapshot_path) == (
        "match", "NCT00000004", f"cteu/{PANCREAS_SLUG}.html")


def test_clinicaltrials_eu_reference_with_a_snapshot_about_another_trial_is_a_mismatch():
    doc, records, links = _load()
    rows = reconcile_document(doc, [*records, _cteu_page("NCT00000001", PANCREAS_SLUG)], links)
    row = _one(rows, "ref:3", "cteu")
    assert (row.verdict, row.detail) == (
        "mismatch", "the page is about NCT00000001, not a citing trial; cited by sentences about NCT00000004")


def test_clinicaltrials_eu_pages_only_identify_trials_and_are_not_compared_with_the_pages_claims():
    doc, records, links = _load()
    rows = reconcile_document(doc, [*records, _cteu_page("NCT00000004", PANCREAS_SLUG)], links)
    assert sorted({r.rule for r in rows if r.registry == "cteu"}) == ["ongoing.resolve", "reference.points_at_trial"]


def _claim(claim_id: str, trial_ids: list[str], refs: list[int], section: str = "Cancer studies") -> Claim:
    return Claim(document_id="d", claim_id=claim_id, section=section, sentence="...", trial_ids=trial_ids,
                 ref_numbers=refs)


@pytest.mark.parametrize(
    ("second", "attributed"),
    [
        (_claim("c2", [], [5]), {"c2": "NCT1"}),
        (_claim("c2", [], [6]), {}),
        (_claim("c2", [], [5, 6]), {}),
        (_claim("c2", [], [5], section="Trial phases"), {}),
        (_claim("c2", ["NCT2"], [5]), {}),
    ],
)
def test_follow_on_sentence_takes_the_trial_only_when_it_continues_the_sentence_before(second, attributed):
    assert follow_on_trials([_claim("c1", ["NCT1"], [5]), second]) == attributed


def test_follow_on_attribution_runs_down_a_paragraph_citing_one_reference():
    claims = [_claim("c1", ["NCT1"], [5]), _claim("c2", [], [5]), _claim("c3", [], [5])]
    assert follow_on_trials(claims) == {"c2": "NCT1", "c3": "NCT1"}


def _with_claim(sentence: str, fields: list[str]) -> list[ReconciliationRow]:
    doc, records, links = _load()
    claim = Claim(document_id=doc.document.document_id, claim_id="c100", section="Extra", sentence=sentence,
                  trial_ids=["NCT00000001"], ref_numbers=[], field=fields[0], fields=fields)
    return [r for r in reconcile_document(doc.model_copy(update={"claims": [claim]}), records, links)
            if r.claim_id == "c100"]


def test_enrollment_stated_in_a_sentence_is_compared_with_the_registry():
    row = _one(_with_claim("NCT00000001 enrolled 1,080 patients.", ["enrollment"]), "c100", "ctgov")
    assert (row.stated_value, row.verdict, row.detail) == (
        "1080", "mismatch", "registry 80, stated 1080: stated is 1000 higher; registry figure is estimated")


def test_status_stated_in_a_sentence_is_compared_through_the_status_table():
    row = _one(_with_claim("NCT00000001 is recruiting in Europe.", ["status"]), "c100", "ctgov")
    assert (row.stated_value, row.verdict, row.detail) == ("recruiting", "match", "same status")


def test_tagged_field_the_sentence_states_nothing_readable_about_is_unverifiable():
    rows = _with_claim("NCT00000001 is a study.", ["population"])
    assert [(r.field, r.registry, r.verdict, r.detail) for r in rows] == [
        ("population", None, "unverifiable", "the sentence states no age group that can be read")]


def test_phase_in_a_sentence_naming_two_trials_is_not_given_to_either():
    doc, records, links = _load()
    claim = Claim(document_id=doc.document.document_id, claim_id="c100", section="Extra",
                  sentence="NCT00000001 and NCT00000004 are Phase 3 studies.", trial_ids=["NCT00000001", "NCT00000004"],
                  ref_numbers=[], field="phase", fields=["phase"])
    rows = reconcile_document(doc.model_copy(update={"claims": [claim]}), records, links)
    assert {(r.trial_id, r.verdict) for r in rows if r.claim_id == "c100"} == {
        ("NCT00000001", "unverifiable"), ("NCT00000004", "unverifiable")}
