"""Rules for what a narrative sentence says: intervention, endpoints, design, population.

A sentence is not a cell: what it states has to be read out of it first (the drug's name,
endpoint terms, design words, "children" or "adults"). Each ``stated_*`` function does the
reading, each ``*_outcome`` function compares with one registry record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Literal

from pipeline.models import Arm, TrialRecord, Verdict
from pipeline.reconcile.records import RuleResult, ReachedRecord
from pipeline.reconcile.rules import is_same_condition
from pipeline.reconcile.terms import (
    endpoint_terms,
    find_drug,
    fold,
    names_product,
    product_is_drug,
    registry_condition_terms,
    term_similarity,
)

_MAX_VALUE = 500


def clip(text: str) -> str:
    """A registry value short enough for a table cell (cut at 500 characters)."""
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Intervention: "intervention.named"
# ---------------------------------------------------------------------------------------------


def _arm_words(arm: Arm) -> str:
    return f"arm '{arm.label}'" if arm.label else "an arm (no label)"


def listed_interventions(record: TrialRecord) -> list[str]:
    """The names of the record's interventions, as listed."""
    return [i.name for i in record.interventions]


# "Aldesleukin is listed in the intervention list", "listed among the treatment drugs": the
# sentence says the registry *lists* the drug, not only that it is given.
_SAYS_LISTED = re.compile(r"\blisted\b|\bintervention list\b|\bamong the (?:treatment )?(?:drugs|interventions)\b")


def says_listed(sentence: str) -> bool:
    """Whether a sentence says the drug is *listed* among the interventions."""
    return bool(_SAYS_LISTED.search(fold(sentence)))


def intervention_outcome(
    drug: str, pattern: re.Pattern[str], reached: ReachedRecord, listed_claim: bool = False
) -> RuleResult:
    """Is the page's drug among the record's interventions?

    Named as an intervention (its name or other names, an arm's intervention list, or a product
    code :func:`~pipeline.reconcile.terms.product_is_drug` knows is a form of the drug) ->
    match. Only in the regimen (an intervention's or arm's description, the summary) -> match
    when the sentence only says the drug is part of the regimen (``listed_claim`` False: the
    record says what the page says), partial when the sentence says the drug is *listed* ("in
    the regimen, not a listed intervention"). Only in the title or the keywords -> partial.
    Nowhere -> mismatch. Unverifiable when the record lists no interventions, and when the
    sentence only says the drug is part of the regimen while the record describes no regimen
    (no arm or intervention descriptions, no summary): its list alone cannot refute that.
    """
    rec = reached.record
    listed = listed_interventions(rec)
    value = clip("; ".join(listed)) if listed else None
    for intervention in rec.interventions:
        for name in (intervention.name, *intervention.other_names):
            if find_drug(pattern, name):
                return RuleResult("match", value, f"{drug} is the listed intervention '{intervention.name}'",
                                  None, ("interventions",))
            known = product_is_drug(name, pattern)
            if known:
                return RuleResult("match", value, f"{drug}: the listed intervention '{intervention.name}' is {known}",
                                  None, ("interventions",))
    for arm in rec.arms:
        for name in arm.intervention_names:
            if find_drug(pattern, name):
                return RuleResult("match", value, f"{drug} is listed in {_arm_words(arm)} as '{name}'",
                                  None, ("arms", "interventions"))
    regimen: list[tuple[str, str | None, tuple[str, ...]]] = [
        *((f"the description of intervention '{i.name}'", i.description, ("interventions",))
          for i in rec.interventions),
        *((f"the description of {_arm_words(a)}", a.description, ("arms",)) for a in rec.arms),
        ("the brief summary", rec.brief_summary, ("brief_summary",)),
    ]
    for where, text, keys in regimen:
        found = find_drug(pattern, text)
        if found and not listed_claim:
            return RuleResult("match", value, f"in the regimen, as the sentence says: '{found}' appears in {where}",
                              None, keys)
        if found:
            return RuleResult("partial", value,
                              f"in the regimen, not a listed intervention: '{found}' appears in {where}", None, keys)
    elsewhere = [
        ("the title", rec.title, ("title",)),
        ("the official title", rec.official_title, ("official_title",)),
        *(("the keywords", k, ("keywords",)) for k in rec.keywords),
    ]
    for where, text, keys in elsewhere:
        found = find_drug(pattern, text)
        if found:
            detail = f"not a listed intervention nor in a described regimen: '{found}' appears in {where}"
            return RuleResult("partial", value, detail, None, keys)
    if not listed:
        return RuleResult("unverifiable", None, f"the {rec.registry} record lists no interventions", None,
                          ("interventions",))
    if not listed_claim and not any(text for _, text, _ in regimen):
        return RuleResult("unverifiable", value,
                          f"{drug} is not a listed intervention, and the record describes no regimen "
                          "(no arm or intervention descriptions, no summary) to find it in", None, ("interventions",))
    return RuleResult("mismatch", value, f"{drug} is not among the interventions, arms or summary", None,
                      ("interventions",))


