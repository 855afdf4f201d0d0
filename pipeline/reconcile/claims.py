"""Rows for the page's summary table and its narrative sentences.

Table cells have claim ids ``table:<row>:<field>``; a sentence keeps its claim id. Every fact
is compared with each record reached for its trial (one row per registry), or gives one
``unverifiable`` row ("no registry record").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.models import Claim, ExtractedDocument, Phase, ReconciliationRow, StatedTrial
from pipeline.reconcile.narrative import (
    design_features,
    design_outcome,
    endpoint_outcome,
    intervention_outcome,
    population_outcome,
    products_outcome,
    says_listed,
    stated_age_groups,
)
from pipeline.reconcile.records import (
    Compare,
    Fact,
    RuleResult,
    ReachedRecord,
    RecordIndex,
    rows_for_trial,
    unchecked_row,
)
from pipeline.reconcile.rules import (
    NAMED_IN_SENTENCE_COVERAGE,
    NO_STATED_ENROLLMENT,
    compare_conditions,
    enrollment_figure,
    enrollment_outcome,
    phase_outcome,
    stated_status_rows,
    status_outcome,
)
from pipeline.reconcile.terms import (
    ConditionTerm,
    condition_terms,
    endpoint_terms,
    find_drug,
    fold,
    named_in,
    named_products,
    registry_condition_terms,
    tokens,
)
from pipeline.registries.vocab import normalize_status, parse_phases

# "Phase 3", "Phase 1/2a", "phase I-II", "Early Phase 1".
_PHASE_PHRASE = re.compile(
    r"\b(?:early\s+)?phase\s*(?:iv|iii|ii|i|[0-4])[a-d]?"
    r"(?:\s*(?:/|-|–|\+|&|\band\b|\bor\b|\bto\b)\s*(?:phase\s*)?(?:iv|iii|ii|i|[0-4])[a-d]?)*(?![a-z0-9])",
    re.IGNORECASE,
)
_STATUS_WORDS = re.compile(
    r"\b(?:not yet recruiting|active, not recruiting|enrolling by invitation|recruiting|completed|terminated|"
    r"authori[sz]ed|ongoing|suspended|withdrawn)\b",
    re.IGNORECASE,
)
_ENROLLMENT = re.compile(
    r"\b(\d{1,3}(?:,\d{3})+|\d+)\s+(?:participants|patients|people|subjects|volunteers|children|adults)\b",
    re.IGNORECASE,
)
_SOLID_UMBRELLA = re.compile(r"\bsolid (?:tumou?rs?|cancers?|neoplasms?|malignanc(?:y|ies))\b")
SOLID_TUMORS = ConditionTerm("solid tumors", ("solid", "cancer"))


def stated_phase(sentence: str) -> tuple[str, list[Phase]] | None:
    """The first phase phrase of a sentence and the phases it names, or None."""
    for m in _PHASE_PHRASE.finditer(sentence):
        phases = parse_phases(m.group(0))
        if phases:
            return m.group(0), phases
    return None


def _conditions_outcome(stated: Sequence[ConditionTerm], reached: ReachedRecord) -> RuleResult:
    rec = reached.record
    registry = registry_condition_terms(rec.conditions)
    if not registry:
        return RuleResult("unverifiable", None, f"the {rec.registry} record gives no conditions", None, ("conditions",))
    result = compare_conditions(stated, registry)
    return RuleResult(result.verdict, "; ".join(rec.conditions), result.detail, result.score, ("conditions",))


# ---------------------------------------------------------------------------------------------
# The summary table
# ---------------------------------------------------------------------------------------------


def table_rows(doc: ExtractedDocument, index: RecordIndex) -> list[ReconciliationRow]:
    """Every cell of the summary table against the trial's records."""
    rows: list[ReconciliationRow] = []
    for trial in doc.trials:
        rows += _table_trial_rows(trial, index.reach(trial.trial_id))
    return rows


