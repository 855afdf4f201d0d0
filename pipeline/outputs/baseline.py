"""The CI gate: discrepancies someone has looked at and accepted, and the check against them.

A baseline file (``baseline/<document_id>.json``) is a JSON list of
:class:`AcceptedDiscrepancy`. An entry accepts a ``mismatch`` or ``partial`` row when
document, claim, trial, field, registry, rule, stated value and registry value are all equal:
a registry value that changes re-opens the discrepancy. :func:`check` splits the rows into
accepted and unaccepted discrepancies and lists the baseline entries that accept nothing any
more (stale); the exit code is 1 when any discrepancy is unaccepted, and 3 when a snapshot
could not be used: a run that could not read its inputs never passes the gate.

Seeding a baseline: ``baseline_from_rows(rows, reason="...")`` then :func:`dump_baseline`, and a
human edits each reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from pipeline.constants import VERDICT_ORDER
from pipeline.errors import ExitStatus, InputError
from pipeline.files import MAX_STORE_FILE_BYTES, read_regular_file
from pipeline.models import ReconciliationRow
from pipeline.paths import DEFAULT_BASELINE_DIR

GATING_VERDICTS = ("mismatch", "partial")


class BaselineError(InputError):
    """A baseline file that cannot be read or holds an invalid entry."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


_AS_IN_RECONCILIATION = "As in reconciliation."


class AcceptedDiscrepancy(BaseModel):
    """A discrepancy someone has looked at and accepted, with the reason."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    document_id: str = Field(description=_AS_IN_RECONCILIATION)
    claim_id: str = Field(description=_AS_IN_RECONCILIATION)
    trial_id: str | None = Field(description=_AS_IN_RECONCILIATION)
    field: str = Field(description=_AS_IN_RECONCILIATION)
    registry: str | None = Field(description=_AS_IN_RECONCILIATION)
    rule: str = Field(description=_AS_IN_RECONCILIATION)
    stated_value: str | None = Field(description="The stated value accepted.")
    registry_value: str | None = Field(
        description="The registry value accepted; when the registry's value changes, the discrepancy re-opens.")
    compared_value: str | None = Field(default=None, description=(
        "Registry-vs-registry entries only: the compared registry's value accepted (it re-opens the "
        "discrepancy when it changes, as registry_value does)."))
    reason: str = Field(min_length=1, description="Why the discrepancy is accepted (required).")

    @field_validator("reason")
    @classmethod
    def _reason_has_words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason must not be blank")
        return value

    def key(self) -> tuple[str | None, ...]:
        """The values a row must share to be accepted by this entry."""
        return (self.document_id, self.claim_id, self.trial_id, self.field, self.registry, self.rule,
                self.stated_value, self.registry_value, self.compared_value)


def row_key(row: ReconciliationRow) -> tuple[str | None, ...]:
    """The values of ``row`` a baseline entry is matched on (see :meth:`AcceptedDiscrepancy.key`)."""
    return (row.document_id, row.claim_id, row.trial_id, row.field, row.registry, row.rule,
            row.stated_value, row.registry_value, row.compared_value)


_baseline_adapter = TypeAdapter(list[AcceptedDiscrepancy])


def load_baseline(path: Path, *, required: bool = False) -> list[AcceptedDiscrepancy]:
    """The accepted discrepancies in ``path``; none when the file does not exist and is not ``required``.

    Args:
        path: the baseline file.
        required: the file was asked for by name (``check --baseline``), so its absence is an
            error, not an empty baseline that would accept nothing and hide the typo.

    Raises:
        BaselineError (an InputError): the file is missing (when required), not a regular file,
            unreadable, not JSON, not a list of entries, has an entry without a reason, or
            accepts the same discrepancy twice.
    """
    path = Path(path)
    try:
        data = read_regular_file(path, limit=MAX_STORE_FILE_BYTES, what="a baseline", fail=BaselineError)
    except FileNotFoundError as exc:
        if required:
            raise BaselineError(path, "file not found") from exc
        return []
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BaselineError(path, f"not valid JSON: {exc}") from exc
    try:
        entries = _baseline_adapter.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BaselineError(path, f"entry {where}: {first['msg']}") from exc
    seen: dict[tuple[str | None, ...], int] = {}
    for i, entry in enumerate(entries):
        if entry.key() in seen:
            raise BaselineError(path, f"entry {i} accepts the same discrepancy as entry {seen[entry.key()]}")
        seen[entry.key()] = i
    return entries


def dump_baseline(entries: Iterable[AcceptedDiscrepancy]) -> str:
    """A baseline file's text: a JSON list, one entry per discrepancy, stable order."""
    ordered = sorted(entries, key=lambda e: tuple("" if v is None else v for v in e.key()))
    # compared_value belongs to registry-vs-registry entries only: the others leave it out.
    dumped = [{k: v for k, v in e.model_dump(mode="json").items() if k != "compared_value" or v is not None}
              for e in ordered]
    return json.dumps(dumped, indent=2, ensure_ascii=False) + "\n"


