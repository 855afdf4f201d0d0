"""Domain records -> output rows (pure): which record fills which table, and the values no record
holds. Which field fills which column is declared with the tables (``Table.row`` reads it)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.load.incremental import OUTCOMES, code_version, parser_version, records_json
from pipeline.load.writer import Batch, HistoryFromRows
from pipeline.models import (
    ExtractedDocument,
    ReconciliationRow,
    SnapshotEntry,
    TrialLink,
    TrialRecord,
)
from pipeline.reconcile.entities import PageTrials, ongoing_country_codes, statement
from pipeline.load.tables import (
    DOCUMENT_TABLES,
    LINKS_TABLE,
    PAGE_TRIAL_TABLES,
    RECONCILIATION_TABLE,
    SNAPSHOTS_TABLE,
    TABLES_BY_NAME,
    TRIAL_TABLES,
    Row,
)
from pipeline.registries.vocab import country_name


@dataclass(frozen=True)
class LoadError:
    """A snapshot (or document) that could not be used, and why."""

    snapshot: str
    registry: str | None
    trial_id: str | None
    error: str


@dataclass
class IngestCounts:
    """Studies read, records loaded (a trial given twice counts twice), their bytes, and the load errors."""

    studies: int = 0
    records: int = 0
    bytes_read: int = 0
    errors: list[LoadError] = field(default_factory=list)

    def add(self, other: IngestCounts) -> None:
        """Add ``other``'s counts and errors to these."""
        self.studies += other.studies
        self.records += other.records
        self.bytes_read += other.bytes_read
        self.errors.extend(other.errors)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started_at: datetime
    finished_at: datetime


def ongoing_rows(doc: ExtractedDocument, trials: PageTrials | None = None) -> list[Row]:
    """The ``document_ongoing`` rows: each entry as stated, with the trial it resolved to."""
    resolved = {o.position: o for o in trials.ongoing} if trials else {}
    rows = []
    for entry in doc.ongoing:
        row = TABLES_BY_NAME["document_ongoing"].row(entry, country_codes=ongoing_country_codes(entry))
        if (r := resolved.get(entry.position)) is not None:
            row.update(trial_id=r.trial_id, trial_id_source=r.trial_id_source, resolve_score=r.score,
                       unresolved_reason=r.unresolved_reason)
        elif entry.trial_id:
            row["trial_id_source"] = "page"
        rows.append(row)
    return rows


def document_rows(doc: ExtractedDocument, trials: PageTrials | None = None) -> dict[str, list[Row]]:
    """The rows of every document_* table for one extracted document (the ongoing entries with the
    trials they resolved to, when ``trials`` is given)."""
    return {
        "documents": [TABLES_BY_NAME["documents"].row(doc.document)],
        "document_trials": [TABLES_BY_NAME["document_trials"].row(t) for t in doc.trials],
        "document_claims": [TABLES_BY_NAME["document_claims"].row(c) for c in doc.claims],
        "document_ongoing": ongoing_rows(doc, trials),
        "document_references": [TABLES_BY_NAME["document_references"].row(r) for r in doc.references],
        "document_glossary": [TABLES_BY_NAME["document_glossary"].row(g) for g in doc.glossary],
    }


def trial_row(record: TrialRecord, entry: SnapshotEntry) -> Row:
    """The ``trials`` row of one registry record, with the snapshot it was parsed from."""
    return TABLES_BY_NAME["trials"].row(
        record, snapshot_path=entry.path, snapshot_sha256=entry.sha256, provenance=entry.provenance)


def enrollment_rows(record: TrialRecord) -> list[Row]:
    """The record's headline enrollment and every figure it gives at another scope."""
    key: Row = {"trial_id": record.trial_id, "registry": record.registry}
    rows: list[Row] = []
    if record.enrollment is not None:
        rows.append({**key, "scope": record.enrollment_scope, "country": None, "country_name": None,
                     "enrollment": record.enrollment, "enrollment_type": record.enrollment_type, "headline": True,
                     "field_path": record.field_paths.get("enrollment")})
    for figure in record.enrollment_figures:
        if figure.country is None and figure.scope == record.enrollment_scope and figure.figure == record.enrollment:
            continue  # the headline figure, given again at its own scope
        rows.append(TABLES_BY_NAME["trial_enrollments"].row(
            figure, **key, country_name=country_name(figure.country), headline=False))
    return rows


