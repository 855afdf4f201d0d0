"""Rows for the page's "ongoing trials" list (claim ids ``ongoing:<position>``).

An entry gives a lay title, a status and some countries, but (usually) no trial number. Its
trial is found by title: the candidates are the registry records' titles, the page's own
references to clinicaltrials.eu trial pages, whose slug is the slugified lay title and whose
trial the extractor knows from the sentences citing them, and the page's own sentences about
each trial (a trial with no record is described only there). A record tied to the page's trial
only by a candidate link resolves the entry to that trial through the link, and every verdict
that rests on it is ``unverifiable`` (the verdict it would get is in the detail), as for a
record reached through the page's number. The best candidate must reach
:data:`ONGOING_MATCH_THRESHOLD` and beat the best candidate of any other trial by
:data:`ONGOING_MARGIN`. An entry the titles leave unresolved is still resolved when its title
names a product (a sponsor's code such as "CNTY-101", or an INN) that the candidates of one
trial only name. Otherwise the entry stays unresolved ("ongoing.resolve" unverifiable).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.ids import registry_of
from pipeline.models import Claim, Evidence, ExtractedDocument, OngoingTrial, ReconciliationRow, Verdict
from pipeline.reconcile.claims import single_trial_claims
from pipeline.reconcile.records import (
    Fact,
    LoadedRecord,
    RuleResult,
    ReachedRecord,
    RecordIndex,
    rows_for_trial,
)
from pipeline.reconcile.rules import stated_status_rows
from pipeline.reconcile.terms import named_products, names_product, title_similarities, title_similarity, title_tokens
from pipeline.registries.vocab import normalize_country

ONGOING_MATCH_THRESHOLD = 85.0
"""Title similarity (token_set_ratio of the titles' distinctive words) needed to resolve an entry."""

ONGOING_MARGIN = 5.0
"""How far the best trial's score must lead the runner-up trial's."""

EEA_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split()
)
"""EU member states, Iceland, Liechtenstein, Norway: the countries an EU page shows."""

_CTEU_SLUG = re.compile(r"clinicaltrials\.eu/(?:[a-z]{2}/)?trials?/([A-Za-z0-9-]+)")


def cteu_slug(url: str) -> str | None:
    """The trial-page slug of a clinicaltrials.eu URL, or None for any other URL."""
    m = _CTEU_SLUG.search(url)
    return m.group(1) if m else None


@dataclass(frozen=True)
class TitleCandidate:
    """A title that may be an ongoing entry's, and the trial (page number) it belongs to."""

    trial_id: str
    text: str
    source: str
    registry: str | None = None
    reached: ReachedRecord | None = None
    field_key: str | None = None
    candidate_link: str | None = None  # the unconfirmed link that ties the record to trial_id


@dataclass(frozen=True)
class Scored:
    """A candidate title and its similarity to the entry's title."""

    candidate: TitleCandidate
    score: float


@dataclass(frozen=True)
class Resolution:
    """Which trial an ongoing entry is about, and how sure we are."""

    trial_id: str | None
    best: Scored | None = None
    runner_up: Scored | None = None
    by_page: bool = False
    reason: str = ""
    by_product: str | None = None  # the products that told the trial, when the titles did not

    @property
    def candidate_link(self) -> str | None:
        """The unconfirmed link the resolution rests on (None when it rests on none)."""
        return None if self.trial_id is None or self.best is None else self.best.candidate.candidate_link


TITLE_SHORTLIST = 10
"""Records of the store, beyond the page's own, whose titles an ongoing entry is scored against:
those sharing the entry's rarest distinctive words (see :class:`TitleIndex`)."""

MAX_POSTING = 128
"""A word found in more record titles than this tells too little to shortlist by (it still
counts in the score of every title that is scored)."""


