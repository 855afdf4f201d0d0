"""The comparison rules on plain values: phase sets, the status table, enrollment wording,
condition and endpoint terms, design findings, age groups and countries."""

from __future__ import annotations

import pytest

from pipeline.models import Arm, Design, Intervention, Outcome, Phase, SnapshotEntry, TrialRecord, TrialStatus
from pipeline.reconcile.consistency import compare_cross_enrollment, stated_combinations
from pipeline.reconcile.narrative import (
    combine_findings,
    compare_age_groups,
    compare_endpoint_terms,
    design_features,
    design_finding,
    intervention_outcome,
    products_outcome,
    says_listed,
    stated_age_groups,
)
from pipeline.reconcile.ongoing import (
    ONGOING_MARGIN,
    ONGOING_MATCH_THRESHOLD,
    Scored,
    TitleCandidate,
    compare_countries,
    compare_country_count,
    decide,
    resolve_title,
)
from pipeline.reconcile.records import LoadedRecord, ReachedRecord
from pipeline.reconcile.rules import (
    CONDITION_MATCH_THRESHOLD,
    EnrollmentFigure,
    compare_conditions,
    compare_enrollment,
    compare_phases,
    compare_status,
    coverage_verdict,
    is_same_condition,
    status_compatibility_rows,
)
from pipeline.reconcile.terms import condition_terms, drug_pattern, registry_condition_terms

P1, P2, P3 = Phase.PHASE1, Phase.PHASE2, Phase.PHASE3
S = TrialStatus


def _record(**fields) -> TrialRecord:
    return TrialRecord(trial_id="NCT00000009", registry="ctgov", **fields)


# ---------------------------------------------------------------------------------------------
# Phase
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stated", "registry", "verdict", "detail"),
    [
        ([P1, P2], [P1, P2], "match", "same phases"),
        ([P1, P2], [P2], "partial", "both have PHASE2; only the stated value has PHASE1"),
        ([P2], [P2, P3], "partial", "both have PHASE2; only the registry value has PHASE3"),
        ([P3], [P2], "mismatch", "no phase in common"),
        ([P1], [Phase.EARLY_PHASE1], "mismatch", "no phase in common"),
    ],
)
def test_phases_compare_as_sets(stated, registry, verdict, detail):
    assert compare_phases(stated, registry) == (verdict, detail)


# ---------------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stated", "registry", "verdict", "detail"),
    [
        (S.RECRUITING, S.RECRUITING, "match", "same status"),
        (S.ONGOING, S.RECRUITING, "match", "stated value is less specific"),
        (S.ONGOING, S.ACTIVE_NOT_RECRUITING, "match", "stated value is less specific"),
        (S.ONGOING, S.NOT_YET_RECRUITING, "match", "stated value is less specific"),
        (S.ONGOING, S.ENROLLING_BY_INVITATION, "match", "stated value is less specific"),
        (S.RECRUITING, S.ONGOING, "match", "registry value is less specific"),
        (S.ONGOING, S.COMPLETED, "mismatch", "stated ONGOING is not ended, registry COMPLETED is ended"),
        (S.ONGOING, S.TERMINATED, "mismatch", "stated ONGOING is not ended, registry TERMINATED is ended"),
        (S.COMPLETED, S.RECRUITING, "mismatch", "stated COMPLETED is ended, registry RECRUITING is not ended"),
        (S.RECRUITING, S.ACTIVE_NOT_RECRUITING, "mismatch",
         "both not ended, but RECRUITING is not ACTIVE_NOT_RECRUITING"),
        (S.RECRUITING, S.NOT_YET_RECRUITING, "mismatch", "both not ended, but RECRUITING is not NOT_YET_RECRUITING"),
        (S.RECRUITING, S.ENROLLING_BY_INVITATION, "partial", "the registry says recruitment is by invitation only"),
        (S.ONGOING, S.SUSPENDED, "partial", "authorised and not ended, but the registry says temporarily halted"),
        (S.COMPLETED, S.TERMINATED, "partial", "both ended; the registry says it ended early"),
        (S.TERMINATED, S.COMPLETED, "partial", "both ended; the registry does not say it ended early"),
        (S.RECRUITING, S.WITHDRAWN, "mismatch", "stated RECRUITING is not ended, registry WITHDRAWN is never ran"),
        (S.COMPLETED, S.UNKNOWN, "unverifiable", "the registry's status is unknown"),
        (S.COMPLETED, None, "unverifiable", "the registry's status is unknown"),
        (S.UNKNOWN, S.COMPLETED, "unverifiable", "the stated status is not in the status vocabulary"),
    ],
)
def test_status_compatibility_table(stated, registry, verdict, detail):
    assert compare_status(stated, registry) == (verdict, detail)


