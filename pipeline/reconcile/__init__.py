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

from pipeline.models import ExtractedDocument, ReconciliationRow, TrialLink
from pipeline.reconcile.claims import claim_rows, table_rows
from pipeline.reconcile.consistency import cross_rows, self_rows
from pipeline.reconcile.ongoing import ongoing_rows, resolve_ongoing
from pipeline.reconcile.records import LoadedRecord, RecordIndex
from pipeline.reconcile.references import reference_rows
from pipeline.reconcile.rules import compare_status, status_compatibility_rows
from pipeline.reconcile.terms import drug_pattern

__all__ = [
    "LoadedRecord",
    "compare_status",
    "page_trial_ids",
    "reconcile_document",
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


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)


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
    index = RecordIndex(records, links)
    drug = doc.document.title.strip() or doc.document.document_id
    drug_re = drug_pattern(drug)
    page_ids = page_trial_ids(doc)
    resolutions = resolve_ongoing(doc, index, page_ids, drug_re)
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
