"""Domain records -> output rows (pure): the one place that knows how models map onto tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pipeline.load import Batch
from pipeline.models import (
    ExtractedDocument,
    PartialDate,
    ReconciliationRow,
    SnapshotEntry,
    TrialLink,
    TrialRecord,
)
from pipeline.tables import DOCUMENT_TABLES, TRIAL_TABLES

Row = dict[str, object]


@dataclass(frozen=True)
class LoadError:
    """A snapshot (or document) that could not be used, and why."""

    snapshot: str
    registry: str | None
    trial_id: str | None
    error: str


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started_at: datetime
    finished_at: datetime


def document_rows(doc: ExtractedDocument) -> dict[str, list[Row]]:
    """The rows of every document_* table for one extracted document."""
    d = doc.document
    return {
        "documents": [d.model_dump()],
        "document_trials": [t.model_dump() for t in doc.trials],
        "document_claims": [c.model_dump() for c in doc.claims],
        "document_ongoing": [o.model_dump() for o in doc.ongoing],
        "document_references": [r.model_dump() for r in doc.references],
        "document_glossary": [g.model_dump() for g in doc.glossary],
    }


def _date(value: PartialDate | None) -> tuple[str | None, str | None]:
    return (value.value, value.precision) if value else (None, None)


def record_rows(record: TrialRecord, entry: SnapshotEntry) -> dict[str, list[Row]]:
    """The rows of every trial_* table for one registry record."""
    key: Row = {"trial_id": record.trial_id, "registry": record.registry}
    start, start_p = _date(record.start_date)
    done, done_p = _date(record.completion_date)
    updated, _ = _date(record.last_updated)
    return {
        "trials": [{
            **key,
            "title": record.title,
            "official_title": record.official_title,
            "sponsor": record.sponsor,
            "phases": [p.value for p in record.phases],
            "phase_raw": record.phase_raw,
            "status": record.status_raw,
            "status_normalized": record.status.value if record.status else None,
            "enrollment": record.enrollment,
            "enrollment_type": record.enrollment_type,
            "enrollment_scope": record.enrollment_scope,
            "start_date": start,
            "start_date_precision": start_p,
            "completion_date": done,
            "completion_date_precision": done_p,
            "last_updated": updated,
            "study_type": record.design.study_type,
            "allocation": record.design.allocation,
            "masking": record.design.masking,
            "age_groups": list(record.age_groups),
            "snapshot_path": entry.path,
            "snapshot_sha256": entry.sha256,
            "provenance": entry.provenance,
        }],
        "trial_conditions": [{**key, "condition": c} for c in record.conditions],
        "trial_interventions": [
            {**key, "type": i.type, "name": i.name, "other_names": list(i.other_names)}
            for i in record.interventions
        ],
        "trial_outcomes": [
            {**key, "kind": o.kind, "measure": o.measure, "time_frame": o.time_frame} for o in record.outcomes
        ],
        "trial_countries": [{**key, "country": c} for c in record.countries],
        "trial_identifiers": [
            {**key, "other_id": i.other_id, "id_type": i.id_type} for i in record.identifiers
        ],
    }


def reconciliation_row(row: ReconciliationRow) -> Row:
    ev = row.evidence
    return {
        "document_id": row.document_id,
        "claim_id": row.claim_id,
        "trial_id": row.trial_id,
        "field": row.field,
        "stated_value": row.stated_value,
        "registry_value": row.registry_value,
        "registry": row.registry,
        "verdict": row.verdict,
        "rule": row.rule,
        "detail": row.detail,
        "score": row.score,
        "evidence_snapshot": ev.snapshot_path,
        "evidence_sha256": ev.snapshot_sha256,
        "evidence_provenance": ev.provenance,
        "evidence_record": ev.registry_trial_id,
        "evidence_field_path": ev.field_path,
        "evidence_link": ev.link,
    }


def _stamp(rows: Iterable[Row], run_id: str) -> list[Row]:
    return [{**r, "run_id": run_id} for r in rows]


def build_batch(
    run: RunInfo,
    documents: Sequence[ExtractedDocument],
    records: Sequence[tuple[TrialRecord, SnapshotEntry]],
    manifest: Sequence[SnapshotEntry],
    links: Sequence[TrialLink],
    reconciliation: Sequence[ReconciliationRow],
    load_errors: Sequence[LoadError],
) -> Batch:
    """Everything one run writes, with the units it replaces.

    Documents and registry records replace their own earlier rows; the manifest and the links
    are full state and replace their tables whole; load errors and the run row are appended.
    """
    batch = Batch()
    doc_keys = [(d.document.document_id,) for d in documents]
    for table in DOCUMENT_TABLES:
        batch.replace_keys(table.name, doc_keys)
    batch.replace_keys("reconciliation", doc_keys)
    for doc in documents:
        for table, rows in document_rows(doc).items():
            batch.add(table, _stamp(rows, run.run_id))

    rec_keys = [(r.registry, r.trial_id) for r, _ in records]
    for table in TRIAL_TABLES:
        batch.replace_keys(table.name, rec_keys)
    for record, entry in records:
        for table, rows in record_rows(record, entry).items():
            batch.add(table, _stamp(rows, run.run_id))

    batch.truncate |= {"snapshots", "trial_links"}
    batch.add("snapshots", _stamp((e.model_dump(exclude={"content_type"}) for e in manifest), run.run_id))
    batch.add("trial_links", _stamp((link.model_dump() for link in links), run.run_id))
    batch.add("reconciliation", _stamp((reconciliation_row(r) for r in reconciliation), run.run_id))
    batch.add("load_errors", _stamp((vars(e) for e in load_errors), run.run_id))
    mismatches = sum(1 for r in reconciliation if r.verdict in ("mismatch", "partial"))
    batch.add("pipeline_runs", [{
        "run_id": run.run_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "status": "partial" if load_errors else "complete",
        "documents": len(documents),
        "records": len(records),
        "load_errors": len(load_errors),
        "reconciliation_rows": len(reconciliation),
        "mismatches": mismatches,
    }])
    return batch