def record_rows(record: TrialRecord, entry: SnapshotEntry) -> dict[str, list[Row]]:
    """The rows of every trial_* table for one registry record."""
    key: Row = {"trial_id": record.trial_id, "registry": record.registry}
    return {
        "trials": [trial_row(record, entry)],
        "trial_conditions": [{**key, "condition": c} for c in record.conditions],
        "trial_interventions": [TABLES_BY_NAME["trial_interventions"].row(i, **key) for i in record.interventions],
        "trial_outcomes": [TABLES_BY_NAME["trial_outcomes"].row(o, **key) for o in record.outcomes],
        "trial_countries": [{**key, "country": c, "country_name": country_name(c)} for c in record.countries],
        "trial_enrollments": enrollment_rows(record),
        "trial_identifiers": [TABLES_BY_NAME["trial_identifiers"].row(i, **key) for i in record.identifiers],
    }


def reconciliation_row(row: ReconciliationRow, statement: str | None, run_id: str) -> Row:
    """The ``reconciliation`` row of one comparison, with the page's words it rests on, written by ``run_id``."""
    return RECONCILIATION_TABLE.row(row, comparison=row.comparison, statement=statement, run_id=run_id)


def _stamp(rows: Iterable[Row], run_id: str) -> list[Row]:
    return [{**r, "run_id": run_id} for r in rows]


HISTORY_FIELDS = (
    "title", "sponsor", "phases", "status", "status_normalized", "enrollment", "enrollment_type",
    "enrollment_scope", "start_date", "completion_date", "last_updated",
)


def history_rows(
    record: TrialRecord, entry: SnapshotEntry, observed_at: datetime, trial: Row | None = None
) -> list[Row]:
    """The current value of each tracked field of a record, for ``trial_history``.

    Args:
        trial: the record's ``trials`` row when the caller has built it already (the values
            are read from it, so history and the trials table cannot disagree).
    """
    if trial is None:
        trial = trial_row(record, entry)
    rows: list[Row] = []
    for name in HISTORY_FIELDS:
        value = trial[name]
        text = None if value is None else (json.dumps(value) if isinstance(value, list) else str(value))
        rows.append({
            "trial_id": record.trial_id, "registry": record.registry, "field": name, "value": text,
            "valid_from": entry.fetched_at or observed_at, "snapshot_sha256": entry.sha256,
        })
    for name, values in (("conditions", record.conditions), ("countries", record.countries)):
        rows.append({
            "trial_id": record.trial_id, "registry": record.registry, "field": name,
            "value": json.dumps(sorted(values)), "valid_from": entry.fetched_at or observed_at,
            "snapshot_sha256": entry.sha256,
        })
    return rows


STREAM_CHUNK = 2_000
"""Records (or comparisons, ten times as many) turned into rows at a time when a batch is written."""


@dataclass(frozen=True)
class RecordRows:
    """The ``trial_*`` rows and ``trial_history`` values of registry records, made a chunk at a
    time as the batch is written (a :class:`~pipeline.load.writer.RowStream`)."""

    records: list[tuple[TrialRecord, SnapshotEntry]]
    run_id: str
    observed_at: datetime

    @property
    def tables(self) -> frozenset[str]:
        return frozenset({t.name for t in TRIAL_TABLES} | {"trial_history"}) if self.records else frozenset()

    def chunks(self) -> Iterator[dict[str, list[Row]]]:
        for start in range(0, len(self.records), STREAM_CHUNK):
            chunk: dict[str, list[Row]] = {}
            for record, entry in self.records[start:start + STREAM_CHUNK]:
                tables = record_rows(record, entry)
                [trial] = tables["trials"]
                tables["trial_history"] = history_rows(record, entry, self.observed_at, trial)
                for table, rows in tables.items():
                    for row in rows:  # fresh from record_rows: stamped in place, copying is the hot path
                        row["run_id"] = self.run_id
                    chunk.setdefault(table, []).extend(rows)
            yield chunk


