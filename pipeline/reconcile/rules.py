"""The comparison rules: a stated value against a registry value, as a verdict and a reason.

Each ``compare_*`` function works on plain values and is the rule itself; each ``*_outcome``
function reads the values of one registry record and calls it. A value the record does not
give is never a mismatch: the verdict is ``unverifiable`` ("the ctis record gives no phase").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.models import Phase, ReconciliationRow, TrialStatus, Verdict
from pipeline.reconcile.records import Fact, RuleResult, ReachedRecord, rows_for_trial, unchecked_row
from pipeline.reconcile.terms import (
    ConditionTerm,
    is_solid_cancer,
    is_solid_tumor_umbrella,
    term_similarity,
)
from pipeline.registries.vocab import normalize_status

S = TrialStatus

# ---------------------------------------------------------------------------------------------
# Phase: "phase.set_equal"
# ---------------------------------------------------------------------------------------------


def phases_text(phases: Sequence[Phase]) -> str:
    """Phases as one stable string: ``"PHASE1, PHASE2"``."""
    return ", ".join(p.value for p in phases)


def compare_phases(stated: Sequence[Phase], registry: Sequence[Phase]) -> tuple[Verdict, str]:
    """Phases as sets: equal -> match, overlapping -> partial, disjoint -> mismatch.

    "Phase 1/2" is {PHASE1, PHASE2}, so it matches a registry's PHASE1 + PHASE2, is partial
    against PHASE2 alone and a mismatch against PHASE3.
    """
    a, b = set(stated), set(registry)
    if a == b:
        return "match", "same phases"
    common = a & b
    if common:
        only_stated = phases_text(sorted(a - b, key=list(Phase).index))
        only_registry = phases_text(sorted(b - a, key=list(Phase).index))
        parts = [f"both have {phases_text(sorted(common, key=list(Phase).index))}"]
        if only_stated:
            parts.append(f"only the stated value has {only_stated}")
        if only_registry:
            parts.append(f"only the registry value has {only_registry}")
        return "partial", "; ".join(parts)
    return "mismatch", "no phase in common"


def phase_outcome(stated: Sequence[Phase], reached: ReachedRecord) -> RuleResult:
    """:func:`compare_phases` against one record."""
    rec = reached.record
    if not rec.phases:
        return RuleResult("unverifiable", rec.phase_raw, f"the {rec.registry} record gives no phase", None, ("phases",))
    verdict, detail = compare_phases(stated, rec.phases)
    return RuleResult(verdict, phases_text(rec.phases), detail, None, ("phases", "phase"))


# ---------------------------------------------------------------------------------------------
# Status: "status.vocabulary"
# ---------------------------------------------------------------------------------------------

ACTIVE_STATUSES = frozenset({S.NOT_YET_RECRUITING, S.RECRUITING, S.ENROLLING_BY_INVITATION, S.ACTIVE_NOT_RECRUITING})
"""Authorised and not ended, with the recruitment state told."""

_COMPATIBLE: dict[tuple[TrialStatus, TrialStatus], tuple[Verdict, str]] = {
    **{(S.ONGOING, s): ("match", "stated value is less specific") for s in ACTIVE_STATUSES},
    **{(s, S.ONGOING): ("match", "registry value is less specific") for s in ACTIVE_STATUSES},
    (S.RECRUITING, S.ENROLLING_BY_INVITATION): ("partial", "the registry says recruitment is by invitation only"),
    (S.ENROLLING_BY_INVITATION, S.RECRUITING): ("partial", "the registry says recruitment is open, not by invitation"),
    (S.ONGOING, S.SUSPENDED): ("partial", "authorised and not ended, but the registry says temporarily halted"),
    (S.SUSPENDED, S.ONGOING): ("partial", "the registry says the trial runs, not halted"),
    (S.COMPLETED, S.TERMINATED): ("partial", "both ended; the registry says it ended early"),
    (S.TERMINATED, S.COMPLETED): ("partial", "both ended; the registry does not say it ended early"),
}

_STATUS_GROUP: dict[TrialStatus, str] = {
    **{s: "not ended" for s in ACTIVE_STATUSES},
    S.ONGOING: "not ended",
    S.SUSPENDED: "halted",
    S.COMPLETED: "ended",
    S.TERMINATED: "ended",
    S.WITHDRAWN: "never ran",
}


def compare_status(stated: TrialStatus | None, registry: TrialStatus | None) -> tuple[Verdict, str]:
    """Two statuses on the common vocabulary, through ONE compatibility table.

    The page's "Authorised" (and EU CTR "Ongoing", CTIS "Authorised") is ONGOING: authorised
    and not ended, recruitment state not told. The table, first row that applies:

    | stated                   | registry                           | verdict      | detail                           |
    |--------------------------|------------------------------------|--------------|----------------------------------|
    | any                      | UNKNOWN, or none                   | unverifiable | the registry's status is unknown |
    | UNKNOWN (not understood) | any                                | unverifiable | not in the status vocabulary     |
    | X                        | X                                  | match        | same status                      |
    | ONGOING                  | an active status (*)               | match        | stated value is less specific    |
    | an active status (*)     | ONGOING                            | match        | registry value is less specific  |
    | RECRUITING               | ENROLLING_BY_INVITATION (and back) | partial      | by invitation only (or not)      |
    | ONGOING                  | SUSPENDED (and back)               | partial      | temporarily halted (or not)      |
    | COMPLETED                | TERMINATED (and back)              | partial      | both ended; early (or not)       |
    | anything else            |                                    | mismatch     | what each side's status means    |

    (*) the active statuses: NOT_YET_RECRUITING, RECRUITING, ENROLLING_BY_INVITATION,
    ACTIVE_NOT_RECRUITING (authorised and not ended, recruitment state told).

    So "Authorised" against COMPLETED or TERMINATED is a mismatch, and so are "Completed"
    against RECRUITING, RECRUITING against ACTIVE_NOT_RECRUITING or NOT_YET_RECRUITING, and any
    status against WITHDRAWN. :func:`status_compatibility_rows` gives every pair.
    """
    if registry is None or registry is S.UNKNOWN:
        return "unverifiable", "the registry's status is unknown"
    if stated is None or stated is S.UNKNOWN:
        return "unverifiable", "the stated status is not in the status vocabulary"
    if stated is registry:
        return "match", "same status"
    if (stated, registry) in _COMPATIBLE:
        return _COMPATIBLE[(stated, registry)]
    a, b = _STATUS_GROUP.get(stated, "?"), _STATUS_GROUP.get(registry, "?")
    if a == b:
        return "mismatch", f"both {a}, but {stated.value} is not {registry.value}"
    return "mismatch", f"stated {stated.value} is {a}, registry {registry.value} is {b}"


def status_compatibility_rows() -> list[tuple[str, str, str, str]]:
    """The whole status table as (stated, registry, verdict, detail) rows, for the data dictionary."""
    rows = []
    for stated in TrialStatus:
        for registry in TrialStatus:
            verdict, detail = compare_status(stated, registry)
            rows.append((stated.value, registry.value, verdict, detail))
    return rows


def status_outcome(stated: TrialStatus | None, reached: ReachedRecord) -> RuleResult:
    """:func:`compare_status` against one record."""
    rec = reached.record
    if rec.status is None:
        return RuleResult("unverifiable", rec.status_raw, f"the {rec.registry} record gives no status", None,
                          ("status",))
    verdict, detail = compare_status(stated, rec.status)
    if verdict != "match" and rec.last_updated is not None:
        # A status is only as fresh as the record: say how old it is beside a disagreement.
        detail = f"{detail}; the record was last updated {rec.last_updated.value}"
    value = rec.status.value if rec.status_raw is None else f"{rec.status.value} ({rec.status_raw})"
    return RuleResult(verdict, value, detail, None, ("status", "status_raw"))


def stated_status_rows(fact: Fact, rule: str, reached: Sequence[ReachedRecord]) -> list[ReconciliationRow]:
    """The status the page states (``fact.stated_value``, a label) against each record reached.

    Returns:
        The rows of :func:`status_outcome`, or one unverifiable row when the stated label is not
        in the status vocabulary.
    """
    status = normalize_status(fact.stated_value, "page")
    if status is None or status is S.UNKNOWN:
        return [unchecked_row(fact, rule, "the stated status is not in the status vocabulary")]
    return rows_for_trial(fact, rule, reached, lambda r: status_outcome(status, r))


# ---------------------------------------------------------------------------------------------
# Enrollment: "enrollment.equal"
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrollmentFigure:
    """An enrollment figure of a record, with what it counts."""

    registry: str
    record_id: str
    value: int
    enrollment_type: str | None = None
    scope: str | None = None


_SCOPE_WORDS = {"eea": "EEA-only", "member_state": "one member state only"}


def _figure_notes(figure: EnrollmentFigure) -> list[str]:
    notes = []
    if figure.scope in _SCOPE_WORDS:
        notes.append(f"registry figure is {_SCOPE_WORDS[figure.scope]}")
    if figure.enrollment_type == "estimated":
        notes.append("registry figure is estimated")
    return notes


def compare_enrollment(
    stated: int, figure: EnrollmentFigure, others: Sequence[EnrollmentFigure] = ()
) -> tuple[Verdict, str]:
    """Stated enrollment against a registry figure: equal -> match, else mismatch saying how.

    The detail gives the difference ("registry 670, stated 810: stated is 140 higher"),
    whether the registry figure counts the EEA (or one member state) only or is estimated, and
    when the stated figure equals the EEA figure of another record of the trial.
    """
    notes = _figure_notes(figure)
    if stated == figure.value:
        return "match", "; ".join(["equal", *notes])
    diff = stated - figure.value
    words = f"registry {figure.value}, stated {stated}: stated is {abs(diff)} {'higher' if diff > 0 else 'lower'}"
    for other in others:
        if other.value == stated and other.scope in _SCOPE_WORDS:
            notes.append(
                f"the stated figure equals the {_SCOPE_WORDS[other.scope]} figure of the "
                f"{other.registry} record {other.record_id}"
            )
        elif other.value == stated:
            notes.append(f"the stated figure equals the figure of the {other.registry} record {other.record_id}")
    return "mismatch", "; ".join([words, *notes])


def enrollment_figure(reached: ReachedRecord) -> EnrollmentFigure | None:
    """The record's enrollment as an :class:`EnrollmentFigure` (None when it gives none)."""
    rec = reached.record
    if rec.enrollment is None:
        return None
    return EnrollmentFigure(rec.registry, rec.trial_id, rec.enrollment, rec.enrollment_type, rec.enrollment_scope)