def baseline_from_rows(rows: Iterable[ReconciliationRow], reason: str) -> list[AcceptedDiscrepancy]:
    """An entry for every mismatch and partial row, all with ``reason`` (for a human to edit)."""
    entries: dict[tuple[str | None, ...], AcceptedDiscrepancy] = {}
    for row in rows:
        if row.verdict in GATING_VERDICTS:
            entries.setdefault(row_key(row), AcceptedDiscrepancy(
                document_id=row.document_id, claim_id=row.claim_id, trial_id=row.trial_id, field=row.field,
                registry=row.registry, rule=row.rule, stated_value=row.stated_value,
                registry_value=row.registry_value, compared_value=row.compared_value, reason=reason,
            ))
    return list(entries.values())


@dataclass(frozen=True)
class CheckResult:
    """The rows of a run against a baseline."""

    unaccepted: list[ReconciliationRow] = field(default_factory=list)
    accepted: list[ReconciliationRow] = field(default_factory=list)
    stale_entries: list[AcceptedDiscrepancy] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    unusable: list[str] = field(default_factory=list)
    reasons: dict[tuple[str | None, ...], str] = field(default_factory=dict)

    def reason_for(self, row: ReconciliationRow) -> str | None:
        """Why the baseline accepts ``row`` (None when it does not)."""
        return self.reasons.get(row_key(row))

    @property
    def exit_code(self) -> int:
        """3 when a snapshot could not be used, else 1 when any discrepancy is unaccepted, else 0."""
        if self.unusable:
            return ExitStatus.PARTIAL
        return ExitStatus.CHECK_FAILED if self.unaccepted else ExitStatus.OK


def check(
    rows: Sequence[ReconciliationRow], baseline: Sequence[AcceptedDiscrepancy], unusable: Sequence[str] = ()
) -> CheckResult:
    """Split the discrepancies (mismatch and partial rows) into accepted and unaccepted.

    Args:
        rows: the comparisons of one document.
        baseline: its accepted discrepancies.
        unusable: one line per snapshot the run could not use ("path: why"); any of them
            fails the check, since the comparisons it would have given are missing.

    Returns:
        A :class:`CheckResult`; its ``stale_entries`` are baseline entries that accept no
        discrepancy of ``rows`` (the registry value changed, or the row is gone or no longer
        a discrepancy), and ``counts`` counts every row by verdict.
    """
    by_key = {entry.key(): entry for entry in baseline}
    used: set[tuple[str | None, ...]] = set()
    unaccepted: list[ReconciliationRow] = []
    accepted: list[ReconciliationRow] = []
    for row in rows:
        if row.verdict not in GATING_VERDICTS:
            continue
        key = row_key(row)
        if key in by_key:
            accepted.append(row)
            used.add(key)
        else:
            unaccepted.append(row)
    counts = Counter(row.verdict for row in rows)
    return CheckResult(
        unaccepted=unaccepted,
        accepted=accepted,
        stale_entries=[entry for entry in baseline if entry.key() not in used],
        counts={verdict: counts.get(verdict, 0) for verdict in VERDICT_ORDER},
        unusable=list(unusable),
        reasons={key: by_key[key].reason for key in used},
    )


def _evidence_line(row: ReconciliationRow) -> str:
    ev = row.evidence
    if ev.snapshot_path is None:
        parts = [f"the page itself ({ev.field_path})" if ev.field_path else "no snapshot"]
    else:
        parts = [ev.snapshot_path]
        if ev.snapshot_sha256:
            parts.append(f"sha256 {ev.snapshot_sha256[:12]}")
        if ev.provenance:
            parts.append(ev.provenance)
        if ev.field_path:
            parts.append(f"at {ev.field_path}")
    if ev.link:
        parts.append(f"via {ev.link}")
    return ", ".join(parts)


