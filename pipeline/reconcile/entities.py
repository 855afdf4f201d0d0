"""The trials a page speaks of, as one entity each: every number a trial has in every registry,
its record per registry and how that record was reached, or why it has none.

:func:`page_trials` is pure, like :func:`~pipeline.reconcile.reconcile_document`: the extracted
page, the parsed records, the links, the known reasons for missing records and the run's load
errors in; one :class:`PageTrial` per trial, one :class:`TrialIdentity` per number, and the
trial each ongoing entry resolved to, out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.models import ExtractedDocument, MissingReason, MissingRecord, OngoingTrial, TrialLink
from pipeline.reconcile.ongoing import Resolution, describe, resolve_ongoing, stated_codes
from pipeline.reconcile import page_trial_ids
from pipeline.constants import TRIAL_REGISTRIES
from pipeline.ids import registry_of
from pipeline.reconcile.records import Identity, LoadedRecord, RecordIndex
from pipeline.reconcile.terms import drug_pattern



@dataclass(frozen=True)
class Unusable:
    """A snapshot the run could not use, for the trial it is about."""

    trial_id: str | None
    snapshot: str
    error: str


@dataclass(frozen=True)
class TrialIdentity:
    """One number of a page trial in one registry, and its record (or why there is none)."""

    document_id: str
    trial_id: str
    registry: str
    registry_id: str
    link: str  # same id, confirmed or candidate
    link_source: str  # page, links, registry record
    link_evidence: str | None
    has_record: bool
    used: bool
    snapshot_path: str | None
    provenance: str | None
    missing_reason: MissingReason | None
    missing_detail: str | None


@dataclass(frozen=True)
class PageTrial:
    """One trial the page speaks of."""

    document_id: str
    trial_id: str
    registry: str | None
    title: str | None
    title_source: str | None
    mentioned_in: list[str]
    ctgov_id: str | None
    ctis_id: str | None
    euctr_id: str | None
    record_registries: list[str]
    record_status: str  # record, candidate_only, no_record
    missing_reason: MissingReason | None
    missing_detail: str | None


@dataclass(frozen=True)
class OngoingResolution:
    """The trial an ongoing entry is about, how that was told, or why it could not be."""

    position: int
    trial_id: str | None
    trial_id_source: str | None  # page, title or product
    score: float | None
    unresolved_reason: str | None


@dataclass(frozen=True)
class PageTrials:
    """Every trial of one page, its numbers, and its ongoing entries' trials."""

    document_id: str
    trials: list[PageTrial] = field(default_factory=list)
    identities: list[TrialIdentity] = field(default_factory=list)
    ongoing: list[OngoingResolution] = field(default_factory=list)


def _mentions(doc: ExtractedDocument, resolutions: Mapping[int, Resolution]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}

    def add(trial_id: str | None, where: str) -> None:
        if trial_id and where not in found.setdefault(trial_id, []):
            found[trial_id].append(where)

    for t in doc.trials:
        add(t.trial_id, "table")
    for c in doc.claims:
        for trial_id in c.trial_ids:
            add(trial_id, "narrative")
    for resolution in resolutions.values():
        add(resolution.trial_id, "ongoing")
    for r in doc.references:
        add(r.trial_id, "reference")
    return found


def _why_missing(
    registry: str, registry_id: str, trial_id: str, missing: Mapping[tuple[str, str], MissingRecord],
    unusable: Sequence[Unusable],
) -> tuple[MissingReason, str]:
    failed = [u for u in unusable if u.trial_id and u.trial_id.upper() == registry_id]
    if failed:
        return "fetch_failed", "; ".join(f"{u.snapshot}: {u.error}" for u in failed)
    known = missing.get((registry, registry_id)) or missing.get((registry, trial_id.upper()))
    if known is not None:
        return known.reason, known.detail
    return "not_fetched", f"no {registry} snapshot of {registry_id} in the store"


def _ongoing(resolutions: Mapping[int, Resolution]) -> list[OngoingResolution]:
    out = []
    for position, r in sorted(resolutions.items()):
        source = None if r.trial_id is None else ("page" if r.by_page else "product" if r.by_product else "title")
        score = r.best.score if r.best is not None else None
        why = "; ".join(x for x in (r.reason, describe(r)) if x) if r.trial_id is None else None
        out.append(OngoingResolution(position, r.trial_id, source, score, why))
    return out


def ongoing_country_codes(entry: OngoingTrial) -> list[str]:
    """The ISO codes of the countries an ongoing entry shows (names not understood are left out)."""
    return stated_codes(entry)[0]


