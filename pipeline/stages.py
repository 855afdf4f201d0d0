"""The pipeline's steps as plain functions: data in, data out. ``flows.py`` wraps each in a task.

    documents --extract--> ExtractedDocument ─┐
    snapshots --parse----> TrialRecord ───────┼─reconcile─> ReconciliationRow ─┐
    snapshots/links.json -> TrialLink ────────┘                               ├─build_batch─> write_outputs
    snapshots/manifest.json ──────────────────────────────────────────────────┘
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from pipeline.dataset import LoadError
from pipeline.errors import InputError, SnapshotError
from pipeline.extract import extract_document, read_document
from pipeline.models import ExtractedDocument, ReconciliationRow, SnapshotEntry, TrialLink, TrialRecord
from pipeline.snapshots import SnapshotStore

REGISTRIES = ("ctgov", "ctis", "euctr", "cteu")
LINKS_NAME = "links.json"

_links_adapter = TypeAdapter(list[TrialLink])


@dataclass(frozen=True)
class DocumentSource:
    """A document to extract: its file and the URL it was captured from."""

    path: Path
    source_url: str


@dataclass
class RecordSet:
    """Every registry record the snapshot store yields, and the snapshots it could not use."""

    records: list[tuple[TrialRecord, SnapshotEntry]] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    links: list[TrialLink] = field(default_factory=list)

    def ids(self) -> set[str]:
        return {r.trial_id for r, _ in self.records}


def default_documents(store: SnapshotStore) -> list[DocumentSource]:
    """The documents embedded in the snapshot store (the Aldesleukin page by default)."""
    return [
        DocumentSource(store.path_of(e), e.url) for e in store.entries() if e.registry == "document"
    ]


def document_source(path: Path, store: SnapshotStore) -> DocumentSource:
    """A document given on the command line; its URL comes from the manifest when it is stored there."""
    resolved = path.resolve()
    for entry in store.entries():
        if entry.registry == "document" and store.path_of(entry).resolve() == resolved:
            return DocumentSource(path, entry.url)
    return DocumentSource(path, resolved.as_uri())


def extract_documents(sources: Sequence[DocumentSource], now: datetime | None = None) -> list[ExtractedDocument]:
    """Read and extract every document.

    Raises:
        DocumentError: a document is missing, empty, binary or has no summary table.
    """
    extracted_at = now or datetime.now(UTC)
    docs = []
    for source in sources:
        text, sha = read_document(source.path)
        docs.append(
            extract_document(
                text, source_url=source.source_url, sha256=sha, extracted_at=extracted_at, path=str(source.path)
            )
        )
    return docs


def load_links(store: SnapshotStore) -> list[TrialLink]:
    """Cross-registry links kept beside the snapshots (none when the file is absent).

    Raises:
        SnapshotError: the links file is not a valid list of links.
    """
    path = store.root / LINKS_NAME
    if not path.exists():
        return []
    try:
        return _links_adapter.validate_json(path.read_bytes())
    except (ValidationError, json.JSONDecodeError) as exc:
        raise SnapshotError(path, f"not a valid list of trial links: {exc}") from exc


def parse_entry(store: SnapshotStore, entry: SnapshotEntry) -> list[TrialRecord]:
    """Read (checking its sha256) and parse one snapshot."""
    from pipeline.registries import parse_snapshot

    data = store.read(entry)
    return parse_snapshot(data, path=entry.path, registry=entry.registry)  # type: ignore[arg-type]


def load_records(store: SnapshotStore) -> RecordSet:
    """Parse every registry snapshot in the store; a bad snapshot becomes a LoadError, not a failure."""
    result = RecordSet(links=load_links(store))
    for entry in store.entries():
        if entry.registry not in REGISTRIES:
            continue
        try:
            for record in parse_entry(store, entry):
                result.records.append((record, entry))
        except SnapshotError as exc:
            result.errors.append(LoadError(entry.path, entry.registry, entry.trial_id, exc.problem))
    return result


def reconcile_documents(docs: Sequence[ExtractedDocument], records: RecordSet) -> list[ReconciliationRow]:
    """Every stated fact of every document against the registry records."""
    from pipeline.reconcile import LoadedRecord, reconcile_document

    loaded = [LoadedRecord(record=r, entry=e) for r, e in records.records]
    rows: list[ReconciliationRow] = []
    for doc in docs:
        rows.extend(reconcile_document(doc, loaded, records.links))
    return rows


def trials_without_records(docs: Sequence[ExtractedDocument], records: RecordSet) -> list[str]:
    """Trial ids stated by the documents that no snapshot (by id or by a link) gives a record for."""
    have = records.ids()
    linked = {link.trial_id for link in records.links if link.other_id in have}
    stated = {t.trial_id for d in docs for t in d.trials} | {i for d in docs for c in d.claims for i in c.trial_ids}
    return sorted(stated - have - linked)


__all__ = [
    "DocumentSource",
    "InputError",
    "RecordSet",
    "default_documents",
    "document_source",
    "extract_documents",
    "load_records",
    "reconcile_documents",
    "trials_without_records",
]