@dataclass(frozen=True)
class ComparisonRows:
    """The ``reconciliation`` rows of a run's comparisons (with the page's words each rests on),
    made a chunk at a time as the batch is written (a :class:`~pipeline.load.writer.RowStream`).
    Their ``reconciliation_history`` values are read back from those rows (:meth:`history`)."""

    comparisons: list[ReconciliationRow]
    documents: list[ExtractedDocument]
    run_id: str
    observed_at: datetime

    @property
    def tables(self) -> frozenset[str]:
        return frozenset({"reconciliation"}) if self.comparisons else frozenset()

    def chunks(self) -> Iterator[dict[str, list[Row]]]:
        by_doc = {d.document.document_id: d for d in self.documents}

        def said(row: ReconciliationRow) -> str | None:
            doc = by_doc.get(row.document_id)
            return statement(doc, row.claim_id) if doc is not None else None

        size = STREAM_CHUNK * 10
        run_id = self.run_id
        # Each row is made with its run id: a site's 300,000 comparisons were copied to add it.
        for start in range(0, len(self.comparisons), size):
            yield {"reconciliation": [reconciliation_row(r, said(r), run_id) for r in self.comparisons[start:start + size]]}

    def history(self) -> dict[str, HistoryFromRows]:
        """Where the comparisons' ``reconciliation_history`` values are read from: the
        ``reconciliation`` rows of this run, each observed when the run started."""
        if not self.comparisons:
            return {}
        return {"reconciliation_history": HistoryFromRows("reconciliation", self.run_id, self.observed_at)}


@dataclass(frozen=True)
class RecordCacheRows:
    """The ``record_cache`` rows of the snapshots a run parsed, their records' JSON made a chunk
    at a time as the batch is written (a site's cache is hundreds of megabytes of JSON)."""

    snapshots: list[tuple[SnapshotEntry, Sequence[TrialRecord]]]
    run_id: str

    @property
    def tables(self) -> frozenset[str]:
        return frozenset({"record_cache"}) if self.snapshots else frozenset()

    def chunks(self) -> Iterator[dict[str, list[Row]]]:
        version = parser_version()
        for start in range(0, len(self.snapshots), STREAM_CHUNK):
            yield {"record_cache": [
                {"snapshot_path": e.path, "sha256": e.sha256, "records_json": records_json(records),
                 "parser_version": version, "run_id": self.run_id}
                for e, records in self.snapshots[start:start + STREAM_CHUNK]]}


@dataclass(frozen=True)
class RunSummaryCounts:
    """Per-registry snapshot outcomes of one run (new, changed, unchanged, failed, removed)."""

    by_registry: dict[str, Counter[str]]

    def rows(self, run_id: str) -> list[Row]:
        return [
            {"registry": reg, **{k: c.get(k, 0) for k in OUTCOMES}, "run_id": run_id}
            for reg, c in sorted(self.by_registry.items())
        ]


def run_row(
    run: RunInfo, *, documents: int, records: int, load_errors: int, rows: Sequence[ReconciliationRow] | None,
    parsed: int, reused: int, work_done: bool, fingerprint: str, snapshots_fingerprint: str | None = None,
) -> Row:
    """The ``pipeline_runs`` row of one run."""
    return {
        "run_id": run.run_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "status": "partial" if load_errors else "complete",
        "documents": documents,
        "records": records,
        "load_errors": load_errors,
        "reconciliation_rows": None if rows is None else len(rows),
        "mismatches": None if rows is None else sum(1 for r in rows if r.verdict in ("mismatch", "partial")),
        "parsed": parsed,
        "reused": reused,
        "work_done": work_done,
        "fingerprint": fingerprint,
        "snapshots_fingerprint": snapshots_fingerprint,
    }