# ---------------------------------------------------------------------------------------------
# Other products a sentence names: "intervention.products"
# ---------------------------------------------------------------------------------------------


def products_outcome(products: Sequence[str], reached: ReachedRecord) -> RuleResult:
    """Are the products a sentence names (other than the page's drug) the record's?

    Each product is looked for among the listed interventions (names, other names, arms'
    intervention lists), then the titles, then the summary. All found -> match; some ->
    partial; none -> mismatch. Unverifiable when the record has none of these to look in.
    """
    rec = reached.record
    places: list[tuple[str, list[str], tuple[str, ...]]] = [
        ("the interventions", [n for i in rec.interventions for n in (i.name, *i.other_names)]
         + [n for a in rec.arms for n in a.intervention_names], ("interventions",)),
        ("the title", [t for t in (rec.title, rec.official_title) if t], ("title", "official_title")),
        ("the summary", [rec.brief_summary] if rec.brief_summary else [], ("brief_summary",)),
    ]
    listed = listed_interventions(rec)
    value = clip("; ".join(listed)) if listed else next((clip(texts[0]) for _, texts, _ in places[1:] if texts), None)
    if not any(texts for _, texts, _ in places):
        return RuleResult("unverifiable", None, f"the {rec.registry} record gives no interventions, title or summary",
                          None, ("interventions",))
    found: list[str] = []
    keys: list[str] = []
    for product in products:
        where = next(((w, k) for w, texts, k in places if any(names_product(product, t) for t in texts)), None)
        found.append(f"{product} in {where[0]}" if where else f"{product} not in the record")
        keys += list(where[1]) if where else []
    named = [f for f in found if not f.endswith("not in the record")]
    verdict: Verdict = "match" if len(named) == len(found) else "partial" if named else "mismatch"
    return RuleResult(verdict, value, "; ".join(found), None, tuple(dict.fromkeys(keys)) or ("interventions",))


# ---------------------------------------------------------------------------------------------
# Primary endpoints: "endpoint.terms"
# ---------------------------------------------------------------------------------------------


def _outcome_terms(record: TrialRecord, kind: str) -> tuple[set[str], list[str]]:
    measures = [o.measure for o in record.outcomes if o.kind == kind]
    found: set[str] = set()
    for o in record.outcomes:
        if o.kind == kind:
            found |= endpoint_terms(o.measure) | endpoint_terms(o.description or "")
    return found, measures


def compare_endpoint_terms(
    stated: AbstractSet[str], primary: AbstractSet[str], secondary: AbstractSet[str] = frozenset()
) -> tuple[Verdict, str]:
    """The sentence's endpoint terms against the registry's primary-outcome terms.

    All among the primary terms -> match; some -> partial; none -> mismatch, except that terms
    found only among the secondary outcomes make it partial (the page may say "measures"
    without meaning "primary").
    """
    in_primary = stated & primary
    only_secondary = (stated - primary) & secondary
    missing = stated - primary - secondary
    parts = []
    if in_primary:
        parts.append(f"primary: {', '.join(sorted(in_primary))}")
    if only_secondary:
        parts.append(f"secondary only: {', '.join(sorted(only_secondary))}")
    if missing:
        parts.append(f"not among the outcomes: {', '.join(sorted(missing))}")
    detail = "; ".join(parts)
    if in_primary == stated:
        return "match", detail
    if in_primary or only_secondary:
        return "partial", detail
    return "mismatch", detail


