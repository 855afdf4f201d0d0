"""Refresh the snapshot store from the live registries.

For each :class:`FetchTarget` we ask the registry conditionally (ETag / Last-Modified from the
manifest entry) and then:

=========================  ==============================================================
answer                     what happens
=========================  ==============================================================
304                        ``unchanged``; nothing is written
200, same sha256           ``unchanged``; nothing is written
200, new bytes             parsed as the registry's record of the trial asked for, then
                           written as ``captured`` (``new``, or ``changed`` when a snapshot
                           existed; a captured record replaces a reconstructed one)
200, not that record       ``failed`` (an error body, an empty body, another trial's record):
                           the previous snapshot stays and is marked ``stale``
any failure                ``failed``; the previous snapshot stays and is marked ``stale``
=========================  ==============================================================

A later successful answer clears ``stale``. Requests run concurrently (the client bounds them).
The manifest is read once and kept in memory for the whole refresh: rewriting it (with an fsync)
for every target would make a refresh of n targets cost O(n^2). It is written back when it
changed, at most every :data:`MANIFEST_FLUSH_SECONDS` while targets finish and always at the end,
also when the refresh fails or is cancelled. A snapshot file is written before its manifest
entry: a run killed in between leaves a file whose sha256 the manifest does not know yet, which
the next refresh fetches again.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal, get_args

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, computed_field, field_validator

from pipeline.constants import RECORD_FORMATS, TrialRegistry
from pipeline.errors import FetchError, ParseError, SnapshotError, UnsafePathError
from pipeline.models import SnapshotEntry
from pipeline.orchestrate.progress import NoProgress, Progress
from pipeline.registries import parse_snapshot, require_trial
from pipeline.fetch.client import (
    FetchResult,
    FetchSettings,
    RegistryClient,
    make_http_client,
    validate_trial_id,
)
from pipeline.store.snapshots import SnapshotStore, atomic_write_bytes, sha256_bytes, snapshot_relpath

__all__ = ["FetchTarget", "RefreshReport", "TargetOutcome", "refresh", "run_refresh", "snapshot_path_of"]

RefreshOutcome = Literal["new", "changed", "unchanged", "failed"]
"""What refreshing one target did to its snapshot (not a trial's outcome measure, :class:`pipeline.models.Outcome`)."""
OUTCOMES: tuple[RefreshOutcome, ...] = get_args(RefreshOutcome)

MANIFEST_FLUSH_SECONDS = 1.0
"""Longest time a changed manifest stays in memory only, while a refresh runs."""


class FetchTarget(BaseModel):
    """One registry record to refresh: ``FetchTarget(registry="ctgov", trial_id="NCT03645928")``.

    Raises:
        UnsafePathError: the id does not have the registry's shape.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    registry: TrialRegistry
    trial_id: str = Field(description="NCT number, EU CT number (CTIS) or EudraCT number (EU CTR).")

    @field_validator("trial_id")
    @classmethod
    def _well_formed(cls, value: str, info: ValidationInfo) -> str:
        registry = info.data.get("registry")
        if registry is not None:
            validate_trial_id(registry, value)
        return value


class TargetOutcome(BaseModel):
    """What refreshing one target did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registry: TrialRegistry
    trial_id: str
    path: str = Field(description="Snapshot path in the store, e.g. 'ctgov/NCT03645928.json'.")
    outcome: RefreshOutcome
    http_status: int | None = Field(default=None, description="Status of the last answer (304 included).")
    sha256: str | None = Field(default=None, description="sha256 of the snapshot now in the store.")
    error: str | None = Field(default=None, description="Why the refresh failed.")


class RefreshReport(BaseModel):
    """Per-target outcomes, in the order of the targets, and counts per registry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcomes: list[TargetOutcome]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """``{registry: {new, changed, unchanged, failed}}`` for every registry with a target."""
        tally = Counter((o.registry, o.outcome) for o in self.outcomes)
        registries = sorted({o.registry for o in self.outcomes})
        return {r: {outcome: tally[(r, outcome)] for outcome in OUTCOMES} for r in registries}

    @property
    def failed(self) -> list[TargetOutcome]:
        """The targets whose refresh failed."""
        return [o for o in self.outcomes if o.outcome == "failed"]


def snapshot_path_of(target: FetchTarget) -> str:
    """The store path of a target's snapshot: ctgov/<NCT>.json, ctis/<EU CT>.json, euctr/<EudraCT>.txt."""
    ext, _ = RECORD_FORMATS[target.registry]
    return snapshot_relpath(target.registry, target.trial_id, ext)


async def refresh(
    targets: Iterable[FetchTarget],
    *,
    store: SnapshotStore,
    client: RegistryClient,
    now: datetime,
    progress: Progress | None = None,
) -> RefreshReport:
    """Fetch every target (conditionally) and update the store; see the module docstring.

    Args:
        targets: records to refresh; duplicates are refreshed once.
        store: the snapshot store to read validators from and write to.
        client: the registry client (its settings bound concurrency and rate).
        now: the time stamped as ``fetched_at`` on what is written.
        progress: told of each target as it finishes.

    Returns:
        One outcome per distinct target, in order.

    Raises:
        SnapshotError: the manifest cannot be read (nothing is fetched then).
    """
    unique = list(dict.fromkeys(targets))
    manifest = _Manifest(store)  # reads it: fails before any request if it is unreadable
    progress = progress or NoProgress()
    progress.start("refresh", len(unique))

    async def one(target: FetchTarget) -> TargetOutcome:
        try:
            outcome = await _refresh_one(target, store, client, now, manifest)
        except (UnsafePathError, OSError) as exc:
            # A snapshot path that a symlink leads outside the store, or a write the disk refused:
            # this target fails, named; the other targets go on.
            problem = str(exc) if isinstance(exc, UnsafePathError) else f"cannot be written ({exc.strerror or exc})"
            outcome = TargetOutcome(registry=target.registry, trial_id=target.trial_id,
                                    path=snapshot_path_of(target), outcome="failed", error=problem)
        manifest.flush_if_due()
        progress.advance(f"{outcome.path} {outcome.outcome}")
        return outcome

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(t)) for t in unique]
    finally:
        # Whatever was fetched is kept, even when another target's error ends the refresh.
        manifest.flush()
    progress.finish()
    return RefreshReport(outcomes=[task.result() for task in tasks])


