"""Which registry records speak about a trial the page names, and how each was reached.

A trial named by the page (NCT number, EU CT number or EudraCT number) is reached:

* by **same id**: a record whose own id is the trial's;
* by a **confirmed link**: a :class:`~pipeline.models.TrialLink` of strength ``confirmed``, or a
  registry record that lists the other number among its identifiers (the registry itself
  states the link);
* by a **candidate link**: plausible, stated nowhere. Such records are used only when nothing
  else reaches the trial, and their verdicts are never more than ``unverifiable``.

One record per registry is kept (same id before confirmed before candidate; then the fresher
snapshot), so each comparison has one row per registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.ids import registry_of
from pipeline.load.incremental import CachedJSON, load_cached, records_from_json
from pipeline.models import Evidence, ReconciliationRow, SnapshotEntry, TrialLink, TrialRecord, Verdict
from pipeline.reconcile.terms import title_tokens

NOT_REGISTRIES = frozenset({"cteu"})
"""Sources that identify trials but are not compared with: clinicaltrials.eu pages are the
page's own site (they tell which trial a reference or an ongoing entry is about)."""

Reach = Literal["same id", "confirmed", "candidate"]
_REACH_ORDER: dict[str, int] = {"same id": 0, "confirmed": 1, "candidate": 2}


@dataclass(frozen=True)
class RecordKey:
    """What a run's index of records (:class:`RecordLookup`, the title index, the clinicaltrials.eu
    slugs) reads of one record: enough to find the records a page reaches without holding them whole.

    Computed once per parsed record and kept beside its cached JSON (``record_keys``), so that a
    warm run builds its index without validating every cached record again.
    """

    registry: str
    trial_id: str
    other_ids: tuple[str, ...] = ()  # every number the record lists (Identifier.other_id), as given
    title_words: tuple[str, ...] = ()  # the distinctive words of its title and official title, sorted


def record_key(record: TrialRecord) -> RecordKey:
    """The :class:`RecordKey` of a record."""
    words = {w for text in (record.title, record.official_title) if text for w in title_tokens(text)}
    return RecordKey(record.registry, record.trial_id, tuple(i.other_id for i in record.identifiers),
                     tuple(sorted(words)))


def keys_json(keys: Sequence[RecordKey]) -> str:
    """Keys as the JSON kept in ``record_keys`` (one list per snapshot, in its records' order)."""
    return json.dumps([[k.registry, k.trial_id, list(k.other_ids), list(k.title_words)] for k in keys])


class KeysError(ValueError):
    """Stored keys that cannot be read back (``raw``: the JSON as stored)."""

    def __init__(self, raw: str, problem: str) -> None:
        super().__init__(f"record keys not readable ({problem}): {raw[:80]}")
        self.raw = raw


def keys_from_json(raw: str) -> list[RecordKey]:
    """Keys back from ``record_keys``.

    Raises:
        KeysError: ``raw`` is not a list of keys as :func:`keys_json` writes them.
    """
    try:
        return [RecordKey(registry, trial_id, tuple(others), tuple(words))
                for registry, trial_id, others, words in json.loads(raw)]
    except (ValueError, TypeError) as exc:
        raise KeysError(raw, str(exc)) from exc


class CachedRecords:
    """The records an earlier run parsed from one snapshot's bytes, as ``record_cache`` keeps them
    (JSON, or where to read it: :class:`CachedJSON`): read and validated the first time one of
    them is asked for, all at once. Pickled (to a worker) with its JSON read: a worker needs no
    output database."""

    __slots__ = ("_raw", "_records")

    def __init__(self, raw: str | CachedJSON) -> None:
        self._raw: str | CachedJSON | None = raw
        self._records: list[TrialRecord] | None = None

    def get(self, position: int) -> TrialRecord:
        """The record at ``position`` of the snapshot's list."""
        if self._records is None:
            assert self._raw is not None
            self._records, self._raw = records_from_json(_json_of(self._raw)), None
        return self._records[position]

    @property
    def unread(self) -> CachedJSON | None:
        """Where its JSON is still to be read from, if it is."""
        return self._raw if isinstance(self._raw, CachedJSON) else None

    def __getstate__(self) -> dict[str, Any]:
        return {"raw": None if self._raw is None else _json_of(self._raw), "records": self._records}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._raw, self._records = state["raw"], state["records"]


def _json_of(raw: str | CachedJSON) -> str:
    return raw if isinstance(raw, str) else raw()


