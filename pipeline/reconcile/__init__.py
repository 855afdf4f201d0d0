"""Stage 4: every fact a page states, compared claim by claim with the registry records.

:func:`reconcile_document` is pure: an extracted document, the parsed records (each with the
manifest entry of its snapshot) and the cross-registry links in; one
:class:`~pipeline.models.ReconciliationRow` per comparison out, in a fixed order.

What is compared, and by which rule (``ReconciliationRow.rule``):

=====================  ===========================  ==========================================
facts                  claim ids                    rules
=====================  ===========================  ==========================================
summary table cells    ``table:<row>:<field>``      phase.set_equal, status.vocabulary,
                                                    enrollment.equal, condition.terms
narrative sentences    the claim's id               phase.set_equal, condition.terms,
                                                    intervention.named, intervention.products,
                                                    endpoint.terms,
                                                    design.terms, population.age_groups, ...
ongoing-trials list    ``ongoing:<position>``       ongoing.resolve, ongoing.status,
                                                    ongoing.countries, ongoing.more_countries
references             ``ref:<n>``                  reference.points_at_trial,
                                                    reference.registry_url
the page vs itself     (as above)                   self.table_vs_narrative.phase,
                                                    self.table_vs_narrative.condition,
                                                    self.table_vs_ongoing.status,
                                                    self.narrative_vs_reference.intervention
registry vs registry   ``cross:<trial>``            cross.status, cross.phase,
                                                    cross.enrollment, cross.condition
=====================  ===========================  ==========================================

Principles: a value no record holds is ``unverifiable``, never a match and never a mismatch
("no registry record", "the ctis record gives no phase"); a record reached only through a
candidate link gives ``unverifiable`` with the verdict it would get in the detail; a stated
value less specific than the registry's (or the reverse) is a match that says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from pipeline.models import ExtractedDocument, ReconciliationRow, TrialLink
from pipeline.reconcile.claims import claim_rows, table_rows
from pipeline.reconcile.consistency import cross_rows, self_rows
from pipeline.reconcile.ongoing import Resolution, TitleIndex, cteu_slug, ongoing_rows, resolve_ongoing
from pipeline.reconcile.records import LoadedRecord, RecordIndex, RecordLookup
from pipeline.reconcile.references import reference_rows, url_target
from pipeline.reconcile.rules import compare_status, status_compatibility_rows
from pipeline.reconcile.terms import drug_pattern

__all__ = [
    "LoadedRecord",
    "PageRecords",
    "RunRecords",
    "compare_status",
    "page_numbers",
    "page_trial_ids",
    "reconcile_document",
    "reconcile_page",
    "row_order",
    "status_compatibility_rows",
]


def page_trial_ids(doc: ExtractedDocument) -> list[str]:
    """Every trial number the page uses: table, sentences, ongoing list and references."""
    ids = [t.trial_id for t in doc.trials]
    ids += [i for c in doc.claims for i in c.trial_ids]
    ids += [o.trial_id for o in doc.ongoing if o.trial_id]
    ids += [r.trial_id for r in doc.references if r.trial_id]
    return list(dict.fromkeys(ids))


def page_numbers(doc: ExtractedDocument) -> list[str]:
    """:func:`page_trial_ids` and the registry numbers of the page's reference addresses."""
    ids = page_trial_ids(doc)
    for ref in doc.references:
        target = url_target(ref.url)
        if target is not None and target[0] != "cteu" and target[1] not in ids:
            ids.append(target[1])
    return ids


_DIGITS = re.compile(r"(\d+)")


@lru_cache(maxsize=1 << 14)
def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    # Cached: every page has claim ids c001, table:1:phase ... of the same few hundred shapes.
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(text) if part)


def row_order(row: ReconciliationRow) -> tuple:
    """Sort key: claim id (numbers in it by value), field, registry, then trial and rule."""
    return (_natural(row.claim_id), row.field, row.registry or "", row.trial_id or "", row.rule)


def reconcile_document(
    doc: ExtractedDocument, records: Sequence[LoadedRecord], links: Sequence[TrialLink]
) -> list[ReconciliationRow]:
    """Compare every stated fact of ``doc`` with the registry records.

    Args:
        doc: the page's extracted facts.
        records: every parsed record, with the manifest entry of its snapshot.
        links: cross-registry links (confirmed or candidate).

    Returns:
        One row per comparison, sorted by claim id, field and registry (then trial id and rule);
        no two rows share (claim id, trial id, field, registry, rule).
    """
    return reconcile_page(doc, RunRecords(records, links).for_page(doc))