def _table_trial_rows(trial: StatedTrial, reached: list[ReachedRecord]) -> list[ReconciliationRow]:
    def fact(field: str, value: str | None) -> Fact:
        return Fact(trial.document_id, f"table:{trial.row_number}:{field}", trial.trial_id, field, value)

    rows: list[ReconciliationRow] = []
    phases = parse_phases(trial.phase)
    f = fact("phase", trial.phase)
    if phases:
        rows += rows_for_trial(f, "phase.set_equal", reached, lambda r: phase_outcome(phases, r))
    else:
        rows.append(unchecked_row(f, "phase.set_equal", "the stated phase is not understood"))

    rows += stated_status_rows(fact("status", trial.status), "status.vocabulary", reached)

    f = fact("enrollment", None if trial.enrollment is None else str(trial.enrollment))
    if trial.enrollment is None:
        rows.append(unchecked_row(f, "enrollment.equal", NO_STATED_ENROLLMENT))
    else:
        figures = [fig for r in reached if (fig := enrollment_figure(r)) is not None]
        rows += rows_for_trial(f, "enrollment.equal", reached,
                               lambda r: enrollment_outcome(trial.enrollment, r, figures))

    terms = condition_terms(trial.condition)
    f = fact("condition", trial.condition)
    if terms:
        rows += rows_for_trial(f, "condition.terms", reached, lambda r: _conditions_outcome(terms, r))
    else:
        rows.append(unchecked_row(f, "condition.terms", "the stated condition names no condition"))
    return rows


# ---------------------------------------------------------------------------------------------
# Narrative sentences
# ---------------------------------------------------------------------------------------------


def claim_fields(claim: Claim) -> list[str]:
    """The fields the extractor says a sentence speaks about."""
    fields = list(claim.fields)
    if claim.field and claim.field not in fields:
        fields.insert(0, claim.field)
    return fields


def sentence_condition_terms(
    sentence: str, table_terms: Sequence[ConditionTerm], registry_terms: Sequence[ConditionTerm]
) -> list[ConditionTerm]:
    """The conditions a sentence names, among those the table or the registry know.

    A sentence is free text, so the conditions it states are found by looking for known
    conditions in it: the table cell's terms for the trial, the records' terms, and the
    umbrella "solid tumors".
    """
    words = set(tokens(sentence))
    found: list[ConditionTerm] = []
    for term in (*table_terms, *registry_terms):
        if named_in(term, words, NAMED_IN_SENTENCE_COVERAGE) and all(t.key != term.key for t in found):
            found.append(term)
    if _SOLID_UMBRELLA.search(fold(sentence)) and all(t.key != SOLID_TUMORS.key for t in found):
        found.append(SOLID_TUMORS)
    return found


def follow_on_trials(claims: Sequence[Claim]) -> dict[str, str]:
    """Trials of sentences that name none but clearly continue a sentence that names one.

    "NCT05727904 is a Phase 3 study ... [5] The main endpoint is progression-free survival
    ... [5]": the second sentence is about NCT05727904. A sentence is attributed only when it
    names no trial, cites exactly one reference, and the sentence just before it (same section)
    is about exactly one trial, named or attributed, and cites that same reference alone.

    Returns:
        claim id -> trial id, for the attributed sentences only.
    """
    out: dict[str, str] = {}
    previous: tuple[Claim, str] | None = None
    for claim in claims:
        about: str | None = None
        ids = list(dict.fromkeys(claim.trial_ids))
        if len(ids) == 1:
            about = ids[0]
        elif not ids and len(claim.ref_numbers) == 1 and previous is not None:
            before, trial = previous
            if before.section == claim.section and list(dict.fromkeys(before.ref_numbers)) == claim.ref_numbers:
                about = trial
                out[claim.claim_id] = trial
        previous = (claim, about) if about is not None and len(set(claim.ref_numbers)) == 1 else None
    return out


def single_trial_claims(claims: Sequence[Claim]) -> list[tuple[Claim, str]]:
    """Each sentence about exactly one trial (named, or told by :func:`follow_on_trials`), with it."""
    follow_on = follow_on_trials(claims)
    out: list[tuple[Claim, str]] = []
    for claim in claims:
        ids = list(dict.fromkeys(claim.trial_ids)) or [t for t in [follow_on.get(claim.claim_id)] if t]
        if len(ids) == 1:
            out.append((claim, ids[0]))
    return out


def claim_rows(
    doc: ExtractedDocument, index: RecordIndex, drug: str, drug_re: re.Pattern[str]
) -> list[ReconciliationRow]:
    """Every narrative sentence about trials, field by field, against their records.

    Sentences that name no trial but continue one that does (:func:`follow_on_trials`) are
    compared too, and their rows say how the trial was told.
    """
    table = {t.trial_id: t for t in doc.trials}
    follow_on = follow_on_trials(doc.claims)
    rows: list[ReconciliationRow] = []
    for claim in doc.claims:
        trial_ids = list(dict.fromkeys(claim.trial_ids))
        told = ""
        if not trial_ids and claim.claim_id in follow_on:
            trial_ids = [follow_on[claim.claim_id]]
            told = f"; trial told by the sentence before, which cites the same reference [{claim.ref_numbers[0]}]"
        for trial_id in trial_ids:
            stated_table = table.get(trial_id)
            found = _claim_trial_rows(
                claim, trial_id, index.reach(trial_id), drug, drug_re,
                table_terms=condition_terms(stated_table.condition) if stated_table else [],
                single_trial=len(trial_ids) == 1,
            )
            rows += [r.model_copy(update={"detail": f"{r.detail}{told}"}) for r in found] if told else found
    return rows