def read_cached_json(records: Iterable[LazyRecord]) -> None:
    """Read the JSON of the cached ``records`` not yet read, one query per cache rather than one
    per snapshot (the pages a run reconciles reach hundreds)."""
    by_cache: dict[int, tuple[Mapping[tuple[str, str], str], list[tuple[str, str]]]] = {}
    for held in records:
        if (unread := held.unread) is not None:
            by_cache.setdefault(id(unread.cache), (unread.cache, []))[1].append(unread.key)
    for cache, keys in by_cache.values():
        load_cached(cache, keys)


class LazyRecord:
    """A registry record held by its :class:`RecordKey`, the whole :class:`TrialRecord` had on first use.

    A record parsed in this run is held whole from the start (its key computed from it); one
    reused from an earlier run's cache stays JSON until something reads more than its key (a
    page reaching it, a duplicate to compare, its rows to load).
    """

    __slots__ = ("_key", "_record", "_cached", "_position")

    def __init__(self, record: TrialRecord | None = None, *, key: RecordKey | None = None,
                 cached: CachedRecords | None = None, position: int = 0) -> None:
        if record is None and (cached is None or key is None):
            raise TypeError("a lazy record needs its record, or its key and the cached records it is in")
        self._record, self._key, self._cached, self._position = record, key, cached, position

    @property
    def key(self) -> RecordKey:
        """What the run's index reads of the record."""
        if self._key is None:
            self._key = record_key(self.record)
        return self._key

    @property
    def record(self) -> TrialRecord:
        """The whole record (validated from the cached JSON the first time it is asked for)."""
        if self._record is None:
            assert self._cached is not None
            self._record, self._cached = self._cached.get(self._position), None
        return self._record

    @property
    def unread(self) -> CachedJSON | None:
        """Where the JSON of its (not yet validated) record is still to be read from, if it is."""
        return self._cached.unread if self._record is None and self._cached is not None else None

    @property
    def materialised(self) -> bool:
        """Whether the whole record is held (parsed in this run, or asked for already)."""
        return self._record is not None

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, LazyRecord) and self.record == other.record)

    __hash__ = None  # type: ignore[assignment]  # equal by value, as the TrialRecord it stands for

    def __getstate__(self) -> dict[str, Any]:
        return {"key": self._key, "record": self._record, "cached": self._cached, "position": self._position}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._key, self._record, self._cached, self._position = (
            state["key"], state["record"], state["cached"], state["position"])

    def __repr__(self) -> str:
        return f"LazyRecord({self.key.registry} {self.key.trial_id}, {'whole' if self.materialised else 'key only'})"


def cached_records(records_json: str | CachedJSON, stored_keys: str | None) -> list[LazyRecord]:
    """The records of a snapshot an earlier run parsed (``records_json``, or where to read it),
    held by their stored keys (:func:`keys_json`) and read and validated only when used;
    validated now when no keys are stored (or they cannot be read, or do not fit the records):
    their keys are computed from them."""
    keys = None
    if stored_keys is not None:
        try:
            keys = keys_from_json(stored_keys)
        except KeysError:
            keys = None  # computed again below, and stored again by the run
    if keys is None:
        return [LazyRecord(record) for record in records_from_json(_json_of(records_json))]
    cached = CachedRecords(records_json)
    return [LazyRecord(key=key, cached=cached, position=n) for n, key in enumerate(keys)]


class LoadedRecord:
    """A registry record (whole, or held by its key until used: :class:`LazyRecord`) and the
    manifest entry of the snapshot it came from."""

    __slots__ = ("held", "entry")

    def __init__(self, record: TrialRecord | LazyRecord, entry: SnapshotEntry) -> None:
        self.held = record if isinstance(record, LazyRecord) else LazyRecord(record)
        self.entry = entry

    @property
    def record(self) -> TrialRecord:
        """The whole record."""
        return self.held.record

    @property
    def key(self) -> RecordKey:
        """What the run's index reads of the record."""
        return self.held.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LoadedRecord) and (self.held, self.entry) == (other.held, other.entry)

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> tuple[LazyRecord, SnapshotEntry]:
        return self.held, self.entry

    def __setstate__(self, state: tuple[LazyRecord, SnapshotEntry]) -> None:
        self.held, self.entry = state

    def __repr__(self) -> str:
        return f"LoadedRecord({self.held!r}, {self.entry.path})"


