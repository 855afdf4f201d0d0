"""Bulk ingest: a large set of ClinicalTrials.gov API v2 records into the output tables, streaming.

    source --iter_study_bytes--> (label, bytes) --orjson--> dict --parse_study--> TrialRecord
           --record_rows--> rows --one Batch per chunk, through Arrow--> staging DuckDB --> published

A source is an NDJSON file (one study per line), a JSON file (one study, or a ``{"studies": [...]}``
page as the API's ``/studies`` endpoint returns), a zip of JSON files (the bulk download as
ClinicalTrials.gov serves it) or a folder of any of these. Only one chunk of records is held at a
time and DuckDB works under a memory limit, so memory stays flat as the input grows.

Every chunk goes through one :func:`~pipeline.load.writer.staged_output`: the outputs change once, whole,
when the whole source has been read. A record that cannot be decoded or parsed becomes a
``load_errors`` row naming its file (and line) and the rest still loads.
"""

from __future__ import annotations

import gc
import itertools
import logging
import lzma
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.load.rows import IngestCounts, LoadError, RecordRows, RunInfo, run_row
from pipeline.errors import ExitStatus, SnapshotError
from pipeline.files import MiB, read_regular_file, size_problem
from pipeline.load.writer import (
    DB_NAME,
    PARQUET_LINK,
    Batch,
    apply_batch,
    output_errors,
    output_lock,
    row_counts,
    staged_output,
)
from pipeline.models import SnapshotEntry, TrialRecord
from pipeline.stages import new_run_id
from pipeline.store import ingest_sql
from pipeline.store.chunks import chunks_of, mapped_ndjson_chunks
from pipeline.store.study import parse_one
from pipeline.load.tables import HISTORY_KEYS, TRIAL_TABLES

LOG = logging.getLogger("trialrecon")

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
JSON_SUFFIXES = (".json",)
ZIP_SUFFIXES = (".zip",)

# DuckDB caches pages up to 80% of RAM by default; under a limit it spills to its temp folder,
# which is what keeps a 100,000-record ingest in the same memory as a 2,000-record one.
DUCKDB_MEMORY_LIMIT = "256MB"
ENGINES = ("duckdb", "python")
READ_BUFFER = 1 << 20
MAX_MEMBER_BYTES = 128 * MiB
"""The most bytes one JSON file or zip member may hold (uncompressed): a /studies page of 1,000
studies is tens of MiB. A member over it is a load error naming it, read no further."""

Skip = Callable[[SnapshotError], None]
""":func:`iter_study_bytes`'s handling of a file or member that cannot be read."""

# Top-level keys of a /studies page; a single study's first key is one of its sections.
_PAGE_KEYS = frozenset({b"studies", b"nextPageToken", b"totalCount"})
_FIRST_KEY = re.compile(rb'\A\s*\{\s*"([A-Za-z]{1,40})"')


@dataclass(frozen=True)
class IngestReport:
    """What one ingest loaded, and what it could not.

    ``studies`` counts every study read, good and bad; ``records`` those parsed and loaded (a
    trial given twice counts twice, its last record stays); ``bytes_read`` their JSON bytes.
    """

    run_id: str
    source: Path
    database: Path
    parquet_dir: Path
    studies: int
    records: int
    bytes_read: int
    row_counts: dict[str, int]
    load_errors: list[LoadError]

    @property
    def exit_code(self) -> int:
        """0 complete, 3 partial (some records could not be used)."""
        return ExitStatus.PARTIAL if self.load_errors else ExitStatus.OK


