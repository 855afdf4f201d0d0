"""The pipeline's steps as plain functions: data in, data out. :mod:`pipeline.run` runs them in
their order (for the flow, ``check`` and the bench); the flow wraps each in a task.

    documents --extract--> ExtractedDocument ─┐
    snapshots --parse----> TrialRecord ───────┼─reconcile─> ReconciliationRow ─┐
    snapshots/links.json -> TrialLink ────────┘                               ├─build_batch─> write_outputs
    snapshots/manifest.json ──────────────────────────────────────────────────┘
"""

from __future__ import annotations

import gc
import os
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

import duckdb
from pydantic import TypeAdapter, ValidationError

from pipeline.constants import REGISTRIES, TRIAL_REGISTRIES
from pipeline.ids import canonical_trial_id, registry_of
from pipeline.load.rows import LoadError, RunInfo, RunSummaryCounts, build_batch, run_row
from pipeline.load.writer import Batch
from pipeline.errors import DocumentError, SnapshotError, UnsafePathError, validation_problem
from pipeline.extract import extract_document, read_document
from pipeline.load.incremental import (
    CachedJSON,
    PageBasis,
    PreviousState,
    classify,
    code_version,
    fingerprints,
    load_cached,
    records_from_json,
    registry_counts,
    sha_key,
)
from pipeline.models import (
    ExtractedDocument, MissingRecord, ReconciliationRow, SharedParts, SnapshotEntry, TrialLink, TrialRecord,
)
from pipeline.orchestrate.progress import NoProgress, Progress
from pipeline.store.snapshots import SnapshotStore, atomic_write_bytes, replace_files, sha256_bytes

if TYPE_CHECKING:
    from pipeline.reconcile import PageRecords, RunRecords
    from pipeline.reconcile.records import LazyRecord, LoadedRecord
    from pipeline.outputs.baseline import AcceptedDiscrepancy, CheckResult
    from pipeline.reconcile.entities import PageTrials
    from pipeline.outputs.report import ReportContext

T = TypeVar("T")

LINKS_NAME = "links.json"
MISSING_NAME = "missing_records.json"

_links_adapter = TypeAdapter(list[TrialLink])
_missing_adapter = TypeAdapter(list[MissingRecord])


@dataclass(frozen=True)
class DocumentSource:
    """A document to extract: its file and the URL it was captured from."""

    path: Path
    source_url: str


@dataclass(frozen=True)
class Page:
    """A document as a run read it, once: its text and sha256, and its extracted facts when they
    were extracted already (the CLI extracts every page before a run, to refuse a bad one).

    ``key`` is what a run knows the page by from one run to the next: its bytes and its URL (the
    same text from another URL is another page).
    """

    source: DocumentSource
    text: str
    sha256: str
    extracted: ExtractedDocument | None = None

    @property
    def key(self) -> str:
        return f"{self.sha256} {self.source.source_url}"


@dataclass
class RecordSet:
    """Every registry record the snapshot store yields, and the snapshots it could not use.

    ``loaded`` holds all of them, each with its snapshot's entry (reconciliation may reach any);
    those reused from an earlier run are held by their keys and validated only when used (see
    :class:`~pipeline.reconcile.records.LazyRecord`). ``parsed``: the paths parsed in this run
    (new or changed snapshots: only their records are loaded again).
    """

    loaded: list[LoadedRecord] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    links: list[TrialLink] = field(default_factory=list)
    missing: list[MissingRecord] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)  # snapshot path -> new/changed/unchanged/failed
    parsed: set[str] = field(default_factory=set)
    # snapshot path -> every record it gave, a duplicate left out of ``loaded`` included (the cache)
    by_path: dict[str, list[LazyRecord]] = field(default_factory=dict)
    # paths whose records' keys this run computed (parsed, or cached without keys): their keys are stored
    keyed: set[str] = field(default_factory=set)
    # the studies ``ingest`` loaded whose records the run used (their rows are ingest's: not loaded again)
    ingested: list[SnapshotEntry] = field(default_factory=list)
    # (registry, number) of records a snapshot gives that had ingest's rows: the snapshot's are loaded again
    relanded: set[tuple[str, str]] = field(default_factory=set)
    _index: RunRecords | None = field(default=None, repr=False, compare=False)

    @property
    def records(self) -> list[tuple[TrialRecord, SnapshotEntry]]:
        """Every record, whole, with its snapshot's entry: each one reused from the cache is
        validated, so a run asks only for those it needs (:meth:`run_records`)."""
        return [(loaded.record, loaded.entry) for loaded in self.loaded]

    def ids(self) -> set[str]:
        return {loaded.key.trial_id for loaded in self.loaded}

    def run_records(self) -> RunRecords:
        """The records and links indexed once for the run (:class:`~pipeline.reconcile.RunRecords`),
        from their keys, shared by every step that asks for pages' records (reconciliation, the
        pages' trials, the report)."""
        from pipeline.reconcile import RunRecords

        if self._index is None:
            self._index = RunRecords(self.loaded, self.links)
        return self._index

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_index": None}  # rebuilt where needed, never sent to a worker

    def ingested_records(self) -> list[LoadedRecord]:
        """The records of :attr:`loaded` that ``ingest`` loaded."""
        paths = {entry.path for entry in self.ingested}
        return [loaded for loaded in self.loaded if loaded.entry.path in paths]

    def fresh(self) -> set[str]:
        """Paths whose records are (re)loaded and cached under their path: those parsed in this
        run and the new or changed ones whose bytes were parsed before (at another path)."""
        return self.parsed | {path for path, outcome in self.outcomes.items() if outcome in ("new", "changed")}

    def to_load(self) -> list[tuple[TrialRecord, SnapshotEntry]]:
        """Records from snapshots parsed in this run, or new or changed since the last, and those
        whose trial's rows were an ingested record's: the tables hold the records reconciliation
        used. An ingested record's own rows are ingest's, written already."""
        fresh = self.fresh() - {entry.path for entry in self.ingested}
        return [(loaded.record, loaded.entry) for loaded in self.loaded
                if loaded.entry.path in fresh or (loaded.key.registry, loaded.key.trial_id) in self.relanded]


def default_documents(store: SnapshotStore) -> list[DocumentSource]:
    """The documents embedded in the snapshot store (the Aldesleukin page by default)."""
    return [
        DocumentSource(store.path_of(e), e.url) for e in store.entries() if e.registry == "document"
    ]


def document_source(path: Path, store: SnapshotStore) -> DocumentSource:
    """A document given on the command line; its URL comes from the manifest when it is stored there."""
    return _source(path, _stored_documents(store))