@dataclass(frozen=True)
class ReachedRecord:
    """A record that speaks about a trial of the page, and how it was reached."""

    loaded: LoadedRecord
    reach: Reach
    link: str | None = None  # in words, for Evidence.link; None for the same id

    @property
    def record(self) -> TrialRecord:
        """The record reached."""
        return self.loaded.record

    @property
    def entry(self) -> SnapshotEntry:
        """The manifest entry of the record's snapshot."""
        return self.loaded.entry

    @property
    def registry(self) -> str:
        """The record's registry."""
        return self.loaded.record.registry

    def field_path(self, *keys: str) -> str | None:
        """The native path of the first of ``keys`` the record's parser gave a path for."""
        for key in keys:
            path = self.record.field_paths.get(key)
            if path:
                return path
        return None

    def evidence(self, *field_keys: str) -> Evidence:
        """Where the record's value of ``field_keys`` (first found) can be read again."""
        return Evidence(
            snapshot_path=self.entry.path,
            snapshot_sha256=self.entry.sha256,
            provenance=self.entry.provenance,
            registry_trial_id=self.record.trial_id,
            field_path=self.field_path(*field_keys),
            link=self.link,
        )

    def describe(self, *field_keys: str) -> str:
        """One line naming the record and its snapshot (for details that cite a second record)."""
        path = self.field_path(*field_keys)
        at = f" at {path}" if path else ""
        return (
            f"{self.registry} {self.record.trial_id} ({self.entry.path}, sha256 {self.entry.sha256[:12]}, "
            f"{self.entry.provenance}{at})"
        )


@dataclass(frozen=True)
class Identity:
    """One number a trial has in a registry, how it is known, and its record when the store has one.

    ``source``: ``page`` (the page's own number), ``links`` (snapshots/links.json) or
    ``registry record`` (a record lists the other number among its identifiers).
    """

    registry: str
    registry_id: str
    reach: Reach
    source: str
    evidence: str | None
    loaded: LoadedRecord | None


def _norm(trial_id: str) -> str:
    return trial_id.strip().upper()


class RecordLookup:
    """Every record and link of one run, indexed once, so a page finds its own in time that does
    not grow with the store.

    :meth:`reaching` gives exactly the records :class:`RecordIndex` could reach from some trial
    numbers (same id, a link, an identifier either record lists), in the store's order: a
    :class:`RecordIndex` over them answers every question about those numbers as one over the
    whole store would.
    """

    def __init__(self, records: Sequence[LoadedRecord], links: Sequence[TrialLink]) -> None:
        self.records = list(records)
        self._position = {id(loaded): n for n, loaded in enumerate(self.records)}
        self.by_id: dict[str, list[LoadedRecord]] = {}
        self.listing: dict[str, list[LoadedRecord]] = {}
        for loaded in self.records:  # from the keys alone: no record is validated to index it
            key = loaded.key
            self.by_id.setdefault(_norm(key.trial_id), []).append(loaded)
            for other_id in key.other_ids:
                self.listing.setdefault(_norm(other_id), []).append(loaded)
        self.links_by_id: dict[str, list[tuple[str, TrialLink]]] = {}
        for link in links:
            self.links_by_id.setdefault(_norm(link.trial_id), []).append((_norm(link.other_id), link))
            self.links_by_id.setdefault(_norm(link.other_id), []).append((_norm(link.trial_id), link))
        self.links = list(links)
        self._link_position = {id(link): n for n, link in enumerate(self.links)}

    def reaching(self, trial_ids: Iterable[str]) -> list[LoadedRecord]:
        """The records any of ``trial_ids`` reaches (see :meth:`RecordIndex._find`), in store order."""
        found: dict[int, LoadedRecord] = {}
        for trial_id in trial_ids:
            tid = _norm(trial_id)
            own = self.by_id.get(tid, [])
            for loaded in own:
                found[id(loaded)] = loaded
                for other_id in loaded.key.other_ids:
                    found.update((id(o), o) for o in self.by_id.get(_norm(other_id), []))
            for other, _ in self.links_by_id.get(tid, []):
                found.update((id(o), o) for o in self.by_id.get(other, []))
            found.update((id(o), o) for o in self.listing.get(tid, []))
        return sorted(found.values(), key=lambda loaded: self._position[id(loaded)])

    def links_of(self, trial_ids: Iterable[str]) -> list[TrialLink]:
        """The links that name any of ``trial_ids``, in the run's order."""
        wanted = {id(link): link for tid in trial_ids for _, link in self.links_by_id.get(_norm(tid), [])}
        return sorted(wanted.values(), key=lambda link: self._link_position[id(link)])

    def position(self, loaded: LoadedRecord) -> int:
        """Where ``loaded`` stands in the store's order."""
        return self._position[id(loaded)]