def iter_study_bytes(source: Path, unreadable: list[LoadError] | None = None) -> Iterator[tuple[str, bytes]]:
    """Every study in ``source``, one at a time, as ``(label, JSON bytes)``, in a stable order.

    Args:
        source: an NDJSON file (``.ndjson``, ``.jsonl``), a JSON file (one study or a
            ``{"studies": [...]}`` page), a ``.zip`` of JSON files, or a folder of any of these
            (searched recursively, sorted by path; hidden files are skipped).

    Yields:
        The label names where the study stands, for error messages and ``snapshot_path``:
        ``file.ndjson:12`` (line 12), ``page.json#studies[3]``, ``bulk.zip!NCT00000102.json``,
        or the file itself. A page or line that is not valid JSON is yielded as it is, so the
        error surfaces as that study's load error.

    Args:
        source: what to read.
        unreadable: takes a load error for each JSON file or zip member that cannot be read
            (larger than ``MAX_MEMBER_BYTES``, a bad CRC, encrypted, an unsupported
            compression method) and is skipped; when None, the first such file raises.

    Raises:
        SnapshotError: ``source`` does not exist or is not a kind of file we read, or (without
            ``unreadable``) a file or member in it cannot be read.
    """
    def skip(error: SnapshotError) -> None:
        if unreadable is None:
            raise error
        unreadable.append(LoadError(error.path, "ctgov", None, error.problem))

    if source.is_dir():
        yield from _iter_folder(source, skip)
    elif source.is_file():
        if not source.name.endswith(NDJSON_SUFFIXES + JSON_SUFFIXES + ZIP_SUFFIXES):
            raise SnapshotError(source, "not a .json, .ndjson, .jsonl or .zip file")
        yield from _iter_file(source, skip)
    elif source.exists():
        raise SnapshotError(source, "not a regular file or a folder")
    else:
        raise SnapshotError(source, "not found")


def ingest_ctgov(
    source: Path, output_dir: Path, *, chunk_size: int = 4000, lock_timeout: float | None = None,
    engine: str = "duckdb",
) -> IngestReport:
    """Load every ClinicalTrials.gov study in ``source`` into ``output_dir``'s tables.

    Records replace the earlier rows of the same trial (in the output, and within the source:
    the last one wins); each gets its ``trial_history`` values; bad records become
    ``load_errors`` rows. One ``pipeline_runs`` row records the ingest.

    Args:
        source: see :func:`iter_study_bytes` (its labels name it by its absolute path).
        output_dir: the output folder (``trialrecon.duckdb`` and ``parquet/``).
        chunk_size: records per batch: memory grows with it, per-batch overhead shrinks.
        lock_timeout: seconds to wait for another run writing ``output_dir`` (default:
            ``pipeline.load.writer.LOCK_WAIT_SECONDS``).
        engine: ``"duckdb"`` (DuckDB decodes and reads the records on all cores, see
            :mod:`pipeline.store.ingest_sql`) or ``"python"`` (orjson and ``parse_study``). Both read
            every kind of source and write the same rows; the DuckDB one is the faster.

    Returns:
        Counts, the load errors, and where the outputs are.

    Raises:
        SnapshotError: ``source`` is missing, of an unknown kind, or holds no study files
            (nothing is written then).
        OutputLockedError: another run held the output folder for ``lock_timeout`` seconds.
        OutputError: the output folder or database cannot be written (read-only, full, not DuckDB).
    """
    # Labels name where each study stands: a run reads an ingested study back by its label
    # (pipeline.store.ingested), from whatever folder it runs in.
    source = source.absolute()
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    unreadable: list[LoadError] = []
    studies = iter_study_bytes(source, unreadable)
    first = next(studies, None)  # bad input must fail before the output folder is touched
    if first is None:
        if unreadable:
            raise SnapshotError(source, f"holds no readable studies ({unreadable[0].snapshot}: {unreadable[0].error})")
        raise SnapshotError(source, "holds no studies")
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    counts = IngestCounts()
    with output_errors(output_dir), output_lock(output_dir, timeout=lock_timeout), \
            staged_output(output_dir, run_id) as con:
        con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        chosen = _load_with_duckdb if engine == "duckdb" else _load_with_python
        chosen(con, itertools.chain([first], studies), chunk_size, run_id, started, counts, source)
        run = RunInfo(run_id=run_id, started_at=started, finished_at=datetime.now(UTC))
        finished = Batch()
        finished.add("load_errors", [{**vars(e), "run_id": run_id} for e in unreadable])
        counts.errors.extend(unreadable)
        row = run_row(run, documents=0, records=counts.records, load_errors=len(counts.errors), rows=None,
                      parsed=counts.studies, reused=0, work_done=True, fingerprint="")
        # The fingerprint stands for a flow run's inputs; an ingest has none to compare.
        finished.add("pipeline_runs", [{**row, "fingerprint": None}])
        apply_batch(con, finished)
    database = output_dir / DB_NAME
    return IngestReport(
        run_id=run_id, source=source, database=database, parquet_dir=output_dir / PARQUET_LINK,
        studies=counts.studies, records=counts.records, bytes_read=counts.bytes_read,
        row_counts=row_counts(database), load_errors=counts.errors,
    )


