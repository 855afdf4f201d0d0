"""Stage 1, the extractor: a page's text -> ExtractedDocument.

Expected values for the embedded Aldesleukin page were written by reading the page, not by
printing the extractor's output.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import DocumentError
from pipeline.extract import document_id_for, extract_document, read_document
from pipeline.models import ExtractedDocument

from conftest import EMBEDDED_PAGE, FIXTURES

DOCUMENTS = FIXTURES / "documents"
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
HEADER = "Trial ID Phase Condition studied Status Enrollment"

ALDESLEUKIN_ROWS = [
    ("NCT04243499", "Phase 1/2", "Advanced solid tumors, including mCRPC, CRC, PDAC, melanoma, and ovarian cancer", "Completed", 88),
    ("2023-506979-10-00", "Phase 1", "Pancreatic cancer", "Authorised", 50),
    ("2025-522054-40-00", "Phase 2", "Previously treated advanced melanoma", "Completed", 100),
    ("2024-515357-16-00", "Phase 2", "MDS with excess blasts, MDS/AML, or AML", "Authorised", 16),
    ("NCT05727904", "Phase 3", "Untreated advanced melanoma", "Authorised", 810),
    ("NCT03645928", "Phase 2", "Solid tumors / neoplasm", "Completed", 268),
    ("2025-521227-70-00", "Phase 1/2", "Locally advanced or metastatic prostate cancer and metastatic colorectal cancer", "Authorised", 12),
    ("2025-522841-23-00", "Phase 2", "Autism spectrum disorder", "Authorised", 22),
    ("2024-519532-16-00", "Phase 1", "Idiopathic inflammatory myositis, systemic lupus erythematosus, systemic sclerosis", "Authorised", 12),
    ("2023-504632-17-00", "Phase 2", "Advanced solid tumors with SWI/SNF complex alterations", "Authorised", 11),
    ("NCT05607420", "Phase 1/2", "Relapsed or refractory B-cell non-Hodgkin lymphoma", "Authorised", 85),
    ("2023-506400-99-00", "Phase 2", "Melanoma, NSCLC, cervical cancer", "Authorised", 32),
    ("NCT04166006", "Phase 2", "Neuroendocrine tumors and soft tissue sarcoma", "Authorised", 30),
    ("2023-510297-14-00", "Phase 2", "PSC, mucous membrane pemphigoid, polymyositis/dermatomyositis, pemphigus vulgaris/foliaceus", "Authorised", 112),
    ("NCT02919644", "Phase 2", "Stage IV colorectal cancer", "Authorised", 19),
]

EU = "https://clinicaltrials.eu/trial/"
GOV = "https://clinicaltrials.gov/study/"
ALDESLEUKIN_REFERENCES = [
    (1, EU + "study-of-ict01-and-pembrolizumab-for-patients-with-advanced-stage-relapsed-refractory-cancer/", "NCT04243499", "citing_sentence"),
    (2, EU + "study-on-the-safety-and-benefits-of-ln-144-and-ln-145-for-patients-with-metastatic-melanoma-head-and-neck-cancer-and-non-small-cell-lung-cancer/", "NCT03645928", "citing_sentence"),
    (3, EU + "study-on-the-effectiveness-and-safety-of-ln-145-and-pembrolizumab-for-patients-with-recurrent-metastatic-or-persistent-cervical-cancer/", "NCT03108495", "citing_sentence"),
    (4, EU + "study-on-the-safety-and-benefits-of-ln-145-for-patients-with-metastatic-non-small-cell-lung-cancer/", "NCT04614103", "citing_sentence"),
    (5, EU + "study-on-the-effectiveness-and-safety-of-lifileucel-and-pembrolizumab-for-patients-with-untreated-unresectable-or-metastatic-melanoma/", "NCT05727904", "citing_sentence"),
    (6, GOV + "2025-521227-70-00", "2025-521227-70-00", "url"),
    (7, GOV + "2023-504632-17-00", "2023-504632-17-00", "url"),
    (8, GOV + "2023-506400-99-00", "2023-506400-99-00", "url"),
    (9, GOV + "2024-519532-16-00", "2024-519532-16-00", "url"),
    (10, GOV + "2023-510297-14-00", "2023-510297-14-00", "url"),
    (11, EU + "study-on-aldesleukin-and-dendritic-cell-vaccine-for-patients-with-resected-stage-iv-neuroendocrine-tumors-and-soft-tissue-sarcoma/", "NCT04166006", "citing_sentence"),
    (12, EU + "study-on-low-dose-aldesleukin-and-sodium-chloride-for-patients-with-early-alzheimers-disease/", "NCT05468073", "citing_sentence"),
    (13, EU + "study-on-low-dose-aldesleukin-and-ciclosporin-for-patients-with-newly-diagnosed-type-1-diabetes-retaining-insulin-secretion/", "NCT05153070", "citing_sentence"),
    (14, GOV + "2025-522841-23-00", "2025-522841-23-00", "url"),
]

ALDESLEUKIN_ONGOING = [
    ("Safety Study of Tumor-Infiltrating Lymphocyte (TIL) Therapy for Patients with Metastatic Colorectal or Prostate Cancer",
     "Recruiting", ["Germany"], 0),
    ("Study on the Safety of CNTY-101 and Aldesleukin for Patients with Active Autoimmune Diseases: Lupus, Scleroderma, and Myositis",
     "Recruiting", ["Germany"], 0),
    ("Study on Aldesleukin and Dendritic Cell Vaccine for Patients with Resected Stage IV Neuroendocrine Tumors and Soft Tissue Sarcoma",
     "Recruiting", ["Italy"], 0),
    ("Study on Low-Dose Aldesleukin and Ciclosporin for Patients with Newly Diagnosed Type 1 Diabetes Retaining Insulin Secretion",
     "Recruiting", ["France"], 0),
    ("Study Comparing ANV419 and High Dose IL2 in Adoptive Cell Therapy for Patients with Melanoma, Non-Small Cell Lung Cancer, and Cervical Cancer",
     "Recruiting", ["Denmark", "The Netherlands", "Spain"], 0),
    ("Study of Dendritic Cell Vaccine and Aldesleukin Treatment in Patients After Surgery for Stage IV Colorectal Cancer",
     "Recruiting", ["Italy"], 0),
    ("Study of LN-145 (Tumor Infiltrating Lymphocytes) in patients with metastatic non-small-cell lung cancer",
     "Recruiting", ["Belgium", "France", "Germany", "Italy", "The Netherlands", "Spain"], 0),
    ("Study on Low-Dose Aldesleukin for Patients with Pemphigus, Mucous Membrane Pemphigoid, Polymyositis, Dermatomyositis, and Primary Sclerosing Cholangitis",
     "Recruiting", ["Germany"], 0),
    ("Study on the Effects of Histamine Dihydrochloride and Aldesleukin in Patients with Resectable Pancreatic Cancer",
     "Recruiting", ["Sweden"], 0),
    ("Study on the Effectiveness and Safety of Lifileucel and Pembrolizumab for Patients with Untreated, Unresectable, or Metastatic Melanoma",
     "Recruiting", ["Belgium", "Czechia", "Finland", "France", "Germany", "Greece"], 6),
]

ALDESLEUKIN_TERMS = [
    "Phase 1", "Phase 2", "Phase 3", "Safety", "Tolerability", "Adverse events (AEs)",
    "Grade 3 or higher adverse events", "Dose-limiting toxicities (DLTs)", "Objective response rate (ORR)",
    "Progression-free survival (PFS)", "Tregs", "RECIST",
]

# Every trial id the Aldesleukin narrative names (the part above the summary table).
ALDESLEUKIN_NARRATIVE_IDS = {
    "NCT04243499", "NCT03645928", "NCT03108495", "NCT04614103", "NCT05727904", "2025-521227-70-00",
    "2023-504632-17-00", "2023-506400-99-00", "2024-519532-16-00", "2023-510297-14-00", "NCT04166006",
    "NCT05468073", "NCT05153070", "2025-522841-23-00",
}


def _extract_file(path: Path) -> ExtractedDocument:
    text, sha = read_document(path)
    return extract_document(text, source_url=path.as_uri(), sha256=sha, extracted_at=WHEN, path=str(path))


def _extract_text(text: str) -> ExtractedDocument:
    return extract_document(text, source_url="file:///page.txt", sha256="0" * 64, extracted_at=WHEN, path="page.txt")


def _rows(doc: ExtractedDocument) -> list[tuple[str, str, str, str, int | None]]:
    return [(t.trial_id, t.phase, t.condition, t.status, t.enrollment) for t in doc.trials]


def _one_row_page(row: str) -> str:
    return f"Drug\n\n{HEADER}\n{row}\n"


@pytest.fixture(scope="module")
def aldesleukin() -> ExtractedDocument:
    return _extract_file(EMBEDDED_PAGE)


# --- document ------------------------------------------------------------------------------


def test_document_carries_title_slug_and_the_digest_of_the_bytes(aldesleukin):
    assert aldesleukin.document.title == "Aldesleukin"
    assert aldesleukin.document.document_id == "aldesleukin"
    assert aldesleukin.document.sha256 == hashlib.sha256(EMBEDDED_PAGE.read_bytes()).hexdigest()
    assert aldesleukin.document.extracted_at == WHEN


def test_extraction_of_the_same_text_gives_an_equal_result():
    text = EMBEDDED_PAGE.read_text(encoding="utf-8")
    assert _extract_text(text) == _extract_text(text)


def test_document_id_given_by_the_caller_is_used_everywhere():
    doc = extract_document(EMBEDDED_PAGE.read_text(encoding="utf-8"), source_url="u", sha256="s",
                           extracted_at=WHEN, document_id="page-7")
    ids = {doc.document.document_id} | {r.document_id for r in [*doc.trials, *doc.claims, *doc.ongoing,
                                                                  *doc.references, *doc.glossary]}
    assert ids == {"page-7"}


@pytest.mark.parametrize(
    ("title", "slug"),
    [("Aldesleukin", "aldesleukin"), ("Interleukin-2 (IL-2)", "interleukin-2-il-2"),
     ("  Ciclosporin  Ä ", "ciclosporin-a"), ("Türkiye trials", "turkiye-trials")],
)
def test_document_id_is_a_lowercase_hyphenated_slug_of_the_title(title, slug):
    assert document_id_for(title) == slug


def test_document_id_of_a_title_without_letters_is_a_stable_digest_slug():
    assert document_id_for("✶✶✶") == document_id_for("✶✶✶")
    assert re.fullmatch(r"document-[0-9a-f]{12}", document_id_for("✶✶✶"))


# --- summary table -------------------------------------------------------------------------


def test_summary_table_rows_with_run_together_cells_split_by_grammar(aldesleukin):
    assert _rows(aldesleukin) == ALDESLEUKIN_ROWS
    assert [t.row_number for t in aldesleukin.trials] == list(range(1, 16))


@pytest.mark.parametrize(
    ("row", "cells"),
    [
        ("NCT01234567Phase 1/2aAdvanced cancerActive, not recruiting1,200",
         ("NCT01234567", "Phase 1/2a", "Advanced cancer", "Active, not recruiting", 1200)),
        ("2004-000123-45Phase 2/3Type 1 diabetesNot yet recruiting40",
         ("2004-000123-45", "Phase 2/3", "Type 1 diabetes", "Not yet recruiting", 40)),
        ("NCT01234567Phase 2bladder cancerCompleted10",
         ("NCT01234567", "Phase 2", "bladder cancer", "Completed", 10)),
        ("NCT01234567Early Phase 1Pain after surgeryOngoing, recruiting12",
         ("NCT01234567", "Early Phase 1", "Pain after surgery", "Ongoing, recruiting", 12)),
        ("NCT01234567N/AHealthy volunteersWithdrawn0",
         ("NCT01234567", "N/A", "Healthy volunteers", "Withdrawn", 0)),
        ("2023-000001-01-00Phase 4Stage 4 cancerTemporarily halted7",
         ("2023-000001-01-00", "Phase 4", "Stage 4 cancer", "Temporarily halted", 7)),
        ("NCT01234567Phase 2Stage 4 cancerCompleted1 200",
         ("NCT01234567", "Phase 2", "Stage 4 cancer", "Completed", 1200)),
        ("NCT01234567Phase 3Stage 4 cancerAuthorised",
         ("NCT01234567", "Phase 3", "Stage 4 cancer", "Authorised", None)),
    ],
)
def test_table_row_cells_are_told_apart_by_id_phase_and_status_grammar(row, cells):
    assert _rows(_extract_text(_one_row_page(row))) == [cells]


def test_table_row_with_tab_separated_cells_keeps_a_status_outside_the_vocabulary():
    doc = _extract_text(_one_row_page("NCT01234567\tPhase 2\tSevere asthma\tPlanned\t30"))
    assert _rows(doc) == [("NCT01234567", "Phase 2", "Severe asthma", "Planned", 30)]


def test_table_row_with_multi_space_separated_cells_is_split_at_the_gaps():
    doc = _extract_text(_one_row_page("NCT01234567   N/A   Chronic rhinosinusitis   Withdrawn   0"))
    assert _rows(doc) == [("NCT01234567", "N/A", "Chronic rhinosinusitis", "Withdrawn", 0)]


def test_table_ends_at_the_first_line_that_is_not_a_row():
    page = (f"Drug\n\n{HEADER}\nNCT00000001Phase 1CancerCompleted5\nNCT00000002Phase 2AsthmaRecruiting6\n"
            "Safety notes\n\nNCT00000003 is a Phase 3 study.[1]\n")
    doc = _extract_text(page)
    assert [t.trial_id for t in doc.trials] == ["NCT00000001", "NCT00000002"]
    assert [(c.section, c.trial_ids) for c in doc.claims] == [("Safety notes", ["NCT00000003"])]


def test_table_rows_after_a_blank_line_stay_in_the_table():
    page = f"Drug\n\n{HEADER}\nNCT00000001Phase 1CancerCompleted5\n\nNCT00000002Phase 2AsthmaRecruiting6\n"
    assert [t.row_number for t in _extract_text(page).trials] == [1, 2]


def test_variant_page_of_another_drug_gives_its_own_table():
    doc = _extract_file(DOCUMENTS / "zelvotamab.txt")
    assert doc.document.document_id == "zelvotamab"
    assert _rows(doc) == [
        ("NCT06100001", "Phase 2/3", "Metastatic triple-negative breast cancer", "Not yet recruiting", 1200),
        ("2024-512345-21-00", "Phase 1/2a", "Relapsed multiple myeloma", "Active, not recruiting", 64),
        ("NCT05900002", "Early Phase 1", "Recurrent glioblastoma", "Recruiting", 18),
        ("2019-004321-15", "Phase 4", "Moderate plaque psoriasis", "Terminated", 240),
    ]


def test_shuffled_rows_keep_their_page_order():
    doc = _extract_file(DOCUMENTS / "aldesleukin-shuffled.txt")
    # The fixture holds the embedded page's rows in this order (1-based original positions).
    order = [15, 3, 8, 1, 12, 6, 14, 2, 10, 5, 13, 7, 11, 4, 9]
    assert _rows(doc) == [ALDESLEUKIN_ROWS[i - 1] for i in order]
    assert [t.row_number for t in doc.trials] == list(range(1, 16))


def test_tab_separated_table_is_read_cell_by_cell():
    doc = _extract_file(DOCUMENTS / "ravoleukin-tabs.txt")
    assert _rows(doc) == [
        ("NCT06200001", "Phase 2", "Severe asthma", "Ongoing, recruiting", 1500),
        ("2025-500001-11-00", "Phase 1", "Healthy volunteers", "Pending", 40),
        ("NCT06200003", "N/A", "Chronic rhinosinusitis", "Withdrawn", 0),
    ]


# --- claims --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim_id", "section", "trial_ids", "ref_numbers", "fields"),
    [
        ("c002", "Clinical trial overview", [], [1], ["status", "phase"]),
        ("c006", "Cancer studies using Aldesleukin", ["NCT04243499"], [1],
         ["intervention", "population", "condition", "primary_endpoint"]),
        ("c014", "Cancer studies using Aldesleukin", ["NCT05727904"], [5], ["phase", "condition", "design", "intervention"]),
        ("c015", "Cancer studies using Aldesleukin", [], [5], ["primary_endpoint"]),
        ("c022", "Immune and other non-cancer studies", [], [9, 10, 11], ["condition"]),
        ("c025", "Immune and other non-cancer studies", ["2023-510297-14-00"], [10], ["design", "condition"]),
        ("c029", "Immune and other non-cancer studies", ["NCT05468073"], [12], ["condition", "design", "primary_endpoint"]),
        ("c030", "Immune and other non-cancer studies", ["NCT05153070"], [13], ["condition", "primary_endpoint", "intervention"]),
        ("c036", "Trial phases and who can join", [], [1, 3, 4, 5, 6], ["population", "condition"]),
        ("c049", "Important patient terms", [], [5], ["design"]),
    ],
)
def test_claim_records_section_trials_references_and_fields(aldesleukin, claim_id, section, trial_ids, ref_numbers, fields):
    claim = next(c for c in aldesleukin.claims if c.claim_id == claim_id)
    assert (claim.section, claim.trial_ids, claim.ref_numbers, claim.fields) == (section, trial_ids, ref_numbers, fields)
    assert claim.field == fields[0]


def test_sentence_ends_after_its_citation_markers(aldesleukin):
    by_id = {c.claim_id: c.sentence for c in aldesleukin.claims}
    assert by_id["c029"] == (
        "NCT05468073 studies early Alzheimer disease and compares treated patients with placebo, with the main "
        "endpoint being rate of decline measured by CDR change at 18 months.[12]"
    )
    assert by_id["c030"] == (
        "NCT05153070 studies recent-onset type 1 diabetes with residual insulin secretion and measures changes "
        "in Tregs after repeated low-dose interleukin-2.[13]"
    )


def test_bullet_item_is_a_claim_without_its_bullet(aldesleukin):
    claim = next(c for c in aldesleukin.claims if c.claim_id == "c041")
    assert claim.sentence == (
        "Safety and tolerability: trials count adverse events, serious adverse events, and dose-limiting "
        "toxicities to see how well the treatment can be given.[1][3][6]"
    )
    assert claim.section == "What the trials measure"


def test_claim_ids_number_the_claims_in_page_order(aldesleukin):
    assert [c.claim_id for c in aldesleukin.claims] == [f"c{i:03d}" for i in range(1, 55)]


def test_sentence_without_trial_id_or_citation_is_not_a_claim(aldesleukin):
    sentences = [c.sentence for c in aldesleukin.claims]
    assert not any(s.startswith("Clinical trials investigating Aldesleukin") for s in sentences)
    assert not any(s.startswith("These studies look at safety") for s in sentences)


def test_every_trial_id_named_in_the_narrative_is_in_some_claim(aldesleukin):
    text = EMBEDDED_PAGE.read_text(encoding="utf-8")
    narrative = text[: text.index(HEADER)]
    named = set(re.findall(r"NCT\d{8}|\d{4}-\d{6}-\d{2}-\d{2}", narrative))
    assert named == ALDESLEUKIN_NARRATIVE_IDS
    assert {i for c in aldesleukin.claims for i in c.trial_ids} == named


def test_claims_come_only_from_narrative_sections(aldesleukin):
    assert {c.section for c in aldesleukin.claims} == {
        "Clinical trial overview", "Cancer studies using Aldesleukin", "Immune and other non-cancer studies",
        "Trial phases and who can join", "What the trials measure", "Important patient terms",
    }


def test_no_table_ongoing_glossary_or_reference_line_becomes_a_claim(aldesleukin):
    text = EMBEDDED_PAGE.read_text(encoding="utf-8")
    tail = text[text.index(HEADER):].splitlines()
    pieces = [re.sub(r"^\s*(?:•|\d+\.)\s*", "", line).strip() for line in tail]
    pieces = [p for p in pieces if len(p) >= 12]
    # header, 15 rows, the ongoing heading, 10 titles, 6 labels, 3 country lines, 12 terms, 14 refs
    assert len(pieces) == 62
    assert [p for p in pieces if any(p in c.sentence for c in aldesleukin.claims)] == []


def test_drug_named_as_a_modifier_is_not_an_intervention_claim():
    doc = _extract_text(_one_row_page("NCT00000001Phase 1CancerCompleted5").replace(
        "Drug\n\n", "Drug\n\nNotes\n\nNot all Drug-related trials are in cancer.[1] Drug is given weekly.[2]\n\n"))
    assert [c.fields for c in doc.claims] == [["condition"], ["intervention"]]


def test_abbreviation_full_stop_does_not_end_a_sentence():
    doc = _extract_file(DOCUMENTS / "zelvotamab.txt")
    claim = next(c for c in doc.claims if c.trial_ids == ["NCT06100001"])
    assert claim.sentence == (
        "NCT06100001 is a randomized Phase 2/3 study in metastatic triple-negative breast cancer, e.g. in "
        "patients who had one earlier treatment.[1]"
    )


def test_exclamation_mark_ends_a_sentence_too():
    doc = _extract_file(DOCUMENTS / "zelvotamab.txt")
    assert [c.sentence for c in doc.claims if c.ref_numbers == [5]] == [
        "NCT05800003 is a planned extension study![5]",
        "NCT05800004 will follow the same people for five years.[5]",
    ]


def test_trial_id_written_with_non_ascii_digits_is_not_a_trial_id():
    page = (f"Drug\n\nNotes\n\nNCT\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff11 and NCT0000000\u0661 are named.[1]\n\n"
            f"{HEADER}\nNCT00000001Phase 1CancerCompleted5\n")
    assert [c.trial_ids for c in _extract_text(page).claims] == [[]]


def test_trial_id_glued_to_a_hyphenated_word_is_still_named():
    page = (f"Drug\n\nNotes\n\nThe NCT00000009-related cohort and 2023-000001-01-00-99 were small.[1]\n\n"
            f"{HEADER}\nNCT00000001Phase 1CancerCompleted5\n")
    assert [c.trial_ids for c in _extract_text(page).claims] == [["NCT00000009"]]


def test_country_names_in_a_sentence_make_it_a_countries_claim():
    doc = _extract_file(DOCUMENTS / "zelvotamab.txt")
    claim = next(c for c in doc.claims if c.trial_ids == ["2019-004321-15"])
    assert claim.fields == ["intervention", "population", "condition", "countries"]


@pytest.mark.parametrize(
    ("marker", "numbers"), [("[1][2]", [1, 2]), ("[1, 3]", [1, 3]), ("[2-4]", [2, 3, 4]), ("[4–2]", [4, 2])]
)
def test_citation_marker_forms_give_reference_numbers(marker, numbers):
    page = f"Drug\n\nNotes\n\nThe trial measured pain.{marker}\n\n{HEADER}\nNCT00000001Phase 1CancerCompleted5\n"
    assert [c.ref_numbers for c in _extract_text(page).claims] == [numbers]


# --- ongoing trials ------------------------------------------------------------------------


def test_ongoing_trials_have_status_and_exact_countries(aldesleukin):
    assert [(o.title, o.status, o.countries, o.more_countries) for o in aldesleukin.ongoing] == ALDESLEUKIN_ONGOING
    assert [o.position for o in aldesleukin.ongoing] == list(range(1, 11))


def test_ongoing_trial_without_an_id_in_its_text_has_none(aldesleukin):
    assert [o.trial_id for o in aldesleukin.ongoing] == [None] * 10


def test_ongoing_country_line_is_split_by_longest_country_names():
    doc = _extract_file(DOCUMENTS / "ravoleukin-tabs.txt")
    assert [(o.title, o.status, o.countries, o.more_countries, o.trial_id) for o in doc.ongoing] == [
        ("Study of Ravoleukin in Severe Asthma (NCT06200001)", "Ongoing, recruiting",
         ["Bosnia and Herzegovina", "United Kingdom", "Czech Republic", "Türkiye"], 3, "NCT06200001"),
        ("Study of Ravoleukin in Healthy Volunteers", "Not yet recruiting", ["North Macedonia"], 0, None),
    ]


def test_ongoing_country_words_no_country_list_knows_stay_one_name():
    page = (f"Drug\n\n{HEADER}\nNCT00000001Phase 1CancerCompleted5\n\nOngoing Clinical Trials on Drug\n\n"
            "  • Study of Drug in Cancer\n    Recruiting\n    Kosovo Lower Atlantis Spain +2\n")
    [card] = _extract_text(page).ongoing
    assert (card.countries, card.more_countries) == (["Kosovo", "Lower Atlantis", "Spain"], 2)


def test_ongoing_card_details_without_indentation_stay_in_the_card():
    page = (f"Drug\n\n{HEADER}\nNCT00000001Phase 1CancerCompleted5\n\nOngoing Clinical Trials on Drug\n\n"
            "• Study of Drug in Cancer\nRecruiting\n1 1\nInvestigated drugs:\nGermany Spain\n\nGlossary\n\n"
            "• Safety: How well a treatment is tolerated.\n")
    doc = _extract_text(page)
    assert [(o.status, o.countries) for o in doc.ongoing] == [("Recruiting", ["Germany", "Spain"])]
    assert [g.term for g in doc.glossary] == ["Safety"]


# --- glossary ------------------------------------------------------------------------------


def test_glossary_has_each_term_with_its_definition(aldesleukin):
    assert [g.term for g in aldesleukin.glossary] == ALDESLEUKIN_TERMS
    assert aldesleukin.glossary[5].definition == (
        "Medical problems that happen during a study, whether or not they are caused by the treatment."
    )


def test_glossary_definition_continues_on_its_next_line():
    doc = _extract_file(DOCUMENTS / "ravoleukin-tabs.txt")
    assert [(g.term, g.definition) for g in doc.glossary] == [
        ("Asthma", "A long-term condition of the airways that makes breathing hard at times."),
        ("Placebo", "A dummy treatment."),
    ]


def test_page_without_ongoing_list_or_glossary_has_none():
    doc = _extract_file(DOCUMENTS / "zelvotamab.txt")
    assert (doc.ongoing, doc.glossary) == ([], [])


# --- references ----------------------------------------------------------------------------


def test_references_carry_urls_and_the_trials_they_point_at(aldesleukin):
    assert [(r.ref_number, r.url, r.trial_id, r.trial_id_source) for r in aldesleukin.references] == ALDESLEUKIN_REFERENCES


def test_reference_url_naming_a_trial_wins_over_a_citing_sentence_naming_another():
    doc = _extract_file(DOCUMENTS / "zelvotamab.txt")
    [citing] = [c for c in doc.claims if 4 in c.ref_numbers]
    assert citing.trial_ids == ["2024-512345-21-00"]
    ref = next(r for r in doc.references if r.ref_number == 4)
    assert (ref.trial_id, ref.trial_id_source) == ("NCT06100001", "url")


def test_reference_cited_by_sentences_naming_different_trials_has_no_trial():
    doc = _extract_file(DOCUMENTS / "zelvotamab.txt")
    assert [(r.ref_number, r.trial_id, r.trial_id_source) for r in doc.references] == [
        (1, "NCT06100001", "url"),
        (2, "2019-004321-15", "url"),  # EudraCT number in an EU CTR URL path
        (3, "2024-512345-21-00", "citing_sentence"),
        (4, "NCT06100001", "url"),
        (5, None, None),
    ]


def test_reference_trial_in_a_url_query_counts_as_told_by_the_url():
    doc = _extract_file(DOCUMENTS / "ravoleukin-tabs.txt")
    assert (doc.references[1].trial_id, doc.references[1].trial_id_source) == ("2025-500001-11-00", "url")


def test_reference_with_a_malformed_url_is_kept_as_written():
    page = f"Drug\n\n{HEADER}\nNCT00000001Phase 1CancerCompleted5\n\nReferences\n\n  1. https://clinic[altrials.gov/study/NCT00000001\n"
    assert [(r.url, r.trial_id, r.trial_id_source) for r in _extract_text(page).references] == [
        ("https://clinic[altrials.gov/study/NCT00000001", "NCT00000001", "url")
    ]


def test_removed_reference_is_missing_and_the_others_stay():
    doc = _extract_file(DOCUMENTS / "aldesleukin-shuffled.txt")
    assert [(r.ref_number, r.url, r.trial_id, r.trial_id_source) for r in doc.references] == ALDESLEUKIN_REFERENCES[:13]


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "file not found"),
        (b"", "file is empty"),
        (b"  \n\t\n", "file is empty (whitespace only)"),
        (b"Aldesleukin\x00\x01\x02", "not a text file (binary content)"),
        (b"\xff\xfe\x89PNG junk \xc3\x28", "not a text file (binary content)"),
    ],
)
def test_unreadable_document_file_raises_one_line_error_naming_it(tmp_path, content, problem):
    path = tmp_path / "page.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DocumentError) as exc:
        read_document(path)
    assert str(exc.value) == f"{path}: {problem}"


def test_directory_given_as_document_raises_error_naming_it(tmp_path):
    with pytest.raises(DocumentError) as exc:
        read_document(tmp_path)
    assert str(exc.value) == f"{tmp_path}: is a directory, not a file"


def test_read_document_returns_text_and_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "page.txt"
    path.write_bytes("\ufeffAldesleukin\r\nText\r\n".encode())
    assert read_document(path) == ("Aldesleukin\r\nText\r\n", hashlib.sha256(path.read_bytes()).hexdigest())


def test_page_without_summary_table_raises_document_error():
    path = DOCUMENTS / "no-table.txt"
    with pytest.raises(DocumentError) as exc:
        _extract_file(path)
    assert str(exc.value) == f'{path}: no summary table found (expected a header line "Trial ID Phase Condition ...")'


def test_page_without_title_raises_document_error():
    with pytest.raises(DocumentError) as exc:
        _extract_text("This page starts with a sentence, not a title.\n\n" + HEADER + "\n")
    assert str(exc.value) == (
        'page.txt: no title found (expected the drug\'s name on the first line, '
        'got "This page starts with a sentence, not a title.")'
    )


def test_summary_table_without_rows_raises_document_error():
    with pytest.raises(DocumentError) as exc:
        _extract_text(f"Drug\n\n{HEADER}\n\nReferences\n")
    assert str(exc.value) == f'page.txt: summary table has no rows (expected trial rows under the line "{HEADER}")'


def test_table_row_that_cannot_be_split_raises_error_naming_its_line():
    with pytest.raises(DocumentError) as exc:
        _extract_text(_one_row_page("NCT01234567Phase 2Some conditionIn planning30"))
    assert str(exc.value) == (
        'page.txt: line 4: summary table row cannot be split into cells: "NCT01234567Phase 2Some conditionIn planning30"'
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([
    "Aldesleukin", "", "  ", HEADER, "NCT04243499Phase 1/2CancerCompleted88", "Glossary", "References",
    "Ongoing Clinical Trials on Aldesleukin", "  • Phase 1: early.", "  1. https://clinicaltrials.gov/study/NCT00000001",
    "    Recruiting", "    1 1 1", "    Germany +2", "NCT00000002 is studied.[1]", "Short heading", "•", "[1]",
    "2023-506979-10-00Phase 1", "Text. [2-9999]",
]) | st.text(max_size=40), max_size=14))
def test_any_page_gives_a_document_or_a_document_error(lines):
    try:
        doc = _extract_text("\n".join(lines))
    except DocumentError as exc:
        assert "\n" not in str(exc)
    else:
        assert doc.trials


def _page_with_a_sentence_of(extra_chars: int) -> tuple[str, int]:
    """The embedded page with its first narrative sentence about a trial grown by ``extra_chars``."""
    lines = EMBEDDED_PAGE.read_text(encoding="utf-8").split("\n")
    number = next(i for i, line in enumerate(lines) if "NCT" in line and len(line) > 200)
    lines[number] += " " + "word " * (extra_chars // 5)
    return "\n".join(lines), number + 1


def test_a_line_over_the_length_limit_is_refused_naming_the_line_and_the_limit():
    from pipeline.extract import MAX_LINE_CHARS

    text, line = _page_with_a_sentence_of(MAX_LINE_CHARS)
    with pytest.raises(DocumentError) as info:
        extract_document(text, source_url="u", sha256="s", extracted_at=datetime(2026, 1, 1, tzinfo=UTC),
                         path="page.txt")
    assert re.fullmatch(rf"page\.txt: line {line} has [\d,]+ characters, over the limit of 50,000 a line may have",
                        str(info.value))


def test_a_long_sentence_within_the_limit_is_kept_whole():
    text, _ = _page_with_a_sentence_of(40_000)
    doc = extract_document(text, source_url="u", sha256="s", extracted_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert max(len(c.sentence) for c in doc.claims) > 40_000


def test_check_on_a_page_with_a_five_megabyte_sentence_is_one_line_and_exit_2(tmp_path, capsys):
    from pipeline.cli import main

    text, line = _page_with_a_sentence_of(5 * 1024 * 1024)
    page = tmp_path / "aldesleukin.txt"
    page.write_text(text, encoding="utf-8")
    code = main(["check", "--document", str(page)])
    err = capsys.readouterr().err.strip().splitlines()
    assert (code, len(err)) == (2, 1)
    assert f"line {line} has 5,24" in err[0]
