"""Stage 5: write a batch of rows into ``output/trialrecon.duckdb`` and ``output/parquet/``.

Loading is all-or-nothing. The previous database is copied to a staging file, the batch is
applied there (delete the units being reloaded, bulk-insert the new rows through Arrow), and the
staging file atomically replaces the database. The Parquet export is written into a fresh
version folder and ``output/parquet`` (a symlink) is swapped to it in one atomic rename. A run
killed at any point leaves the previous outputs readable and complete.

Only one run may write an output folder at a time: :func:`output_lock` holds a file lock.

The outputs are published as one unit. The database, the Parquet export and the reports are
replaced one after the other, so a marker (``.publishing``, holding the version) is written
before the first of them is replaced and removed once the last one is in place
(:func:`publishing`). A run killed in between leaves the marker behind; the next run finds it
(:func:`interrupted_publish`) and writes every output again instead of trusting them.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from pipeline.errors import OutputError, OutputLockedError
from pipeline.load.tables import ALL_TABLES, HISTORY_KEYS, PARQUET_TABLES, TABLES_BY_NAME, VIEWS, Table

LOG = logging.getLogger("trialrecon")

DB_NAME = "trialrecon.duckdb"
PUBLISHING_NAME = ".publishing"
PARQUET_LINK = "parquet"
VERSIONS_DIR = ".versions"
LOCK_NAME = ".trialrecon.lock"
KEEP_VERSIONS = 2
LOCK_WAIT_SECONDS = 600.0
"""How long a run waits for another run that holds the output folder, before it gives up."""
EXPORT_THREADS = 2
STAGING_MEMORY_LIMIT = "512MB"
"""DuckDB's memory for writing and exporting the staged database (its own default is 80% of the
machine's): beyond it, inserts and the sorts of the Parquet export spill to disk beside the
database. A site's run of 2,000 pages is written as fast under 512 MB as under 1 GB."""
EXPORT_RETRY_MEMORY_LIMIT = "4GB"
"""The memory a table's export is given again when it could not be written under
:data:`STAGING_MEMORY_LIMIT` (each Parquet writer buffers a row group whole, so rows wide
enough need more than the cap): the cap is there to keep a run small, not to fail it."""


INSERT_CHUNK_ROWS = 20_000
"""Rows turned into one Arrow table at a time: a site's hundreds of thousands of rows are never
held twice over (as dicts and as columns) all at once."""


class RowStream(Protocol):
    """Rows a batch makes only when they are written, a chunk at a time: a site's comparisons and
    records give more than a million rows, which as dicts would outweigh everything else a run
    holds. A chunk maps table names to rows; a history table's rows are its current values."""

    @property
    def tables(self) -> frozenset[str]:
        """The tables its chunks fill (none when it has nothing to give)."""
        ...

    def chunks(self) -> Iterator[Mapping[str, Sequence[Mapping[str, object]]]]:
        """The rows, a chunk at a time."""
        ...


VALIDITY_COLUMNS = ("valid_from", "valid_to", "run_id")
"""The columns of a history table that say when and by which run a value held, not what it was."""


@dataclass(frozen=True)
class HistoryFromRows:
    """A history table's current values read back from the rows a batch wrote to ``table`` (those
    stamped ``run_id``), each valid from ``valid_from``.

    Every other column of the history table is a column of ``table`` by the same name, so the
    values are copied by DuckDB: made in Python, a site's 300,000 comparisons were turned into
    rows and Arrow columns twice, once for each table.
    """

    table: str
    run_id: str
    valid_from: datetime


