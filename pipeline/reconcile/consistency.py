"""The page against itself (registry ``document``) and the registries against each other.

Self-checks put one statement of the page beside another about the same trial: the table's
phase beside a phase a sentence states ("self.table_vs_narrative.phase"), the table's status
beside the ongoing list's ("self.table_vs_ongoing.status"), the table's condition beside a
sentence's ("self.table_vs_narrative.condition"), and a combination a sentence states ("ICT01
with low-dose interleukin-2") beside the title of the clinicaltrials.eu trial page it cites
("self.narrative_vs_reference.intervention"). ``stated_value`` is the sentence's (or the
ongoing entry's) statement, ``registry_value`` the table's (or the cited page's title).

Cross-registry checks ("cross.<field>", claim id ``cross:<trial>``) put the records of one
trial in several registries (same number or confirmed link) beside each other: status, phase,
enrollment and conditions. The page states nothing there, so ``stated_value`` is null:
``compared_registry`` and ``compared_value`` are the first record's (the record with the page's
number, else the first by registry), ``registry``, ``registry_value`` and ``evidence`` the
other's, and the detail names the first record's snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.models import Claim, Evidence, ExtractedDocument, ReconciliationRow, Reference, StatedTrial, Verdict
from pipeline.reconcile.claims import SOLID_TUMORS, sentence_condition_terms, single_trial_claims, stated_phase
from pipeline.reconcile.ongoing import Resolution, cteu_slug
from pipeline.reconcile.records import Fact, RuleResult, ReachedRecord, RecordIndex, row_for
from pipeline.reconcile.rules import (
    NAMED_IN_SENTENCE_COVERAGE,
    compare_conditions,
    compare_phases,
    compare_status,
    coverage_verdict,
    phases_text,
)
from pipeline.reconcile.terms import (
    condition_terms,
    find_drug,
    fold,
    is_solid_cancer,
    is_solid_tumor_umbrella,
    named_in,
    named_products,
    names_product,
    registry_condition_terms,
    tokens,
)
from pipeline.registries.vocab import normalize_status, parse_phases

_RANK: dict[str, int] = {"match": 0, "partial": 1, "mismatch": 2, "unverifiable": 3}


def _doc_row(fact: Fact, rule: str, verdict: Verdict, registry_value: str | None, detail: str,
             table_row: int) -> ReconciliationRow:
    return ReconciliationRow(
        document_id=fact.document_id, claim_id=fact.claim_id, trial_id=fact.trial_id, field=fact.field,
        stated_value=fact.stated_value, registry_value=registry_value, registry="document", verdict=verdict,
        rule=rule, detail=detail, evidence=Evidence(field_path=f"table:{table_row}:{fact.field}"),
    )


def self_rows(doc: ExtractedDocument, index: RecordIndex, resolutions: dict[int, Resolution],
              drug_re: re.Pattern[str]) -> list[ReconciliationRow]:
    """Every place where the page states the same fact twice, compared."""
    table = {t.trial_id: t for t in doc.trials}
    refs = {r.ref_number: r for r in doc.references}
    rows: list[ReconciliationRow] = []
    for claim, trial_id in single_trial_claims(doc.claims):
        rows += _combination_rows(claim, trial_id, [refs[n] for n in claim.ref_numbers if n in refs], drug_re)
        if trial_id not in table:
            continue
        stated = table[trial_id]
        phrase = stated_phase(claim.sentence)
        table_phases = parse_phases(stated.phase)
        if phrase and table_phases:
            verdict, detail = compare_phases(phrase[1], table_phases)
            fact = Fact(claim.document_id, claim.claim_id, stated.trial_id, "phase", phrase[0])
            rows.append(_doc_row(fact, "self.table_vs_narrative.phase", verdict, stated.phase,
                                 f"table row {stated.row_number} says {stated.phase}; {detail}", stated.row_number))
        rows += _self_condition(claim.document_id, claim.claim_id, claim.sentence, stated, index,
                                "condition" in claim.fields or claim.field == "condition")
    for entry in doc.ongoing:
        resolution = resolutions.get(entry.position)
        if resolution is None or resolution.trial_id not in table:
            continue
        stated = table[resolution.trial_id]
        ongoing_status = normalize_status(entry.status, "page")
        table_status = normalize_status(stated.status, "page")
        if ongoing_status is None or table_status is None:
            continue
        verdict, detail = compare_status(ongoing_status, table_status)
        detail = (f"ongoing entry {entry.position} says {entry.status}, table row {stated.row_number} "
                  f"says {stated.status}; {detail}")
        if resolution.candidate_link:
            # The entry is this table row's trial only through an unconfirmed link.
            detail = f"entry tied to the trial only by a candidate link ({resolution.candidate_link}): {verdict} ({detail})"
            verdict = "unverifiable"
        fact = Fact(entry.document_id, f"ongoing:{entry.position}", stated.trial_id, "status", entry.status)
        rows.append(_doc_row(fact, "self.table_vs_ongoing.status", verdict, stated.status, detail, stated.row_number))
    return rows


def _self_condition(document_id: str, claim_id: str, sentence: str, stated: StatedTrial, index: RecordIndex,
                    tagged: bool) -> list[ReconciliationRow]:
    """The table's condition terms against those a sentence about the same trial names."""
    table_terms = condition_terms(stated.condition)
    words = set(tokens(sentence))
    umbrella = SOLID_TUMORS in sentence_condition_terms(sentence, [], [])
    named = [named_in(t, words, NAMED_IN_SENTENCE_COVERAGE) for t in table_terms]
    names_solid = any(n and is_solid_cancer(t) and not is_solid_tumor_umbrella(t) for t, n in zip(table_terms, named))
    # "Solid tumors" on one side covers the solid cancers named on the other, either way round.
    covered = [n or (umbrella and is_solid_cancer(t)) or (names_solid and is_solid_tumor_umbrella(t))
               for t, n in zip(table_terms, named)]
    where = f"table row {stated.row_number}"
    if any(covered):
        verdict = coverage_verdict(covered)
        stated_terms = "; ".join(t.text for t, c in zip(table_terms, covered) if c)
        missing = [repr(t.text) for t, c in zip(table_terms, covered) if not c]
        detail = (f"the sentence names every condition of {where}" if not missing
                  else f"the sentence does not name {', '.join(missing)} of {where}")
    else:
        # Naming none of the table's conditions is a disagreement only if the sentence is about
        # conditions and names others (known from the trial's records).
        if not tagged:
            return []
        registry_terms = [t for r in index.reach(stated.trial_id) for t in registry_condition_terms(r.record.conditions)]
        others = sentence_condition_terms(sentence, [], registry_terms)
        if not others:
            return []
        verdict, stated_terms = "mismatch", "; ".join(t.text for t in others)
        detail = f"the sentence names none of the conditions of {where}"
    fact = Fact(document_id, claim_id, stated.trial_id, "condition", stated_terms)
    return [_doc_row(fact, "self.table_vs_narrative.condition", verdict, stated.condition, detail, stated.row_number)]