def test_status_table_rows_cover_every_pair_of_statuses():
    rows = status_compatibility_rows()
    assert len(rows) == len(TrialStatus) ** 2
    assert ("ONGOING", "RECRUITING", "match", "stated value is less specific") in rows


# ---------------------------------------------------------------------------------------------
# Enrollment
# ---------------------------------------------------------------------------------------------


def test_equal_enrollment_matches():
    assert compare_enrollment(88, EnrollmentFigure("ctgov", "NCT1", 88, "actual", "whole_trial")) == ("match", "equal")


def test_equal_enrollment_notes_an_estimated_figure():
    figure = EnrollmentFigure("ctgov", "NCT1", 50, "estimated", "whole_trial")
    assert compare_enrollment(50, figure) == ("match", "equal; registry figure is estimated")


def test_higher_stated_enrollment_says_by_how_much():
    figure = EnrollmentFigure("ctgov", "NCT05727904", 670, None, "whole_trial")
    assert compare_enrollment(810, figure) == ("mismatch", "registry 670, stated 810: stated is 140 higher")


def test_lower_stated_enrollment_notes_an_eea_only_estimated_figure():
    figure = EnrollmentFigure("ctis", "2022-503140-41-00", 280, "estimated", "eea")
    assert compare_enrollment(200, figure) == (
        "mismatch",
        "registry 280, stated 200: stated is 80 lower; registry figure is EEA-only; registry figure is estimated",
    )


def test_stated_enrollment_equal_to_a_linked_eea_figure_says_so():
    figure = EnrollmentFigure("ctgov", "NCT05727904", 670, None, "whole_trial")
    eea = EnrollmentFigure("ctis", "2022-503140-41-00", 280, None, "eea")
    assert compare_enrollment(280, figure, [eea]) == (
        "mismatch",
        "registry 670, stated 280: stated is 390 lower; "
        "the stated figure equals the EEA-only figure of the ctis record 2022-503140-41-00",
    )


@pytest.mark.parametrize(
    ("a", "a_scope", "b", "b_scope", "verdict"),
    [
        (670, "whole_trial", 670, "whole_trial", "match"),
        (670, "whole_trial", 600, None, "mismatch"),
        (670, "whole_trial", 280, "eea", "unverifiable"),
        (280, "eea", 670, "whole_trial", "unverifiable"),
        (100, "whole_trial", 280, "eea", "mismatch"),
    ],
)
def test_cross_registry_enrollment_compares_like_with_like(a, a_scope, b, b_scope, verdict):
    assert compare_cross_enrollment(a, a_scope, b, b_scope)[0] == verdict


# ---------------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "same"),
    [(100.0, True), (CONDITION_MATCH_THRESHOLD, True), (CONDITION_MATCH_THRESHOLD - 0.01, False), (0.0, False)],
)
def test_condition_threshold_edge(score, same):
    assert is_same_condition(score) is same


@pytest.mark.parametrize(
    ("covered", "verdict"),
    [([True, True], "match"), ([True, False], "partial"), ([False, False], "mismatch"), ([], "mismatch")],
)
def test_coverage_verdict(covered, verdict):
    assert coverage_verdict(covered) == verdict


