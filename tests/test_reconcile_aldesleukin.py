"""Reconciliation of the embedded Aldesleukin page with the repo's snapshots.

Each expected verdict was checked by hand against the page and ../shared/registry-facts:
CT.gov gives NCT05727904 670 participants (the page says 810); refs 6-10 and 14 put EU CT
numbers under clinicaltrials.gov; NCT05607420, 2023-504632-17-00, 2023-506400-99-00 and
2024-515357-16-00 have no facts at all, and 2025-521227-70-00 and 2023-510297-14-00 no
registry record; 2023-506979-10-00, 2024-519532-16-00, 2025-522054-40-00, 2025-522841-23-00 and
NCT04243499 are tied to a record only by a candidate link.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.extract import extract_document, read_document
from pipeline.models import ExtractedDocument, ReconciliationRow
from pipeline.reconcile import LoadedRecord, reconcile_document
from pipeline.stages import load_records
from pipeline.store.snapshots import SnapshotStore

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "snapshots" / "documents" / "aldesleukin.txt"

NO_RECORD = ["NCT05607420", "2023-504632-17-00", "2023-506400-99-00", "2024-515357-16-00",
             "2025-521227-70-00", "2023-510297-14-00"]
CANDIDATE_ONLY = ["2023-506979-10-00", "2024-519532-16-00", "2025-522054-40-00", "2025-522841-23-00", "NCT04243499"]


@pytest.fixture(scope="module")
def doc() -> ExtractedDocument:
    text, sha = read_document(PAGE)
    return extract_document(text, source_url="https://clinicaltrials.eu/drug/aldesleukin/", sha256=sha,
                            extracted_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def rows(doc) -> list[ReconciliationRow]:
    records = load_records(SnapshotStore(REPO / "snapshots"))
    assert records.errors == []
    return reconcile_document(doc, [LoadedRecord(r, e) for r, e in records.records], records.links)


def _claim_id(doc: ExtractedDocument, sentence_start: str) -> str:
    [claim] = [c for c in doc.claims if c.sentence.startswith(sentence_start)]
    return claim.claim_id


def _table_claim(doc: ExtractedDocument, trial_id: str, field: str) -> str:
    [trial] = [t for t in doc.trials if t.trial_id == trial_id]
    return f"table:{trial.row_number}:{field}"


def _one(rows, claim_id, registry, rule=None) -> ReconciliationRow:
    found = [r for r in rows if r.claim_id == claim_id and r.registry == registry and (rule is None or r.rule == rule)]
    assert len(found) == 1, found
    return found[0]


def test_nct05727904_enrollment_810_against_ctgov_670_is_a_mismatch(doc, rows):
    row = _one(rows, _table_claim(doc, "NCT05727904", "enrollment"), "ctgov")
    assert (row.stated_value, row.registry_value, row.verdict, row.detail) == (
        "810", "670", "mismatch", "registry 670, stated 810: stated is 140 higher")


def test_nct05727904_enrollment_evidence_points_into_the_ctgov_snapshot(doc, rows):
    ev = _one(rows, _table_claim(doc, "NCT05727904", "enrollment"), "ctgov").evidence
    assert (ev.snapshot_path, ev.provenance, ev.field_path) == (
        "ctgov/NCT05727904.json", "reconstructed", "protocolSection.designModule.enrollmentInfo.count")


def test_nct05727904_phase_matches_ctgov_and_its_linked_ctis_record(doc, rows):
    claim = _table_claim(doc, "NCT05727904", "phase")
    assert [(r.registry, r.verdict, r.evidence.registry_trial_id) for r in rows if r.claim_id == claim] == [
        ("ctgov", "match", "NCT05727904"), ("ctis", "match", "2022-503140-41-00")]


@pytest.mark.parametrize("ref_number", [6, 7, 8, 9, 10, 14])
def test_eu_ct_numbers_under_clinicaltrials_gov_urls_are_flagged(rows, ref_number):
    row = _one(rows, f"ref:{ref_number}", "ctgov")
    assert (row.rule, row.verdict) == ("reference.registry_url", "mismatch")
    assert row.detail.startswith("an EU CT number under a ClinicalTrials.gov URL")


@pytest.mark.parametrize("ref_number", [1, 2, 3, 4, 5, 11, 12, 13])
def test_clinicaltrials_eu_references_without_snapshots_are_unverifiable(rows, ref_number):
    row = _one(rows, f"ref:{ref_number}", "cteu")
    assert (row.rule, row.verdict) == ("reference.points_at_trial", "unverifiable")


@pytest.mark.parametrize("trial_id", NO_RECORD)
def test_table_cells_of_trials_without_snapshots_are_unverifiable(doc, rows, trial_id):
    [trial] = [t for t in doc.trials if t.trial_id == trial_id]
    cells = [r for r in rows if r.claim_id.startswith(f"table:{trial.row_number}:")]
    assert {(r.verdict, r.detail) for r in cells} == {("unverifiable", "no registry record")}


@pytest.mark.parametrize("trial_id", CANDIDATE_ONLY)
def test_trials_reached_only_by_candidate_links_never_get_a_gating_or_matching_verdict(rows, trial_id):
    about = [r for r in rows if r.trial_id == trial_id and r.registry not in ("document", None)
             and not r.rule.startswith("reference.")]
    assert about
    assert {r.verdict for r in about} == {"unverifiable"}


def test_nct03645928_stated_completed_against_ctgov_recruiting_is_a_mismatch(doc, rows):
    row = _one(rows, _table_claim(doc, "NCT03645928", "status"), "ctgov")
    assert (row.stated_value, row.registry_value, row.verdict, row.detail) == (
        "Completed", "RECRUITING (RECRUITING)", "mismatch",
        "stated COMPLETED is ended, registry RECRUITING is not ended; the record was last updated 2020-02-28")


def test_nct02919644_table_row_agrees_with_ctgov_in_every_cell(doc, rows):
    [trial] = [t for t in doc.trials if t.trial_id == "NCT02919644"]
    cells = [(r.field, r.verdict) for r in rows if r.claim_id.startswith(f"table:{trial.row_number}:")
             and r.registry == "ctgov"]
    assert cells == [("condition", "match"), ("enrollment", "match"), ("phase", "match"), ("status", "match")]


def test_sentence_saying_aldesleukin_is_listed_for_nct03645928_is_a_mismatch(doc, rows):
    row = _one(rows, _claim_id(doc, "NCT03645928 studied"), "ctgov", "intervention.named")
    assert (row.verdict, row.registry_value) == ("mismatch", "Lifileucel; LN-145; Pembrolizumab; LN-145-S1")


def test_il2_only_in_the_ln145_description_matches_part_of_the_treatment_plan_for_nct03108495(doc, rows):
    row = _one(rows, _claim_id(doc, "NCT03108495 studied"), "ctgov", "intervention.named")
    assert row.verdict == "match"
    assert row.detail == "in the regimen, as the sentence says: 'IL-2' appears in the description of intervention 'LN-145'"


def test_progression_free_survival_sentence_matches_the_ctis_primary_endpoint(doc, rows):
    row = _one(rows, _claim_id(doc, "The main endpoint is progression-free survival"), "ctis", "endpoint.terms")
    assert (row.trial_id, row.stated_value, row.verdict) == ("NCT05727904", "PFS", "match")


def test_narrative_phase_1_2a_agrees_with_the_tables_phase_1_2(doc, rows):
    row = _one(rows, _claim_id(doc, "2025-521227-70-00 is a first-in-human"), "document",
               "self.table_vs_narrative.phase")
    assert (row.stated_value, row.registry_value, row.verdict) == ("Phase 1/2a", "Phase 1/2", "match")


def test_lifileucel_ongoing_entry_resolves_to_nct05727904_with_its_ctis_countries(doc, rows):
    [entry] = [o for o in doc.ongoing if "Lifileucel" in o.title]
    claim = f"ongoing:{entry.position}"
    assert _one(rows, claim, "ctgov", "ongoing.resolve").trial_id == "NCT05727904"
    assert _one(rows, claim, "ctis", "ongoing.countries").verdict == "match"
    assert _one(rows, claim, "ctis", "ongoing.more_countries").detail == (
        "6 shown + 6 = 12, the registry's count; entry resolved by title to NCT05727904 (score 100.0)")


@pytest.mark.parametrize(("title_word", "trial_id"), [("Tumor-Infiltrating Lymphocyte (TIL) Therapy", "2025-521227-70-00"),
                                                     ("ANV419", "2023-506400-99-00"),
                                                     ("Pemphigus", "2023-510297-14-00")])
def test_ongoing_entries_of_trials_without_records_resolve_by_the_pages_own_sentences(doc, rows, title_word, trial_id):
    [entry] = [o for o in doc.ongoing if title_word in o.title]
    [row] = [r for r in rows if r.claim_id == f"ongoing:{entry.position}" and r.rule == "ongoing.resolve"]
    assert (row.trial_id, row.registry, row.verdict) == (trial_id, "document", "match")
    assert "(the page's sentences c" in row.detail
    status = [r for r in rows if r.claim_id == f"ongoing:{entry.position}" and r.rule == "ongoing.status"]
    assert [(r.verdict, r.detail.split(";")[0]) for r in status] == [("unverifiable", "no registry record")]


def test_no_row_for_a_trial_without_a_record_claims_agreement_or_disagreement(rows):
    about = [r for r in rows if r.trial_id in NO_RECORD and r.registry not in ("document",)
             and not r.rule.startswith("reference.")]
    assert {r.verdict for r in about} == {"unverifiable"}