class RecordIndex:
    """The records and links of one run, looked up by the trial numbers a page uses."""

    def __init__(self, records: Sequence[LoadedRecord], links: Sequence[TrialLink]) -> None:
        lookup = RecordLookup(records, links)
        self._records = lookup.records
        self._by_id = lookup.by_id
        self._listing = lookup.listing  # number -> records listing it as an identifier
        self._links = lookup.links_by_id
        self._reached: dict[str, list[ReachedRecord]] = {}
        self._every: dict[str, list[ReachedRecord]] = {}

    @property
    def records(self) -> list[LoadedRecord]:
        """Every record, clinicaltrials.eu pages included."""
        return list(self._records)

    def reach(self, trial_id: str) -> list[ReachedRecord]:
        """The registry records that speak about ``trial_id``, one per registry, best reached first.

        Candidate-linked records come back only when no record is reached otherwise; records of
        :data:`NOT_REGISTRIES` never do.
        """
        tid = _norm(trial_id)
        if tid not in self._reached:
            every = [r for r in self._all_reached(trial_id) if r.registry not in NOT_REGISTRIES]
            found = [r for r in every if r.reach != "candidate"] or [r for r in every if r.reach == "candidate"]
            best: dict[str, ReachedRecord] = {}
            for reached in sorted(found, key=_preference):
                best.setdefault(reached.registry, reached)
            self._reached[tid] = sorted(best.values(), key=lambda r: (r.registry, r.record.trial_id))
        return list(self._reached[tid])

    def _all_reached(self, trial_id: str) -> list[ReachedRecord]:
        tid = _norm(trial_id)
        if tid not in self._every:
            self._every[tid] = self._find(trial_id)
        return self._every[tid]

    def _find(self, trial_id: str) -> list[ReachedRecord]:
        tid = _norm(trial_id)
        own = self._by_id.get(tid, [])
        out = [ReachedRecord(loaded, "same id") for loaded in own]
        for other, link in self._links.get(tid, []):
            words = f"{link.strength} link {trial_id} -> {other} ({link.evidence})"
            reach: Reach = "confirmed" if link.strength == "confirmed" else "candidate"
            out += [ReachedRecord(loaded, reach, words) for loaded in self._by_id.get(other, [])]
        # A registry that lists the other number states the link itself, in either direction.
        for loaded in own:
            for ident in loaded.record.identifiers:
                other = _norm(ident.other_id)
                if other != tid:
                    words = f"{loaded.record.registry} record {loaded.record.trial_id} lists {other} ({ident.id_type})"
                    out += [ReachedRecord(o, "confirmed", words) for o in self._by_id.get(other, [])]
        for loaded in self._listing.get(tid, []):
            if _norm(loaded.record.trial_id) != tid:
                ident = next(i for i in loaded.record.identifiers if _norm(i.other_id) == tid)
                words = f"{loaded.record.registry} record {loaded.record.trial_id} lists {trial_id} ({ident.id_type})"
                out.append(ReachedRecord(loaded, "confirmed", words))
        return out

    def identities(self, trial_id: str) -> list[Identity]:
        """Every number ``trial_id`` has in a registry, with or without a record in the store:
        its own, those of the records reached from it, those the links give and those its own
        records list. One per (registry, number), the best-known first."""
        tid = _norm(trial_id)
        found: list[Identity] = []
        own_registry = registry_of(tid)
        if own_registry:
            found.append(Identity(own_registry, tid, "same id", "page", None, None))
        for reached in self._all_reached(trial_id):
            if reached.registry in NOT_REGISTRIES:
                continue
            source = "page" if reached.reach == "same id" else (
                "registry record" if " lists " in (reached.link or "") else "links")
            found.append(Identity(reached.registry, _norm(reached.record.trial_id), reached.reach, source,
                                  reached.link, reached.loaded))
        for other, link in self._links.get(tid, []):
            registry = registry_of(other) or link.other_registry
            words = f"{link.strength} link {trial_id} -> {other} ({link.evidence})"
            if link.note:
                words += f": {link.note}"
            found.append(Identity(registry, other, link.strength, "links", words, None))
        for loaded in self._by_id.get(tid, []):
            for ident in loaded.record.identifiers:
                other = _norm(ident.other_id)
                registry = registry_of(other)
                if registry and other != tid:
                    words = f"{loaded.record.registry} record {loaded.record.trial_id} lists {other} ({ident.id_type})"
                    found.append(Identity(registry, other, "confirmed", "registry record", words, None))
        best: dict[tuple[str, str], Identity] = {}
        for ident in sorted(found, key=lambda i: (_REACH_ORDER[i.reach], i.loaded is None)):
            held = best.get((ident.registry, ident.registry_id))
            if held is None:
                best[(ident.registry, ident.registry_id)] = ident
            elif held.loaded is None and ident.loaded is not None and held.reach == ident.reach:
                best[(ident.registry, ident.registry_id)] = ident
        return sorted(best.values(), key=lambda i: (_REACH_ORDER[i.reach], i.registry, i.registry_id))

    def document_trial_ids(self, page_ids: Iterable[str]) -> Callable[[TrialRecord], str]:
        """For a record of the page, the number the page uses for its trial (the record's own id if none).

        A record counts as the page trial's when reached from it by the same id or a confirmed
        link, else by a candidate link; the page's own number wins, then the first page number
        in sorted order. A record tied to the page's trial only by a candidate link is still
        that trial's candidate: whoever reaches it through the page's number (:meth:`reach`)
        learns that the link is not confirmed, so its verdicts stay unverifiable.
        """
        # What every page number reaches is looked up once, not once per record.
        ids = sorted({_norm(i) for i in page_ids})
        own = set(ids)
        firm: dict[int, str] = {}
        candidate: dict[int, str] = {}
        for page_id in ids:  # sorted: the first page number reaching a record is its number
            for r in self._all_reached(page_id):
                (candidate if r.reach == "candidate" else firm).setdefault(id(r.record), page_id)

        def of(record: TrialRecord) -> str:
            if _norm(record.trial_id) in own:
                return record.trial_id
            return firm.get(id(record)) or candidate.get(id(record)) or record.trial_id

        return of


