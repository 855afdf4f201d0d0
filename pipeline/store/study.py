"""One CT.gov study of a bulk source: its record and snapshot entry, or the load error naming it.

Both ingest engines use it: the Python engine (:mod:`pipeline.store.ingest`) for every study, the
DuckDB engine (:mod:`pipeline.store.ingest_sql`) for the studies its SQL does not read.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ValidationError

from pipeline.constants import record_api_url
from pipeline.errors import SnapshotError, validation_problem
from pipeline.load.rows import LoadError
from pipeline.models import SnapshotEntry, TrialRecord
from pipeline.registries.ctgov import parse_study
from pipeline.registries.payload import decode_json


def parse_one(label: str, data: bytes) -> tuple[TrialRecord, SnapshotEntry] | LoadError:
    """One study's record and snapshot entry, or the load error that names it."""
    study: Any = None
    try:
        study = decode_json(data, path=label)
        record = parse_study(study, path=label)
    except (SnapshotError, ValidationError) as exc:
        problem = exc.problem if isinstance(exc, SnapshotError) else validation_problem(exc)
        return LoadError(label, "ctgov", _nct_id(study), problem)
    return record, _entry(label, data, record)


def _nct_id(study: Any) -> str | None:
    """The study's NCT number, where a record too broken to parse still tells it."""
    try:
        nct_id = study["protocolSection"]["identificationModule"]["nctId"]
    except (KeyError, TypeError):
        return None
    return nct_id if isinstance(nct_id, str) else None


def _entry(label: str, data: bytes, record: TrialRecord) -> SnapshotEntry:
    """A manifest-like entry for a bulk record: where it stood, its sha256, captured from CT.gov."""
    return SnapshotEntry(
        path=label, registry="ctgov", trial_id=record.trial_id, url=record_api_url("ctgov", record.trial_id),
        sha256=hashlib.sha256(data).hexdigest(), provenance="captured",
    )