@pytest.mark.parametrize(
    ("stated", "registry", "verdict", "score"),
    [
        # 87.5, just above the threshold: myositis and myopathy of the same kind.
        ("Idiopathic inflammatory myositis", ["Idiopathic Inflammatory Myopathies"], "match", 87.5),
        # 84.6, just below it.
        ("Ovary cancer", ["Ovarian Cancer"], "mismatch", 84.6),
        ("Untreated advanced melanoma", ["Metastatic Melanoma", "Unresectable Melanoma"], "match", 100.0),
        ("Type 1 diabetes", ["Type 2 Diabetes"], "mismatch", 0.0),
        ("Melanoma, NSCLC, cervical cancer", ["Metastatic Melanoma", "Non Small Cell Lung Cancer"], "partial", 85.7),
        ("Pancreatic cancer", ["Alzheimer Disease"], "mismatch", 23.1),
    ],
)
def test_condition_terms_against_registry_conditions(stated, registry, verdict, score):
    result = compare_conditions(condition_terms(stated), registry_condition_terms(registry))
    assert (result.verdict, result.score) == (verdict, score)


def test_condition_mismatch_names_the_nearest_registry_term():
    result = compare_conditions(condition_terms("Ovary cancer"), registry_condition_terms(["Ovarian Cancer"]))
    assert result.detail == (
        "no stated condition is the registry's; 'Ovary cancer' not among the registry's conditions; "
        "nearest 'Ovarian Cancer' at 85")


def test_stated_solid_tumors_covers_registry_solid_cancers_as_less_specific():
    result = compare_conditions(
        condition_terms("Solid tumors / neoplasm"),
        registry_condition_terms(["Metastatic Melanoma", "Non-small Cell Lung Cancer"]),
    )
    assert (result.verdict, result.detail) == (
        "match",
        "every stated condition is the registry's; 'Solid tumors / neoplasm' covers 'Metastatic Melanoma', "
        "'Non-small Cell Lung Cancer' (stated value is less specific)",
    )


def test_stated_solid_tumors_does_not_cover_a_blood_cancer():
    result = compare_conditions(condition_terms("Solid tumors"), registry_condition_terms(["Follicular Lymphoma"]))
    assert result.verdict == "mismatch"


# ---------------------------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stated", "primary", "secondary", "verdict"),
    [
        ({"PFS"}, {"ORR", "PFS"}, set(), "match"),
        ({"SAFETY", "DCR"}, {"SAFETY"}, set(), "partial"),
        ({"SAFETY", "PRO"}, {"SAFETY"}, {"PRO"}, "partial"),
        ({"PRO"}, {"SAFETY"}, {"PRO"}, "partial"),
        ({"ORR"}, {"PFS"}, set(), "mismatch"),
    ],
)
def test_endpoint_terms_against_primary_and_secondary_outcomes(stated, primary, secondary, verdict):
    assert compare_endpoint_terms(stated, primary, secondary)[0] == verdict


def test_endpoint_detail_says_which_terms_are_where():
    assert compare_endpoint_terms({"SAFETY", "PRO", "DCR"}, {"SAFETY"}, {"PRO"})[1] == (
        "primary: SAFETY; secondary only: PRO; not among the outcomes: DCR")


# ---------------------------------------------------------------------------------------------
# Design, population, intervention wording
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "features"),
    [
        ("a randomized, open-label Phase 3 study", ["randomized", "open-label"]),
        ("a non-randomised study", ["non-randomized"]),
        ("compares treated patients with placebo", ["placebo"]),
        ("is a first-in-human Phase 1/2a study", ["first-in-human"]),
        ("is a basket trial in several diseases", ["basket"]),
        ("compares lifileucel plus pembrolizumab with pembrolizumab alone", []),
    ],
)
def test_design_features_read_from_a_sentence(sentence, features):
    assert design_features(sentence) == features


