"""What changed since the last run: the state a run leaves behind, read back, and compared.

A run records, in the output database, the sha256 of every snapshot it used (``snapshots``), the
records it parsed from each (``record_cache``) and a fingerprint of all its inputs
(``pipeline_runs.fingerprint``). The next run parses only snapshots whose sha256 changed and,
when the fingerprint is the same, does no work at all but record itself.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
from pydantic import TypeAdapter

from pipeline.constants import REGISTRIES
from pipeline.errors import OutputError
from pipeline.models import SnapshotEntry, TrialRecord
from pipeline.paths import PACKAGE_DIR

_records_adapter = TypeAdapter(list[TrialRecord])
OUTCOMES = ("new", "changed", "unchanged", "failed", "removed")


@dataclass(frozen=True)
class PageBasis:
    """What one page's last reconciliation rested on (a ``document_basis`` row group)."""

    document_id: str
    document_sha256: str | None
    basis: str | None
    trial_ids: frozenset[str] = frozenset()
    snapshots: dict[str, str] = field(default_factory=dict)  # path -> sha256


class PreviousState:
    """What the last run left in the output database (empty for a first run).

    ``cached_records`` ((path, sha256) -> records JSON) is the bulk of that state and only a
    run with work to do needs it: a state read from a database fetches it on first use.
    """

    def __init__(
        self,
        snapshot_shas: dict[str, str] | None = None,
        cached_records: Mapping[tuple[str, str], str] | None = None,
        fingerprint: str | None = None,
        *,
        database: Path | None = None,
        document_urls: dict[str, str] | None = None,
        snapshot_stats: dict[str, tuple[int, int]] | None = None,
        snapshots_fingerprint: str | None = None,
    ) -> None:
        self.snapshot_shas = snapshot_shas if snapshot_shas is not None else {}
        # path -> (size, mtime_ns) of each file the last run verified against its sha256
        self.snapshot_stats = snapshot_stats if snapshot_stats is not None else {}
        self.document_urls = document_urls if document_urls is not None else {}  # document_id -> source_url
        self.fingerprint = fingerprint
        # what the snapshots and trial_links tables were written from (fingerprints()), by the last run that wrote them
        self.snapshots_fingerprint = snapshots_fingerprint
        self._cached_records = cached_records
        self._cached_keys: dict[tuple[str, str], str] | None = None
        self._database = database
        self._pages: dict[str, PageBasis] | None = None
        self._page_heads: dict[str, PageBasis] | None = None

    @property
    def cached_records(self) -> Mapping[tuple[str, str], str]:
        """(snapshot path, sha256) -> the records parsed from it last time, as JSON (read from
        the database snapshot by snapshot as asked for: :class:`RecordCache`)."""
        if self._cached_records is None:
            self._cached_records = RecordCache.of(self._database) if self._database else {}
        return self._cached_records

    def cache_keys_by_sha(self) -> dict[tuple[str, str], tuple[str, str]]:
        """The keys of :attr:`cached_records` by :func:`sha_key` (the snapshot's folder and
        sha256): the same bytes' records are found whatever their path."""
        return {sha_key(path, sha): (path, sha) for path, sha in self.cached_records}

    def keys_by_sha(self) -> dict[tuple[str, str], str]:
        """The keys of the cached records (``record_keys``, as JSON) by :func:`sha_key`, those the
        code of this process computed only (read on first use)."""
        if self._cached_keys is None:
            self._cached_keys = _read_record_keys(self._database) if self._database else {}
        return {sha_key(path, sha): raw for (path, sha), raw in self._cached_keys.items()}

    def stored_keys(self, key: tuple[str, str]) -> str | None:
        """The stored keys (``record_keys``, as JSON) of the records cached for exactly this
        (path, sha256), when this code computed them."""
        if self._cached_keys is None:
            self._cached_keys = _read_record_keys(self._database) if self._database else {}
        return self._cached_keys.get(key)

    @property
    def pages(self) -> dict[str, PageBasis]:
        """document_id -> what its last reconciliation rested on (read on first use)."""
        if self._pages is None:
            self._pages = _read_page_basis(self._database) if self._database else {}
        return self._pages

    @property
    def page_heads(self) -> dict[str, PageBasis]:
        """document_id -> its page's sha256 and basis when last reconciled, without the numbers and
        snapshots it cited (read on first use, unless :attr:`pages` was read: a run whose pages
        alone changed needs no more, and the whole basis is 60,000 rows on a site)."""
        if self._pages is not None:
            return self._pages
        if self._page_heads is None:
            self._page_heads = _read_page_heads(self._database) if self._database else {}
        return self._page_heads

    def set_pages(self, pages: dict[str, PageBasis]) -> None:
        """State what the previous run's pages rested on (for a state not read from a database)."""
        self._pages = pages

    def __repr__(self) -> str:
        return (f"PreviousState({len(self.snapshot_shas)} snapshots, fingerprint={self.fingerprint!r}, "
                f"record cache {'read' if self._cached_records is not None else 'not read yet'})")


