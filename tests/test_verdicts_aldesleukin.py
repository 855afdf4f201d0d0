"""Issue 12, item by item: every verdict of the embedded page true to ../shared/registry-facts.

Each test names the claim (by the sentence, table row or list entry it stands for) and asserts
the verdict, the rule and the registry value; the comment above it says what the facts give.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from pipeline.outputs.baseline import check, load_baseline
from pipeline.models import ExtractedDocument, ReconciliationRow
from pipeline.registries import parse_snapshot
from pipeline.store.snapshots import SnapshotStore

from conftest import REPO
from test_reconcile_aldesleukin import _claim_id as _claim
from test_reconcile_aldesleukin import _table_claim as _table
from test_reconcile_aldesleukin import doc, rows  # noqa: F401  (the embedded page's fixtures, shared)

BASELINE = REPO / "baseline" / "aldesleukin.json"
REF_1 = "https://clinicaltrials.eu/trial/study-of-ict01-and-pembrolizumab-for-patients-with-advanced-stage-relapsed-refractory-cancer/"


def _entry(doc: ExtractedDocument, title_word: str) -> str:
    [entry] = [o for o in doc.ongoing if title_word in o.title]
    return f"ongoing:{entry.position}"


def _parse(rel: str):
    return parse_snapshot((REPO / "snapshots" / rel).read_bytes(), path=rel)


def _one(rows, claim_id: str, registry: str | None, rule: str) -> ReconciliationRow:
    found = [r for r in rows if r.claim_id == claim_id and r.registry == registry and r.rule == rule]
    assert len(found) == 1, found
    return found[0]


# 1. "...measures changes in Tregs after repeated low-dose interleukin-2" (NCT05153070). The facts
# list "ILT101 (low-dose IL-2)"; the recipe keeps "(low-dose IL-2)" as ILT101's description and
# the vocabulary knows ILT101 is low-dose IL-2.
def test_1_c030_low_dose_interleukin_2_matches_ilt101(doc, rows):
    row = _one(rows, _claim(doc, "NCT05153070 studies recent-onset"), "ctgov", "intervention.named")
    assert (row.claim_id, row.stated_value, row.verdict, row.registry_value) == (
        "c030", "interleukin-2", "match", "Cyclosporin; ILT101; Placebo")
    assert row.detail == ("Aldesleukin: the listed intervention 'ILT101' is low-dose interleukin-2 "
                          "(ILTOO Pharma's IL-2 product)")


def test_1_ilt101_description_is_restored_from_the_facts():
    [record] = _parse("ctgov/NCT05153070.json")
    [ilt101] = [i for i in record.interventions if i.name == "ILT101"]
    assert ilt101.description == "low-dose IL-2"


# 2. The EU CTR side's "Phase 1" of NCT04614103 is MedPath's label, which the facts call a
# likely mirror error: not a native E.7.1 field, as MedPath's "Phase 1" is not one for
# ctis/2024-514043-29-00. So the EU CTR record gives no phase and no cross-registry phase row.
def test_2_cross_nct04614103_has_no_phase_row_from_a_doubtful_mirror_label(rows):
    assert [r for r in rows if r.claim_id == "cross:NCT04614103" and r.rule == "cross.phase"] == []
    [record] = _parse("euctr/2020-003629-45.txt")
    assert (record.phases, record.phase_raw) == ([], None)


def test_2_the_recipe_keeps_the_mirror_label_among_its_alternatives():
    recipe = json.loads((REPO / "snapshots" / "reconstruction" / "euctr" / "2020-003629-45.json").read_text())
    assert [a["path"] for a in recipe["alternatives"]] == ["NL/E.7.1 Human pharmacology (Phase I)"]


# 3. "Aldesleukin was part of the treatment plan" (NCT03108495): CT.gov names IL-2 in LN-145's
# description, which is the regimen: a "part of the regimen" claim matched by the regimen.
def test_3_c010_part_of_the_treatment_plan_matches_the_regimen(doc, rows):
    row = _one(rows, _claim(doc, "NCT03108495 studied LN-145"), "ctgov", "intervention.named")
    assert (row.claim_id, row.stated_value, row.verdict, row.registry_value) == ("c010", "Aldesleukin", "match", "LN-145")
    assert row.detail == "in the regimen, as the sentence says: 'IL-2' appears in the description of intervention 'LN-145'"


def test_3_a_listed_claim_found_only_in_the_regimen_stays_a_mismatch_or_partial(doc, rows):
    # "Aldesleukin listed among the treatment drugs" (NCT03645928): the 2020 list does not name it.
    row = _one(rows, _claim(doc, "NCT03645928 studied"), "ctgov", "intervention.named")
    assert (row.claim_id, row.verdict, row.registry_value) == (
        "c008", "mismatch", "Lifileucel; LN-145; Pembrolizumab; LN-145-S1")


# 5. NCT05727904 on CTIS (2022-503140-41-00): findtrial.co's CTIS copy gives "Recruiting" and
# enrollment 280 (EEA); the page says Authorised / Recruiting and 810.
def test_5_table_status_of_nct05727904_matches_ctis(doc, rows):
    row = _one(rows, _table(doc, "NCT05727904", "status"), "ctis", "status.vocabulary")
    assert (row.stated_value, row.verdict, row.registry_value) == ("Authorised", "match", "RECRUITING (Recruiting)")


def test_5_ongoing_status_of_nct05727904_matches_ctis(doc, rows):
    row = _one(rows, _entry(doc, "Lifileucel and Pembrolizumab"), "ctis", "ongoing.status")
    assert (row.trial_id, row.stated_value, row.verdict, row.registry_value) == (
        "NCT05727904", "Recruiting", "match", "RECRUITING (Recruiting)")


def test_5_table_enrollment_810_is_a_mismatch_against_ctis_280_with_its_source(doc, rows):
    row = _one(rows, _table(doc, "NCT05727904", "enrollment"), "ctis", "enrollment.equal")
    assert (row.stated_value, row.verdict, row.registry_value) == ("810", "mismatch", "280")
    assert row.detail == ("registry 280, stated 810: stated is 530 higher; registry figure is EEA-only; "
                          "registry figure is estimated")
    assert (row.evidence.snapshot_path, row.evidence.field_path) == ("ctis/2022-503140-41-00.json", "totalNumberEnrolled")
    [entry] = [e for e in SnapshotStore(REPO / "snapshots").entries() if e.path == "ctis/2022-503140-41-00.json"]
    assert "https://findtrial.co/trial/CTIS2022-503140-41-00" in entry.source_urls


# 6. "...used LN-145 with Aldesleukin as part of the regimen" (NCT04614103): the facts hold
# CT.gov's arm description "...followed by IL-2", now restored: the same verdict as c010.
def test_6_c012_part_of_the_regimen_matches_the_restored_arm_description(doc, rows):
    row = _one(rows, _claim(doc, "NCT04614103 focused on"), "ctgov", "intervention.named")
    assert (row.claim_id, row.verdict, row.registry_value) == ("c012", "match", "LN-145")
    assert row.detail == "in the regimen, as the sentence says: 'IL-2' appears in the description of an arm (no label)"


# 8. Every ongoing entry resolved to a table trial is compared with that row's status.
@pytest.mark.parametrize(("title_word", "trial_id", "verdict"), [
    ("Tumor-Infiltrating Lymphocyte (TIL) Therapy", "2025-521227-70-00", "match"),
    ("CNTY-101", "2024-519532-16-00", "match"),  # by the product code, which only c024 (and a candidate) names
    ("ANV419", "2023-506400-99-00", "match"),
    ("Pemphigus", "2023-510297-14-00", "match"),
    ("Histamine Dihydrochloride", "2023-506979-10-00", "unverifiable"),  # through a candidate link (item 9)
])
def test_8_ongoing_entries_resolved_to_a_table_trial_are_checked_against_its_status(doc, rows, title_word, trial_id,
                                                                                   verdict):
    row = _one(rows, _entry(doc, title_word), "document", "self.table_vs_ongoing.status")
    assert (row.trial_id, row.stated_value, row.registry_value, row.verdict) == (
        trial_id, "Recruiting", "Authorised", verdict)


def test_8_every_resolved_entry_with_a_table_row_gets_a_table_check(doc, rows):
    table = {t.trial_id for t in doc.trials}
    resolved = {r.claim_id for r in rows if r.rule == "ongoing.resolve" and r.trial_id in table}
    checked = {r.claim_id for r in rows if r.rule == "self.table_vs_ongoing.status"}
    assert resolved == checked and len(checked) == 8  # entries 4 and 7 are of trials without a table row


# 9. One rule for candidate links: ongoing:9 reaches NCT05810792 (a candidate record of
# 2023-506979-10-00) by title, and gets unverifiable with the verdict it would get in the
# detail, as table row 2 does through the number.
def test_9_ongoing_9_through_a_candidate_record_is_unverifiable(doc, rows):
    claim = _entry(doc, "Histamine Dihydrochloride")
    row = _one(rows, claim, "ctgov", "ongoing.status")
    assert (row.trial_id, row.verdict, row.registry_value) == (
        "2023-506979-10-00", "unverifiable", "NOT_YET_RECRUITING (NOT_YET_RECRUITING)")
    assert row.detail.startswith("candidate record NCT05810792, link not confirmed: mismatch")
    resolve = _one(rows, claim, "ctgov", "ongoing.resolve")
    assert resolve.verdict == "unverifiable" and resolve.detail.startswith("candidate record NCT05810792")
    table = _one(rows, "table:2:status", "ctgov", "status.vocabulary")
    assert (table.verdict, table.registry_value) == ("unverifiable", "NOT_YET_RECRUITING (NOT_YET_RECRUITING)")


def test_9_no_row_reached_through_a_candidate_link_claims_a_verdict(rows):
    via_candidate = [r for r in rows if r.evidence.link and r.evidence.link.startswith("candidate link")]
    assert via_candidate and {r.verdict for r in via_candidate} == {"unverifiable"}


# 10. Registry-vs-registry rows: the page states nothing, so stated_value is null and both
# registries' values have their own columns.
def test_10_cross_rows_name_both_registries_values_in_their_own_columns(rows):
    row = _one(rows, "cross:NCT03108495", "euctr", "cross.status")
    assert (row.stated_value, row.compared_registry, row.compared_value, row.registry, row.registry_value,
            row.verdict) == (None, "ctgov", "TERMINATED", "euctr", "ONGOING", "mismatch")


# 11. The baseline accepts exactly today's discrepancies, and none of its reasons claims a report
# that was never made or a confirmation nobody did.
def test_11_baseline_accepts_exactly_the_discrepancies_of_today(rows):
    result = check(rows, load_baseline(BASELINE))
    assert (result.unaccepted, result.stale_entries) == ([], [])


def test_11_no_baseline_reason_claims_what_nobody_did():
    reasons = [e.reason.casefold() for e in load_baseline(BASELINE)]
    assert not [r for r in reasons if "reported upstream" in r or "confirmed discrepancy" in r]
    accepted = {(e.claim_id, e.rule) for e in load_baseline(BASELINE)}
    for gone in [("c010", "intervention.named"), ("c030", "intervention.named"), ("cross:NCT04614103", "cross.phase"),
                 ("ongoing:9", "ongoing.status")]:
        assert gone not in accepted


# 7. "...compares lifileucel plus pembrolizumab with pembrolizumab alone" (NCT05727904): CT.gov
# lists "Lifileucel plus Pembrolizumab" and "Pembrolizumab with Optional Crossover Period"; the
# CTIS main objective compares "lifileucel + pembrolizumab vs pembrolizumab alone".
@pytest.mark.parametrize(("registry", "registry_value", "detail"), [
    ("ctgov", "Lifileucel plus Pembrolizumab; Pembrolizumab with Optional Crossover Period",
     "lifileucel in the interventions; pembrolizumab in the interventions"),
    ("ctis", "compare efficacy of lifileucel + pembrolizumab vs pembrolizumab alone by BIRC per RECIST v1.1",
     "lifileucel in the summary; pembrolizumab in the summary"),
])
def test_7_c014_lifileucel_plus_pembrolizumab_matches_the_records(doc, rows, registry, registry_value, detail):
    row = _one(rows, _claim(doc, "NCT05727904 is a Phase 3 study"), registry, "intervention.products")
    assert (row.claim_id, row.stated_value, row.verdict, row.registry_value, row.detail) == (
        "c014", "lifileucel, pembrolizumab", "match", registry_value, detail)


# 4. "In NCT04243499, researchers studied ICT01 with low-dose subcutaneous interleukin-2" [1]:
# reference 1 is the clinicaltrials.eu page "study-of-ict01-and-pembrolizumab-..."; the facts give
# ICT01 alone or with pembrolizumab (EU CTR E.2.1, HRA) and IL-2 "not listed in any source".
def test_4_c006_ict01_with_interleukin_2_is_a_mismatch_naming_pembrolizumab(doc, rows):
    row = _one(rows, _claim(doc, "In NCT04243499, researchers studied"), "document",
               "self.narrative_vs_reference.intervention")
    assert (row.claim_id, row.stated_value, row.verdict, row.registry_value) == (
        "c006", "ICT01 with interleukin-2", "mismatch",
        "study of ict01 and pembrolizumab for patients with advanced stage relapsed refractory cancer")
    assert row.detail.endswith("it names ICT01 with pembrolizumab, not interleukin-2")
    assert row.evidence.link == REF_1


def test_4_the_eu_ctr_record_names_ict01_with_pembrolizumab_but_stays_a_candidate(doc, rows):
    row = _one(rows, _claim(doc, "In NCT04243499, researchers studied"), "euctr", "intervention.products")
    assert (row.stated_value, row.verdict) == ("ICT01", "unverifiable")
    assert row.registry_value == ("Part 1 safety/tolerability of a range of IV ICT01 doses (mono and + pembrolizumab); "
                                  "Part 2 preliminary anti-tumour activity")
    assert row.detail.startswith("candidate record 2019-003847-31, link not confirmed: match")


def test_the_readme_gives_the_counts_of_a_run_on_the_embedded_page(rows):
    text = " ".join((REPO / "README.md").read_text().split())
    m = re.search(r"(\d+) comparisons \((\d+) match, (\d+) partial, (\d+) mismatch, (\d+) unverifiable\)", text)
    assert m is not None
    counts = Counter(r.verdict for r in rows)
    assert tuple(int(g) for g in m.groups()) == (
        len(rows), counts["match"], counts["partial"], counts["mismatch"], counts["unverifiable"])
