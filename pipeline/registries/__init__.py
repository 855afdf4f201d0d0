"""Registry parsers: each registry's native payload -> :class:`~pipeline.models.TrialRecord`.

* :mod:`.ctgov` ClinicalTrials.gov API v2 JSON (one study, or a ``/studies`` page)
* :mod:`.ctis` EU CTIS public API JSON (the 2024 "authorizedApplication" layout and the older
  top-level "authorizedPartI" layout)
* :mod:`.euctr` EU Clinical Trials Register: full-text download, protocol page, search page
* :mod:`.cteu` clinicaltrials.eu trial pages

:func:`detect_registry` tells which registry wrote a payload from its content;
:func:`parse_snapshot` dispatches to the right parser.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.constants import REGISTRIES
from pipeline.errors import ParseError
from pipeline.ids import registry_of_leading
from pipeline.models import Registry, TrialRecord
from pipeline.registries.payload import decode_json, looks_like_html

__all__ = ["decode_json", "detect_registry", "looks_like_html", "parse_snapshot", "require_trial"]



def detect_registry(data: bytes, filename: str = "") -> Registry:
    """Tell which registry wrote a payload, from its content first.

    JSON with ``protocolSection`` or ``studies`` is CT.gov, with ``ctNumber``,
    ``authorizedApplication`` or ``authorizedPartI`` CTIS; HTML from
    clinicaltrialsregister.eu (naming the site, its ``/ctr-search/`` paths or its ``tricell``
    rows) and text with "EudraCT Number:"
    are EU CTR; HTML from clinicaltrials.eu is cteu. Where the content does not tell (an empty
    JSON object, an HTML error page), the folder or name of ``filename`` decides.

    Raises:
        ParseError: neither content nor file name tells the registry (for JSON that does not
            decode, the decoding error).
    """
    name = filename or "<snapshot>"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    json_error: ParseError | None = None
    if head in (b"{", b"["):
        try:
            registry = _detect_json(decode_json(data, path=name))
        except ParseError as exc:
            registry, json_error = None, exc  # the file name may still tell whose it is
    else:
        registry = _detect_from_content(data)
    if registry is None:
        registry = _detect_from_filename(filename)
    if registry is None:
        raise json_error or ParseError(name, "cannot tell which registry wrote this content")
    return registry


def _detect_from_content(data: bytes) -> Registry | None:
    if looks_like_html(data):
        lowered = data.lower()
        # The register's pages link its own paths (/ctr-search/) even when they never name the site.
        if any(marker in lowered for marker in (b"clinicaltrialsregister.eu", b'class="tricell"', b"/ctr-search/")):
            return "euctr"
        if b"clinicaltrials.eu" in lowered:
            return "cteu"
        return None
    if b"EudraCT Number:" in data:
        return "euctr"
    return None


def _detect_json(payload: Any) -> Registry | None:
    if isinstance(payload, list):
        payload = next((item for item in payload if isinstance(item, dict)), None)
    if not isinstance(payload, dict):
        return None
    if "protocolSection" in payload or "studies" in payload:
        return "ctgov"
    if {"ctNumber", "authorizedApplication", "authorizedPartI"} & payload.keys():
        return "ctis"
    if isinstance(payload.get("data"), list) and "pagination" in payload:
        return "ctis"  # a CTIS search response
    return None


def _detect_from_filename(filename: str) -> Registry | None:
    parts = [p for p in re.split(r"[\\/]", filename) if p]
    for part in reversed(parts[:-1]):
        if part in REGISTRIES:
            return part  # type: ignore[return-value]
    name = parts[-1].lower() if parts else ""
    return registry_of_leading(name) or ("euctr" if name.startswith("euctr") else None)


def parse_snapshot(data: bytes, *, path: str, registry: Registry | None = None) -> list[TrialRecord]:
    """Parse one snapshot into the records it holds.

    A CT.gov ``/studies`` page gives one record per study; an EU CTR full-text download gives
    one record per trial (member-state records of one EudraCT number merged).

    Args:
        data: the snapshot's bytes.
        path: its path, used in every error message.
        registry: the registry that wrote it (from the manifest); detected from the content
            when None.

    Raises:
        ParseError: the content is not what the registry's parser reads, or a record lists more
            than :data:`MAX_CONDITIONS` conditions.
    """
    records = _parse_by_registry(data, path=path, registry=registry)
    for record in records:
        if len(record.conditions) > MAX_CONDITIONS:
            raise ParseError(path, f"{record.trial_id} lists {len(record.conditions):,} conditions; "
                                   f"a record may hold at most {MAX_CONDITIONS:,}")
    return records


MAX_CONDITIONS = 500
"""The most conditions one snapshot's record may list. Reconciliation compares conditions pairwise
across the registries of a trial (500 x 500 terms: about a second), so an unbounded list would make
it unbounded too. The largest real records list tens."""


def _parse_by_registry(data: bytes, *, path: str, registry: Registry | None) -> list[TrialRecord]:
    from pipeline.registries import ctgov, ctis, cteu, euctr

    if registry is None:
        registry = detect_registry(data, path)
    if registry == "ctgov":
        return ctgov.parse_ctgov(data, path=path)
    if registry == "ctis":
        return ctis.parse_ctis(data, path=path)
    if registry == "euctr":
        if looks_like_html(data):
            return euctr.parse_euctr_html(data, path=path)
        return euctr.parse_euctr_text(data, path=path)
    if registry == "cteu":
        return cteu.parse_cteu(data, path=path)
    raise ParseError(path, f"no parser for registry {registry!r}")


def require_trial(records: list[TrialRecord], trial_id: str, *, path: str) -> list[TrialRecord]:
    """``records`` when one of them is the record of ``trial_id``; a snapshot stored (or fetched)
    for one trial that holds another trial, or no record at all, is not that trial's record.

    A payload may hold several records (an EU CTR download gives every trial it mentions); one
    of them must be the trial asked for.

    Raises:
        ParseError: no record, or none of ``trial_id`` (the message names the ids found).
    """
    if not records:
        raise ParseError(path, f"holds no record (expected {trial_id})")
    if not any(r.trial_id == trial_id for r in records):
        found = ", ".join(sorted({r.trial_id for r in records})[:5])
        raise ParseError(path, f"holds the record of {found}, not of {trial_id}")
    return records