def read_previous_state(database: Path, con: duckdb.DuckDBPyConnection | None = None) -> PreviousState:
    """Read the last run's state; a missing or foreign database means a first run.

    Only the fingerprint and the snapshots' sha256 are read here; the record cache is read
    when it is first asked for (a run that finds nothing changed never needs it).

    Args:
        database: the output database.
        con: an open connection to ``database`` to read through (saves opening it again; a
            DuckDB database takes longer to open than a run with nothing to do takes to finish).
    """
    if con is None and not database.exists():
        return PreviousState()
    try:
        if con is not None:
            return _read_state(con, database)
        with duckdb.connect(str(database), read_only=True) as own:
            return _read_state(own, database)
    except duckdb.Error:
        # An output written before these tables existed: treat the run as the first.
        return PreviousState()


def read_previous_pages(database: Path) -> PreviousState:
    """The last run's pages alone (their URLs, and their :attr:`PreviousState.page_heads` when
    asked for): what :func:`pipeline.stages.pages_to_extract` reads, without the snapshots'
    state a run reads (under the output's lock) to plan its work. A missing or foreign database
    means a first run."""
    if not database.exists():
        return PreviousState()
    try:
        with duckdb.connect(str(database), read_only=True) as con:
            urls = _document_urls(con)
    except duckdb.Error:
        return PreviousState()
    return PreviousState(database=database, document_urls=urls)