class TitleIndex:
    """The distinctive words of every record's titles (:attr:`RecordKey.title_words`), and the records each is in.

    :meth:`shortlist` finds the records whose titles share the most of an entry's rarest words
    in time that depends on the entry and :data:`MAX_POSTING`, not on the store: every
    candidate of the shortlist is then scored exactly as any other (:func:`resolve_title`).
    """

    def __init__(self, records: Sequence[LoadedRecord]) -> None:
        # By registry and number, not as the store lists them: records that tie for the last
        # places of a shortlist are kept by their numbers, so the same records give the same
        # shortlist however they came (a manifest's order, an ingest's labels).
        self._records = sorted(records, key=lambda loaded: (loaded.key.registry, loaded.key.trial_id))
        self._postings: dict[str, list[int]] = {}
        for n, loaded in enumerate(self._records):
            for word in loaded.key.title_words:  # folded once per parsed record (RecordKey)
                self._postings.setdefault(word, []).append(n)

    def shortlist(self, title: str, drop: re.Pattern[str] | None = None,
                  size: int = TITLE_SHORTLIST) -> list[LoadedRecord]:
        """Up to ``size`` records whose titles share the most (by rarity) of ``title``'s words, by registry and number.

        Every record when none shares a word with ``title``."""
        postings = sorted((len(p), w, p) for w in set(title_tokens(title, drop)) if (p := self._postings.get(w)))
        if not postings:
            # No title shares a word with the entry: which is least unlike it is told only by
            # scoring them all (the entry stays unresolved, but its row names the nearest titles).
            return list(self._records)
        usable = [p for n, _, p in postings if n <= MAX_POSTING] or [postings[0][2][:MAX_POSTING]]
        weights: dict[int, float] = {}
        for posting in usable:  # rarest first, always in the same order: the sums are the same in any process
            weight = 1.0 / len(posting)
            for n in posting:
                weights[n] = weights.get(n, 0.0) + weight
        best = heapq.nsmallest(size, weights, key=lambda n: (-weights[n], n))
        return [self._records[n] for n in sorted(best)]


def title_candidates(doc: ExtractedDocument, index: RecordIndex, page_ids: Sequence[str]) -> list[TitleCandidate]:
    """Every title and official title of the index's records, every clinicaltrials.eu reference
    with a known trial, and the page's sentences about each trial (joined, one candidate per trial)."""
    out: list[TitleCandidate] = []
    trial_id_of = index.document_trial_ids(page_ids)
    for loaded in index.records:
        rec = loaded.record
        trial_id = trial_id_of(rec)
        if registry_of(trial_id) is None:  # a clinicaltrials.eu page that names no trial number
            continue
        link = next((r.link for r in index.reach(trial_id) if r.record is rec and r.reach == "candidate"), None)
        reached = ReachedRecord(loaded, "same id")
        for key, text in (("title", rec.title), ("official_title", rec.official_title)):
            if text:
                out.append(TitleCandidate(trial_id, text, f"{rec.registry} record {rec.trial_id} {key}",
                                          rec.registry, reached, key, link))
    for ref in doc.references:
        slug = cteu_slug(ref.url)
        if slug and ref.trial_id:
            out.append(TitleCandidate(ref.trial_id, slug.replace("-", " "), f"reference {ref.ref_number} ({ref.url})"))
    for trial_id, claims in _sentences_by_trial(doc).items():
        ids = ", ".join(c.claim_id for c in claims)
        out.append(TitleCandidate(trial_id, " ".join(c.sentence for c in claims), f"the page's sentences {ids}"))
    return out


def _sentences_by_trial(doc: ExtractedDocument) -> dict[str, list[Claim]]:
    """The sentences about exactly one trial (named, or told by the sentence before), by trial."""
    out: dict[str, list[Claim]] = {}
    for claim, trial_id in single_trial_claims(doc.claims):
        out.setdefault(trial_id, []).append(claim)
    return out


def resolve_title(
    title: str, candidates: Sequence[TitleCandidate], drop: re.Pattern[str] | None = None,
    candidate_words: Sequence[Sequence[str]] | None = None,
) -> Resolution:
    """The trial whose candidate title is most like ``title``, if clearly so.

    Args:
        title: the entry's lay title.
        candidates: titles to choose from (:func:`title_candidates`).
        drop: names to leave out of both titles (the page's drug is in most of them).
        candidate_words: each candidate's :func:`title_tokens` under ``drop``, when the caller
            has them (a page's entries share their candidates); worked out here otherwise.
    """
    words = title_tokens(title, drop)
    if candidate_words is None:
        candidate_words = _candidate_words(candidates, drop)
    best_by_trial: dict[str, Scored] = {}
    for cand, score in zip(candidates, title_similarities(words, candidate_words), strict=True):
        scored = Scored(cand, score)
        held = best_by_trial.get(cand.trial_id)
        # Ties go to the first source in sorted order, so the input's order never matters.
        if held is None or (-scored.score, cand.source) < (-held.score, held.candidate.source):
            best_by_trial[cand.trial_id] = scored
    ranked = sorted(best_by_trial.values(), key=lambda s: (-s.score, s.candidate.trial_id, s.candidate.source))
    resolution = decide(ranked[0] if ranked else None, ranked[1] if len(ranked) > 1 else None)
    if resolution.trial_id is None and drop is not None:
        return resolve_by_product(title, candidates, drop) or resolution
    return resolution