def _show(value: str | None) -> str:
    return "(none)" if value is None else value


def _stated_lines(stated: str | None, compared_registry: str | None, compared_value: str | None) -> list[str]:
    if compared_registry is None and compared_value is None:
        return [f"    stated:   {_show(stated)}"]
    return [f"    compared: {_show(compared_value)} ({compared_registry or '-'})"]


def format_check(result: CheckResult) -> str:
    """A readable summary of a :class:`CheckResult`.

    Counts by verdict; then each unaccepted discrepancy with its stated value, registry value,
    reason and evidence (snapshot path, sha256[:12], provenance, field path); then the number
    of accepted discrepancies and each stale baseline entry; then the outcome.
    """
    total = sum(result.counts.values())
    lines = ["verdicts: " + ", ".join(f"{v} {result.counts.get(v, 0)}" for v in VERDICT_ORDER) + f" ({total} comparisons)"]
    lines.append(f"unaccepted discrepancies: {len(result.unaccepted)}")
    for row in result.unaccepted:
        where = f"{row.trial_id or '-'} {row.field} [{row.claim_id}] {row.rule}"
        lines += [
            f"  {row.verdict.upper()} {where} vs {row.registry or '-'}",
            *_stated_lines(row.stated_value, row.compared_registry, row.compared_value),
            f"    registry: {_show(row.registry_value)}",
            f"    why:      {_show(row.detail)}",
            f"    evidence: {_evidence_line(row)}",
        ]
    lines.append(f"accepted discrepancies (baseline): {len(result.accepted)}")
    lines.append(f"stale baseline entries: {len(result.stale_entries)}")
    for entry in result.stale_entries:
        lines.append(
            f"  {entry.trial_id or '-'} {entry.field} [{entry.claim_id}] {entry.rule} vs {entry.registry or '-'}: "
            f"stated {_show(entry.stated_value)}, "
            + ("" if entry.compared_value is None else f"compared {entry.compared_value}, ")
            + f"registry {_show(entry.registry_value)} (reason: {entry.reason})"
        )
    if result.unusable:
        lines.append(f"snapshots that could not be used: {len(result.unusable)}")
        lines += [f"  {line}" for line in result.unusable]
        lines.append(f"result: FAIL (incomplete: {len(result.unusable)} snapshot(s) could not be used)")
    else:
        lines.append("result: " + ("FAIL" if result.exit_code else "OK"))
    return "\n".join(lines)


def discrepancy_line(row: ReconciliationRow) -> str:
    """One line for a discrepancy: verdict, trial, field, claim id, and the two values (the page's,
    or in a registry-vs-registry row the compared registry's, then the registry's)."""
    if row.compared_registry is not None:
        first = f"{row.compared_registry} {_show(row.compared_value)}"
    else:
        first = f"page {_show(row.stated_value)}"
    return (f"{row.verdict.upper()} {row.trial_id or '-'} {row.field} [{row.claim_id}]: "
            f"{first}, {row.registry or 'registry'} {_show(row.registry_value)}")


def format_findings(results: Sequence[CheckResult], report: Path | None = None, limit: int = 10) -> list[str]:
    """The lines a run's summary leads with: verdict counts, the unaccepted discrepancies (at most
    ``limit``, then how many more), and where the report is."""
    counts: Counter[str] = Counter()
    for result in results:
        counts.update(result.counts)
    total = sum(counts.values())
    unaccepted = [row for result in results for row in result.unaccepted]
    accepted = sum(len(result.accepted) for result in results)
    findings = sum(1 for result in results for row in (*result.accepted, *result.unaccepted) if row.is_finding)
    lines = ["verdicts: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICT_ORDER) + f" ({total} comparisons)"]
    lines.append(f"findings: {findings} facts of the page contradicted by a registry (SELECT * FROM v_findings)")
    lines.append(f"unaccepted discrepancies: {len(unaccepted)} ({accepted} accepted by the baseline)")
    lines += [f"  {discrepancy_line(row)}" for row in unaccepted[:limit]]
    if len(unaccepted) > limit:
        lines.append(f"  and {len(unaccepted) - limit} more: see {report or 'the report'}")
    if report is not None:
        lines.append(f"report: {report}")
    return lines