NO_STATED_ENROLLMENT = "the page states no enrollment figure"


def enrollment_outcome(stated: int | None, reached: ReachedRecord, others: Sequence[EnrollmentFigure]) -> RuleResult:
    """:func:`compare_enrollment` against one record; ``others`` are the trial's other records' figures."""
    figure = enrollment_figure(reached)
    keys = ("enrollment",)
    if stated is None:
        return RuleResult("unverifiable", None if figure is None else str(figure.value),
                          NO_STATED_ENROLLMENT, None, keys)
    if figure is None:
        return RuleResult("unverifiable", None, f"the {reached.registry} record gives no enrollment", None, keys)
    verdict, detail = compare_enrollment(stated, figure, [o for o in others if o.record_id != figure.record_id])
    return RuleResult(verdict, str(figure.value), detail, None, keys)


# ---------------------------------------------------------------------------------------------
# Conditions: "condition.terms"
# ---------------------------------------------------------------------------------------------

CONDITION_MATCH_THRESHOLD = 85.0
"""token_set_ratio at or above which a stated condition and a registry condition are the same."""

NAMED_IN_SENTENCE_COVERAGE = 2 / 3
"""Share of a condition's words a sentence must hold to name it (terms of 3+ words)."""


def is_same_condition(score: float) -> bool:
    """Whether a similarity score says two condition terms are the same condition."""
    return score >= CONDITION_MATCH_THRESHOLD