def endpoint_outcome(stated: AbstractSet[str], reached: ReachedRecord) -> RuleResult:
    """:func:`compare_endpoint_terms` against one record's outcomes."""
    rec = reached.record
    primary, measures = _outcome_terms(rec, "primary")
    secondary, _ = _outcome_terms(rec, "secondary")
    keys = ("outcomes", "primary_outcomes")
    if not measures:
        return RuleResult("unverifiable", None, f"the {rec.registry} record gives no primary outcome", None, keys)
    value = clip("; ".join(measures))
    if not primary:
        return RuleResult("unverifiable", value, "the registry's primary outcomes name no known endpoint term",
                          None, keys)
    verdict, detail = compare_endpoint_terms(stated, primary, secondary)
    return RuleResult(verdict, value, f"registry terms {', '.join(sorted(primary))}; {detail}", None, keys)


# ---------------------------------------------------------------------------------------------
# Design: "design.terms"
# ---------------------------------------------------------------------------------------------

DESIGN_FEATURES: dict[str, str] = {
    "randomized": r"(?<!non )\brandomi[sz]ed\b|(?<!non )\brandomi[sz]ation\b",
    "non-randomized": r"\bnon randomi[sz]ed\b",
    "placebo": r"\bplacebo\b",
    "open-label": r"\bopen label\b",
    "double-blind": r"\bdouble blind(?:ed)?\b",
    "single-arm": r"\bsingle arm\b",
    "first-in-human": r"\bfirst in (?:human|man)\b|\bfih\b",
    "basket": r"\bbasket\b",
}
"""Design feature -> its wordings in folded text."""

_FEATURE_PATTERNS = {name: re.compile(p) for name, p in DESIGN_FEATURES.items()}

Finding = Literal["confirmed", "contradicted", "silent"]

BASKET_MIN_CONDITIONS = 3
"""A record with this many unrelated conditions is a basket trial."""


def design_features(text: str) -> list[str]:
    """The design features (:data:`DESIGN_FEATURES`) a sentence states, in table order."""
    folded = fold(text)
    return [name for name, pattern in _FEATURE_PATTERNS.items() if pattern.search(folded)]


def _texts(rec: TrialRecord) -> str:
    return fold(" ".join(t for t in (rec.title, rec.official_title, rec.brief_summary) if t))


def _unrelated_conditions(rec: TrialRecord) -> int:
    distinct: list = []
    for term in registry_condition_terms(rec.conditions):
        if all(not is_same_condition(term_similarity(term, d)) for d in distinct):
            distinct.append(term)
    return len(distinct)


def design_finding(feature: str, rec: TrialRecord) -> tuple[Finding, str, tuple[str, ...]]:
    """What the record says of one design feature: confirmed, contradicted or silent, and why.

    Allocation and masking are explicit fields, so another value contradicts. First-in-human and
    basket are only ever confirmed (by the title or summary, or several unrelated conditions):
    a registry not saying so is silence, not a contradiction. Placebo is contradicted only by
    typed arms none of which is a placebo comparator (and no placebo anywhere in the record).
    """
    design = rec.design
    texts = _texts(rec)
    if feature in ("randomized", "non-randomized"):
        want = "RANDOMIZED" if feature == "randomized" else "NON_RANDOMIZED"
        if design.allocation:
            found: Finding = "confirmed" if design.allocation == want else "contradicted"
            return found, f"allocation {design.allocation}", ("design.allocation", "design")
        if re.search(r"\brandomi[sz]ed\b", texts) and feature == "randomized":
            return "confirmed", "the title or summary says randomized", ("title",)
        return "silent", "no allocation", ()
    if feature in ("open-label", "double-blind"):
        if design.masking:
            ok = design.masking == "NONE" if feature == "open-label" else design.masking in (
                "DOUBLE", "TRIPLE", "QUADRUPLE")
            return ("confirmed" if ok else "contradicted"), f"masking {design.masking}", ("design.masking", "design")
        if _FEATURE_PATTERNS[feature].search(texts):
            return "confirmed", f"the title or summary says {feature}", ("title",)
        return "silent", "no masking", ()
    if feature == "single-arm":
        if design.intervention_model:
            ok = design.intervention_model == "SINGLE_GROUP"
            return (("confirmed" if ok else "contradicted"), f"intervention model {design.intervention_model}",
                    ("design.intervention_model", "design"))
        return "silent", "no intervention model", ()
    if feature == "placebo":
        arm_types = [a.type for a in rec.arms if a.type]
        names = [n for i in rec.interventions for n in (i.name, *i.other_names)]
        if "PLACEBO_COMPARATOR" in arm_types:
            return "confirmed", "a PLACEBO_COMPARATOR arm", ("arms",)
        if any(re.search(r"\bplacebo\b", fold(n)) for n in names):
            return "confirmed", "a placebo intervention", ("interventions",)
        described = fold(" ".join([texts, *(a.description or "" for a in rec.arms),
                                   *(f"{o.measure} {o.description or ''}" for o in rec.outcomes)]))
        if re.search(r"\bplacebo\b", described):
            return "confirmed", "the title, summary, arms or outcomes say placebo", ("title", "outcomes")
        # Only typed arms are a full account of the comparators; an intervention list may leave
        # the placebo out.
        if arm_types:
            return "contradicted", f"arms {', '.join(arm_types)}, no placebo", ("arms",)
        return "silent", "no typed arms", ()
    if feature == "first-in-human":
        if _FEATURE_PATTERNS[feature].search(texts):
            return "confirmed", "the title or summary says first-in-human", ("title", "brief_summary")
        return "silent", "the title and summary do not say first-in-human", ()
    if feature == "basket":
        if re.search(r"\bbasket\b", texts):
            return "confirmed", "the title or summary says basket", ("title",)
        n = _unrelated_conditions(rec)
        if n >= BASKET_MIN_CONDITIONS:
            return "confirmed", f"{n} unrelated conditions", ("conditions",)
        return "silent", f"{n} unrelated condition(s), no 'basket' in the title or summary", ()
    return "silent", f"no rule for {feature}", ()