def _stored_documents(store: SnapshotStore) -> dict[Path, str]:
    """Resolved path -> URL of every document in the store's manifest."""
    return {store.path_of(e).resolve(): e.url for e in store.entries() if e.registry == "document"}


def _source(path: Path, stored: dict[Path, str], resolved: Path | None = None) -> DocumentSource:
    resolved = resolved or path.resolve()
    return DocumentSource(path, stored.get(resolved, resolved.as_uri()))


def document_sources(paths: Sequence[Path], store: SnapshotStore) -> list[DocumentSource]:
    """The documents given on the command line, a folder standing for every ``*.txt`` in it, sorted.

    A page named twice (itself and through its folder) is extracted once.

    Raises:
        DocumentError: a folder holds no ``*.txt`` file.
    """
    pages: list[Path] = []
    for path in paths:
        if path.is_dir():
            in_folder = sorted(p for p in path.glob("*.txt") if p.is_file())
            if not in_folder:
                raise DocumentError(path, "folder holds no *.txt documents")
            pages.extend(in_folder)
        else:
            pages.append(path)
    seen: set[Path] = set()
    sources = []
    stored = _stored_documents(store)  # read once: a site's folder holds thousands of pages
    for page in pages:
        resolved = page.resolve()  # once: a site's folder holds thousands of pages
        if resolved not in seen:
            seen.add(resolved)
            sources.append(_source(page, stored, resolved))
    return sources


def read_pages(sources: Sequence[DocumentSource]) -> list[Page]:
    """Read every document once: its text and sha256.

    Raises:
        DocumentError: a document is missing, not a regular file, too large, empty or binary.
    """
    return [Page(source, *read_document(source.path)) for source in sources]


def extract_pages(
    pages: Sequence[Page], now: datetime | None = None, taken: Mapping[str, str] | None = None
) -> list[ExtractedDocument]:
    """Extract every page from the text already read, each under a document_id of its own (a
    page extracted already keeps its facts, its id settled as below).

    A page's id is the slug of its title. Two pages with one title are two documents: a page
    whose id another page (another source URL) holds already, earlier in ``pages`` or in
    ``taken``, gets its id followed by the first 8 hex digits of its URL's sha256
    ('aldesleukin-1a2b3c4d'), so neither replaces the other's rows.

    Args:
        pages: the documents, in order.
        now: the extraction time to stamp.
        taken: document_id -> source_url of the documents already in the output.

    Raises:
        DocumentError: a document has no title, no summary table, or a table that cannot be read.
    """
    extracted_at = now or datetime.now(UTC)
    owners = dict(taken or {})
    docs = []
    shared = SharedParts()  # a site's pages repeat their facts' fields sets and values by the thousand
    for page in pages:
        source = page.source
        doc = page.extracted or _extract(page, extracted_at)
        doc_id = doc.document.document_id
        if owners.get(doc_id, source.source_url) != source.source_url:
            doc_id = f"{doc_id}-{sha256_bytes(source.source_url.encode())[:8]}"
            doc = _extract(page, doc.document.extracted_at, doc_id)
        owners.setdefault(doc_id, source.source_url)
        docs.append(shared.record(doc))
    return docs


def _extract(page: Page, extracted_at: datetime, document_id: str | None = None) -> ExtractedDocument:
    return extract_document(page.text, source_url=page.source.source_url, sha256=page.sha256,
                            extracted_at=extracted_at, path=str(page.source.path), document_id=document_id)


def extract_documents(
    sources: Sequence[DocumentSource], now: datetime | None = None, taken: Mapping[str, str] | None = None
) -> list[ExtractedDocument]:
    """Read and extract every document (see :func:`extract_pages`).

    Raises:
        DocumentError: a document is missing, empty, binary or has no summary table.
    """
    return extract_pages(read_pages(sources), now=now, taken=taken)


def with_extracted(pages: Sequence[Page], docs: Sequence[ExtractedDocument]) -> list[Page]:
    """``pages`` holding their extracted facts, so that no later step extracts them again."""
    return [replace(page, extracted=doc) for page, doc in zip(pages, docs, strict=True)]


def settle_ids(
    docs: Sequence[ExtractedDocument], pages: Sequence[Page], taken: Mapping[str, str] | None = None
) -> list[ExtractedDocument]:
    """Documents extracted in separate batches (each batch blind to the others), with the ids
    :func:`extract_pages` would have given them in one go: the second of two pages under
    one title (two source URLs) is extracted again under an id of its own."""
    return extract_pages(with_extracted(pages, docs), taken=taken)


def _side_list(store: SnapshotStore, name: str, adapter: TypeAdapter[list[Any]], what: str) -> list[Any]:
    """A JSON list kept beside the snapshots, read within the store's size limit and validated
    (none when the file is absent)."""
    path = store.root / name
    data = _side_bytes(store, name)
    if data is None:
        return []
    try:
        return adapter.validate_json(data)
    except ValidationError as exc:
        raise SnapshotError(path, f"not a valid list of {what}: {validation_problem(exc)}") from exc


_SIDE_FILES = {LINKS_NAME: "a trial links file", MISSING_NAME: "a missing records file"}


def _side_bytes(store: SnapshotStore, name: str) -> bytes | None:
    """The bytes of a file kept beside the snapshots (as the run first read it when the store
    is pinned), None when absent."""
    return store.side_file(name, what=_SIDE_FILES[name])


def load_links(store: SnapshotStore) -> list[TrialLink]:
    """Cross-registry links kept beside the snapshots (none when the file is absent).

    Raises:
        SnapshotError: the links file is not a valid list of links.
    """
    return _side_list(store, LINKS_NAME, _links_adapter, "trial links")


def load_missing(store: SnapshotStore) -> list[MissingRecord]:
    """Why trials have no registry record, as the searches for them found (none when the file is absent).

    Raises:
        SnapshotError: the file is not a valid list of missing records.
    """
    return _side_list(store, MISSING_NAME, _missing_adapter, "missing records")


def parse_entry(store: SnapshotStore, entry: SnapshotEntry) -> list[TrialRecord]:
    """Read (checking its sha256) and parse one snapshot, which must hold its entry's trial.

    Raises:
        SnapshotError: the file cannot be read or has changed.
        ParseError: it does not parse, or holds no record of the trial its entry names.
    """
    from pipeline.registries import parse_snapshot, require_trial

    records = parse_snapshot(store.read(entry), path=entry.path, registry=entry.registry)  # type: ignore[arg-type]
    return require_trial(records, entry.trial_id, path=entry.path) if entry.trial_id else records


