"""A :class:`~pipeline.models.TrialRecord` as a registry parser builds it: each field with the place
in the registry's payload it was read from (``TrialRecord.field_paths``).

Every parser says "the registry states nothing here" the same way, so that an empty list or a
blank string never stands in a record as if it were a value.
"""

from __future__ import annotations

from typing import Any

from pipeline.models import TrialRecord


class RecordFields:
    """The fields of one record being read, and where each was read.

    ``values`` may also be set directly, for a field that is derived rather than read at one
    place (``status_raw``, ``enrollment_scope``): it then has no field path.
    """

    def __init__(self, registry: str, trial_id: str, trial_id_path: str) -> None:
        """Start the record of ``trial_id`` in ``registry``, its number read at ``trial_id_path``."""
        self.values: dict[str, Any] = {"trial_id": trial_id, "registry": registry}
        self.paths: dict[str, str] = {"trial_id": trial_id_path}

    def put(self, field: str, value: Any, native: str | None) -> None:
        """Set ``field`` to ``value``, read at ``native``; nothing stated (None, an empty list, a
        blank string) or nowhere to have read it from (``native`` None) sets nothing."""
        if value is None or value == [] or value == "" or native is None:
            return
        self.values[field] = value
        self.paths[field] = native

    def record(self) -> TrialRecord:
        """The record, validated."""
        return TrialRecord(**self.values, field_paths=self.paths)