@pytest.mark.parametrize(
    ("feature", "record", "finding"),
    [
        ("randomized", _record(design=Design(allocation="RANDOMIZED")), "confirmed"),
        ("randomized", _record(design=Design(allocation="NON_RANDOMIZED")), "contradicted"),
        ("randomized", _record(), "silent"),
        ("open-label", _record(design=Design(masking="NONE")), "confirmed"),
        ("open-label", _record(design=Design(masking="DOUBLE")), "contradicted"),
        ("placebo", _record(arms=[Arm(label="B", type="PLACEBO_COMPARATOR")]), "confirmed"),
        ("placebo", _record(interventions=[Intervention(name="Placebo")]), "confirmed"),
        ("placebo", _record(outcomes=[Outcome(kind="primary", measure="CDR change, placebo vs treated")]), "confirmed"),
        ("placebo", _record(arms=[Arm(label="A", type="EXPERIMENTAL")]), "contradicted"),
        ("placebo", _record(interventions=[Intervention(name="Aldesleukin")]), "silent"),
        ("first-in-human", _record(official_title="A First-in-Human Phase 1/2a Study of CC-38"), "confirmed"),
        ("first-in-human", _record(official_title="A Phase 1/2a Study of CC-38"), "silent"),
        ("basket", _record(conditions=["Pemphigus", "Mucous Membrane Pemphigoid", "Primary Sclerosing Cholangitis"]),
         "confirmed"),
        ("basket", _record(conditions=["Melanoma", "Metastatic Melanoma"]), "silent"),
    ],
)
def test_design_feature_findings(feature, record, finding):
    assert design_finding(feature, record)[0] == finding


@pytest.mark.parametrize(
    ("findings", "verdict"),
    [
        (["confirmed", "confirmed"], "match"),
        (["confirmed", "silent"], "match"),
        (["confirmed", "contradicted"], "partial"),
        (["contradicted", "silent"], "mismatch"),
        (["silent"], "unverifiable"),
    ],
)
def test_design_findings_combine_leaving_silence_out(findings, verdict):
    assert combine_findings(findings) == verdict


@pytest.mark.parametrize(
    ("sentence", "groups"),
    [
        ("studies children with autism spectrum disorder", ["CHILD"]),
        ("Some studies include adults with advanced cancers", ["ADULT"]),
        ("children with autism or adults with early Alzheimer disease", ["CHILD", "ADULT"]),
        ("studies people with systemic sclerosis", []),
    ],
)
def test_age_groups_read_from_a_sentence(sentence, groups):
    assert stated_age_groups(sentence) == groups


@pytest.mark.parametrize(
    ("stated", "registry", "verdict"),
    [
        (["CHILD"], ["CHILD"], "match"),
        (["ADULT"], ["ADULT", "OLDER_ADULT"], "match"),
        (["CHILD", "ADULT"], ["ADULT"], "partial"),
        (["CHILD"], ["ADULT", "OLDER_ADULT"], "mismatch"),
    ],
)
def test_age_groups_compare(stated, registry, verdict):
    assert compare_age_groups(stated, registry)[0] == verdict


@pytest.mark.parametrize(
    ("sentence", "listed"),
    [
        ("with Aldesleukin listed among the treatment drugs", True),
        ("and Aldesleukin is listed in the intervention list", True),
        ("used LN-145 with Aldesleukin as part of the regimen", False),
    ],
)
def test_sentence_saying_the_drug_is_listed_is_told_apart_from_one_saying_it_is_given(sentence, listed):
    assert says_listed(sentence) is listed


# ---------------------------------------------------------------------------------------------
# Countries
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stated", "registry", "more", "verdict", "detail"),
    [
        (["DE"], ["DE"], 0, "match", "same countries"),
        (["DE"], ["DE", "FR"], 0, "partial", "the page does not show FR"),
        (["DE"], ["DE", "FR"], 1, "match", "the page shows 1 of the registry's 2 and '+1'"),
        (["DE", "ES"], ["DE", "FR"], 0, "partial", "not in the registry: ES"),
        (["ES"], ["DE"], 0, "mismatch", "no shown country is in the registry (page: ES)"),
        (["DE"], ["DE", "US"], 0, "match", "same countries; registry also lists outside the EEA: US"),
        (["DE", "FR"], ["US"], 0, "unverifiable", "the registry lists no EEA country (only US)"),
    ],
)
def test_shown_countries_against_registry_countries(stated, registry, more, verdict, detail):
    assert compare_countries(stated, registry, more) == (verdict, detail)