def _of_entry_trial(records: list[LazyRecord], entry: SnapshotEntry) -> list[LazyRecord]:
    """``records``, refused when the manifest entry names a trial they do not hold (told by
    their keys: the records are validated only to say why they are refused)."""
    from pipeline.registries import require_trial

    if entry.trial_id and not any(held.key.trial_id == entry.trial_id for held in records):
        require_trial([held.record for held in records], entry.trial_id, path=entry.path)
    return records


@dataclass(frozen=True)
class Reuse:
    """How a snapshot's records are had without parsing its bytes (a record is parsed once per sha256).

    ``records_json``: the records an earlier run parsed from the same bytes, at this path or
    another (``record_cache``), and ``keys_json`` their keys (``record_keys``, None when not
    stored for this code); ``twin``: an earlier path of this run's manifest with the same
    bytes, whose records these are; ``verified``: this run's plan found the file holding its
    entry's bytes (:func:`plan_run`), so it is not read again.
    """

    records_json: str | CachedJSON | None = None
    twin: str | None = None
    verified: bool = False
    keys_json: str | None = None


@dataclass(frozen=True)
class SnapshotJobs:
    """The registry snapshots a run loads, each with how its records can be reused (or None: parse it).

    ``outcomes`` says for each path whether it is new, changed or unchanged since the last run.
    """

    entries: list[SnapshotEntry]
    cached: list[Reuse | None]
    outcomes: dict[str, str]
    links: list[TrialLink]
    missing: list[MissingRecord] = field(default_factory=list)


@dataclass(frozen=True)
class SnapshotRecords:
    """What one snapshot yielded: its records (whole when parsed, else held by their keys) and
    whether they were parsed in this run, or an error. ``keyed``: their keys were computed here."""

    entry: SnapshotEntry
    records: list[LazyRecord]
    parsed: bool
    error: LoadError | None = None
    twin: str | None = None  # the earlier path with the same bytes whose records these are (collect_records)
    keyed: bool = False


def plan_snapshots(
    store: SnapshotStore, previous: PreviousState, verified: Collection[str] = frozenset()
) -> SnapshotJobs:
    """The registry snapshots to load, and how each one's records can be had without parsing it.

    A snapshot is parsed only when no run has parsed its bytes before (with these parsers) and
    no earlier path of this manifest holds the same bytes: its sha256 is the key, not its path.

    Args:
        verified: paths whose files this run's plan found holding their entries' bytes
            (:attr:`RunPlan.verified`): their records are reused without reading them again.

    Raises:
        SnapshotError: the manifest or the links file is not valid.
    """
    links = load_links(store)
    entries = [e for e in store.entries() if e.registry in REGISTRIES]
    outcomes = classify(entries, previous)
    cache = previous.cached_records
    by_sha = previous.cache_keys_by_sha()
    keys_by_sha = previous.keys_by_sha()
    first: dict[tuple[str, str], str] = {}
    cached: list[Reuse | None] = []
    for entry in entries:
        key = sha_key(entry.path, entry.sha256)
        raw = None if (at := by_sha.get(key)) is None else CachedJSON(cache, at)
        twin = None if raw is not None else first.get(key)
        first.setdefault(key, entry.path)
        reuse = Reuse(raw, twin, entry.path in verified, keys_by_sha.get(key) if raw is not None else None)
        cached.append(reuse if raw is not None or twin else None)
    # Records without stored keys are validated as they are loaded (their keys computed): after a
    # change of code, that is every cached record, read in one query rather than one each.
    load_cached(cache, [r.records_json.key for r in cached
                        if r is not None and isinstance(r.records_json, CachedJSON) and r.keys_json is None])
    return SnapshotJobs(entries=entries, cached=cached, outcomes=outcomes, links=links, missing=load_missing(store))


def shadowed(ingested: Sequence[SnapshotEntry], entries: Sequence[SnapshotEntry]) -> set[tuple[str, str]]:
    """(registry, number) of the ``ingested`` records whose trial a snapshot of ``entries`` gives: the snapshot's comes first."""
    given = {(entry.registry, entry.trial_id) for entry in entries if entry.trial_id}
    return {(entry.registry, entry.trial_id) for entry in ingested if (entry.registry, entry.trial_id) in given}


def plan_ingested(ingested: Sequence[SnapshotEntry], jobs: SnapshotJobs, previous: PreviousState) -> SnapshotJobs:
    """The records ``ingest`` loaded that no snapshot of ``jobs`` gives, each with how it can be
    had without parsing its study: the records a run parsed from the same study before
    (``record_cache``, by its label and sha256), else None (read back and parsed).

    Their outcome is ``unchanged`` when a run parsed that study before, else ``new``: the pages
    citing a trial re-ingested with other bytes are reconciled again.
    """
    given = shadowed(ingested, jobs.entries)
    entries = [entry for entry in ingested if (entry.registry, entry.trial_id) not in given]
    cache = previous.cached_records
    cached: list[Reuse | None] = []
    outcomes: dict[str, str] = {}
    for entry in entries:
        key = (entry.path, entry.sha256)
        # Checked against its sha256 when it was parsed: its source need not be there any more.
        reuse = Reuse(CachedJSON(cache, key), verified=True, keys_json=previous.stored_keys(key)) if key in cache else None
        cached.append(reuse)
        outcomes[entry.path] = "new" if reuse is None else "unchanged"
    load_cached(cache, [(e.path, e.sha256) for e, r in zip(entries, cached, strict=True)
                        if r is not None and r.keys_json is None])
    return SnapshotJobs(entries=entries, cached=cached, outcomes=outcomes, links=[])


