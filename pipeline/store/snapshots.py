"""The snapshot store: every registry response (or reconstruction) we rely on, kept on disk.

Layout::

    snapshots/
      manifest.json              one entry per file (see models.SnapshotEntry), sorted by path
      documents/<name>.txt       source documents
      ctgov/<NCT id>.json        ClinicalTrials.gov API v2 single-study JSON
      ctis/<EU CT number>.json   CTIS public API "retrieve" JSON
      euctr/<EudraCT no>.txt     EU CTR full-text download (or .html, the trial page)
      cteu/<slug>.html           clinicaltrials.eu trial pages

A file is only ever used after its sha256 is checked against the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import TypeAdapter, ValidationError

from pipeline.constants import REGISTRIES
from pipeline.errors import IntegrityError, SnapshotError, UnsafePathError, validation_problem
from pipeline.files import MAX_SNAPSHOT_BYTES, MAX_STORE_FILE_BYTES, read_regular_file
from pipeline.models import Provenance, SnapshotEntry
from pipeline.paths import DEFAULT_SNAPSHOTS_DIR

MANIFEST_NAME = "manifest.json"

# A snapshot name is one path segment of plain characters: ids and slugs, never '..' or '/'.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_SAFE_DIRS = {"documents", *REGISTRIES}
_SAFE_EXTS = {"json", "html", "txt"}

_manifest_adapter = TypeAdapter(list[SnapshotEntry])


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def without_userinfo(url: str) -> str:
    """``url`` without a ``user:password@`` part: credentials are never sent on nor stored."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def snapshot_relpath(folder: str, name: str, ext: str) -> str:
    """The manifest path for a snapshot, refusing anything that could leave its folder.

    Raises:
        UnsafePathError: ``folder``, ``name`` or ``ext`` is not a plain, known segment.
    """
    if folder not in _SAFE_DIRS:
        raise UnsafePathError(folder)
    if ext not in _SAFE_EXTS:
        raise UnsafePathError(ext)
    if not _SAFE_NAME.match(name) or ".." in name:
        raise UnsafePathError(name)
    return f"{folder}/{name}.{ext}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    _replace(path, data, sync=True)


