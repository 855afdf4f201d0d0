"""Text normalization behind the fuzzy rules: abbreviations, condition terms, endpoints, drug names."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.reconcile.terms import (
    ConditionTerm,
    condition_terms,
    drug_pattern,
    endpoint_terms,
    expand_abbreviations,
    find_drug,
    is_solid_cancer,
    is_solid_tumor_umbrella,
    named_in,
    named_products,
    names_product,
    product_is_drug,
    registry_condition_terms,
    term_similarity,
    title_similarities,
    title_similarity,
    title_tokens,
    tokens,
)


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("NSCLC", "non small cell lung cancer"),
        ("mCRPC", "metastatic castration resistant prostate cancer"),
        ("CRC", "colorectal cancer"),
        ("PDAC", "pancreatic ductal adenocarcinoma"),
        ("PSC", "primary sclerosing cholangitis"),
        ("MDS/AML", "myelodysplastic syndrome/acute myeloid leukemia"),
        ("SLE", "systemic lupus erythematosus"),
        ("T1D", "type 1 diabetes"),
        ("B-NHL", "B-non hodgkin lymphoma"),
    ],
)
def test_abbreviation_expands_to_registry_wording(text, expanded):
    assert expand_abbreviations(text) == expanded


def test_abbreviation_inside_a_longer_one_is_not_expanded_on_its_own():
    assert expand_abbreviations("mCRC") == "metastatic colorectal cancer"


def test_capitalized_only_abbreviation_leaves_the_ordinary_word_alone():
    assert expand_abbreviations("ALL and all") == "acute lymphoblastic leukemia and all"


def test_tokens_fold_case_cut_plurals_and_meet_on_synonyms():
    assert tokens("Advanced solid tumours (NSCLC)") == [
        "advanced", "solid", "cancer", "non", "small", "cell", "lung", "cancer"]


def test_condition_cell_splits_into_terms_without_stage_qualifiers():
    terms = condition_terms("Advanced solid tumors, including mCRPC, CRC, PDAC, melanoma, and ovarian cancer")
    assert [t.tokens for t in terms] == [
        ("solid", "cancer"),
        ("castration", "resistant", "prostate", "cancer"),
        ("colorectal", "cancer"),
        ("pancreatic", "ductal", "cancer"),
        ("melanoma",),
        ("ovarian", "cancer"),
    ]


def test_slash_joined_abbreviations_stay_one_term():
    assert [t.key for t in condition_terms("MDS/AML")] == ["myelodysplastic syndrome acute myeloid leukemia"]


def test_head_and_neck_is_not_split_on_its_and():
    assert [t.key for t in condition_terms("Squamous cell carcinoma of the head and neck")] == [
        "squamous cell cancer head neck"]


def test_stage_numeral_is_dropped_with_the_word_stage():
    assert [t.key for t in condition_terms("Stage IV colorectal cancer")] == ["colorectal cancer"]


def test_registry_conditions_are_one_term_each_even_with_commas():
    terms = registry_condition_terms(["Lupus, systemic", "Melanoma"])
    assert [t.key for t in terms] == ["lupus systemic", "melanoma"]


@pytest.mark.parametrize(
    ("text", "solid"),
    [("Metastatic melanoma", True), ("Non-small cell lung cancer", True), ("Soft tissue sarcoma", True),
     ("B-cell non-Hodgkin lymphoma", False), ("Acute myeloid leukemia", False), ("Type 1 diabetes", False)],
)
def test_solid_cancer_tells_solid_tumors_from_blood_cancers_and_other_diseases(text, solid):
    [term] = condition_terms(text)
    assert is_solid_cancer(term) is solid


@pytest.mark.parametrize("text", ["Solid tumors", "Advanced solid tumours", "Solid tumors / neoplasm"])
def test_solid_tumor_umbrella_is_recognized_in_its_wordings(text):
    [term] = condition_terms(text)
    assert is_solid_tumor_umbrella(term)


def test_term_similarity_is_full_when_one_term_holds_the_others_words():
    [stated] = condition_terms("Untreated advanced melanoma")
    [registry] = registry_condition_terms(["Metastatic Melanoma"])
    assert term_similarity(stated, registry) == 100.0


def test_short_term_must_be_named_whole_in_a_sentence():
    term = ConditionTerm("ovarian cancer", ("ovarian", "cancer"))
    assert not named_in(term, {"ovarian", "cyst"}, 2 / 3)


def test_long_term_is_named_by_two_thirds_of_its_words():
    term = ConditionTerm("idiopathic inflammatory myopathy", ("idiopathic", "inflammatory", "myopathy"))
    assert named_in(term, set(tokens("people with idiopathic inflammatory myositis")), 2 / 3)


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("assess safety, tolerability, and disease control rate", {"SAFETY", "DCR"}),
        ("The main outcome was objective response rate", {"ORR"}),
        ("The main endpoint is progression-free survival", {"PFS"}),
        ("dose-limiting toxicities (DLTs)", {"DLT", "SAFETY"}),
        ("treatment-emergent adverse events", {"SAFETY"}),
        ("changes in regulatory T cells", {"TREG"}),
        ("measures changes in Tregs", {"TREG"}),
        ("rate of decline measured by CDR change at 18 months", {"CDR"}),
        ("serious side effects and also patient-reported outcomes", {"SAFETY", "PRO"}),
        ("grade 3 or higher adverse events and immune effectors", {"SAFETY", "IMMUNE"}),
        ("Immunological efficacy", {"IMMUNE"}),
        ("Overall survival (OS)", {"OS"}),
        ("Pharmacokinetics of the drug", set()),
    ],
)
def test_endpoint_wording_maps_to_endpoint_terms(text, terms):
    assert endpoint_terms(text) == terms


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("low-dose subcutaneous interleukin-2", "interleukin-2"),
        ("with Proleukin in the regimen", "Proleukin"),
        ("Aldesleukin was part of the plan", "Aldesleukin"),
        ("then IL2 3 MU daily", "IL2"),
        ("recombinant rhIL-2", "rhIL-2"),
        ("an IL-2 analog strategy", None),
        ("an IL-2 receptor agonist", None),
        ("IL-21 and IL-15", None),
    ],
)
def test_drug_is_found_under_its_names_but_not_in_other_molecules_names(text, found):
    assert find_drug(drug_pattern("Aldesleukin"), text) == found


def test_drug_without_known_aliases_is_found_by_its_own_name():
    assert find_drug(drug_pattern("Pembrolizumab"), "plus pembrolizumab") == "pembrolizumab"


def test_title_tokens_leave_out_generic_words_and_the_pages_drug():
    words = title_tokens("Study of LN-145 and IL-2 for Patients with Metastatic Melanoma", drug_pattern("Aldesleukin"))
    assert words == ["ln", "145", "metastatic", "melanoma"]


WORDS = st.sampled_from(["melanoma", "type", "1", "2", "diabetes", "lung", "cancer", "NSCLC", "advanced", "and",
                         "or", ",", "/", "stage", "IV", "mCRPC", "solid", "tumors", "B-cell", "Alzheimer's"])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_term_functions_take_any_text(text):
    tokens(text)
    condition_terms(text)
    endpoint_terms(text)
    find_drug(drug_pattern("Aldesleukin"), text)
    title_tokens(text, drug_pattern("Aldesleukin"))


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=8).map(" ".join))
def test_a_condition_cell_matches_a_registry_that_lists_the_same_text(text):
    from pipeline.reconcile.rules import compare_conditions

    stated = condition_terms(text)
    assume(stated)
    assert compare_conditions(stated, registry_condition_terms([text])).verdict == "match"


def test_named_products_are_inn_stems_and_sponsor_codes_other_than_the_pages_drug():
    drug = drug_pattern("Aldesleukin")
    assert named_products("ICT01 with low-dose subcutaneous interleukin-2", drug) == ["ICT01"]
    assert named_products("compares lifileucel plus pembrolizumab with pembrolizumab alone", drug) == [
        "lifileucel", "pembrolizumab"]
    assert named_products("an IL-2 analog strategy with high-dose IL-2 after TIL therapy", drug) == []


def test_names_product_ignores_case_hyphens_and_spaces_but_wants_whole_words():
    assert names_product("LN-145", "Tumor Infiltrating Lymphocytes (LN 145) in")
    assert names_product("ICT01", "a range of IV ict-01 doses")
    assert not names_product("ICT01", "ICT012 doses")


def test_a_product_code_known_as_the_drug_names_it():
    drug = drug_pattern("Aldesleukin")
    assert product_is_drug("ILT-101", drug) == "low-dose interleukin-2 (ILTOO Pharma's IL-2 product)"
    assert product_is_drug("LN-145", drug) is None


_TITLE_WORDS = st.lists(st.sampled_from("melanoma renal cell il 2 high dose vaccine phase lung cancer".split()), max_size=6)


@given(_TITLE_WORDS, st.lists(_TITLE_WORDS, max_size=8))
def test_titles_scored_together_score_as_each_pair_alone(words, others):
    assert title_similarities(words, others) == [title_similarity(words, other) for other in others]