def coverage_verdict(covered: Sequence[bool]) -> Verdict:
    """All stated terms covered -> match; some -> partial; none -> mismatch."""
    if covered and all(covered):
        return "match"
    if any(covered):
        return "partial"
    return "mismatch"


@dataclass(frozen=True)
class ConditionComparison:
    """Each stated condition term against the registry's terms."""

    verdict: Verdict
    score: float
    detail: str


def compare_conditions(stated: Sequence[ConditionTerm], registry: Sequence[ConditionTerm]) -> ConditionComparison:
    """Every stated condition term against the best registry term.

    A stated term is covered when its best ``token_set_ratio`` reaches
    :data:`CONDITION_MATCH_THRESHOLD`, or when one side is the umbrella "solid tumors" and the
    other names a solid cancer (the detail then says which side is less specific). The score is
    the mean of the stated terms' best similarities.
    """
    covered: list[bool] = []
    scores: list[float] = []
    notes: list[str] = []
    registry_umbrella = any(is_solid_tumor_umbrella(r) for r in registry)
    registry_solid = [r for r in registry if is_solid_cancer(r) and not is_solid_tumor_umbrella(r)]
    for term in stated:
        best, best_term = max(((term_similarity(term, r), r) for r in registry), key=lambda x: x[0],
                              default=(0.0, None))
        scores.append(best)
        if is_same_condition(best):
            covered.append(True)
        elif is_solid_tumor_umbrella(term) and registry_solid:
            covered.append(True)
            notes.append(f"'{term.text}' covers {', '.join(repr(r.text) for r in registry_solid)} "
                         "(stated value is less specific)")
        elif registry_umbrella and is_solid_cancer(term):
            covered.append(True)
            notes.append(f"'{term.text}' is a solid tumor (registry value is less specific)")
        else:
            covered.append(False)
            near = f"; nearest '{best_term.text}' at {best:.0f}" if best_term is not None else ""
            notes.append(f"'{term.text}' not among the registry's conditions{near}")
    verdict = coverage_verdict(covered)
    score = round(sum(scores) / len(scores), 1) if scores else 0.0
    head = {"match": "every stated condition is the registry's",
            "partial": f"{sum(covered)} of {len(covered)} stated conditions are the registry's",
            "mismatch": "no stated condition is the registry's"}[verdict]
    return ConditionComparison(verdict, score, "; ".join([head, *notes]))