def _replace(path: Path, data: bytes, *, sync: bool) -> None:
    """``data`` written to a temporary file beside ``path`` (synced first when ``sync``), then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private; snapshots are shared data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_files(files: Iterable[tuple[Path, bytes]]) -> list[Path]:
    """Write each ``(path, data)`` as it comes so that readers see the old file or the new one,
    never half; then make them all durable at once, before returning.

    :func:`atomic_write_bytes` syncs each file before its rename: for a site's 4,000 page
    reports that was 2 to 4 s of waiting on the disk, against about 1 s to sync them together.
    A crash before this returns can leave a renamed file whose bytes had not reached the disk,
    so callers write under :func:`pipeline.load.writer.publishing`: its marker stays, and the
    next run writes every output again.

    Returns:
        the paths written, in order.
    """
    written: list[Path] = []
    for path, data in files:
        _replace(path, data, sync=False)
        written.append(path)
    for path in [*written, *dict.fromkeys(path.parent for path in written)]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return written


def _folder_of(entry: SnapshotEntry) -> str:
    """The folder of an entry's manifest path, every segment of the path validated.

    Raises:
        UnsafePathError: a segment is not a known folder, a plain name or a known extension.
    """
    folder, _, filename = entry.path.partition("/")
    name, _, ext = filename.rpartition(".")
    snapshot_relpath(folder, name, ext)
    return folder


def _links_within(root: Path, rel: str) -> bool:
    """Whether a segment of ``root/rel`` below ``root`` is a symlink (or cannot be looked at:
    then the caller resolves the path to tell). A missing segment ends the walk: nothing below it
    exists to lead anywhere."""
    current = os.fspath(root)  # plain strings: a run looks at thousands of files
    for part in rel.split("/"):
        current = f"{current}/{part}"
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return True
        except FileNotFoundError:
            return False
        except OSError:
            return True
    return False


class SnapshotStore:
    """A snapshots folder and its manifest.

    Example::

        store = SnapshotStore(Path("snapshots"))
        entry = store.entry_for("ctgov", "NCT03645928")
        data = store.read(entry)   # raises IntegrityError if the bytes changed
    """

    def __init__(self, root: Path = DEFAULT_SNAPSHOTS_DIR) -> None:
        self.root = Path(root)
        self.manifest_path = self.root / MANIFEST_NAME
        self._pinned: tuple[SnapshotEntry, ...] | None = None
        self._side: dict[str, bytes | None] = {}

    def pinned(self) -> SnapshotStore:
        """This store as it is now, for one run to read: the manifest is read (and validated) once,
        here, and each file beside the snapshots the first time it is asked for; later changes to
        them are not seen, so everything the run fingerprints is what it parses. Snapshot files
        are still read when asked for, and checked against the pinned entries' sha256. A pinned
        store is its own pinned view.

        A pinned store is read-only: writing goes through a store that is not pinned.

        Raises:
            SnapshotError: the manifest is not valid.
        """
        if self._pinned is not None:
            return self
        view = SnapshotStore(self.root)
        view._pinned = tuple(self._read_entries())
        return view

    def unpinned(self) -> SnapshotStore:
        """The same folder, read afresh on every call (to write to, or to hand to another process)."""
        return SnapshotStore(self.root)

    def side_file(self, name: str, what: str) -> bytes | None:
        """The bytes of a file kept beside the snapshots (``links.json``...), None when absent;
        a pinned store reads each once.

        Raises:
            SnapshotError: the file is not a regular file, is too large or cannot be read.
        """
        if name in self._side:
            return self._side[name]
        try:
            data: bytes | None = read_regular_file(self.root / name, limit=MAX_STORE_FILE_BYTES, what=what,
                                                   fail=SnapshotError)
        except FileNotFoundError:
            data = None
        if self._pinned is not None:
            self._side[name] = data
        return data

    # -- manifest ---------------------------------------------------------------------------

    def entries(self) -> list[SnapshotEntry]:
        """Every manifest entry, sorted by path (empty when there is no manifest yet); a pinned
        store's entries as it read them once.

        Raises:
            SnapshotError: the manifest is not valid.
        """
        if self._pinned is not None:
            return list(self._pinned)
        return self._read_entries()

    def _read_entries(self) -> list[SnapshotEntry]:
        try:
            raw = read_regular_file(self.manifest_path, limit=MAX_STORE_FILE_BYTES, what="a manifest",
                                    fail=SnapshotError)
        except FileNotFoundError:
            return []
        try:
            entries = _manifest_adapter.validate_json(raw)
        except ValidationError as exc:
            raise SnapshotError(self.manifest_path, f"manifest is not valid: {validation_problem(exc)}") from exc
        # A path listed twice would load its records twice; which entry was meant cannot be told.
        first: dict[str, int] = {}
        for number, entry in enumerate(entries, 1):
            if entry.path in first:
                raise SnapshotError(self.manifest_path, (
                    f"manifest lists {entry.path} twice (entries {first[entry.path]} and {number})"))
            first[entry.path] = number
        return entries

    def save_entries(self, entries: Iterable[SnapshotEntry]) -> None:
        """Replace the manifest with ``entries`` (one per path, the last one wins)."""
        if self._pinned is not None:
            raise TypeError("a pinned snapshot store is read-only: write through store.unpinned()")
        by_path = {e.path: e for e in entries}
        ordered = [by_path[p] for p in sorted(by_path)]
        data = json.dumps(
            [e.model_dump(mode="json", exclude_defaults=False) for e in ordered], indent=1, ensure_ascii=False
        )
        atomic_write_bytes(self.manifest_path, (data + "\n").encode())

    def upsert(self, entry: SnapshotEntry) -> None:
        """Add ``entry`` to the manifest, replacing any entry for the same path."""
        self.save_entries([*self.entries(), entry])

    def entry_for(self, registry: str, trial_id: str) -> SnapshotEntry | None:
        """The manifest entry of one registry's record of one trial, if there is one."""
        for entry in self.entries():
            if entry.registry == registry and entry.trial_id == trial_id:
                return entry
        return None

    # -- files ------------------------------------------------------------------------------

    def path_of(self, entry: SnapshotEntry) -> Path:
        """Path of an entry's file, refusing a manifest path (or a symlink) that leaves the store.

        Raises:
            UnsafePathError: the manifest path is not a known folder and a plain name, or a
                symlink inside the store points outside it.
        """
        _folder_of(entry)
        return self._inside(entry.path)

    def stats_of(self, entries: Iterable[SnapshotEntry]) -> dict[str, os.stat_result | OSError | UnsafePathError]:
        """The status of each entry's file, by path, as ``path_of(entry).stat()`` gives it, or the
        error it raises (FileNotFoundError, UnsafePathError, OSError).

        A plan looks at every file of the store: each folder is checked for a symlink once, and
        a file that is not itself a symlink costs one ``lstat`` (a symlink is followed as
        :meth:`path_of` follows it, refused when it leads outside the store).
        """
        root = os.fspath(self.root)
        plain_folders: dict[str, bool] = {}
        out: dict[str, os.stat_result | OSError | UnsafePathError] = {}
        for entry in entries:
            try:
                folder = _folder_of(entry)
                if folder not in plain_folders:
                    plain_folders[folder] = not _links_within(self.root, folder)
                info = os.lstat(f"{root}/{entry.path}") if plain_folders[folder] else None
                if info is None or stat.S_ISLNK(info.st_mode):
                    info = self.path_of(entry).stat()
                out[entry.path] = info
            except (OSError, UnsafePathError) as exc:
                out[entry.path] = exc
        return out

    def _inside(self, rel: str) -> Path:
        """``root/rel``, refusing it when a symlink in the store leads it outside the store.

        ``rel``'s segments are plain names (:func:`snapshot_relpath`), so only a symlink among
        them can lead out: the path is resolved only when one is (a run checks thousands of files).
        """
        path = self.root / rel
        if _links_within(self.root, rel) and not path.resolve().is_relative_to(self.root.resolve()):
            raise UnsafePathError(rel, "leads outside the snapshot store (through a symlink)")
        return path

    def read(self, entry: SnapshotEntry) -> bytes:
        """The bytes of a snapshot, checked against the manifest's sha256.

        Raises:
            SnapshotError: the file is missing, not a regular file, larger than
                ``MAX_SNAPSHOT_BYTES``, or cannot be read.
            IntegrityError: the file's sha256 differs from the manifest's.
        """
        path = self.path_of(entry)
        try:
            data = read_regular_file(path, limit=MAX_SNAPSHOT_BYTES, what="a snapshot", fail=SnapshotError)
        except FileNotFoundError as exc:
            raise SnapshotError(path, "listed in the manifest but missing") from exc
        actual = sha256_bytes(data)
        if actual != entry.sha256:
            raise IntegrityError(path, entry.sha256, actual)
        return data

    def write(
        self,
        folder: str,
        name: str,
        ext: str,
        content: bytes,
        *,
        registry: str,
        url: str,
        provenance: Provenance,
        trial_id: str | None = None,
        http_status: int | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        content_type: str | None = None,
        source_urls: list[str] | None = None,
        fetched_at: datetime | None = None,
    ) -> SnapshotEntry:
        """Store ``content`` atomically and record it in the manifest."""
        if self._pinned is not None:
            raise TypeError("a pinned snapshot store is read-only: write through store.unpinned()")
        rel = snapshot_relpath(folder, name, ext)
        atomic_write_bytes(self._inside(rel), content)
        entry = SnapshotEntry(
            path=rel,
            registry=registry,  # type: ignore[arg-type]
            trial_id=trial_id,
            url=without_userinfo(url),
            fetched_at=fetched_at or datetime.now(UTC),
            sha256=sha256_bytes(content),
            http_status=http_status,
            etag=etag,
            last_modified=last_modified,
            content_type=content_type,
            provenance=provenance,
            source_urls=source_urls or [],
        )
        self.upsert(entry)
        return entry

    def mark_stale(self, path: str, stale: bool = True) -> None:
        """Flag an entry whose refresh failed (its data is older than asked)."""
        self.save_entries(
            e.model_copy(update={"stale": stale}) if e.path == path else e for e in self.entries()
        )

    def verify(self) -> list[IntegrityError | SnapshotError]:
        """Every entry whose file is missing or changed; an empty list means all is well."""
        problems: list[IntegrityError | SnapshotError] = []
        for entry in self.entries():
            try:
                self.read(entry)
            except SnapshotError as exc:
                problems.append(exc)
        return problems