# A product given together with the page's drug: "ICT01 with low-dose subcutaneous interleukin-2",
# "LN-145 with Aldesleukin" (a few words may stand between the link word and the drug).
_COMBINED_WITH = re.compile(r"^\s+(?:with|plus|and|\+|in combination with|combined with)\s+(?:[\w-]+\s+){0,3}$",
                            re.IGNORECASE)


def stated_combinations(sentence: str, drug_re: re.Pattern[str]) -> list[tuple[str, str]]:
    """(product, drug as written) for each product the sentence gives together with the page's drug."""
    out: list[tuple[str, str]] = []
    drugs = list(drug_re.finditer(sentence))
    for product in named_products(sentence, drug_re):
        for start in (m.end() for m in re.finditer(re.escape(product), sentence)):
            drug = next((d for d in drugs if d.start() >= start and _COMBINED_WITH.match(sentence[start:d.start()])),
                        None)
            if drug is not None and (product, drug.group(0)) not in out:
                out.append((product, drug.group(0)))
    return out


def _combination_rows(claim: Claim, trial_id: str, cited: Sequence[Reference],
                      drug_re: re.Pattern[str]) -> list[ReconciliationRow]:
    """A combination the sentence states against the title of each clinicaltrials.eu page it cites.

    The page's own site titles each trial page by its lay title (the URL's slug). A title naming
    the product with the drug -> match; naming the product with other products only ->
    mismatch (the cited page gives another combination); naming the product alone ->
    unverifiable (a title need not name every drug). A title not naming the product is about
    something else, and gives no row.
    """
    rows: list[ReconciliationRow] = []
    for product, drug in stated_combinations(claim.sentence, drug_re):
        for ref in cited:
            slug = cteu_slug(ref.url)
            title = slug.replace("-", " ") if slug else None
            if title is None or not names_product(product, title):
                continue
            companions = [q for q in named_products(title, drug_re) if fold(q) != fold(product)]
            if find_drug(drug_re, title):
                verdict: Verdict = "match"
                why = f"it names {product} with {find_drug(drug_re, title)}"
            elif companions:
                verdict, why = "mismatch", f"it names {product} with {', '.join(companions)}, not {drug}"
            else:
                verdict, why = "unverifiable", f"it names {product} alone (a title need not name every drug)"
            rows.append(ReconciliationRow(
                document_id=claim.document_id, claim_id=claim.claim_id, trial_id=trial_id, field="intervention",
                stated_value=f"{product} with {drug}", registry_value=title, registry="document", verdict=verdict,
                rule="self.narrative_vs_reference.intervention",
                detail=f"reference {ref.ref_number}, the clinicaltrials.eu page the sentence cites, is titled '{title}': {why}",
                evidence=Evidence(field_path=f"ref:{ref.ref_number}", link=ref.url),
            ))
    return rows