def _load_with_python(
    con: Any, studies: Iterator[tuple[str, bytes]], chunk_size: int, run_id: str, started: datetime,
    counts: IngestCounts, source: Path,
) -> None:
    """Every chunk decoded by orjson, parsed by parse_study, applied as a Batch."""
    # DuckDB releases the GIL while it inserts, so one chunk loads on this thread while the
    # next is parsed; leaving the pool waits for the chunk in flight (also on an error).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trialrecon-ingest") as loader:
        loading: Future[None] | None = None
        for chunk in _chunks(studies, chunk_size):
            with _cyclic_gc_paused():
                batch = _chunk_batch(chunk, run_id, started, counts)
            if loading is not None:
                loading.result()
            loading = loader.submit(apply_batch, con, batch)
            LOG.info("ingest %s: %d studies read, %d load errors", source, counts.studies, len(counts.errors))
        if loading is not None:
            loading.result()


def _load_with_duckdb(
    con: Any, studies: Iterator[tuple[str, bytes]], chunk_size: int, run_id: str, started: datetime,
    counts: IngestCounts, source: Path,
) -> None:
    """Every chunk decoded and read by DuckDB (pipeline.store.ingest_sql), in the same chunks as the Python path.

    An NDJSON file is read through a memory map (no copy of its bytes); the ``studies`` already
    read from it are read again there.
    """
    if source.is_file() and source.name.endswith(NDJSON_SUFFIXES):
        chunks = mapped_ndjson_chunks(source, chunk_size)
    else:
        chunks = chunks_of(studies, chunk_size)
    for outcome in ingest_sql.load_chunks(con, chunks, run_id, started):
        counts.add(outcome)
        LOG.info("ingest %s: %d studies read, %d load errors", source, counts.studies, len(counts.errors))


def _chunk_batch(chunk: Iterable[tuple[str, bytes]], run_id: str, observed_at: datetime, counts: IngestCounts) -> Batch:
    """One chunk of studies as a Batch: decoded, parsed, turned into rows; bad ones as load errors.

    ``observed_at`` is the history rows' ``valid_from`` (bulk records carry no fetch time);
    ``counts`` takes this chunk's totals.
    """
    latest: dict[tuple[str, str], tuple[TrialRecord, SnapshotEntry]] = {}
    errors: list[LoadError] = []
    for label, data in chunk:
        counts.studies += 1
        counts.bytes_read += len(data)
        parsed = parse_one(label, data)
        if isinstance(parsed, LoadError):
            errors.append(parsed)
            continue
        counts.records += 1
        latest[(parsed[0].registry, parsed[0].trial_id)] = parsed

    batch = Batch()
    keys = list(latest)
    for table in TRIAL_TABLES:
        batch.replace_keys(table.name, keys)
    # Made here, while the collector is paused, rather than streamed on the loader thread.
    for rows_of in RecordRows(list(latest.values()), run_id, observed_at).chunks():
        for table, rows in rows_of.items():
            (batch.history if table in HISTORY_KEYS else batch.rows).setdefault(table, []).extend(rows)
    batch.add("load_errors", [{**vars(e), "run_id": run_id} for e in errors])
    counts.errors.extend(errors)
    return batch


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a chunk is built.

    Decoding allocates containers by the thousand, and each collection they trigger rescans every
    record and row of the chunk held so far: about a sixth of the ingest's time. Decoded JSON,
    records and rows hold no reference cycles, so reference counting frees them all anyway.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()