def load_snapshot(
    store: SnapshotStore, entry: SnapshotEntry, cached: Reuse | str | None, shared: SharedParts | None = None,
) -> SnapshotRecords:
    """One snapshot's records: parsed, or reused (``cached``: records parsed from the same bytes
    before, as JSON, or a :class:`Reuse`). Parsed records keep their repeated parts in ``shared``
    (one for the snapshots loaded together: a record alone repeats few).

    A snapshot that cannot be used (unreadable, changed behind the manifest's back,
    unparseable) gives an error instead of records.
    """
    from pipeline.reconcile.records import LazyRecord, cached_records

    reuse = Reuse(records_json=cached) if isinstance(cached, str) else cached
    try:
        if reuse is None:
            shared = shared or SharedParts()
            parsed = [LazyRecord(shared.record(record)) for record in parse_entry(store, entry)]
            for held in parsed:
                held.key  # noqa: B018  # computed where the record was parsed (a worker, in the flow)
            return SnapshotRecords(entry, parsed, parsed=True, keyed=True)
        if not reuse.verified:
            store.read(entry)  # still refuse a file changed behind the manifest's back
        if reuse.twin is not None:
            return SnapshotRecords(entry, [], parsed=False, twin=reuse.twin)
        assert reuse.records_json is not None
        held = cached_records(reuse.records_json, reuse.keys_json)
        return SnapshotRecords(entry, _of_entry_trial(held, entry), parsed=False, keyed=reuse.keys_json is None)
    except SnapshotError as exc:
        error = LoadError(entry.path, entry.registry, entry.trial_id, exc.problem)
        return SnapshotRecords(entry, [], parsed=False, error=error)
    except UnsafePathError as exc:  # a manifest path or symlink leading out of the store
        error = LoadError(entry.path, entry.registry, entry.trial_id, f"refused: {exc}")
        return SnapshotRecords(entry, [], parsed=False, error=error)


def collect_records(
    jobs: SnapshotJobs, loaded: Sequence[SnapshotRecords], ingested: SnapshotJobs | None = None,
    from_ingest: Sequence[SnapshotRecords] = (), relanded: Iterable[tuple[str, str]] = (),
) -> RecordSet:
    """Gather what each snapshot yielded (in the jobs' order), then each ingested study
    (``ingested``: :func:`plan_ingested`, ``from_ingest`` what they yielded), into one RecordSet.

    A record that an earlier snapshot (in path order) already gave is kept once. When the two
    disagree, the later one is not used and becomes a load error naming both snapshots and the
    fields that differ: reconciliation never picks one of two versions of a trial silently.
    ``relanded``: trials whose rows were ingest's though a snapshot gives them (:func:`shadowed`).
    """
    from pipeline.reconcile.records import LoadedRecord

    result = RecordSet(links=jobs.links, missing=jobs.missing, outcomes=dict(jobs.outcomes), relanded=set(relanded))
    if ingested is not None:
        result.outcomes.update(ingested.outcomes)
        result.ingested = list(ingested.entries)
    first: dict[tuple[str, str], LoadedRecord] = {}
    for item in [*loaded, *from_ingest]:
        path = item.entry.path
        if item.twin is not None:
            item = _twin_records(item, result.by_path.get(item.twin))
        if item.error is not None:
            result.outcomes[path] = "failed"
            result.errors.append(item.error)
            continue
        if item.parsed:
            result.parsed.add(path)
        if item.keyed:
            result.keyed.add(path)
        result.by_path[path] = list(item.records)
        for held in item.records:
            key = (held.key.registry, held.key.trial_id)
            if key not in first:
                first[key] = LoadedRecord(held, item.entry)
                result.loaded.append(first[key])
                continue
            kept = first[key]
            # Only a duplicate is validated whole, to tell whether the two disagree.
            differ = [] if kept.held is held else _differing_fields(kept.record, held.record)
            if differ:
                result.errors.append(LoadError(path, item.entry.registry, held.key.trial_id, (
                    f"duplicate record of {held.key.trial_id}: {kept.entry.path} gives it too, with other "
                    f"values ({', '.join(differ)}); this snapshot's record is not used")))
    return result


def _twin_records(item: SnapshotRecords, records: list[LazyRecord] | None) -> SnapshotRecords:
    """The records of a snapshot whose bytes an earlier path of the run gave (``records``, None
    when that path could not be used), refused as that path's would be."""
    entry = item.entry
    if records is None:
        return SnapshotRecords(entry, [], parsed=False, error=LoadError(
            entry.path, entry.registry, entry.trial_id, f"same bytes as {item.twin}, which could not be used"))
    try:
        return SnapshotRecords(entry, _of_entry_trial(records, entry), parsed=False)
    except SnapshotError as exc:
        return SnapshotRecords(entry, [], parsed=False,
                               error=LoadError(entry.path, entry.registry, entry.trial_id, exc.problem))


def _differing_fields(a: TrialRecord, b: TrialRecord) -> list[str]:
    """Fields whose values differ between two records of one trial (provenance paths aside)."""
    left, right = a.model_dump(), b.model_dump()
    return sorted(k for k in left if k != "field_paths" and left[k] != right.get(k))


def load_snapshots(
    store: SnapshotStore, jobs: SnapshotJobs, progress: Progress | None = None
) -> list[SnapshotRecords]:
    """Each snapshot's records (:func:`load_snapshot`), in the jobs' order."""
    progress = progress or NoProgress()
    progress.start("registry snapshots", len(jobs.entries))
    loaded = []
    shared = SharedParts()
    for entry, cached in spared_as_they_come(zip(jobs.entries, jobs.cached, strict=True)):
        progress.advance(entry.path)
        loaded.append(load_snapshot(store, entry, cached, shared))
    progress.finish()
    return loaded


def load_records(
    store: SnapshotStore, previous: PreviousState | None = None, progress: Progress | None = None
) -> RecordSet:
    """Parse every registry snapshot in the store, reusing last run's records for unchanged ones.

    A bad snapshot (unreadable, changed behind the manifest's back, unparseable) becomes a
    LoadError and the other records still load. (A run does the same, see :func:`pipeline.run.reconcile`.)
    """
    jobs = plan_snapshots(store, previous or PreviousState())
    return collect_records(jobs, load_snapshots(store, jobs, progress))


def page_inputs(docs: Sequence[ExtractedDocument], records: RecordSet) -> list[PageRecords]:
    """For each document, the records and links it needs, found through one index of the run's records."""
    if not docs:
        return []
    from pipeline.reconcile.records import read_cached_json

    run = records.run_records()
    inputs = [run.for_page(doc) for doc in docs]
    read_cached_json(loaded.held for page in inputs for loaded in page.records)
    return inputs


def reconcile_pages(docs: Sequence[ExtractedDocument], inputs: Sequence[PageRecords]) -> list[ReconciliationRow]:
    """Every stated fact of each document against the records it needs (:func:`page_inputs`)."""
    from pipeline.reconcile import reconcile_page

    pages = spared_as_they_come(zip(docs, inputs, strict=True), every=50)
    shared = SharedParts()  # a site's comparisons took half again as much memory without
    return [shared.record(row) for doc, page in pages for row in reconcile_page(doc, page)]