def _candidate_words(candidates: Sequence[TitleCandidate], drop: re.Pattern[str] | None) -> list[list[str]]:
    return [title_tokens(cand.text, drop) for cand in candidates]


def resolve_by_product(title: str, candidates: Sequence[TitleCandidate], drug: re.Pattern[str]) -> Resolution | None:
    """The one trial whose candidates name every product the entry's title names, if only one does.

    Of that trial's candidates, one that rests on no unconfirmed link is preferred, then the
    most similar title. None when the title names no product, or several trials' candidates
    (or none) name them all.
    """
    products = named_products(title, drug)
    naming = [c for c in candidates if products and all(names_product(p, c.text) for p in products)]
    if len({c.trial_id for c in naming}) != 1:
        return None
    words = title_tokens(title, drug)
    scored = sorted((Scored(c, title_similarity(words, title_tokens(c.text, drug))) for c in naming),
                    key=lambda s: (s.candidate.candidate_link is not None, -s.score, s.candidate.source))
    return Resolution(scored[0].candidate.trial_id, scored[0], by_product=", ".join(products))


def decide(best: Scored | None, runner: Scored | None) -> Resolution:
    """Resolve to the best trial's candidate if it reaches :data:`ONGOING_MATCH_THRESHOLD` and
    leads the runner-up trial's by :data:`ONGOING_MARGIN`; otherwise leave the entry unresolved."""
    if best is None:
        return Resolution(None, reason="no candidate titles")
    if best.score < ONGOING_MATCH_THRESHOLD:
        return Resolution(None, best, runner, reason=f"best score {best.score:.1f} is below {ONGOING_MATCH_THRESHOLD:.0f}")
    if runner is not None and best.score - runner.score < ONGOING_MARGIN:
        return Resolution(None, best, runner,
                          reason=f"ambiguous: {runner.candidate.trial_id} scores {runner.score:.1f}")
    return Resolution(best.candidate.trial_id, best, runner)


def describe(resolution: Resolution) -> str:
    """The best and runner-up candidates of a resolution, with their scores and sources."""
    parts = []
    if resolution.best:
        b = resolution.best
        parts.append(f"best {b.candidate.trial_id} at {b.score:.1f} ({b.candidate.source})")
    if resolution.runner_up:
        r = resolution.runner_up
        parts.append(f"runner-up {r.candidate.trial_id} at {r.score:.1f} ({r.candidate.source})")
    return "; ".join(parts)


def resolve_ongoing(
    doc: ExtractedDocument, index: RecordIndex, page_ids: Sequence[str], drop: re.Pattern[str] | None
) -> dict[int, Resolution]:
    """The resolution of every ongoing entry, by position.

    Each entry is scored against every title of the index's records (at site scale, the page's
    own and the shortlists of :class:`TitleIndex`) and the page's clinicaltrials.eu references.
    """
    candidates = title_candidates(doc, index, page_ids)
    candidate_words: list[list[str]] | None = None
    out: dict[int, Resolution] = {}
    for entry in doc.ongoing:
        if entry.trial_id:
            out[entry.position] = Resolution(entry.trial_id, by_page=True)
        else:
            if candidate_words is None:  # once per page, not per entry
                candidate_words = _candidate_words(candidates, drop)
            out[entry.position] = resolve_title(entry.title, candidates, drop, candidate_words)
    return out


# ---------------------------------------------------------------------------------------------
# Countries
# ---------------------------------------------------------------------------------------------


PER_MEMBER_STATE_REGISTRIES = frozenset({"euctr"})
"""Registries that keep one record per member state: a snapshot may hold only some of them, so
its countries are those of the records held, not necessarily all of the trial's."""