def run_refresh(
    targets: Sequence[FetchTarget],
    *,
    store: SnapshotStore,
    settings: FetchSettings | None = None,
    now: datetime | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
) -> RefreshReport:
    """:func:`refresh` from synchronous code, with a client built from ``settings``.

    Args:
        targets: records to refresh.
        store: the snapshot store.
        settings: where and how politely to ask (defaults: the real registries).
        now: the ``fetched_at`` stamp (default: the current time, UTC).
        transport: an HTTP transport to use instead of the network (tests).
    """
    settings = settings or FetchSettings()
    stamp = now or datetime.now(UTC)

    async def main() -> RefreshReport:
        async with make_http_client(settings, transport=transport) as http:
            client = RegistryClient(http, settings)
            return await refresh(targets, store=store, client=client, now=stamp, progress=progress)

    return asyncio.run(main())


class _Manifest:
    """A store's manifest held in memory during one refresh, written back when it changed.

    Every change happens between two awaits, on the event loop's one thread, so no lock is
    needed for reading and updating it.
    """

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self.entries = {e.path: e for e in store.entries()}
        self.flush_seconds = MANIFEST_FLUSH_SECONDS
        self.changed = False
        self.flushed_at = time.monotonic()

    def get(self, path: str) -> SnapshotEntry | None:
        return self.entries.get(path)

    def put(self, entry: SnapshotEntry) -> None:
        self.entries[entry.path] = entry
        self.changed = True

    def flush_if_due(self) -> None:
        if self.changed and time.monotonic() - self.flushed_at >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the manifest if anything changed since it was last written."""
        if self.changed:
            self.store.save_entries(self.entries.values())
            self.changed = False
        self.flushed_at = time.monotonic()


async def _refresh_one(
    target: FetchTarget, store: SnapshotStore, client: RegistryClient, now: datetime, manifest: _Manifest
) -> TargetOutcome:
    path = snapshot_path_of(target)
    previous = manifest.get(path)
    previous_sha = _intact_sha(store, previous)
    # Validators are only worth sending when we still hold the bytes they stand for.
    validators = previous if previous is not None and previous_sha is not None else None
    done = {"registry": target.registry, "trial_id": target.trial_id, "path": path}

    try:
        result = await _fetch(client, target, validators)
    except FetchError as exc:
        return _failed(target, path, previous, manifest, exc.status, str(exc))

    if result.not_modified or (
        previous is not None and previous.provenance == "captured" and previous_sha == sha256_bytes(result.content)
    ):
        assert previous is not None  # _fetch refuses a 304 to a request without validators
        if previous.stale:
            manifest.put(previous.model_copy(update={"stale": False}))
        return TargetOutcome(**done, outcome="unchanged", http_status=result.status, sha256=previous.sha256)

    # Nothing replaces a snapshot unless it parses as a record of the trial asked for: a 200
    # carrying an error body, an empty body or another trial's record must not destroy good bytes.
    try:
        await asyncio.to_thread(_check_answer, target, result)
    except ParseError as exc:
        return _failed(target, path, previous, manifest, result.status, f"{result.url}: {exc.problem}")

    entry = SnapshotEntry(
        path=path, registry=target.registry, trial_id=target.trial_id, url=result.url, fetched_at=now,
        sha256=sha256_bytes(result.content), http_status=result.status, etag=result.etag,
        last_modified=result.last_modified, content_type=result.content_type, provenance="captured",
    )
    # path_of refuses a path that a symlink in the store would lead outside it. The write (with
    # its fsync) runs on a thread, so the event loop goes on reading the other answers meanwhile.
    await asyncio.to_thread(atomic_write_bytes, store.path_of(entry), result.content)
    manifest.put(entry)
    return TargetOutcome(**done, outcome="new" if previous is None else "changed",
                         http_status=result.status, sha256=entry.sha256)


def _failed(
    target: FetchTarget, path: str, previous: SnapshotEntry | None, manifest: _Manifest, status: int | None,
    error: str,
) -> TargetOutcome:
    """A failed target: the previous snapshot (if any) stays, marked ``stale``."""
    if previous is not None and not previous.stale:
        manifest.put(previous.model_copy(update={"stale": True}))
    return TargetOutcome(registry=target.registry, trial_id=target.trial_id, path=path, outcome="failed",
                         http_status=status, sha256=previous.sha256 if previous else None, error=error)


def _check_answer(target: FetchTarget, result: FetchResult) -> None:
    """Parse a fetched body as the registry's record of the target's trial.

    Raises:
        ParseError: the body is not the registry's format, or holds no record of the trial.
    """
    records = parse_snapshot(result.content, path=result.url, registry=target.registry)
    require_trial(records, target.trial_id, path=result.url)


async def _fetch(client: RegistryClient, target: FetchTarget, previous: SnapshotEntry | None) -> FetchResult:
    etag = previous.etag if previous else None
    last_modified = previous.last_modified if previous else None
    if target.registry == "ctgov":
        result = await client.fetch_ctgov_study(target.trial_id, etag=etag, last_modified=last_modified)
    elif target.registry == "ctis":
        result = await client.fetch_ctis(target.trial_id, etag=etag, last_modified=last_modified)
    else:
        result = await client.fetch_euctr(target.trial_id, etag=etag, last_modified=last_modified)
    if result.not_modified and previous is None:
        # Nothing of ours to be "not modified" against: there are no bytes to keep.
        raise FetchError(result.url, "answered 304 to a request without validators", status=304)
    return result


def _intact_sha(store: SnapshotStore, entry: SnapshotEntry | None) -> str | None:
    """The sha256 of the previous snapshot if its file is there and matches the manifest."""
    if entry is None:
        return None
    try:
        store.read(entry)
    except (SnapshotError, UnsafePathError):
        return None
    return entry.sha256