def statement(doc: ExtractedDocument, claim_id: str) -> str | None:
    """The words of the page a reconciliation row's claim id stands for: a claim's sentence, a
    summary-table row, an ongoing entry, a reference; None for registry-vs-registry rows."""
    kind, _, rest = claim_id.partition(":")
    number = rest.split(":", 1)[0]
    if kind == "table":
        row = next((t for t in doc.trials if str(t.row_number) == number), None)
        if row is None:
            return None
        cells = [row.trial_id, row.phase, row.condition, row.status, "" if row.enrollment is None else str(row.enrollment)]
        return f"Summary table, row {row.row_number}: " + " | ".join(cells)
    if kind == "ongoing":
        entry = next((o for o in doc.ongoing if str(o.position) == number), None)
        if entry is None:
            return None
        more = f" +{entry.more_countries}" if entry.more_countries else ""
        return f"Ongoing trials, entry {entry.position}: {entry.title} ({entry.status}; {', '.join(entry.countries)}{more})"
    if kind == "ref":
        ref = next((r for r in doc.references if str(r.ref_number) == number), None)
        return None if ref is None else f"Reference [{ref.ref_number}]: {ref.url}"
    if kind == "cross":
        return None
    claim = next((c for c in doc.claims if c.claim_id == claim_id), None)
    return None if claim is None else claim.sentence


def page_trials(
    doc: ExtractedDocument,
    records: Sequence[LoadedRecord],
    links: Sequence[TrialLink],
    missing: Sequence[MissingRecord] = (),
    unusable: Sequence[Unusable] = (),
    resolutions: dict[int, Resolution] | None = None,
) -> PageTrials:
    """Every trial ``doc`` speaks of, with its numbers and records per registry.

    A trial is one the page names (table, narrative, ongoing list, references) or one an
    ongoing entry resolved to by its title. Its records are those reconciliation compares with
    (``used``): by the same number or a confirmed link, or, when nothing else reaches it, a
    candidate link. A number without a record says why (``missing_reason``).

    ``resolutions``: the ongoing entries resolved against these records already
    (:meth:`pipeline.reconcile.PageRecords.ongoing`), resolved here when not given.
    """
    index = RecordIndex(records, links)
    if resolutions is None:
        drug = doc.document.title.strip() or doc.document.document_id
        resolutions = resolve_ongoing(doc, index, page_trial_ids(doc), drug_pattern(drug))
    mentions = _mentions(doc, resolutions)
    known = {(m.registry, m.trial_id.upper()): m for m in missing}
    doc_id = doc.document.document_id
    ongoing_titles = {r.trial_id: e.title for e in doc.ongoing
                      if (r := resolutions.get(e.position)) is not None and r.trial_id}
    result = PageTrials(document_id=doc_id, ongoing=_ongoing(resolutions))
    for trial_id, mentioned in mentions.items():
        used = {id(r.loaded) for r in index.reach(trial_id)}
        idents: list[TrialIdentity] = []
        for ident in index.identities(trial_id):
            idents.append(_identity(doc_id, trial_id, ident, used, known, unusable))
        result.identities.extend(idents)
        result.trials.append(_trial(doc_id, trial_id, mentioned, idents, index, ongoing_titles.get(trial_id)))
    return result


def _identity(
    doc_id: str, trial_id: str, ident: Identity, used: set[int], known: Mapping[tuple[str, str], MissingRecord],
    unusable: Sequence[Unusable],
) -> TrialIdentity:
    loaded = ident.loaded
    reason, detail = (None, None)
    if loaded is None:
        reason, detail = _why_missing(ident.registry, ident.registry_id, trial_id, known, unusable)
    return TrialIdentity(
        document_id=doc_id, trial_id=trial_id, registry=ident.registry, registry_id=ident.registry_id,
        link=ident.reach, link_source=ident.source, link_evidence=ident.evidence,
        has_record=loaded is not None, used=loaded is not None and id(loaded) in used,
        snapshot_path=loaded.entry.path if loaded else None, provenance=loaded.entry.provenance if loaded else None,
        missing_reason=reason, missing_detail=detail,
    )


def _trial(
    doc_id: str, trial_id: str, mentioned: list[str], idents: list[TrialIdentity], index: RecordIndex,
    ongoing_title: str | None,
) -> PageTrial:
    reached = sorted(index.reach(trial_id), key=lambda r: TRIAL_REGISTRIES.index(r.registry)
                     if r.registry in TRIAL_REGISTRIES else len(TRIAL_REGISTRIES))
    title, title_source = None, None
    for r in reached:
        text = r.record.title or r.record.official_title
        if text:
            title, title_source = text, f"{r.registry} record {r.record.trial_id}"
            break
    if title is None and ongoing_title:
        title, title_source = ongoing_title, "the page's ongoing list"
    best: dict[str, str] = {}
    for ident in idents:  # best-known first
        best.setdefault(ident.registry, ident.registry_id)
    if any(r.reach != "candidate" for r in reached):
        status = "record"
    elif reached:
        status = "candidate_only"
    else:
        status = "no_record"
    reason, detail = None, None
    if status != "record":
        own = next((i for i in idents if i.link == "same id" and not i.has_record), None)
        if own is not None:
            reason, detail = own.missing_reason, own.missing_detail
    return PageTrial(
        document_id=doc_id, trial_id=trial_id, registry=registry_of(trial_id), title=title,
        title_source=title_source, mentioned_in=mentioned, ctgov_id=best.get("ctgov"), ctis_id=best.get("ctis"),
        euctr_id=best.get("euctr"), record_registries=sorted({r.registry for r in reached}),
        record_status=status, missing_reason=reason, missing_detail=detail,
    )