def compare_countries(
    stated: Sequence[str], registry: Sequence[str], more: int = 0, unknown: Sequence[str] = (),
    *, per_member_state: bool = False,
) -> tuple[Verdict, str]:
    """Countries shown on the page (ISO codes) against the registry's.

    Equal -> match; the page shows a subset -> match when it says "+N" more, partial when it
    does not; the page shows countries the registry lacks -> partial when they overlap,
    mismatch when they do not. When every shown country is in the EEA, the registry's
    countries outside it are left out (an EU page lists EU sites) and the detail names them;
    a registry listing no EEA country at all then makes the comparison unverifiable.

    With ``per_member_state`` (EU CTR), a shown EEA country the registry lacks may just have
    no member-state record in the snapshot: that is unverifiable, not a disagreement.
    """
    shown, reg = set(stated), set(registry)
    notes: list[str] = []
    if shown and shown <= EEA_COUNTRIES and reg - EEA_COUNTRIES:
        outside = ", ".join(sorted(reg - EEA_COUNTRIES))
        if not reg & EEA_COUNTRIES:
            # A registry naming only non-EEA sites says nothing about the EEA sites a page shows.
            return "unverifiable", f"the registry lists no EEA country (only {outside})"
        notes.append(f"registry also lists outside the EEA: {outside}")
        reg &= EEA_COUNTRIES
    if unknown:
        notes.append(f"not understood as countries: {', '.join(unknown)}")
    extra, missing = shown - reg, reg - shown
    if extra and per_member_state and extra <= EEA_COUNTRIES and not missing:
        confirmed = f"{', '.join(sorted(shown & reg))} confirmed; " if shown & reg else ""
        head = (f"{confirmed}no member-state record in the snapshot for {', '.join(sorted(extra))} "
                "(the register keeps one record per member state)")
        return "unverifiable", "; ".join([head, *notes])
    if not extra:
        if not missing:
            verdict: Verdict = "match"
            head = "same countries"
        elif more:
            verdict, head = "match", f"the page shows {len(shown)} of the registry's {len(reg)} and '+{more}'"
        else:
            verdict, head = "partial", f"the page does not show {', '.join(sorted(missing))}"
    elif shown & reg:
        verdict, head = "partial", f"not in the registry: {', '.join(sorted(extra))}"
    else:
        verdict, head = "mismatch", f"no shown country is in the registry (page: {', '.join(sorted(extra))})"
    return verdict, "; ".join([head, *notes])


def compare_country_count(
    shown: int, more: int, registry: Sequence[str], *, per_member_state: bool = False
) -> tuple[Verdict, str]:
    """The page's "shown + N" against the registry's country count (all, or the EEA's).

    Unverifiable when the registry lists no EEA country (the page's count is of EEA sites),
    and, with ``per_member_state`` (EU CTR), when the registry lists fewer: the snapshot may
    not hold every member state's record.
    """
    total = shown + more
    reg = set(registry)
    eea = reg & EEA_COUNTRIES
    if not eea:
        return "unverifiable", f"the registry lists no EEA country (only {', '.join(sorted(reg))})"
    if total == len(reg):
        return "match", f"{shown} shown + {more} = {total}, the registry's count"
    if total == len(eea):
        return "match", f"{shown} shown + {more} = {total}, the registry's EEA count ({len(reg) - len(eea)} others)"
    words = f"{shown} shown + {more} = {total}, the registry lists {len(reg)} countries ({len(eea)} in the EEA)"
    if per_member_state and total > len(eea):
        return "unverifiable", f"{words}; the snapshot may not hold every member state's record"
    return "mismatch", words


def stated_codes(entry: OngoingTrial) -> tuple[list[str], list[str]]:
    """The ISO codes of the countries an entry shows, and the names not understood as countries."""
    codes, unknown = [], []
    for name in entry.countries:
        code = normalize_country(name)
        if code is None:
            unknown.append(name)
        elif code not in codes:
            codes.append(code)
    return codes, unknown


def _countries_outcome(entry: OngoingTrial, reached: ReachedRecord) -> RuleResult:
    rec = reached.record
    if not rec.countries:
        return RuleResult("unverifiable", None, f"the {rec.registry} record gives no countries", None, ("countries",))
    codes, unknown = stated_codes(entry)
    verdict, detail = compare_countries(codes, rec.countries, entry.more_countries, unknown,
                                        per_member_state=rec.registry in PER_MEMBER_STATE_REGISTRIES)
    return RuleResult(verdict, ", ".join(sorted(set(rec.countries))), detail, None, ("countries",))