@dataclass
class Batch:
    """What one run writes.

    Attributes:
        rows: table name -> rows (dicts keyed by column name; missing columns are NULL).
        streams: rows made as they are written (:class:`RowStream`), inserted after ``rows``.
        replace: table name -> key tuples (in the table's ``replace_by`` order) whose existing
            rows are deleted before the new rows go in.
        truncate: tables whose existing rows are all deleted first (full-state tables).
        history: history table name -> the current value of each key; a value that differs from
            the key's open row closes that row (valid_to) and opens a new one.
        history_from: history table name -> where its current values are read from once the
            batch's rows are in (:class:`HistoryFromRows`), folded in as ``history`` is.
    """

    rows: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    replace: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)
    truncate: set[str] = field(default_factory=set)
    history: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    streams: list[RowStream] = field(default_factory=list)
    history_from: dict[str, HistoryFromRows] = field(default_factory=dict)

    def add(self, table: str, rows: Sequence[Mapping[str, object]]) -> None:
        self.rows.setdefault(table, []).extend(dict(r) for r in rows)

    def replace_keys(self, table: str, keys: Sequence[tuple[object, ...]]) -> None:
        self.replace.setdefault(table, []).extend(keys)

    def touched(self) -> set[str]:
        """The tables this batch changes: rows to insert, keys to replace, truncated, history to fold."""
        return ({name for name, rows in self.rows.items() if rows} | {name for name, keys in self.replace.items() if keys}
                | set(self.truncate) | {name for name, current in self.history.items() if current}
                | {name for stream in self.streams for name in stream.tables} | set(self.history_from))


@dataclass(frozen=True)
class LoadResult:
    database: Path
    parquet_dir: Path
    row_counts: dict[str, int]


@contextmanager
def output_errors(output_dir: Path) -> Iterator[None]:
    """Turn what the system or DuckDB says about writing ``output_dir`` into one :class:`OutputError`.

    A read-only folder, a full disk, a path that cannot be a folder (``/proc/nope``) and an output
    database that is not DuckDB (or is truncated) each become one line naming the file, not a
    traceback. Our own errors pass through unchanged.

    Raises:
        OutputError: an ``OSError`` or a DuckDB I/O or corruption error was raised in the block.
    """
    try:
        yield
    except OSError as exc:
        raise OutputError(exc.filename or output_dir, f"cannot be written ({exc.strerror or exc})") from exc
    except (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException) as exc:
        # Not DuckDB, truncated, or a write the disk refused: DuckDB's first line names the file.
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OutputError(output_dir / DB_NAME, f"DuckDB cannot use it ({message})") from exc


def check_output_folder(output_dir: Path) -> None:
    """Make sure ``output_dir`` exists and takes files, before a run spends any work.

    Raises:
        OutputError: the folder cannot be created (``/proc/nope``) or written (read-only).
    """
    with output_errors(output_dir):
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir, prefix=".trialrecon-probe-"):
            pass


@contextmanager
def output_lock(output_dir: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the output folder's lock; a second run waits ``timeout`` seconds, then gives up.

    Args:
        output_dir: the output folder (created if missing).
        timeout: seconds to wait; :data:`LOCK_WAIT_SECONDS` when None.

    Raises:
        OutputLockedError: another run holds the lock.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(output_dir / LOCK_NAME))
    try:
        lock.acquire(timeout=LOCK_WAIT_SECONDS if timeout is None else timeout)
    except Timeout as exc:
        raise OutputLockedError(output_dir) from exc
    try:
        yield
    finally:
        lock.release()


def arrow_table(table: Table, rows: Sequence[Mapping[str, object]]) -> pa.Table:
    """Rows as an Arrow table with the table's exact schema (unknown keys are an error)."""
    names = table.column_names
    known = set(names)
    # A keys view compared with a set built once: no set per row (this runs for every row loaded).
    for row in rows:
        if not row.keys() <= known:
            raise ValueError(f"table {table.name}: unknown columns {sorted(set(row) - known)}")
    columns = {name: [row.get(name) for row in rows] for name in names}
    return pa.Table.from_pydict(columns, schema=table.arrow_schema())


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for table in ALL_TABLES:
        con.execute(table.ddl())
        existing = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table.name]
        ).fetchall()}
        for col in table.columns:
            if col.name not in existing:  # an output written by an older version
                con.execute(f'ALTER TABLE "{table.name}" ADD COLUMN "{col.name}" {col.type}')
    for _, (_, ddl) in VIEWS.items():
        con.execute(ddl)


