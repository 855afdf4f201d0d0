"""Records loaded by ``ingest``, as a run finds them: the store's records that no snapshot gives.

``ingest`` writes each study's rows (``trials`` and the other ``trial_*`` tables) with the label of
where it stood in its source (``bulk.ndjson:12``, ``page.json#studies[3]``, ``bulk.zip!NCT01.json``)
and the sha256 of its bytes. A run reconciles its pages against these records as well as the
snapshots': the first run that needs one reads its study back from that label, checks the
sha256 and parses it (once: its records then stay in ``record_cache``, and later runs reuse them
whether or not the source is still there).

A snapshot of the same trial comes first: the snapshot store is what an operator fetches and
refreshes on purpose, an ingest is a bulk backdrop.
"""

from __future__ import annotations

import hashlib
import mmap
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from pipeline.errors import SnapshotError
from pipeline.files import read_regular_file
from pipeline.models import SnapshotEntry
from pipeline.store.ingest import JSON_SUFFIXES, MAX_MEMBER_BYTES, NDJSON_SUFFIXES, read_member

_PAGE_INDEX = re.compile(r"#studies\[(\d+)\]\Z")
_LINE = re.compile(r":(\d+)\Z")
_ZIP_MEMBER = ".zip!"

_QUERY = """
    SELECT registry, trial_id, snapshot_path, snapshot_sha256, provenance FROM trials
    WHERE snapshot_path IS NOT NULL AND snapshot_sha256 IS NOT NULL
      AND snapshot_path NOT IN (SELECT path FROM snapshots)
    ORDER BY snapshot_path
"""


def read_ingested(con: duckdb.DuckDBPyConnection | None) -> list[SnapshotEntry]:
    """The records of the output's ``trials`` table that no snapshot of its ``snapshots`` table gave
    (those ``ingest`` loaded), each as the entry of the study it was read from, in the order of
    their labels (the studies of one source together).

    An output without those tables (written before them, or not by this pipeline), or none at
    all (``con`` None), has none.
    """
    from pipeline.constants import record_api_url

    if con is None:
        return []
    try:
        rows = con.execute(_QUERY).fetchall()
    except duckdb.Error:
        return []
    return [
        SnapshotEntry(path=path, registry=registry, trial_id=trial_id, url=record_api_url(registry, trial_id),
                      sha256=sha, provenance=provenance or "captured")
        for registry, trial_id, path, sha, provenance in rows
    ]