def _chunks(items: Iterator[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


# -- reading sources ------------------------------------------------------------------------------


def _iter_folder(folder: Path, skip: Skip) -> Iterator[tuple[str, bytes]]:
    suffixes = NDJSON_SUFFIXES + JSON_SUFFIXES + ZIP_SUFFIXES
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(suffixes) and not name.startswith("."):
                yield from _iter_file(Path(dirpath) / name, skip)


def _iter_file(path: Path, skip: Skip) -> Iterator[tuple[str, bytes]]:
    name = path.name
    if name.endswith(NDJSON_SUFFIXES):
        yield from _iter_lines(path)
    elif name.endswith(ZIP_SUFFIXES):
        yield from _iter_zip(path, skip)
    else:
        try:
            data = read_regular_file(path, limit=MAX_MEMBER_BYTES, what="a JSON file", fail=SnapshotError)
        except FileNotFoundError:  # gone since the folder was listed
            skip(SnapshotError(path, "not found"))
            return
        except SnapshotError as exc:
            skip(exc)
            return
        yield from _split_page(str(path), data)


def _iter_lines(path: Path) -> Iterator[tuple[str, bytes]]:
    # A record line is tens of kB: with the default 8 kB buffer, reading lines cost 5x more.
    with path.open("rb", buffering=READ_BUFFER) as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield f"{path}:{number}", line


def _iter_zip(path: Path, skip: Skip) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SnapshotError(path, f"not a readable zip file ({exc})") from exc
    with archive:
        members = sorted((m for m in archive.infolist() if m.filename.endswith(JSON_SUFFIXES) and not m.is_dir()),
                         key=lambda m: m.filename)
        for member in members:
            label = f"{path}!{member.filename}"
            try:
                data = read_member(archive, member, label)
            except SnapshotError as exc:
                skip(exc)
                continue
            yield from _split_page(label, data)


# Compression methods zipfile can undo (stored, deflate, bzip2, LZMA).
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, label: str) -> bytes:
    """A zip member's bytes, never more than ``MAX_MEMBER_BYTES`` of them whatever its header says.

    Raises:
        SnapshotError: naming the member: encrypted, compressed by a method we cannot undo,
            larger than the budget (declared or found while reading), or damaged (bad CRC,
            truncated or corrupt data).
    """
    if member.flag_bits & 0x1:
        raise SnapshotError(label, "encrypted (a password is needed), not read")
    if member.compress_type not in _ZIP_METHODS:
        raise SnapshotError(label, f"compressed by method {member.compress_type}, which cannot be read")
    if member.file_size > MAX_MEMBER_BYTES:
        raise SnapshotError(label, size_problem(member.file_size, MAX_MEMBER_BYTES, "a zip member"))
    try:
        with archive.open(member) as fh:
            # The header's size may lie: read one byte past the budget to find out.
            data = fh.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError, NotImplementedError,
            RuntimeError) as exc:
        # BadZipFile: a bad CRC or header; EOFError, zlib/LZMA/bz2 (OSError) errors: damaged data;
        # RuntimeError, NotImplementedError: what zipfile raises for encryption and methods it lacks.
        raise SnapshotError(label, f"cannot be read from the zip ({exc})") from exc
    if len(data) > MAX_MEMBER_BYTES:
        raise SnapshotError(label, f"holds more than its header says: {size_problem(len(data), MAX_MEMBER_BYTES, 'a zip member')}")
    return data


def _split_page(label: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """A single study as it is; a ``/studies`` page as its studies (only pages are decoded here)."""
    first_key = _FIRST_KEY.match(data)
    if first_key is None or first_key.group(1) not in _PAGE_KEYS:
        yield label, data
        return
    try:
        page = orjson.loads(data)
    except orjson.JSONDecodeError:
        yield label, data
        return
    studies = page.get("studies")
    if not isinstance(studies, list):
        yield label, data  # fails as a study, naming the file
        return
    for index, study in enumerate(studies):
        yield f"{label}#studies[{index}]", orjson.dumps(study)