def reconcile_documents(docs: Sequence[ExtractedDocument], records: RecordSet) -> list[ReconciliationRow]:
    """Every stated fact of every document against the registry records."""
    inputs = page_inputs(docs, records)
    with records_spared():
        return reconcile_pages(docs, inputs)


_spared_depth = 0


@contextmanager
def records_spared() -> Iterator[None]:
    """Every object alive now (a run's records and their index) left out of cyclic garbage
    collection inside the block (until the outermost such block ends).

    They live for the whole run and hold no cycles to free; a collection walks them all, and
    pages allocate enough to set one off every few pages, which made a page's time grow with
    the store.
    """
    global _spared_depth
    gc.freeze()
    _spared_depth += 1
    try:
        yield
    finally:
        _spared_depth -= 1
        if not _spared_depth:
            gc.unfreeze()


SPARE_EVERY = 500


def spared_as_they_come(items: Iterable[T], every: int = SPARE_EVERY) -> Iterator[T]:
    """``items``, and inside :func:`records_spared`, every ``every`` of them the objects then
    alive spared too: records parsed one after another would otherwise be walked again by each
    full collection their growing number sets off (a third of the time spent parsing 20,000)."""
    for n, item in enumerate(items, 1):
        yield item
        if _spared_depth and not n % every:
            gc.freeze()


MAX_TASKS = 64
"""A step mapped over many items runs as at most this many tasks: enough to spread over a
cluster, few enough that Prefect's cost per task (milliseconds) stays small beside the work."""