def _schema_complete(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether every table, column and view is there already (one catalog query)."""
    present: dict[str, set[str]] = {}
    for table_name, column_name in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main'"  # views' too
    ).fetchall():
        present.setdefault(table_name, set()).add(column_name)
    return all(set(t.column_names) <= present.get(t.name, set()) for t in ALL_TABLES) and all(
        view in present for view in VIEWS)


def _apply(con: duckdb.DuckDBPyConnection, batch: Batch, after_chunk: Callable[[], None] | None = None) -> None:
    for name in sorted(batch.truncate):
        con.execute(f'DELETE FROM "{TABLES_BY_NAME[name].name}"')
    for name, keys in sorted(batch.replace.items()):
        table = TABLES_BY_NAME[name]
        if not keys:
            continue
        key_cols = table.replace_by
        key_schema = pa.schema([table.arrow_schema().field(c) for c in key_cols])
        key_table = pa.Table.from_pylist([dict(zip(key_cols, k, strict=True)) for k in set(keys)], schema=key_schema)
        cond = " AND ".join(f't."{c}" IS NOT DISTINCT FROM k."{c}"' for c in key_cols)
        with registered(con, "_keys", key_table):
            con.execute(f'DELETE FROM "{table.name}" t USING _keys k WHERE {cond}')
    for name, rows in sorted(batch.rows.items()):
        _insert(con, name, rows)
    # A history table's current values are gathered in a temporary table, then folded in once.
    gathered: set[str] = set()

    def gathering(name: str) -> str:
        """The temporary table of history table ``name``'s current values (quoted), made on first use."""
        if name not in gathered:
            con.execute(f'CREATE OR REPLACE TEMP TABLE {_current(name)} AS SELECT * FROM "{name}" LIMIT 0')
            gathered.add(name)
        return _current(name)

    def gather(name: str, current: Sequence[Mapping[str, object]]) -> None:
        _insert(con, name, current, into=gathering(name))

    for stream in batch.streams:
        for chunk in stream.chunks():
            for name, rows in chunk.items():
                if rows and name in HISTORY_KEYS:
                    gather(name, rows)
                elif rows:
                    _insert(con, name, rows)
            if after_chunk is not None:
                after_chunk()
    for name, current in batch.history.items():
        if current:
            gather(name, current)
    for name, source in sorted(batch.history_from.items()):
        cols = ", ".join(_quoted(c) for c in TABLES_BY_NAME[name].column_names if c not in VALIDITY_COLUMNS)
        con.execute(f"INSERT INTO {gathering(name)} ({cols}, valid_from, run_id) "
                    f"SELECT {cols}, ?, run_id FROM {_quoted(source.table)} WHERE run_id = ?",
                    [source.valid_from, source.run_id])
    for name in sorted(gathered):
        try:
            apply_history_from(con, name, _current(name))
        finally:
            con.execute(f"DROP TABLE IF EXISTS {_current(name)}")


def _quoted(name: str) -> str:
    return f'"{name}"'


def _current(name: str) -> str:
    """The temporary table (quoted) where history table ``name``'s current values are gathered."""
    return _quoted(f"_current_{name}")


def _insert(con: duckdb.DuckDBPyConnection, name: str, rows: Sequence[Mapping[str, object]], into: str | None = None) -> None:
    """Insert ``rows`` of table ``name`` (into the table ``into``, quoted, of the same columns, when given),
    :data:`INSERT_CHUNK_ROWS` at a time through Arrow."""
    table = TABLES_BY_NAME[name]
    cols = ", ".join(f'"{c}"' for c in table.column_names)
    for start in range(0, len(rows), INSERT_CHUNK_ROWS):
        with registered(con, "_rows", arrow_table(table, rows[start:start + INSERT_CHUNK_ROWS])):
            con.execute(f'INSERT INTO {into or _quoted(table.name)} ({cols}) SELECT {cols} FROM _rows')


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """``table`` visible to ``con``'s SQL as ``name`` inside the block, and not after it (even on an error)."""
    con.register(name, table)
    try:
        yield
    except BaseException:
        # After an I/O error DuckDB refuses the unregister too: keep the error that brought us here.
        with suppress(duckdb.Error):
            con.unregister(name)
        raise
    con.unregister(name)


def apply_history_from(con: duckdb.DuckDBPyConnection, name: str, source: str) -> None:
    """Fold the current values in relation ``source`` into history table ``name``.

    An open row whose value differs is closed (valid_to = the new valid_from); a key with no
    open row gets one. ``source`` has the history table's columns (a table, view or Arrow
    relation registered on ``con``).

    Intervals only move forward: a new value whose ``valid_from`` is not after the open row's
    (a snapshot restored from an older capture, or changed under the same ``fetched_at``)
    starts when it is loaded instead (the transaction's time, and after the open row's start),
    so no interval ends before it starts or has no length.
    """
    table = TABLES_BY_NAME[name]
    keys, values = HISTORY_KEYS[name]
    same_key = " AND ".join(f'h."{k}" IS NOT DISTINCT FROM c."{k}"' for k in keys)
    changed = " OR ".join(f'h."{v}" IS DISTINCT FROM c."{v}"' for v in values)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _history_in AS SELECT c.* REPLACE ("
        f"CASE WHEN h.valid_from IS NULL OR c.valid_from > h.valid_from THEN c.valid_from "
        f"ELSE greatest(CAST(current_timestamp AS TIMESTAMPTZ), h.valid_from + INTERVAL 1 MICROSECOND) END "
        f'AS valid_from) FROM {source} c LEFT JOIN "{name}" h ON {same_key} AND h.valid_to IS NULL'
    )
    try:
        con.execute(
            f'UPDATE "{name}" h SET valid_to = c.valid_from FROM _history_in c '
            f"WHERE {same_key} AND h.valid_to IS NULL AND ({changed})"
        )
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        picked = ", ".join(f'c."{c}"' for c in table.column_names)
        con.execute(
            f'INSERT INTO "{name}" ({cols}) SELECT {picked} FROM _history_in c '
            f'WHERE NOT EXISTS (SELECT 1 FROM "{name}" h WHERE {same_key} AND h.valid_to IS NULL)'
        )
    finally:
        con.execute("DROP TABLE IF EXISTS _history_in")


def _order_by(table: Table) -> str:
    cols = table.primary_key or tuple(c.name for c in table.columns if not c.type.endswith("[]"))
    return ", ".join(f'"{c}"' for c in cols)


def _export_parquet(con: duckdb.DuckDBPyConnection, folder: Path, kept: Path | None = None,
                    unchanged: Collection[str] = ()) -> None:
    """Every table of :data:`PARQUET_TABLES` to ``folder/<table>.parquet``, sorted by its key, two tables at a time.

    A table in ``unchanged`` whose file in ``kept`` (the Parquet version published with the
    database this export starts from) has the table's columns is hard-linked from there instead:
    its rows are those already exported, and a site's warm run changes a few tables of many.

    A COPY leaves cores idle in its sort and writer phases: two side by side cut a large
    export by a third. The largest table goes first so that it does not finish last alone.
    """
    folder.mkdir(parents=True)
    exported = []
    for table in PARQUET_TABLES:
        if not (kept is not None and table.name in unchanged and _link_kept(kept, folder, table)):
            exported.append(table)
    sizes = dict(con.execute("SELECT table_name, estimated_size FROM duckdb_tables() WHERE NOT temporary").fetchall())
    tables = sorted(exported, key=lambda table: -sizes.get(table.name, 0))

    def export(table: Table) -> Table | None:
        """Export ``table``; ``table`` itself when DuckDB ran out of memory doing it."""
        path = folder / f"{table.name}.parquet"
        with con.cursor() as cursor:
            try:
                cursor.execute(f'COPY (SELECT * FROM "{table.name}" ORDER BY {_order_by(table)}) TO ? (FORMAT PARQUET)',
                               [str(path)])
            except duckdb.OutOfMemoryException:
                path.unlink(missing_ok=True)
                return table
        return None

    with ThreadPoolExecutor(max_workers=EXPORT_THREADS, thread_name_prefix="trialrecon-export") as pool:
        too_large = [table for table in pool.map(export, tables) if table is not None]
    if too_large:
        [(limit,)] = con.execute("SELECT current_setting('memory_limit')").fetchall()
        LOG.warning("exporting %s ran out of DuckDB's %s: exported again, one at a time, under %s",
                    ", ".join(t.name for t in too_large), limit, EXPORT_RETRY_MEMORY_LIMIT)
        con.execute(f"SET memory_limit = '{EXPORT_RETRY_MEMORY_LIMIT}'")
        try:
            for table in too_large:
                if export(table) is not None:
                    raise OutputError(folder / f"{table.name}.parquet",
                                      f"DuckDB ran out of memory exporting it, even under {EXPORT_RETRY_MEMORY_LIMIT}")
        finally:
            con.execute(f"SET memory_limit = '{limit}'")


def _link_kept(kept: Path, folder: Path, table: Table) -> bool:
    """Hard-link ``kept/<table>.parquet`` into ``folder`` when it holds the table's columns, in
    order (an older version's file lacks a column added since); False when it cannot be used."""
    source = kept / f"{table.name}.parquet"
    try:
        if pq.read_schema(source).names != list(table.column_names):
            return False
        os.link(source, folder / source.name)
    except (OSError, pa.ArrowException):  # missing, unreadable, or a file system without hard links
        return False
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_symlink(link: Path, target: str) -> None:
    if link.exists() and not link.is_symlink():  # a plain folder from an older layout
        legacy = link.parent / VERSIONS_DIR / "legacy-parquet"
        shutil.rmtree(legacy, ignore_errors=True)
        legacy.parent.mkdir(parents=True, exist_ok=True)
        link.rename(legacy)
    tmp = link.with_name(f".{link.name}.swap")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def _prune_versions(output_dir: Path, keep: str) -> None:
    versions = output_dir / VERSIONS_DIR
    if not versions.is_dir():
        return
    old = sorted((p for p in versions.iterdir() if p.name != keep), key=lambda p: p.stat().st_mtime)
    for path in old[: max(0, len(old) - (KEEP_VERSIONS - 1))]:
        shutil.rmtree(path, ignore_errors=True)


def _remove_leftovers(output_dir: Path) -> None:
    """Staging files of runs that were killed (they were never visible as outputs)."""
    for path in output_dir.glob(f".{DB_NAME}.*.staging*"):  # the database, its WAL and DuckDB's spill folder
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    for path in output_dir.glob(f".{PARQUET_LINK}.swap"):
        path.unlink(missing_ok=True)


@contextmanager
def publishing(output_dir: Path, version: str) -> Iterator[None]:
    """Mark the output folder as being published while the block replaces its outputs.

    The marker is removed only when the block ends without an error: after an error or a kill,
    the outputs may disagree with one another, and the next run repairs them.
    """
    _mark_publishing(output_dir, version)
    yield
    _unmark_publishing(output_dir)


def interrupted_publish(output_dir: Path) -> str | None:
    """The version whose publishing was interrupted (its outputs may disagree), or None."""
    marker = output_dir / PUBLISHING_NAME
    try:
        return marker.read_text(encoding="utf-8").strip() or "unknown"
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return "unknown"  # a marker we cannot read still says the publishing did not finish


def _mark_publishing(output_dir: Path, version: str) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    marker = output_dir / PUBLISHING_NAME
    with open(marker, "w", encoding="utf-8") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(output_dir)


def _unmark_publishing(output_dir: Path) -> None:
    (output_dir / PUBLISHING_NAME).unlink(missing_ok=True)
    _fsync_dir(output_dir)


@contextmanager
def staged_output(output_dir: Path, version: str, unchanged: Collection[str] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a staging copy of the output database, published whole on success.

    Apply any number of batches (:func:`apply_batch`) inside the ``with`` block: bulk loads
    stream chunk after chunk through one staging database. When the block ends without an
    error, every table is exported to a new Parquet version, and the database and the
    ``parquet`` symlink are each replaced with one atomic rename. On an error (or a kill) the
    previous outputs stay as they were.

    ``unchanged``: tables the caller leaves as they are in the published database, whose
    published Parquet files are linked rather than exported again (see :func:`_export_parquet`).
    Give none when the published outputs may disagree (an interrupted publish).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    database = output_dir / DB_NAME
    staging = output_dir / f".{DB_NAME}.{version}.staging"
    spill = f"{staging}.tmp"  # DuckDB's spill folder, beside the staged file
    version_dir = output_dir / VERSIONS_DIR / version
    swapped = False
    _remove_leftovers(output_dir)
    # The Parquet version published with the database copied below (None when there is none).
    kept = (output_dir / PARQUET_LINK).resolve() if database.exists() and (output_dir / PARQUET_LINK).is_symlink() else None
    try:
        if database.exists():
            shutil.copyfile(database, staging)
        con = duckdb.connect(str(staging), config={"memory_limit": STAGING_MEMORY_LIMIT, "temp_directory": spill})
        try:
            _ensure_schema(con)
            yield con
            shutil.rmtree(version_dir, ignore_errors=True)
            _export_parquet(con, version_dir / PARQUET_LINK, kept, unchanged)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        with open(staging, "rb") as fh:
            os.fsync(fh.fileno())
        _fsync_dir(version_dir / PARQUET_LINK)
        # The database and the Parquet link are two renames: between them, the marker stands.
        # A caller that publishes more (the reports) holds the marker already and clears it.
        own_marker = interrupted_publish(output_dir) is None
        if own_marker:
            _mark_publishing(output_dir, version)
        os.replace(staging, database)
        _swap_symlink(output_dir / PARQUET_LINK, f"{VERSIONS_DIR}/{version}/{PARQUET_LINK}")
        swapped = True
        _fsync_dir(output_dir)
        if own_marker:
            _unmark_publishing(output_dir)
    except BaseException:
        staging.unlink(missing_ok=True)
        Path(f"{staging}.wal").unlink(missing_ok=True)
        shutil.rmtree(spill, ignore_errors=True)
        if not swapped:
            shutil.rmtree(version_dir, ignore_errors=True)
        raise
    _prune_versions(output_dir, keep=version)


def apply_batch(con: duckdb.DuckDBPyConnection, batch: Batch, *, private: bool = False) -> None:
    """Apply one batch (deletes, inserts, history) in one transaction; in a database nobody else
    sees until it is published whole (``private``: a staged copy), committed after each chunk
    of its streams as well.

    DuckDB holds a transaction's new rows in memory, uncompressed, until it commits: a site's
    run (a million rows, 150 MB of cached records' JSON) held about 1.5 GiB more at once.
    """
    con.execute("BEGIN")

    def commit() -> None:
        con.execute("COMMIT")
        con.execute("BEGIN")

    try:
        _apply(con, batch, commit if private else None)
    except BaseException:
        _rollback(con)
        raise
    con.execute("COMMIT")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back, keeping the error that made us: after an I/O error (a truncated database, a full
    disk) DuckDB refuses the ROLLBACK too, and its complaint would hide the cause."""
    with suppress(duckdb.Error):
        con.execute("ROLLBACK")


def row_counts(database: Path) -> dict[str, int]:
    """Rows per table of an output database."""
    with duckdb.connect(str(database), read_only=True) as con:
        return _row_counts(con)


def _row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    query = " UNION ALL ".join(f"SELECT {i}, count(*) FROM \"{t.name}\"" for i, t in enumerate(ALL_TABLES))
    counts = dict(con.execute(query).fetchall())
    return {t.name: counts[i] for i, t in enumerate(ALL_TABLES)}


@contextmanager
def open_output_database(output_dir: Path) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """One read-write connection to the output database for a run's first steps, or None if there is none yet.

    A run reads the previous state through it and, when nothing changed, records itself
    through it (:func:`record_run_only`): opening a DuckDB database costs more than
    everything else such a run does. Close it (leave the block) before :func:`write_outputs`,
    which replaces the database file.
    """
    database = output_dir / DB_NAME
    if not database.exists():
        yield None
        return
    with duckdb.connect(str(database)) as con:
        yield con


def write_outputs(batch: Batch, output_dir: Path, version: str, *, link_unchanged: bool = True) -> LoadResult:
    """Apply ``batch`` to the output folder's database and publish a new Parquet version: the
    tables the batch changes exported again, the others linked from the published version
    (every table exported when not ``link_unchanged``).

    Args:
        batch: the rows to write and the units they replace.
        output_dir: the output folder (created if missing).
        version: a name for this version of the Parquet export (the run id).
        link_unchanged: False when the published outputs may disagree (an interrupted publish).

    Returns:
        Where the outputs are and how many rows each table now holds.
    """
    # A publish another run left unfinished: the published Parquet files may not be the database's.
    interrupted = interrupted_publish(output_dir) not in (None, version)
    unchanged = {t.name for t in ALL_TABLES} - batch.touched() if link_unchanged and not interrupted else set()
    with staged_output(output_dir, version, unchanged) as con:
        apply_batch(con, batch, private=True)  # a failed write discards the staged copy whole
    database = output_dir / DB_NAME
    return LoadResult(database=database, parquet_dir=output_dir / PARQUET_LINK, row_counts=row_counts(database))


def record_run_only(
    output_dir: Path,
    rows: Mapping[str, Sequence[Mapping[str, object]]],
    con: duckdb.DuckDBPyConnection | None = None,
) -> LoadResult:
    """Append a run's own bookkeeping rows when it had nothing else to do.

    The database takes them in one transaction, in place (DuckDB is transactional, so a kill
    leaves it as it was); only the affected Parquet files are rewritten, each atomically.

    Args:
        output_dir: the output folder.
        rows: table name -> the rows to append.
        con: the run's connection to the output database (:func:`open_output_database`);
            one is opened and closed here when omitted.
    """
    database = output_dir / DB_NAME
    if con is None:
        with duckdb.connect(str(database)) as own:
            return record_run_only(output_dir, rows, own)
    parquet_dir = output_dir / PARQUET_LINK
    # The schema is almost always complete already: its ~40 statements only run when not.
    if not _schema_complete(con):
        _ensure_schema(con)
    con.execute("BEGIN")
    try:
        batch = Batch()
        for table, table_rows in rows.items():
            batch.add(table, table_rows)
        _apply(con, batch)
    except BaseException:
        _rollback(con)
        raise
    con.execute("COMMIT")
    for name in rows:
        table = TABLES_BY_NAME[name]
        if not table.parquet:
            continue
        target = parquet_dir / f"{name}.parquet"
        tmp = parquet_dir / f".{name}.parquet.tmp"
        con.execute(
            f'COPY (SELECT * FROM "{name}" ORDER BY {_order_by(table)}) TO ? (FORMAT PARQUET)', [str(tmp)]
        )
        os.replace(tmp, target)
    # No CHECKPOINT here: DuckDB checkpoints the committed rows when the connection closes.
    return LoadResult(database=database, parquet_dir=parquet_dir, row_counts=_row_counts(con))