# ---------------------------------------------------------------------------------------------
# Registries against each other
# ---------------------------------------------------------------------------------------------


def _best(*results: tuple[Verdict, str]) -> tuple[Verdict, str]:
    return min(results, key=lambda r: _RANK[r[0]])


def _cross_status(a: ReachedRecord, b: ReachedRecord) -> RuleResult | None:
    sa, sb = a.record.status, b.record.status
    if sa is None or sb is None:
        return None
    verdict, detail = _best(compare_status(sa, sb), compare_status(sb, sa))
    return RuleResult(verdict, sb.value, detail, None, ("status", "status_raw"))


def _cross_phase(a: ReachedRecord, b: ReachedRecord) -> RuleResult | None:
    if not a.record.phases or not b.record.phases:
        return None
    verdict, detail = compare_phases(a.record.phases, b.record.phases)
    return RuleResult(verdict, phases_text(b.record.phases), detail, None, ("phases", "phase"))


_NARROWER = {"member_state": 0, "eea": 1, "whole_trial": 2, None: 2}


def compare_cross_enrollment(
    a: int, a_scope: str | None, b: int, b_scope: str | None
) -> tuple[Verdict, str]:
    """Two registries' figures: same scope -> equal or not; different scopes -> not comparable,
    unless the narrower figure (EEA, one member state) is above the wider one."""
    if _NARROWER[a_scope] == _NARROWER[b_scope]:
        if a == b:
            return "match", "equal"
        return "mismatch", f"{a} and {b} differ by {abs(a - b)}"
    (narrow, narrow_scope), (wide, _) = sorted([(a, a_scope), (b, b_scope)], key=lambda p: _NARROWER[p[1]])
    words = "EEA-only" if narrow_scope == "eea" else "one member state only"
    if narrow > wide:
        return "mismatch", f"the {words} figure {narrow} is above the wider figure {wide}"
    return "unverifiable", f"different scopes: the {words} figure {narrow} is within the wider figure {wide}"


def _cross_enrollment(a: ReachedRecord, b: ReachedRecord) -> RuleResult | None:
    ra, rb = a.record, b.record
    if ra.enrollment is None or rb.enrollment is None:
        return None
    verdict, detail = compare_cross_enrollment(ra.enrollment, ra.enrollment_scope, rb.enrollment, rb.enrollment_scope)
    return RuleResult(verdict, str(rb.enrollment), detail, None, ("enrollment",))


def _cross_conditions(a: ReachedRecord, b: ReachedRecord) -> RuleResult | None:
    ta, tb = registry_condition_terms(a.record.conditions), registry_condition_terms(b.record.conditions)
    if not ta or not tb:
        return None
    ab, ba = compare_conditions(ta, tb), compare_conditions(tb, ta)
    # One registry listing more conditions than the other is no disagreement.
    best = min((ab, ba), key=lambda r: _RANK[r.verdict])
    return RuleResult(best.verdict, "; ".join(b.record.conditions), best.detail, best.score, ("conditions",))


_CROSS = {
    "status": (_cross_status, lambda r: None if r.record.status is None else r.record.status.value),
    "phase": (_cross_phase, lambda r: phases_text(r.record.phases)),
    "enrollment": (_cross_enrollment, lambda r: None if r.record.enrollment is None else str(r.record.enrollment)),
    "condition": (_cross_conditions, lambda r: "; ".join(r.record.conditions)),
}


def cross_rows(document_id: str, page_ids: Sequence[str], index: RecordIndex) -> list[ReconciliationRow]:
    """Each trial's records in several registries, field by field, against the first of them."""
    rows: list[ReconciliationRow] = []
    for trial_id in sorted(set(page_ids)):
        reached = [r for r in index.reach(trial_id) if r.reach != "candidate"]
        if len(reached) < 2:
            continue
        first = next((r for r in reached if r.reach == "same id"), reached[0])
        for other in (r for r in reached if r is not first):
            for field, (compare, value_of) in _CROSS.items():
                outcome = compare(first, other)
                if outcome is None:
                    continue
                fact = Fact(document_id, f"cross:{trial_id}", trial_id, field, None)
                detail = f"{first.describe(*outcome.field_keys)} says {value_of(first)}; {outcome.detail}"
                outcome = RuleResult(outcome.verdict, outcome.registry_value, detail, outcome.score, outcome.field_keys)
                row = row_for(fact, f"cross.{field}", outcome, other)
                rows.append(row.model_copy(update={"compared_registry": first.registry,
                                                   "compared_value": value_of(first)}))
    return rows