def build_batch(
    run: RunInfo,
    documents: Sequence[ExtractedDocument],
    records: Sequence[tuple[TrialRecord, SnapshotEntry]],
    manifest: Sequence[SnapshotEntry],
    links: Sequence[TrialLink],
    reconciliation: Sequence[ReconciliationRow],
    load_errors: Sequence[LoadError],
    *,
    removed_records: Sequence[tuple[str, str]] = (),
    removed_snapshots: Sequence[str] = (),
    record_cache: Sequence[tuple[SnapshotEntry, Sequence[TrialRecord]]] = (),
    record_keys: Sequence[tuple[SnapshotEntry, str]] = (),
    run_rows: Sequence[Row] = (),
    count_rows: Sequence[Row] = (),
    file_stats: Mapping[str, tuple[int, int]] | None = None,
    page_basis: Sequence[Row] = (),
    trials: Sequence[PageTrials] = (),
    snapshots_unchanged: bool = False,
) -> Batch:
    """Everything one run writes, with the units it replaces.

    Args:
        records: the records to (re)load: those of new or changed snapshots.
        removed_records: (registry, trial_id) of records whose snapshot is gone: their rows go.
        removed_snapshots: paths whose cached records go.
        record_cache: (entry, its records) for every snapshot parsed in this run: their JSON is
            made as the batch is written.
        record_keys: (entry, keys JSON) for every snapshot whose records' keys this run computed.
        file_stats: path -> (size, mtime_ns) of each snapshot file this run verified.
        page_basis: the ``document_basis`` rows of the documents reconciled in this run.
        trials: each document's trials as entities (page_trials, page_trial_ids, and the trial each
            ongoing entry resolved to), in the order of ``documents``.
        snapshots_unchanged: the manifest, the files' sizes and times and the links are those the
            ``snapshots`` and ``trial_links`` tables were written from: both are left as they are.

    Documents and registry records replace their own earlier rows; the manifest and the links
    are full state and replace their tables whole (unless ``snapshots_unchanged``); history
    tables keep every value; load errors and the run rows are appended.
    """
    batch = Batch()
    doc_keys = [(d.document.document_id,) for d in documents]
    for table in DOCUMENT_TABLES:
        batch.replace_keys(table.name, doc_keys)
    batch.replace_keys("reconciliation", doc_keys)
    batch.replace_keys("document_basis", doc_keys)
    batch.add("document_basis", _stamp(page_basis, run.run_id))
    for table in PAGE_TRIAL_TABLES:
        batch.replace_keys(table.name, doc_keys)
    entities = {t.document_id: t for t in trials}
    for doc in documents:
        described = entities.get(doc.document.document_id)
        for table, rows in document_rows(doc, described).items():
            batch.add(table, _stamp(rows, run.run_id))
        if described is not None:
            batch.add("page_trials", _stamp((vars(t) for t in described.trials), run.run_id))
            batch.add("page_trial_ids", _stamp((vars(i) for i in described.identities), run.run_id))

    rec_keys = [(r.registry, r.trial_id) for r, _ in records] + list(removed_records)
    for table in TRIAL_TABLES:
        batch.replace_keys(table.name, rec_keys)
    batch.streams.append(RecordRows(list(records), run.run_id, run.started_at))

    batch.replace_keys("record_cache", [(p,) for p in removed_snapshots] + [(e.path,) for e, _ in record_cache])
    batch.streams.append(RecordCacheRows(list(record_cache), run.run_id))
    batch.replace_keys("record_keys", [(p,) for p in removed_snapshots] + [(e.path,) for e, _ in record_keys])
    batch.add("record_keys", [
        {"snapshot_path": e.path, "sha256": e.sha256, "keys_json": j, "key_version": code_version(), "run_id": run.run_id}
        for e, j in record_keys])

    if not snapshots_unchanged:
        batch.truncate |= {"snapshots", "trial_links"}
        stats = file_stats or {}
        batch.add("snapshots", _stamp((
            SNAPSHOTS_TABLE.row(e, **dict(zip(("file_size", "file_mtime_ns"), stats.get(e.path, (None, None)), strict=True)))
            for e in manifest), run.run_id))
        batch.add("trial_links", _stamp((LINKS_TABLE.row(link) for link in links), run.run_id))
    comparisons = ComparisonRows(list(reconciliation), list(documents), run.run_id, run.started_at)
    batch.streams.append(comparisons)
    batch.history_from.update(comparisons.history())
    batch.add("load_errors", _stamp((vars(e) for e in load_errors), run.run_id))
    batch.add("pipeline_runs", list(run_rows))
    batch.add("run_registry_counts", list(count_rows))
    return batch