class RunRecords:
    """The records and links of one run with their indexes, built once and shared by every page."""

    def __init__(self, records: Sequence[LoadedRecord], links: Sequence[TrialLink]) -> None:
        self.lookup = RecordLookup(records, links)
        self.titles = TitleIndex(self.lookup.records)
        # clinicaltrials.eu pages by the slugs a reference may name them by (see references._cteu_row)
        self._cteu: dict[str, list[LoadedRecord]] = {}
        for loaded in self.lookup.records:
            key = loaded.key  # the index is built from keys: no record is validated for it
            if key.registry == "cteu":
                slugs = {cteu_slug(loaded.entry.url), key.trial_id, *(cteu_slug(other) for other in key.other_ids)}
                for slug in slugs - {None}:
                    self._cteu.setdefault(slug, []).append(loaded)  # type: ignore[arg-type]

    def for_page(self, doc: ExtractedDocument) -> PageRecords:
        """What ``doc`` can ask about: the records and links its numbers and its references'
        addresses reach, and, for each ongoing entry it does not number, the store's records
        most like its title (:meth:`TitleIndex.shortlist`) with what their numbers reach.

        For every question the page asks, an index of these answers as one of the whole store.
        """
        drop = drug_pattern(_drug(doc))
        ids = page_numbers(doc)
        pages = [p for ref in doc.references if (t := url_target(ref.url)) and t[0] == "cteu"
                 for p in self._cteu.get(t[1], [])]
        for entry in doc.ongoing:
            if not entry.trial_id:
                pages += (shortlist := self.titles.shortlist(entry.title, drop))
                ids += [loaded.key.trial_id for loaded in shortlist]
        found = {id(loaded): loaded for loaded in [*self.lookup.reaching(ids), *pages]}
        return PageRecords(sorted(found.values(), key=self.lookup.position), self.lookup.links_of(ids))


@dataclass(frozen=True)
class PageRecords:
    """The records and links one page needs (:meth:`RunRecords.for_page`), in the run's order:
    small enough to send with the page to a worker."""

    records: list[LoadedRecord]
    links: list[TrialLink]
    _resolved: dict[tuple[str, str], dict[int, Resolution]] = field(default_factory=dict, compare=False, repr=False)

    def ongoing(self, doc: ExtractedDocument, index: RecordIndex | None = None) -> dict[int, Resolution]:
        """How each of ``doc``'s ongoing entries resolves against these records, by position:
        worked out once per page, though its comparisons and its trials both ask (scoring every
        entry against every candidate title was the larger part of a site's reconciliation).

        ``index``: a :class:`RecordIndex` over these records and links, when the caller has one.
        """
        key = (doc.document.document_id, doc.document.sha256)
        if key not in self._resolved:
            index = index or RecordIndex(self.records, self.links)
            self._resolved[key] = resolve_ongoing(doc, index, page_trial_ids(doc), drug_pattern(_drug(doc)))
        return self._resolved[key]


def _drug(doc: ExtractedDocument) -> str:
    return doc.document.title.strip() or doc.document.document_id


def reconcile_page(doc: ExtractedDocument, page: PageRecords) -> list[ReconciliationRow]:
    """:func:`reconcile_document` against only the records the page needs (:meth:`RunRecords.for_page`):
    the same rows, in time that does not grow with the store."""
    index = RecordIndex(page.records, page.links)
    drug = _drug(doc)
    drug_re = drug_pattern(drug)
    page_ids = page_trial_ids(doc)
    resolutions = page.ongoing(doc, index)
    rows = [
        *table_rows(doc, index),
        *claim_rows(doc, index, drug, drug_re),
        *ongoing_rows(doc, index, resolutions),
        *reference_rows(doc, index),
        *self_rows(doc, index, resolutions, drug_re),
        *cross_rows(doc.document.document_id, page_ids, index),
    ]
    unique: dict[tuple, ReconciliationRow] = {}
    for row in rows:
        unique.setdefault((row.claim_id, row.trial_id, row.field, row.registry, row.rule), row)
    return sorted(unique.values(), key=row_order)