def test_country_names_not_understood_are_named_in_the_detail():
    assert compare_countries(["DE"], ["DE"], 0, ["Atlantis"]) == (
        "match", "same countries; not understood as countries: Atlantis")


@pytest.mark.parametrize(
    ("shown", "more", "registry", "verdict"),
    [
        (6, 6, ["BE", "CZ", "DE", "ES", "FI", "FR", "GR", "IT", "NL", "PL", "SE", "SI"], "match"),
        (6, 6, ["BE", "CZ", "DE", "ES", "FI", "FR", "GR", "IT", "NL", "PL", "SE", "SI", "US"], "match"),
        (6, 5, ["BE", "CZ", "DE", "ES", "FI", "FR", "GR", "IT", "NL", "PL", "SE", "SI"], "mismatch"),
        (6, 6, ["US", "CA"], "unverifiable"),
    ],
)
def test_shown_plus_more_against_registry_country_count(shown, more, registry, verdict):
    assert compare_country_count(shown, more, registry)[0] == verdict


# ---------------------------------------------------------------------------------------------
# Ongoing-list resolution
# ---------------------------------------------------------------------------------------------


def _scored(trial_id: str, score: float) -> Scored:
    return Scored(TitleCandidate(trial_id, f"title of {trial_id}", f"record {trial_id}"), score)


@pytest.mark.parametrize(
    ("best", "runner", "resolved"),
    [
        (ONGOING_MATCH_THRESHOLD, None, "NCT1"),
        (ONGOING_MATCH_THRESHOLD - 0.01, None, None),
        (100.0, 100.0 - ONGOING_MARGIN, "NCT1"),
        (100.0, 100.0 - ONGOING_MARGIN + 0.01, None),
    ],
)
def test_ongoing_entry_resolves_at_the_threshold_and_with_the_margin(best, runner, resolved):
    result = decide(_scored("NCT1", best), None if runner is None else _scored("NCT2", runner))
    assert result.trial_id == resolved


def test_ambiguous_ongoing_entry_names_the_runner_up():
    assert decide(_scored("NCT1", 96.0), _scored("NCT2", 93.0)).reason == "ambiguous: NCT2 scores 93.0"


def test_ongoing_title_equal_to_a_reference_slug_resolves_to_the_references_trial():
    slug = TitleCandidate("NCT05153070", "study on low dose aldesleukin and ciclosporin for patients with newly "
                          "diagnosed type 1 diabetes retaining insulin secretion", "reference 13")
    other = TitleCandidate("NCT05468073", "study on low dose aldesleukin and sodium chloride for patients with "
                           "early alzheimers disease", "reference 12")
    title = ("Study on Low-Dose Aldesleukin and Ciclosporin for Patients with Newly Diagnosed Type 1 Diabetes "
             "Retaining Insulin Secretion")
    result = resolve_title(title, [other, slug], drug_pattern("Aldesleukin"))
    assert (result.trial_id, result.best.score) == ("NCT05153070", 100.0)


# ---------------------------------------------------------------------------------------------
# Intervention: the page's drug, other products, combinations
# ---------------------------------------------------------------------------------------------

_DRUG = drug_pattern("Aldesleukin")
_REGIMEN = _record(interventions=[Intervention(name="LN-145", description="TIL, followed by IL-2")])


def _reached(record: TrialRecord) -> ReachedRecord:
    entry = SnapshotEntry(path="ctgov/NCT00000009.json", url="https://clinicaltrials.gov/api/v2/studies/NCT00000009",
                          registry="ctgov", trial_id="NCT00000009", sha256="a" * 64, provenance="reconstructed")
    return ReachedRecord(LoadedRecord(record, entry), "same id")


@pytest.mark.parametrize(("listed_claim", "verdict", "detail"), [
    (False, "match", "in the regimen, as the sentence says: 'IL-2' appears in the description of intervention 'LN-145'"),
    (True, "partial", "in the regimen, not a listed intervention: 'IL-2' appears in the description of intervention 'LN-145'"),
])
def test_drug_found_in_the_regimen_matches_a_regimen_claim_and_is_partial_for_a_listed_claim(listed_claim, verdict,
                                                                                             detail):
    outcome = intervention_outcome("Aldesleukin", _DRUG, _reached(_REGIMEN), listed_claim)
    assert (outcome.verdict, outcome.registry_value, outcome.detail) == (verdict, "LN-145", detail)


