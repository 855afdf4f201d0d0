"""What changed in the registries since a date, and which verdicts changed with it.

Reads the history tables of the output database (``trial_history``,
``reconciliation_history``); see the data dictionary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from pipeline.errors import InputError


@dataclass(frozen=True)
class RecordChange:
    trial_id: str
    registry: str
    field: str
    old: str | None
    new: str | None
    changed_at: datetime
    run_id: str


@dataclass(frozen=True)
class VerdictChange:
    document_id: str
    claim_id: str
    trial_id: str | None
    field: str
    registry: str | None
    rule: str
    old_verdict: str
    new_verdict: str
    old_registry_value: str | None
    new_registry_value: str | None
    changed_at: datetime
    run_id: str


@dataclass(frozen=True)
class ChangeReport:
    since: datetime
    records: list[RecordChange]
    verdicts: list[VerdictChange]


_RECORD_CHANGES = """
SELECT n.trial_id, n.registry, n.field, o.value, n.value, n.valid_from, n.run_id
FROM trial_history n
JOIN trial_history o
  ON o.trial_id = n.trial_id AND o.registry = n.registry AND o.field = n.field AND o.valid_to = n.valid_from
WHERE n.valid_from >= ? AND o.value IS DISTINCT FROM n.value
ORDER BY n.valid_from, n.trial_id, n.registry, n.field
"""

_VERDICT_CHANGES = """
SELECT n.document_id, n.claim_id, n.trial_id, n.field, n.registry, n.rule, o.verdict, n.verdict,
       o.registry_value, n.registry_value, n.valid_from, n.run_id
FROM reconciliation_history n
JOIN reconciliation_history o
  ON o.document_id = n.document_id AND o.claim_id = n.claim_id
 AND o.trial_id IS NOT DISTINCT FROM n.trial_id AND o.field = n.field
 AND o.registry IS NOT DISTINCT FROM n.registry AND o.rule = n.rule AND o.valid_to = n.valid_from
WHERE n.valid_from >= ? AND o.verdict IS DISTINCT FROM n.verdict
ORDER BY n.valid_from, n.document_id, n.claim_id, n.field
"""


def changes_since(database: Path, since: datetime) -> ChangeReport:
    """Registry values and verdicts that changed at or after ``since``.

    Raises:
        InputError: the database does not exist or holds no history tables.
    """
    if not database.exists():
        raise InputError(f"{database}: no output database (run `python -m pipeline run` first)")
    try:
        with duckdb.connect(str(database), read_only=True) as con:
            records = [RecordChange(*row) for row in con.execute(_RECORD_CHANGES, [since]).fetchall()]
            verdicts = [VerdictChange(*row) for row in con.execute(_VERDICT_CHANGES, [since]).fetchall()]
    except duckdb.CatalogException as exc:
        raise InputError(f"{database}: no history tables ({exc})") from exc
    return ChangeReport(since=since, records=records, verdicts=verdicts)


def format_changes(report: ChangeReport) -> str:
    """A readable listing: each registry change, then the verdicts that changed with it."""
    lines = [f"Changes since {report.since.isoformat()}:"]
    if not report.records and not report.verdicts:
        return lines[0] + " none."
    lines.append(f"{len(report.records)} registry value(s) changed; {len(report.verdicts)} verdict(s) changed.")
    for c in report.records:
        lines.append(f"- {c.trial_id} [{c.registry}] {c.field}: {c.old} -> {c.new}  ({c.changed_at:%Y-%m-%d %H:%M})")
        for v in report.verdicts:
            if v.trial_id == c.trial_id and v.run_id == c.run_id:
                lines.append(
                    f"    claim {v.claim_id} ({v.field}, {v.rule}): {v.old_verdict} -> {v.new_verdict}"
                    f"  registry value {v.old_registry_value!r} -> {v.new_registry_value!r}"
                )
    explained = {(v.trial_id, v.run_id) for v in report.verdicts} & {(c.trial_id, c.run_id) for c in report.records}
    other = [v for v in report.verdicts if (v.trial_id, v.run_id) not in explained]
    if other:
        lines.append("Verdicts that changed without a registry change (document or rules changed):")
        lines += [
            f"- {v.trial_id} claim {v.claim_id} ({v.field}, {v.rule}): {v.old_verdict} -> {v.new_verdict}"
            for v in other
        ]
    return "\n".join(lines)