def _count_outcome(entry: OngoingTrial, reached: ReachedRecord) -> RuleResult:
    rec = reached.record
    if not rec.countries:
        return RuleResult("unverifiable", None, f"the {rec.registry} record gives no countries", None, ("countries",))
    verdict, detail = compare_country_count(len(entry.countries), entry.more_countries, rec.countries,
                                            per_member_state=rec.registry in PER_MEMBER_STATE_REGISTRIES)
    return RuleResult(verdict, str(len(set(rec.countries))), detail, None, ("countries",))


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


def ongoing_rows(
    doc: ExtractedDocument, index: RecordIndex, resolutions: dict[int, Resolution]
) -> list[ReconciliationRow]:
    """Resolution, status, countries and "+N" of every ongoing entry."""
    rows: list[ReconciliationRow] = []
    for entry in doc.ongoing:
        resolution = resolutions[entry.position]
        rows.append(_resolve_row(entry, resolution))
        if resolution.trial_id is None:
            continue
        trial_id = resolution.trial_id
        reached = index.reach(trial_id)
        entry_rows: list[ReconciliationRow] = []

        def fact(field: str, value: str | None) -> Fact:
            return Fact(entry.document_id, f"ongoing:{entry.position}", trial_id, field, value)

        entry_rows += stated_status_rows(fact("status", entry.status), "ongoing.status", reached)
        if entry.countries:
            entry_rows += rows_for_trial(fact("countries", ", ".join(entry.countries)), "ongoing.countries", reached,
                                         lambda r: _countries_outcome(entry, r))
        if entry.more_countries:
            f = fact("country_count", f"{len(entry.countries)} shown + {entry.more_countries}")
            entry_rows += rows_for_trial(f, "ongoing.more_countries", reached, lambda r: _count_outcome(entry, r))
        if resolution.best is not None:
            # The trial was inferred from the title: say so beside every verdict that rests on it.
            how = f"; entry resolved by title to {trial_id} (score {resolution.best.score:.1f})"
            if resolution.by_product:
                how = f"; entry resolved by {resolution.by_product} to {trial_id}"
            entry_rows = [r.model_copy(update={"detail": f"{r.detail}{how}"}) for r in entry_rows]
        rows += entry_rows
    return rows


def _resolve_row(entry: OngoingTrial, resolution: Resolution) -> ReconciliationRow:
    base = dict(document_id=entry.document_id, claim_id=f"ongoing:{entry.position}", field="title",
                stated_value=entry.title, rule="ongoing.resolve")
    if resolution.by_page:
        return ReconciliationRow(**base, trial_id=resolution.trial_id, registry_value=resolution.trial_id,
                                 registry="document", verdict="match", detail="the page names the trial")
    best = resolution.best
    registry = None if best is None else (best.candidate.registry or "document")
    evidence = Evidence()
    if best is not None and best.candidate.reached is not None:
        evidence = best.candidate.reached.evidence(best.candidate.field_key or "title")
    elif best is not None:
        evidence = Evidence(link=best.candidate.source)
    if resolution.trial_id is None:
        detail = "; ".join(x for x in (resolution.reason, describe(resolution)) if x)
        return ReconciliationRow(**base, trial_id=None, registry_value=best.candidate.text if best else None,
                                 registry=registry, verdict="unverifiable", detail=detail,
                                 score=best.score if best else None, evidence=evidence)
    assert best is not None  # a resolved entry always has its best candidate
    detail = f"resolved to {resolution.trial_id}; {describe(resolution)}"
    if resolution.by_product:
        detail = (f"resolved to {resolution.trial_id} by {resolution.by_product}, which only that trial's "
                  f"candidates name (the titles were not enough: {describe(resolution)})")
    verdict: Verdict = "match"
    if resolution.candidate_link and best.candidate.reached is not None:
        # The title is the record's; the record is the page trial's only through an unconfirmed link.
        verdict = "unverifiable"
        detail = (f"candidate record {best.candidate.reached.record.trial_id}, link not confirmed: match "
                  f"({detail}; {resolution.candidate_link})")
        evidence = evidence.model_copy(update={"link": resolution.candidate_link})
    return ReconciliationRow(**base, trial_id=resolution.trial_id, registry_value=best.candidate.text,
                             registry=registry, verdict=verdict, detail=detail,
                             score=best.score, evidence=evidence)