def _preference(reached: ReachedRecord) -> tuple[int, int, float, str]:
    entry = reached.entry
    # Fresher snapshots first; an undated one last.
    age = -entry.fetched_at.timestamp() if entry.fetched_at else float("inf")
    return (_REACH_ORDER[reached.reach], int(entry.stale), age, entry.path)


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleResult:
    """What a rule found: the verdict, the registry's value and why (not a trial's outcome
    measure, :class:`pipeline.models.Outcome`)."""

    verdict: Verdict
    registry_value: str | None
    detail: str
    score: float | None = None
    field_keys: tuple[str, ...] = ()  # keys of TrialRecord.field_paths the value was read from


@dataclass(frozen=True)
class Fact:
    """One stated fact to compare: where it stands on the page and what it says."""

    document_id: str
    claim_id: str
    trial_id: str | None
    field: str
    stated_value: str | None


def row_for(fact: Fact, rule: str, outcome: RuleResult, reached: ReachedRecord | None = None,
            registry: str | None = None) -> ReconciliationRow:
    """The row of one comparison; a candidate-linked record never gives more than unverifiable."""
    verdict, detail = outcome.verdict, outcome.detail
    evidence = Evidence()
    if reached is not None:
        registry = reached.registry
        evidence = reached.evidence(*outcome.field_keys)
        if reached.reach == "candidate":
            detail = (
                f"candidate record {reached.record.trial_id}, link not confirmed: {verdict}"
                + (f" ({detail})" if detail else "")
            )
            verdict = "unverifiable"
        if reached.entry.stale:
            detail = f"{detail}; snapshot is stale (its last refresh failed)"
    return ReconciliationRow(
        document_id=fact.document_id,
        claim_id=fact.claim_id,
        trial_id=fact.trial_id,
        field=fact.field,
        stated_value=fact.stated_value,
        registry_value=outcome.registry_value,
        registry=registry,
        verdict=verdict,
        rule=rule,
        detail=detail,
        score=outcome.score,
        evidence=evidence,
    )


def no_record_row(fact: Fact, rule: str) -> ReconciliationRow:
    """An unverifiable row for a fact about a trial no snapshot gives a record for."""
    registry = registry_of(fact.trial_id) if fact.trial_id else None
    return row_for(fact, rule, RuleResult("unverifiable", None, "no registry record"), registry=registry)


def unchecked_row(fact: Fact, rule: str, detail: str) -> ReconciliationRow:
    """An unverifiable row for a fact that could not be read well enough to compare."""
    return row_for(fact, rule, RuleResult("unverifiable", None, detail))


Compare = Callable[[ReachedRecord], RuleResult]


def rows_for_trial(
    fact: Fact, rule: str, reached: Sequence[ReachedRecord], compare: Compare
) -> list[ReconciliationRow]:
    """One row per record reached (or one 'no registry record' row), each from ``compare``."""
    if not reached:
        return [no_record_row(fact, rule)]
    return [row_for(fact, rule, compare(r), r) for r in reached]