def combine_findings(findings: Sequence[Finding]) -> Verdict:
    """All findings confirmed -> match; confirmed and contradicted -> partial; only contradicted
    -> mismatch; silence is left out, and all silence is unverifiable."""
    said = [f for f in findings if f != "silent"]
    if not said:
        return "unverifiable"
    if all(f == "confirmed" for f in said):
        return "match"
    if any(f == "confirmed" for f in said):
        return "partial"
    return "mismatch"


def design_outcome(features: Sequence[str], reached: ReachedRecord) -> RuleResult:
    """Every stated design feature against one record, as one row."""
    rec = reached.record
    results = [(f, *design_finding(f, rec)) for f in features]
    verdict = combine_findings([r[1] for r in results])
    detail = "; ".join(f"{f}: {finding} ({why})" for f, finding, why, _ in results)
    value = "; ".join(why for _, finding, why, _ in results if finding != "silent") or None
    keys = tuple(k for *_, ks in results for k in ks)
    return RuleResult(verdict, value, detail, None, keys)


# ---------------------------------------------------------------------------------------------
# Population: "population.age_groups"
# ---------------------------------------------------------------------------------------------

AGE_GROUP_WORDS: dict[str, str] = {
    "CHILD": r"\bchild(?:ren)?\b|\bp(?:a)?ediatric\b|\badolescents?\b|\binfants?\b|\bminors?\b",
    "ADULT": r"(?<!older )\badults?\b",
    "OLDER_ADULT": r"\bolder adults?\b|\belderly\b",
}
"""Age group (CT.gov vocabulary) -> the sentence's words for it."""


def stated_age_groups(text: str) -> list[str]:
    """The age groups a sentence names, in CT.gov order."""
    folded = fold(text)
    return [g for g, p in AGE_GROUP_WORDS.items() if re.search(p, folded)]


def compare_age_groups(stated: Iterable[str], registry: Iterable[str]) -> tuple[Verdict, str]:
    """Stated groups all among the registry's -> match; some -> partial; none -> mismatch."""
    a, b = set(stated), set(registry)
    if a <= b:
        return "match", f"the registry includes {', '.join(sorted(a))}"
    if a & b:
        return "partial", f"the registry does not include {', '.join(sorted(a - b))}"
    return "mismatch", f"the registry includes only {', '.join(sorted(b))}"


def population_outcome(stated: Sequence[str], reached: ReachedRecord) -> RuleResult:
    """:func:`compare_age_groups` against one record."""
    rec = reached.record
    keys = ("age_groups", "eligibility")
    if not rec.age_groups:
        return RuleResult("unverifiable", None, f"the {rec.registry} record gives no age groups", None, keys)
    verdict, detail = compare_age_groups(stated, rec.age_groups)
    return RuleResult(verdict, ", ".join(rec.age_groups), detail, None, keys)