def _claim_trial_rows(
    claim: Claim,
    trial_id: str,
    reached: list[ReachedRecord],
    drug: str,
    drug_re: re.Pattern[str],
    *,
    table_terms: Sequence[ConditionTerm],
    single_trial: bool,
) -> list[ReconciliationRow]:
    tagged = claim_fields(claim)
    sentence = claim.sentence
    rows: list[ReconciliationRow] = []

    def fact(field: str, value: str | None) -> Fact:
        return Fact(claim.document_id, claim.claim_id, trial_id, field, value)

    def not_read(field: str, rule: str, what: str) -> None:
        if field in tagged:
            rows.append(unchecked_row(fact(field, None), rule, f"the sentence states no {what} that can be read"))

    def compare(field: str, rule: str, stated: str | None, outcome: Compare, what: str | None = None) -> None:
        """The stated value against each record reached; with none stated, the sentence's field
        unchecked (``what`` it lacks), where it was tagged with it."""
        if stated:
            rows.extend(rows_for_trial(fact(field, stated), rule, reached, outcome))
        elif what is not None:
            not_read(field, rule, what)

    # A phase in a sentence naming several trials could belong to any of them.
    phase = stated_phase(sentence) if single_trial else None
    text, phases = phase or (None, [])
    compare("phase", "phase.set_equal", text, lambda r: phase_outcome(phases, r), "phase")

    if "status" in tagged:
        m = _STATUS_WORDS.search(sentence)
        status = normalize_status(m.group(0), "page") if m else None
        known = status is not None and status.value != "UNKNOWN"
        compare("status", "status.vocabulary", m.group(0) if m and known else None,
                lambda r: status_outcome(status, r), "status")

    if "enrollment" in tagged:
        m = _ENROLLMENT.search(sentence)
        value = int(m.group(1).replace(",", "")) if m else 0
        figures = [fig for r in reached if (fig := enrollment_figure(r)) is not None] if m else []
        compare("enrollment", "enrollment.equal", str(value) if m else None,
                lambda r: enrollment_outcome(value, r, figures), "enrollment figure")

    registry_terms = [t for r in reached for t in registry_condition_terms(r.record.conditions)]
    stated_terms = sentence_condition_terms(sentence, table_terms, registry_terms)
    compare("condition", "condition.terms", "; ".join(t.text for t in stated_terms),
            lambda r: _conditions_outcome(stated_terms, r), "condition known to the table or the registry")

    listed_claim = says_listed(sentence)
    compare("intervention", "intervention.named", find_drug(drug_re, sentence),
            lambda r: intervention_outcome(drug, drug_re, r, listed_claim), f"form of {drug}")

    products = named_products(sentence, drug_re)
    compare("intervention", "intervention.products", ", ".join(products), lambda r: products_outcome(products, r))

    endpoints = endpoint_terms(sentence)
    speaks_of_endpoints = "primary_endpoint" in tagged or not tagged or _speaks_of_endpoints(sentence)
    compare("primary_endpoint", "endpoint.terms", ", ".join(sorted(endpoints)) if speaks_of_endpoints else None,
            lambda r: endpoint_outcome(endpoints, r), "endpoint term")

    features = design_features(sentence)
    compare("design", "design.terms", ", ".join(features), lambda r: design_outcome(features, r), "design term")

    groups = stated_age_groups(sentence)
    compare("population", "population.age_groups", ", ".join(groups), lambda r: population_outcome(groups, r),
            "age group")

    if "countries" in tagged:
        rows.append(unchecked_row(fact("countries", None), "countries.sentence",
                                  "countries named in a sentence are not compared (the ongoing list is)"))
    return rows


# A sentence that names endpoint words in passing ("designed to check safety first") speaks of
# endpoints only when it says it measures or aims at something.
_ENDPOINT_VERBS = re.compile(
    r"\b(?:endpoints?|outcomes?|measur\w*|main goal|goal|aims?|assess\w*|primary|focus\w*|looks? at|tracks?)\b"
)


def _speaks_of_endpoints(sentence: str) -> bool:
    return bool(_ENDPOINT_VERBS.search(fold(sentence)))