def test_drug_only_in_the_title_is_partial_even_for_a_regimen_claim():
    record = _record(title="LN-145 then IL-2", interventions=[Intervention(name="LN-145")])
    assert intervention_outcome("Aldesleukin", _DRUG, _reached(record), False).verdict == "partial"


def test_a_product_code_known_as_the_drug_is_the_drug_listed():
    record = _record(interventions=[Intervention(name="Cyclosporin"), Intervention(name="ILT101")])
    outcome = intervention_outcome("Aldesleukin", _DRUG, _reached(record), True)
    assert (outcome.verdict, outcome.detail) == (
        "match", "Aldesleukin: the listed intervention 'ILT101' is low-dose interleukin-2 (ILTOO Pharma's IL-2 product)")


def test_an_arm_without_a_label_is_named_by_what_it_is():
    record = _record(interventions=[Intervention(name="LN-145")], arms=[Arm(description="LN-145, followed by IL-2")])
    assert intervention_outcome("Aldesleukin", _DRUG, _reached(record), False).detail == (
        "in the regimen, as the sentence says: 'IL-2' appears in the description of an arm (no label)")


@pytest.mark.parametrize(("record", "verdict", "detail"), [
    (_record(interventions=[Intervention(name="Lifileucel plus Pembrolizumab")]), "match",
     "lifileucel in the interventions; pembrolizumab in the interventions"),
    (_record(title="Lifileucel in melanoma"), "partial", "lifileucel in the title; pembrolizumab not in the record"),
    (_record(interventions=[Intervention(name="Nivolumab")]), "mismatch",
     "lifileucel not in the record; pembrolizumab not in the record"),
    (_record(), "unverifiable", "the ctgov record gives no interventions, title or summary"),
])
def test_products_a_sentence_names_against_the_record(record, verdict, detail):
    outcome = products_outcome(["lifileucel", "pembrolizumab"], _reached(record))
    assert (outcome.verdict, outcome.detail) == (verdict, detail)


@pytest.mark.parametrize(("sentence", "combinations"), [
    ("researchers studied ICT01 with low-dose subcutaneous interleukin-2 in people", [("ICT01", "interleukin-2")]),
    ("used LN-145 with Aldesleukin as part of the regimen", [("LN-145", "Aldesleukin")]),
    ("studied LN-145 in cervical carcinoma, and Aldesleukin was part of the treatment plan", []),
    ("compares lifileucel plus pembrolizumab with pembrolizumab alone", []),
])
def test_stated_combinations_are_a_product_given_with_the_drug(sentence, combinations):
    assert stated_combinations(sentence, _DRUG) == combinations


def test_an_entry_the_titles_leave_unresolved_resolves_by_a_product_only_one_trial_names():
    page = TitleCandidate("2024-519532-16-00", "The trial is designed to assess safety of CNTY-101.", "the page's sentences c024")
    record = TitleCandidate("2024-519532-16-00", "A Study of CNTY-101 in Autoimmune Diseases", "ctgov record NCT06255028 title",
                            candidate_link="candidate link 2024-519532-16-00 -> NCT06255028")
    other = TitleCandidate("NCT05468073", "Low-dose IL-2 in early Alzheimer disease", "ctgov record NCT05468073 title")
    resolution = resolve_title("Safety of CNTY-101 and Aldesleukin in Lupus", [record, page, other], _DRUG)
    assert (resolution.trial_id, resolution.by_product, resolution.best.candidate.source) == (
        "2024-519532-16-00", "CNTY-101", "the page's sentences c024")
    assert resolution.candidate_link is None


def test_a_product_several_trials_name_resolves_nothing():
    a = TitleCandidate("NCT04614103", "LN-145 in lung cancer", "a")
    b = TitleCandidate("NCT03108495", "LN-145 in cervical cancer", "b")
    assert resolve_title("Study of LN-145", [a, b], _DRUG).trial_id is None