@dataclass
class IngestedStudies:
    """Reads an ingested study's bytes back from the label ``ingest`` gave it, checked against its sha256.

    Passed where a run's steps take the snapshot store (:func:`pipeline.stages.load_snapshot`
    calls :meth:`read`). Each NDJSON file's line offsets, each zip's directory and the last JSON
    page read are kept, so that reading many studies of one source reads it about once (a bulk
    zip's directory alone lists every study: reading it for each one cost the whole directory).
    """

    _lines: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _page: tuple[str, list[Any]] | None = field(default=None, repr=False)
    _zips: dict[Path, zipfile.ZipFile] = field(default_factory=dict, repr=False)

    def read(self, entry: SnapshotEntry) -> bytes:
        """The bytes of the study at ``entry.path``.

        Raises:
            SnapshotError: naming the label: its source is gone or unreadable, no longer holds
                that study, or holds other bytes than were ingested.
        """
        data = self._study(entry.path)
        actual = hashlib.sha256(data).hexdigest()
        if actual != entry.sha256:
            raise SnapshotError(entry.path, f"holds other bytes than were ingested (sha256 {actual[:12]}, "
                                            f"ingested {entry.sha256[:12]}): ingest the source again")
        return data

    def unpinned(self) -> IngestedStudies:
        """Itself: unlike the snapshot store, it holds no manifest a task could be given instead."""
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {}  # what it keeps is read again where it is used

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._lines, self._page, self._zips = {}, None, {}

    def close(self) -> None:
        """Close the zips it holds open."""
        for archive in self._zips.values():
            archive.close()
        self._zips.clear()

    def _study(self, label: str) -> bytes:
        index = None
        if (found := _PAGE_INDEX.search(label)) is not None:
            label, index = label[:found.start()], int(found.group(1))
        member = _zip_member(label)
        if member is not None:
            data = self._zip_bytes(*member, label)
        elif (line := _LINE.search(label)) is not None and label[:line.start()].endswith(NDJSON_SUFFIXES):
            return self._line(label, Path(label[:line.start()]), int(line.group(1)))
        elif label.endswith(JSON_SUFFIXES):
            data = _file_bytes(Path(label))
        else:
            raise SnapshotError(label, "is not where ingest puts a study (a .json, .ndjson, .jsonl or .zip source)")
        return data if index is None else self._page_study(label, data, index)

    def _zip_bytes(self, archive: Path, name: str, label: str) -> bytes:
        try:
            if archive not in self._zips:
                self._zips[archive] = zipfile.ZipFile(archive)
            opened = self._zips[archive]
            try:
                member = opened.getinfo(name)
            except KeyError:
                raise SnapshotError(label, f"the ingested source {archive} no longer holds {name}") from None
            return read_member(opened, member, label)
        except FileNotFoundError:
            raise SnapshotError(label, f"the ingested source {archive} is gone") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise SnapshotError(label, f"the ingested source {archive} cannot be read ({exc})") from exc

    def _line(self, label: str, path: Path, number: int) -> bytes:
        key = str(path)
        try:
            with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                if key not in self._lines:
                    self._lines[key] = _line_starts(mapped)
                starts = self._lines[key]
                if not 1 <= number <= len(starts):
                    raise SnapshotError(label, f"the source has {len(starts)} lines, not {number}")
                end = mapped.find(b"\n", starts[number - 1])
                return mapped[starts[number - 1]:len(mapped) if end < 0 else end + 1]
        except FileNotFoundError:
            raise SnapshotError(label, f"the ingested source {path} is gone") from None
        except (OSError, ValueError) as exc:  # ValueError: mmap of an empty file
            raise SnapshotError(label, f"the ingested source {path} cannot be read ({exc})") from exc

    def _page_study(self, label: str, data: bytes, index: int) -> bytes:
        if self._page is None or self._page[0] != label:
            try:
                studies = orjson.loads(data).get("studies")
            except (orjson.JSONDecodeError, AttributeError) as exc:
                raise SnapshotError(label, f"is no longer a /studies page ({exc})") from exc
            if not isinstance(studies, list):
                raise SnapshotError(label, "is no longer a /studies page (no studies list)")
            self._page = (label, studies)
        studies = self._page[1]
        if index >= len(studies):
            raise SnapshotError(label, f"the page has {len(studies)} studies, not {index + 1}")
        return orjson.dumps(studies[index])


def _line_starts(mapped: mmap.mmap) -> list[int]:
    """Where each line of a mapped file starts (line 1 at 0), blank lines counted as ingest counts them."""
    starts, position, total = [0], 0, len(mapped)
    while (newline := mapped.find(b"\n", position)) >= 0 and newline + 1 < total:
        position = newline + 1
        starts.append(position)
    return starts


def _zip_member(label: str) -> tuple[Path, str] | None:
    """(the zip, the member) a label names, or None: the first ``.zip!`` that leads to a file
    splits it (a member's name may hold one too), else the first one (the zip is gone)."""
    splits = [at for at in range(len(label)) if label.startswith(_ZIP_MEMBER, at)]
    for at in splits:
        if Path(label[:at + len(".zip")]).is_file():
            return Path(label[:at + len(".zip")]), label[at + len(_ZIP_MEMBER):]
    return (Path(label[:splits[0] + len(".zip")]), label[splits[0] + len(_ZIP_MEMBER):]) if splits else None


def _file_bytes(path: Path) -> bytes:
    try:
        return read_regular_file(path, limit=MAX_MEMBER_BYTES, what="a JSON file", fail=SnapshotError)
    except FileNotFoundError:
        raise SnapshotError(path, "the ingested source is gone") from None