def _document_urls(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT document_id, source_url FROM documents").fetchall())


def _read_state(con: duckdb.DuckDBPyConnection, database: Path) -> PreviousState:
    rows = con.execute("SELECT path, sha256, file_size, file_mtime_ns FROM snapshots").fetchall()
    shas = {path: sha for path, sha, _, _ in rows}
    stats = {path: (size, mtime) for path, _, size, mtime in rows if size is not None and mtime is not None}
    row = con.execute(
        "SELECT fingerprint FROM pipeline_runs WHERE status = 'complete' "
        "ORDER BY finished_at DESC LIMIT 1").fetchone()
    urls = _document_urls(con)
    return PreviousState(snapshot_shas=shas, fingerprint=row[0] if row else None, database=database,
                         document_urls=urls, snapshot_stats=stats, snapshots_fingerprint=_snapshots_fingerprint(con))


def _snapshots_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    """The snapshots' fingerprint of the last run that did work, complete or not (each such run
    writes the snapshots table, or leaves it as it is when the fingerprint is the same); None
    for an output written before runs recorded it (or by ``ingest``), which rewrites the table."""
    try:
        row = con.execute("SELECT snapshots_fingerprint FROM pipeline_runs WHERE work_done "
                          "ORDER BY finished_at DESC LIMIT 1").fetchone()
    except duckdb.BinderException:  # an output written before the column existed
        return None
    return row[0] if row else None


READ_WHOLE_CACHE_ABOVE = 500
"""Snapshots asked for at once beyond which the whole record cache is read: filtering every row
against a list that long costs more than reading it all."""


class RecordCache(Mapping[tuple[str, str], str]):
    """``record_cache``'s JSON made by this code's parsers, by (snapshot path, sha256).

    Which snapshots it holds is read at once; their JSON only for the snapshots asked for, and
    kept (:meth:`load` reads many in one query). A warm run needs the records of the pages it
    reconciles, not the whole store's: at 20,000 records the cache is 155 MB of JSON, and
    reading it all was a twentieth of a one-page run. Records parsed by another version of the
    parsers are not there: a parser that learnt to read a field must not be shadowed by what
    the old one made of the bytes.
    """

    def __init__(self, database: Path, keys: Iterable[tuple[str, str]]) -> None:
        self.database = database
        self._keys = frozenset(keys)
        self._json: dict[tuple[str, str], str] = {}

    @classmethod
    def of(cls, database: Path) -> RecordCache:
        """The cache of ``database`` (empty when its table cannot be read: nothing is reused)."""
        return cls(database, _read_rows(database, "SELECT snapshot_path, sha256 FROM record_cache WHERE parser_version = ?",
                                        [parser_version()]))

    def __getitem__(self, key: tuple[str, str]) -> str:
        if key not in self._keys:
            raise KeyError(key)
        if key not in self._json:
            self.load([key])
        return self._json[key]

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def read(self) -> int:
        """How many snapshots' JSON has been read so far."""
        return len(self._json)

    def load(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read the JSON of those of ``keys`` it holds and has not read yet, in one query.

        Raises:
            OutputError: the database can no longer be read, or no longer holds one of them.
        """
        wanted = {key for key in keys if key in self._keys and key not in self._json}
        if not wanted:
            return
        query = "SELECT snapshot_path, sha256, records_json FROM record_cache WHERE parser_version = ?"
        params: list[object] = [parser_version()]
        if len(wanted) <= READ_WHOLE_CACHE_ABOVE:
            query += " AND list_contains(?, snapshot_path)"
            params.append(sorted({path for path, _ in wanted}))
        try:
            with duckdb.connect(str(self.database), read_only=True) as con:
                for path, sha, raw in con.execute(query, params).fetchall():
                    if (path, sha) in wanted:
                        self._json[(path, sha)] = raw
        except duckdb.Error as exc:
            raise OutputError(self.database, f"its record cache could not be read: {exc}") from exc
        if missing := wanted - self._json.keys():
            raise OutputError(self.database, f"its record cache no longer holds the records of {min(missing)[0]}")


def load_cached(cache: Mapping[tuple[str, str], str], keys: Iterable[tuple[str, str]]) -> None:
    """Have ``cache`` read the JSON of ``keys`` in one go (a :class:`RecordCache`; any other
    mapping holds its values already)."""
    if isinstance(cache, RecordCache):
        cache.load(keys)


@dataclass(frozen=True, eq=False)
class CachedJSON:
    """The records JSON of one snapshot in a record cache, read when called. Equal only to
    itself: comparing two by value would compare (and so read) their whole caches."""

    cache: Mapping[tuple[str, str], str]
    key: tuple[str, str]

    def __call__(self) -> str:
        return self.cache[self.key]


def _read_record_keys(database: Path) -> dict[tuple[str, str], str]:
    # Keys hold title words folded by the reconciliation's code, not only the parsers': any
    # other version of the code computes them again (an output written before keys were kept
    # has none: they are computed from the records).
    return _read_by_snapshot(database, "record_keys", "keys_json", "key_version", code_version())


def _read_by_snapshot(database: Path, table: str, column: str, version_column: str,
                      version: str) -> dict[tuple[str, str], str]:
    """(snapshot path, sha256) -> ``column`` of ``table``'s rows made by ``version`` of the code
    (none when the table cannot be read: nothing is reused)."""
    return {(p, s): j for p, s, j in _read_rows(
        database, f"SELECT snapshot_path, sha256, {column} FROM {table} WHERE {version_column} = ?",  # noqa: S608
        [version])}


def _read_rows(database: Path, query: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """The rows of a query of ``database``, opened read-only; none when it cannot be read (an
    output written before the table existed, or no DuckDB database at all): nothing is reused."""
    try:
        with duckdb.connect(str(database), read_only=True) as con:
            return con.execute(query, list(params)).fetchall()
    except duckdb.Error:
        return []


def _read_page_heads(database: Path) -> dict[str, PageBasis]:
    rows = _read_rows(database, "SELECT document_id, any_value(document_sha256), any_value(basis) "
                                "FROM document_basis GROUP BY document_id")
    return {d: PageBasis(d, sha, basis) for d, sha, basis in rows}


def _read_page_basis(database: Path) -> dict[str, PageBasis]:
    # None read from an output written before pages were tracked: every page is reconciled again.
    rows = _read_rows(database, "SELECT document_id, document_sha256, basis, trial_id, snapshot_path, snapshot_sha256 "
                                "FROM document_basis")
    ids: dict[str, set[str]] = {}
    snaps: dict[str, dict[str, str]] = {}
    head: dict[str, tuple[str | None, str | None]] = {}
    for doc_id, doc_sha, basis, trial_id, path, sha in rows:
        head[doc_id] = (doc_sha, basis)
        if trial_id:
            ids.setdefault(doc_id, set()).add(trial_id)
        if path:
            snaps.setdefault(doc_id, {})[path] = sha
    return {d: PageBasis(d, sha, basis, frozenset(ids.get(d, ())), snaps.get(d, {})) for d, (sha, basis) in head.items()}


def sha_key(path: str, sha256: str) -> tuple[str, str]:
    """What parsed records are reused by: the snapshot's sha256 and its folder (the registry whose
    parser read it), not its path; the same bytes at another path are not parsed again."""
    return path.split("/", 1)[0], sha256


def classify(entries: Iterable[SnapshotEntry], previous: PreviousState) -> dict[str, str]:
    """Snapshot path -> new, changed or unchanged, against the previous run."""
    out = {}
    for entry in entries:
        before = previous.snapshot_shas.get(entry.path)
        out[entry.path] = "new" if before is None else ("unchanged" if before == entry.sha256 else "changed")
    return out


def registry_counts(
    entries: Sequence[SnapshotEntry], outcomes: dict[str, str], previous: PreviousState
) -> dict[str, Counter[str]]:
    """Per registry, how many snapshots were new, changed, unchanged, failed or removed."""
    counts: dict[str, Counter[str]] = {}
    for entry in entries:
        counts.setdefault(entry.registry, Counter())[outcomes[entry.path]] += 1
    current = {e.path for e in entries}
    for path in previous.snapshot_shas.keys() - current:
        folder = path.split("/", 1)[0]
        if folder in REGISTRIES:  # documents are not registry snapshots
            counts.setdefault(folder, Counter())["removed"] += 1
    return counts


@lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 of the pipeline's own source: a new version of the code re-does the work.

    Computed once per process: the code that runs is the code imported when it started,
    whatever happens to the files afterwards.
    """
    digest = hashlib.sha256()
    root = PACKAGE_DIR
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


PARSER_SOURCES = ("registries", "models.py")


@lru_cache(maxsize=1)
def parser_version() -> str:
    """sha256 of the code that turns snapshot bytes into records (the parsers, the models and the
    vocabularies): cached records are reused only from the same version."""
    digest = hashlib.sha256()
    root = PACKAGE_DIR
    for name in PARSER_SOURCES:
        paths = sorted((root / name).rglob("*.py")) if (root / name).is_dir() else [root / name]
        for path in paths:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprints(
    document_shas: Iterable[str],
    entries: Iterable[SnapshotEntry],
    links_sha: str | None,
    on_disk: Mapping[str, str] | None = None,
    stats: Mapping[str, tuple[int, int]] | None = None,
    ingested: Iterable[SnapshotEntry] = (),
) -> tuple[str, str]:
    """(the run's fingerprint, the snapshots' fingerprint), each entry dumped once for both.

    The run's is sha256 over everything a run reads: documents, registry snapshots, links and
    the code. A snapshot counts with its whole manifest entry (a flag such as ``stale`` changes
    the outputs too) and with what is on disk: ``on_disk`` maps a path to ``ok`` when its file
    holds the bytes of the entry's sha256, else to what it holds instead (see
    :func:`pipeline.stages.plan_run`); a path not in it counts as ``ok``. The records ``ingest``
    loaded count by number and study (``ingested``: :func:`pipeline.store.ingested.read_ingested`).

    The snapshots' fingerprint is over the store alone: every entry of ``entries`` (those of
    documents as well as registries'), what is on disk, each file's (size, mtime_ns) as
    ``stats`` gives it, the links and the code: everything the ``snapshots`` and
    ``trial_links`` tables are made of. A run whose snapshots' fingerprint is that of the
    run that last wrote them leaves them as they are (a warm run with one page changed rewrote
    20,000 rows and their Parquet file).
    """
    disk = on_disk or {}
    file_stats = stats or {}
    run, store = hashlib.sha256(), hashlib.sha256()
    for sha in sorted(document_shas):
        run.update(f"doc {sha}\n".encode())
    for entry in sorted(ingested, key=lambda e: (e.registry, e.trial_id or "", e.path)):
        run.update(f"ingested {entry.registry} {entry.trial_id} {entry.path} {entry.sha256}\n".encode())
    for entry in sorted(entries, key=lambda e: e.path):
        line = f"snap {entry.model_dump_json()} {disk.get(entry.path, 'ok')}\n".encode()
        if entry.registry in REGISTRIES:
            run.update(line)
        store.update(line)
        store.update(f"stat {file_stats.get(entry.path)}\n".encode())
    tail = f"links {links_sha}\ncode {code_version()}\n".encode()
    run.update(tail)
    store.update(tail)
    return run.hexdigest(), store.hexdigest()


def records_json(records: Sequence[TrialRecord]) -> str:
    """Records as the JSON kept in ``record_cache``."""
    return _records_adapter.dump_json(list(records)).decode()


def records_from_json(raw: str) -> list[TrialRecord]:
    """Records back from ``record_cache``."""
    return _records_adapter.validate_json(raw)