def batches(items: Sequence[T], parts: int = MAX_TASKS) -> list[list[T]]:
    """``items`` cut, in order, into at most ``parts`` runs of (nearly) equal length; one item a run
    when there are no more items than ``parts``."""
    size = -(-len(items) // parts) if items else 1
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def describe_trials(
    docs: Sequence[ExtractedDocument], records: RecordSet, inputs: Sequence[PageRecords] | None = None
) -> list[PageTrials]:
    """Every trial of every document as one entity: its numbers, records and missing reasons.

    Each page is described from the records it needs (``inputs``, :func:`page_inputs`, found
    here when not given), as it is reconciled: an index of the whole store per page made a
    page's time grow with the store (a site's run spent nearly all its time here).
    """
    from pipeline.reconcile.entities import Unusable, page_trials

    pages = page_inputs(docs, records) if inputs is None else inputs
    unusable = [Unusable(e.trial_id, e.snapshot, e.error) for e in records.errors]
    return [page_trials(doc, page.records, page.links, records.missing, unusable, page.ongoing(doc))
            for doc, page in zip(docs, pages, strict=True)]


def load_baselines(docs: Sequence[ExtractedDocument], baseline_dir: Path) -> dict[str, list[AcceptedDiscrepancy]]:
    """Each document's accepted discrepancies (``<baseline_dir>/<document_id>.json``; none when absent).

    Raises:
        BaselineError: a baseline file is not a valid list of accepted discrepancies.
    """
    from pipeline.outputs.baseline import load_baseline

    return {d.document.document_id: load_baseline(baseline_dir / f"{d.document.document_id}.json") for d in docs}


def check_documents(
    rows: Sequence[ReconciliationRow], baselines: dict[str, list[AcceptedDiscrepancy]]
) -> dict[str, CheckResult]:
    """Each document's rows against its baseline: which discrepancies are accepted, and why."""
    from pipeline.outputs.baseline import check

    by_doc = rows_by_document(rows)
    return {doc_id: check(by_doc.get(doc_id, []), accepted) for doc_id, accepted in baselines.items()}


def rows_by_document(rows: Iterable[ReconciliationRow]) -> dict[str, list[ReconciliationRow]]:
    """``rows`` grouped by page, in their order: grouped once (a site's rows scanned once per page
    grew with the square of the pages)."""
    grouped: dict[str, list[ReconciliationRow]] = {}
    for row in rows:
        grouped.setdefault(row.document_id, []).append(row)
    return grouped


def stored_findings(con: duckdb.DuckDBPyConnection | None, baseline_dir: Path, report: Path) -> list[str]:
    """The summary's findings lines for a run that found nothing changed: last run's comparisons
    (still in the output database) against today's baselines (:func:`pipeline.outputs.site.stored_checks`)."""
    from pipeline.outputs.baseline import format_findings
    from pipeline.outputs.site import stored_checks

    if con is None:
        return []
    return format_findings(list(stored_checks(con, baseline_dir).values()), report if report.exists() else None)


def record_provenance(records: RecordSet) -> dict[str, int]:
    """How many registry records were captured and how many reconstructed."""
    return _provenance(loaded.entry for loaded in records.loaded)


def _provenance(entries: Iterable[SnapshotEntry]) -> dict[str, int]:
    counts = Counter(entry.provenance for entry in entries)
    return {kind: counts.get(kind, 0) for kind in ("captured", "reconstructed")}


REPORT_NAMES = ("report.html", "report.md")
PAGE_REPORTS_DIR = "pages"
"""Each page's own report is ``output/pages/<document_id>.html`` (and ``.md``)."""


@dataclass(frozen=True)
class ReportInputs:
    """What a run's reports are made of: the pages it reconciled, in order, with their rows, the
    records each used, their trials and their checks against their baselines."""

    run: RunInfo
    docs: list[ExtractedDocument]
    rows: list[ReconciliationRow]
    page_records: list[PageRecords]
    trials: list[PageTrials]
    checks: dict[str, CheckResult]
    record_provenance: dict[str, int]  # of every record of the run, for the site report

    def part(self, indexes: Sequence[int]) -> ReportInputs:
        """The pages at ``indexes`` alone, with their rows, records, trials and checks: what a task
        rendering their reports needs, small enough to send to a worker."""
        docs = [self.docs[n] for n in indexes]
        ids = {doc.document.document_id for doc in docs}
        return ReportInputs(
            self.run, docs, [row for doc in docs for row in self.rows_by_document.get(doc.document.document_id, [])],
            [self.page_records[n] for n in indexes], [self.trials[n] for n in indexes],
            {doc_id: check for doc_id, check in self.checks.items() if doc_id in ids}, self.record_provenance)

    @cached_property
    def rows_by_document(self) -> dict[str, list[ReconciliationRow]]:
        """The rows grouped by page (:func:`rows_by_document`), once for every page's report."""
        return rows_by_document(self.rows)


def page_report_context(inputs: ReportInputs, index: int, site_report: str | None = None) -> tuple[
        ExtractedDocument, list[ReconciliationRow], list[TrialRecord], ReportContext]:
    """The ``index``-th page's report inputs: its document, rows and records, and what its report
    shows beside them (the run, its records' provenance, its check, its trials and the page's
    words of every claim compared)."""
    from pipeline.reconcile.entities import statement
    from pipeline.outputs.report import ReportContext

    doc = inputs.docs[index]
    doc_id = doc.document.document_id
    rows = inputs.rows_by_document.get(doc_id, [])
    records = inputs.page_records[index].records
    statements = {(doc_id, row.claim_id): words for row in rows if (words := statement(doc, row.claim_id))}
    checks = {doc_id: inputs.checks[doc_id]} if doc_id in inputs.checks else {}
    context = ReportContext(
        run_id=inputs.run.run_id, generated_at=inputs.run.started_at,
        record_provenance=_provenance(loaded.entry for loaded in records), checks=checks,
        trials=list(inputs.trials[index].trials), statements=statements, site_report=site_report)
    return doc, rows, [loaded.record for loaded in records], context


RenderedPage = tuple[str, str, str]
"""A page's own report: (document_id, HTML, Markdown)."""


def render_page_reports(inputs: ReportInputs, indexes: Iterable[int] | None = None) -> Iterator[RenderedPage]:
    """Each page's own report (those at ``indexes``, else every one), one at a time, each
    linking to the site report beside its folder."""
    from pipeline.outputs.report import render_html, render_markdown

    for index in range(len(inputs.docs)) if indexes is None else indexes:
        doc, rows, records, context = page_report_context(inputs, index, site_report=f"../{REPORT_NAMES[0]}")
        yield (doc.document.document_id, render_html([doc], rows, records, context),
               render_markdown([doc], rows, records, context))


def write_page_reports(pages: Iterable[RenderedPage], output_dir: Path) -> list[Path]:
    """Write pages' own reports (``pages/<document_id>.html`` and ``.md``), each replaced
    atomically, as they come: a site's reports are never all held at once. They are made
    durable together at the end (:func:`~pipeline.store.snapshots.replace_files`)."""
    folder = output_dir / PAGE_REPORTS_DIR
    return replace_files((folder / f"{doc_id}{suffix}", text.encode("utf-8"))
                         for doc_id, html, markdown in pages for suffix, text in ((".html", html), (".md", markdown)))


def write_reports(inputs: ReportInputs, output_dir: Path, baseline_dir: Path, *, pages_written: bool = False) -> list[Path]:
    """Write each reconciled page's own report (:func:`write_page_reports`; unless
    ``pages_written``, when the caller wrote them already), then ``report.html`` and
    ``report.md`` from the published database: the page's report when the output holds one
    page, else the site report over every page of the output
    (:func:`pipeline.outputs.site.site_overview`). Every file is replaced atomically; a page
    report of a page no longer in the output is removed.

    Returns:
        report.html and report.md, then the page reports written here.

    Raises:
        BaselineError: a baseline file is not a valid list of accepted discrepancies.
    """
    from pipeline.load.writer import DB_NAME
    from pipeline.outputs.report import render_html, render_markdown, render_site_html, render_site_markdown
    from pipeline.outputs.site import site_overview

    folder = output_dir / PAGE_REPORTS_DIR
    written = [] if pages_written else write_page_reports(render_page_reports(inputs), output_dir)
    addresses = {path.stem: f"{PAGE_REPORTS_DIR}/{path.name}" for path in folder.glob("*.html")}
    site = site_overview(output_dir / DB_NAME, baseline_dir, addresses, run_id=inputs.run.run_id,
                         generated_at=inputs.run.started_at, record_provenance=inputs.record_provenance)
    held = {page.document_id for page in site.pages}
    for path in [*folder.glob("*.html"), *folder.glob("*.md")]:
        if path.stem not in held:
            path.unlink(missing_ok=True)
    own = [n for n, doc in enumerate(inputs.docs) if doc.document.document_id in held]
    if len(held) == 1 and own:  # one page: its report is the report, as it always was
        doc, rows, records, context = page_report_context(inputs, own[0])
        texts = (render_html([doc], rows, records, context), render_markdown([doc], rows, records, context))
    else:
        texts = (render_site_html(site), render_site_markdown(site))
    top = []
    for name, text in zip(REPORT_NAMES, texts, strict=True):
        path = output_dir / name
        atomic_write_bytes(path, text.encode("utf-8"))
        top.append(path)
    return [*top, *written]


def trials_without_records(trials: Sequence[PageTrials]) -> list[str]:
    """The trials the documents speak of that no record backs by their own number or a
    confirmed link (a candidate-only one included): the ``page_trials`` rows whose
    ``record_status`` is not ``record``, the records being those reconciliation compares with."""
    return sorted({t.trial_id for page in trials for t in page.trials if t.record_status != "record"})


def trials_with_candidate_only(trials: Sequence[PageTrials]) -> dict[str, str]:
    """Of the trials without a record, those only a candidate (unconfirmed) link reaches: id ->
    the number(s) of the candidate record(s) reconciliation compares with."""
    candidates: dict[str, set[str]] = {}
    for page in trials:
        only = {t.trial_id for t in page.trials if t.record_status == "candidate_only"}
        for ident in page.identities:
            if ident.trial_id in only and ident.used:
                candidates.setdefault(ident.trial_id, set()).add(ident.registry_id)
    return {trial_id: ", ".join(sorted(ids)) for trial_id, ids in sorted(candidates.items())}


def new_run_id(started: datetime) -> str:
    """A run's id: its start to the second, and six random hex digits ('20260101T060000-1a2b3c')."""
    return started.strftime("%Y%m%dT%H%M%S") + "-" + uuid4().hex[:6]


@dataclass(frozen=True)
class RunPlan:
    """What a run has to do, decided before any parsing."""

    fingerprint: str
    work_needed: bool
    entries: list[SnapshotEntry]
    registry_counts: dict[str, Counter[str]]
    file_stats: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (size, mtime_ns)
    basis: str = ""
    verified: frozenset[str] = frozenset()  # paths whose files hold their entries' bytes (see plan_snapshots)
    snapshots_fingerprint: str | None = None  # see pipeline.load.incremental.fingerprints

    @property
    def snapshot_count(self) -> int:
        return len(self.entries)


def side_files_sha(store: SnapshotStore) -> str | None:
    """sha256 of the links and the missing-record reasons: inputs too, a change to either is work to do."""
    found = [(name, data) for name in (LINKS_NAME, MISSING_NAME) if (data := _side_bytes(store, name)) is not None]
    if not found:
        return None
    return sha256_bytes(b"".join(f"{name} {sha256_bytes(data)}\n".encode() for name, data in found))


def plan_run(
    pages: Sequence[Page], store: SnapshotStore, previous: PreviousState, ingested: Sequence[SnapshotEntry] = (),
) -> RunPlan:
    """Fingerprint every input; when it equals the last complete run's, there is nothing to do.

    ``ingested``: the records ``ingest`` loaded into the output (:func:`pipeline.store.ingested.read_ingested`),
    inputs too. One whose trial a snapshot gives is not: it only makes the run do its work, which
    loads the snapshot's record in its place.

    The fingerprint is taken from what is on disk, not from the manifest alone: a snapshot file
    whose size or modification time differs from what the last run verified is hashed again,
    and one whose bytes no longer match its entry changes the fingerprint (the run that follows
    refuses it, as a cold run would). One whose bytes still match makes this run do its work
    from the cached records once, to record the file's new size and time.
    """
    # A page is its bytes and where it comes from: the same text from another URL is another page.
    doc_shas = [page.key for page in pages]
    manifest = store.entries()
    entries = [e for e in manifest if e.registry in REGISTRIES]
    on_disk: dict[str, str] = {}
    stats: dict[str, tuple[int, int]] = {}
    stats_of = store.stats_of(entries)
    for entry in entries:
        on_disk[entry.path], stat = _on_disk(store, entry, previous, stats_of[entry.path])
        if stat is not None:
            stats[entry.path] = stat
    side = side_files_sha(store)
    given = shadowed(ingested, entries)
    used = [entry for entry in ingested if (entry.registry, entry.trial_id) not in given]
    fp, snapshots_fp = fingerprints(doc_shas, manifest, side, on_disk, stats, used)
    # A file hashed again because its size or mtime moved (touched, copied, checked out) is
    # recorded by a run that does the work (reusing its cached records), so that later runs
    # trust it without hashing it every time.
    unrecorded = any(stats.get(e.path) != previous.snapshot_stats.get(e.path) for e in entries)
    return RunPlan(
        fingerprint=fp,
        work_needed=fp != previous.fingerprint or unrecorded or bool(given),
        entries=entries,
        registry_counts=registry_counts(entries, classify(entries, previous), previous),
        file_stats=stats,
        basis=page_basis(side),
        verified=frozenset(path for path, held in on_disk.items() if held == "ok"),
        snapshots_fingerprint=snapshots_fp,
    )


def _on_disk(
    store: SnapshotStore, entry: SnapshotEntry, previous: PreviousState,
    info: os.stat_result | OSError | UnsafePathError,
) -> tuple[str, tuple[int, int] | None]:
    """What a snapshot's file holds: 'ok' (its entry's bytes), its actual sha256, 'missing' or
    'unreadable'; and its (size, mtime_ns) when it is there (``info``: its status, or the
    error getting it raised: :meth:`SnapshotStore.stats_of`).

    A file with the size and modification time the last run verified for the same sha256 is
    trusted without being read; any other is hashed.
    """
    if isinstance(info, FileNotFoundError):
        return "missing", None
    if isinstance(info, (UnsafePathError, OSError)):
        return "unreadable", None
    stat = (info.st_size, info.st_mtime_ns)
    if previous.snapshot_stats.get(entry.path) == stat and previous.snapshot_shas.get(entry.path) == entry.sha256:
        return "ok", stat
    try:
        actual = sha256_bytes(store.path_of(entry).read_bytes())
    except (UnsafePathError, OSError):
        return "unreadable", stat
    return ("ok" if actual == entry.sha256 else actual), stat


# -- incremental by page ----------------------------------------------------------------------


def page_basis(links_sha: str | None) -> str:
    """What every page's reconciliation rests on besides its own text and records: the links and the code."""
    return sha256_bytes(f"links {links_sha}\ncode {code_version()}\n".encode())


def pages_to_extract(pages: Sequence[Page], basis: str, previous: PreviousState) -> list[Page]:
    """The pages whose text (or the links, or the code: ``basis``) changed since they were last reconciled."""
    known = _known_pages(previous, previous.page_heads)
    return [page for page in pages if page.key not in known or known[page.key].basis != basis]


def _known_pages(previous: PreviousState, pages: Mapping[str, PageBasis]) -> dict[str, PageBasis]:
    """``pages`` (the last run's) by what :func:`plan_run` knows a page by: its bytes' sha256 and its URL."""
    return {f"{p.document_sha256} {previous.document_urls.get(p.document_id)}": p for p in pages.values()}


def changed_records(records: RecordSet, previous: PreviousState) -> tuple[set[str], set[str]]:
    """(trial numbers, snapshot paths) whose records came, changed or went since the last run.

    The numbers are those of the records of every new, changed, failed or removed snapshot, as
    parsed now and as parsed last time, with every number those records list.
    """
    paths = {path for path, outcome in records.outcomes.items() if outcome in ("new", "changed", "failed")}
    paths |= set(previous.snapshot_shas) - set(records.outcomes)
    cache = previous.cached_records
    last = [(path, sha) for path in paths if (sha := previous.snapshot_shas.get(path)) is not None]
    load_cached(cache, last)
    before = [record for key in last if (raw := cache.get(key)) is not None for record in records_from_json(raw)]
    numbers = [(r.trial_id, *(i.other_id for i in r.identifiers)) for r in before]
    numbers += [(loaded.key.trial_id, *loaded.key.other_ids) for loaded in records.loaded if loaded.entry.path in paths]
    return {n.strip().upper() for listed in numbers for n in listed}, paths


def pages_affected(
    pages: Sequence[Page], previous: PreviousState, records: RecordSet, extracted: Sequence[Page],
) -> list[Page]:
    """The pages unchanged themselves that cite a record that came, changed or went (or whose
    rows cite its snapshot), besides the ``extracted`` ones."""
    ids, paths = changed_records(records, previous)
    if not ids and not paths:
        return []
    known = _known_pages(previous, previous.pages)
    taken = {page.source for page in extracted}
    return [
        page for page in pages
        if page.source not in taken and (basis := known.get(page.key)) is not None
        and (basis.trial_ids & ids or basis.snapshots.keys() & paths)
    ]


def basis_rows(
    docs: Sequence[ExtractedDocument], rows: Sequence[ReconciliationRow], basis: str
) -> list[dict[str, object]]:
    """The ``document_basis`` rows of the pages reconciled now: their numbers and the snapshots their rows cite."""
    cited: dict[str, set[tuple[str, str | None]]] = {}
    for row in rows:
        if row.evidence.snapshot_path:
            cited.setdefault(row.document_id, set()).add((row.evidence.snapshot_path, row.evidence.snapshot_sha256))
    return [row for doc in docs for row in _page_basis_rows(doc, cited.get(doc.document.document_id, set()), basis)]


def _page_basis_rows(doc: ExtractedDocument, cited: set[tuple[str, str | None]], basis: str) -> list[dict[str, object]]:
    from pipeline.reconcile import page_numbers

    head = {"document_id": doc.document.document_id, "document_sha256": doc.document.sha256, "basis": basis}
    return [
        {**head, "trial_id": None, "snapshot_path": None, "snapshot_sha256": None},
        *({**head, "trial_id": n, "snapshot_path": None, "snapshot_sha256": None}
          for n in sorted({n.strip().upper() for n in page_numbers(doc)})),
        *({**head, "trial_id": None, "snapshot_path": p, "snapshot_sha256": h} for p, h in sorted(cited)),
    ]


def unchanged_run_rows(run: RunInfo, plan: RunPlan) -> dict[str, list[dict[str, object]]]:
    """The bookkeeping rows of a run that found nothing changed."""
    return {
        "pipeline_runs": [run_row(
            run, documents=0, records=0, load_errors=0, rows=None, parsed=0,
            reused=plan.snapshot_count, work_done=False, fingerprint=plan.fingerprint,
            snapshots_fingerprint=plan.snapshots_fingerprint)],
        "run_registry_counts": RunSummaryCounts(plan.registry_counts).rows(run.run_id),
    }


def run_batch(
    run: RunInfo,
    docs: Sequence[ExtractedDocument],
    records: RecordSet,
    store: SnapshotStore,
    rows: Sequence[ReconciliationRow],
    previous: PreviousState,
    fingerprint_: str,
    file_stats: Mapping[str, tuple[int, int]] | None = None,
    basis: str = "",
    trials: Sequence[PageTrials] | None = None,
    snapshots_fingerprint: str | None = None,
) -> Batch:
    """Everything a run that did work writes (see :func:`pipeline.load.rows.build_batch`).

    ``snapshots_fingerprint`` (from :func:`plan_run`): when it is the one ``previous`` recorded,
    the ``snapshots`` and ``trial_links`` tables are left as they are.

    ``file_stats`` (path -> size and mtime, from :func:`plan_run`) are kept only for the
    snapshots this run could use: a file it refused is hashed again by the next run. ``docs``
    are the pages reconciled in this run (``rows`` are theirs); every other page keeps its rows
    and history as they are.
    ``trials`` are the documents' trials as entities, when the caller has described them already.
    """
    from pipeline.reconcile.records import keys_json

    manifest = store.entries()
    current = {e.path for e in manifest}
    removed = sorted(set(previous.snapshot_shas) - current)
    cache = previous.cached_records
    gone = set(removed)
    removed_cached = [key for key in cache if key[0] in gone]
    load_cached(cache, removed_cached)
    removed_records = sorted({
        (r.registry, r.trial_id) for key in removed_cached for r in records_from_json(cache[key])
    } - {(loaded.key.registry, loaded.key.trial_id) for loaded in records.loaded})
    fresh = records.fresh()
    keyed = fresh | records.keyed  # once: in the comprehension's test it cost O(store²), 24 s at 20,000
    sources = [*manifest, *records.ingested]  # an ingested study's records are cached by its label
    cache = [(e, [held.record for held in records.by_path[e.path]])
             for e in sources if e.path in fresh and e.path in records.by_path]
    keys = [(e, keys_json([held.key for held in records.by_path[e.path]]))
            for e in sources if e.path in keyed and e.path in records.by_path]
    registry_entries = [e for e in manifest if e.registry in REGISTRIES]
    refused = {e.snapshot for e in records.errors}
    counts = registry_counts(registry_entries, records.outcomes, previous)
    return build_batch(
        run, docs, records.to_load(), manifest, records.links, rows, records.errors,
        trials=describe_trials(docs, records) if trials is None else trials,
        removed_records=removed_records,
        removed_snapshots=removed,
        record_cache=cache,
        record_keys=keys,
        run_rows=[run_row(
            run, documents=len(docs), records=len(records.loaded), load_errors=len(records.errors),
            rows=rows, parsed=len(records.parsed),
            reused=len({loaded.entry.path for loaded in records.loaded} - records.parsed),
            work_done=True, fingerprint=fingerprint_, snapshots_fingerprint=snapshots_fingerprint)],
        count_rows=RunSummaryCounts(counts).rows(run.run_id),
        file_stats={path: stat for path, stat in (file_stats or {}).items() if path not in refused},
        page_basis=basis_rows(docs, rows, basis),
        snapshots_unchanged=snapshots_fingerprint is not None
        and snapshots_fingerprint == previous.snapshots_fingerprint,
    )


def refresh_store(store: SnapshotStore, docs: Sequence[ExtractedDocument], progress: Progress | None = None) -> list[str]:
    """Fetch every record of :func:`refresh_targets` live into ``store`` (conditional GETs); a
    target whose refresh fails keeps its old snapshot, marked stale.

    Returns:
        One "path: why" line per target whose refresh failed.

    Raises:
        FetchError: a registry could not be fetched from at all.
    """
    from pipeline.fetch.refresh import FetchTarget, run_refresh

    targets = [FetchTarget(registry=r, trial_id=t) for r, t in refresh_targets(store, docs)]
    report = run_refresh(targets, store=store, progress=progress)
    return [f"{o.path}: {o.error}" for o in report.failed]


def refresh_targets(
    store: SnapshotStore, docs: Sequence[ExtractedDocument], only: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """(registry, trial id) of every record to refresh: the store's snapshots, the documents'
    trials and the linked numbers, limited to ``only`` when given."""
    wanted: dict[tuple[str, str], None] = {}
    for entry in store.entries():
        if entry.registry in TRIAL_REGISTRIES and entry.trial_id:
            wanted[(entry.registry, entry.trial_id)] = None
    stated = [t.trial_id for d in docs for t in d.trials] + [i for d in docs for c in d.claims for i in c.trial_ids]
    for link in load_links(store):
        stated.append(link.other_id)
    for trial_id in stated:
        registry, number = registry_of(trial_id), canonical_trial_id(trial_id)
        if registry and number:
            wanted[(registry, number)] = None
    keys = list(wanted)
    if only:
        keys = [k for k in keys if k[1] in set(only)]
    return sorted(keys)
