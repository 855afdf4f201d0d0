"""Prefect orchestration: thin tasks over :mod:`pipeline.stages`, one flow per command.

Importing this module imports Prefect (about a second), so the CLI imports it only for the
commands that run a flow.
"""

from __future__ import annotations

import os

from pipeline.orchestrate.server import OFFLINE_ENVIRONMENT

# Before Prefect is imported: the temporary Prefect server must not try to send telemetry.
for _name, _value in OFFLINE_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

import duckdb  # noqa: E402
from prefect import Flow, flow, get_run_logger, task, unmapped  # noqa: E402
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from pipeline import stages
from pipeline.outputs.baseline import format_findings
from pipeline.outputs.report import ReportContext
from pipeline.load.rows import LoadError, RunInfo
from pipeline.errors import ExitStatus, InputError
from pipeline.load.incremental import read_previous_state
from pipeline.load.writer import (
    DB_NAME,
    Batch,
    LoadResult,
    interrupted_publish,
    open_output_database,
    output_errors,
    output_lock,
    publishing,
    record_run_only,
    write_outputs,
)
from pipeline.models import ExtractedDocument, ReconciliationRow, SnapshotEntry
from pipeline.orchestrate.progress import Progress, make_progress
from pipeline.reconcile import PageRecords
from pipeline.paths import DEFAULT_BASELINE_DIR, DEFAULT_OUTPUT_DIR, DEFAULT_SNAPSHOTS_DIR
from pipeline.store.snapshots import SnapshotStore

T = TypeVar("T")

DASK_ADDRESS_ENV = "TRIALRECON_DASK_ADDRESS"
DEPLOYMENT_NAME = "trialrecon-scheduled"
DEFAULT_CRON = "0 6 * * *"  # daily at 06:00

# Our inputs are pydantic models and paths; results live in DuckDB, not in Prefect's result store.
# Large inputs (a site's records, pages and rows) are passed in a Parcel (see there).
_task = task(cache_policy=NO_CACHE, persist_result=False)


@dataclass
class RunSummary:
    """What a run did, for the CLI to print and for callers to assert on."""

    run_id: str
    database: Path
    parquet_dir: Path
    row_counts: dict[str, int]
    documents: list[str]
    records: int
    parsed: int
    reused: int
    work_done: bool
    registry_counts: list[dict[str, object]]
    trials_without_records: list[str]
    candidate_only: dict[str, str] = field(default_factory=dict)
    load_errors: list[LoadError] = field(default_factory=list)
    refresh_failures: list[str] = field(default_factory=list)  # "path: why" of each target a refresh failed
    findings: list[str] = field(default_factory=list)  # the lines the summary leads with
    record_provenance: dict[str, int] = field(default_factory=dict)
    report: Path | None = None

    @property
    def exit_code(self) -> int:
        """0 complete, 3 partial (some snapshots could not be used, or could not be refreshed)."""
        return ExitStatus.PARTIAL if self.load_errors or self.refresh_failures else ExitStatus.OK


class Parcel(Generic[T]):
    """A task's large input, passed whole: Prefect walks every list, tuple, dict, dataclass and
    pydantic model in a task's parameters looking for futures, which for a site's records, pages
    and rows cost more than the work itself; it does not look inside an object of another kind.
    (``prefect.utilities.annotations.quote`` says the same, but the Dask runner hands it on unopened.)
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __getstate__(self) -> T:
        return self.value

    def __setstate__(self, value: T) -> None:
        self.value = value


def _parcels(items: list[T]) -> list[Parcel[T]]:
    return [Parcel(item) for item in items]


@_task(name="extract documents")
def extract_task(sources: Parcel[list[stages.DocumentSource]], taken: dict[str, str]) -> list[ExtractedDocument]:
    """Extract the stated facts of some documents (one batch of a site's pages; ``taken``: the
    output's document ids and their URLs)."""
    return stages.extract_documents(sources.value, taken=taken)


@_task(name="load snapshot", task_run_name="load {first} (+{extra})")
def load_snapshot_task(
    store: SnapshotStore, entries: Parcel[list[SnapshotEntry]], cached: Parcel[list[stages.Reuse | None]], first: str,
    extra: int = 0,
) -> list[stages.SnapshotRecords]:
    """Parse some registry snapshots (the first named ``first``), or reuse last run's records of the same bytes."""
    return [stages.load_snapshot(store, entry, raw) for entry, raw in zip(entries.value, cached.value, strict=True)]


@_task(name="reconcile")
def reconcile_task(docs: Parcel[list[ExtractedDocument]], inputs: Parcel[list[PageRecords]]) -> list[ReconciliationRow]:
    """Compare every stated fact of some documents with the records each needs."""
    return stages.reconcile_pages(docs.value, inputs.value)


@_task(name="refresh snapshots", retries=0)
def refresh_task(store: SnapshotStore, sources: list[stages.DocumentSource]) -> list[str]:
    """Fetch every record live into the store (conditional GETs); failures keep the old snapshot.

    Returns:
        One "path: why" line per target whose refresh failed (its snapshot is marked stale).
    """
    from pipeline.fetch.refresh import FetchTarget, run_refresh

    docs = stages.extract_documents(sources)
    targets = [FetchTarget(registry=r, trial_id=t) for r, t in stages.refresh_targets(store, docs)]
    report = run_refresh(targets, store=store, progress=make_progress(logger=get_run_logger()))  # type: ignore[arg-type]
    return [f"{o.path}: {o.error}" for o in report.failed]


@_task(name="write outputs")
def write_task(batch: Parcel[Batch], output_dir: Path, run_id: str) -> LoadResult:
    """Write DuckDB and Parquet atomically."""
    with output_errors(output_dir):
        return write_outputs(batch.value, output_dir, version=run_id)


@_task(name="write report")
def report_task(
    docs: Parcel[list[ExtractedDocument]], rows: Parcel[list[ReconciliationRow]], records: Parcel[stages.RecordSet],
    output_dir: Path, context: Parcel[ReportContext],
) -> list[Path]:
    """Write output/report.html and output/report.md (each replaced atomically)."""
    with output_errors(output_dir):
        return stages.write_reports(docs.value, rows.value, records.value, output_dir, context.value)


@flow(name="trialrecon", description="Extract, reconcile and load the stated facts of trial pages.")
def trialrecon_flow(
    documents: list[Path] | None = None,
    output_dir: Path = DEFAULT_OUTPUT_DIR,
    snapshots_dir: Path = DEFAULT_SNAPSHOTS_DIR,
    online: bool = False,
    baseline_dir: Path = DEFAULT_BASELINE_DIR,
) -> RunSummary:
    """Run the pipeline from the snapshot store (offline unless ``online``).

    Args:
        documents: page files to extract; the store's embedded documents when omitted.
        output_dir: where trialrecon.duckdb and parquet/ are written.
        snapshots_dir: the snapshot store to read registry records from.
        online: refresh the store from the live registries first (registry hosts only).
        baseline_dir: accepted discrepancies, ``<document_id>.json`` per document: the summary
            and the report say which discrepancies no baseline accepts.
    """
    logger = get_run_logger()
    started = datetime.now(UTC)
    run_id = stages.new_run_id(started)
    store = SnapshotStore(snapshots_dir)
    sources = stages.document_sources(documents, store) if documents else stages.default_documents(store)
    # A system or DuckDB error about the output folder is one OutputError naming the file.
    with output_errors(output_dir), output_lock(output_dir):
        refresh_failures = refresh_task(store, sources) if online else []
        for line in refresh_failures:
            logger.warning("refresh failed, previous snapshot kept (stale): %s", line)
        interrupted = interrupted_publish(output_dir)
        if interrupted:
            logger.warning("run %s was stopped while publishing its outputs: they may disagree, "
                           "so this run writes all of them again", interrupted)
        with open_output_database(output_dir) as con:  # closed before the work below replaces the file
            previous = read_previous_state(output_dir / DB_NAME, con)
            plan = stages.plan_run(sources, store, previous)
            if not plan.work_needed and not interrupted:
                logger.info("nothing changed since the last run: recording the run only")
                findings = stages.stored_findings(con, baseline_dir, output_dir / "report.html")
                with publishing(output_dir, run_id):
                    unchanged = _record_unchanged_run(run_id, started, plan, output_dir, con, findings)
                unchanged.refresh_failures = refresh_failures
                return unchanged
        # Pages whose text changed are read first: a bad page stops the run before any parsing.
        # After an interrupted publish every page is done again, so that every output is whole.
        changed = list(sources) if interrupted else stages.pages_to_extract(sources, plan, previous)
        docs = _extract(changed, previous.document_urls)
        # A task per batch of snapshots, so a distributed task runner has the parsing to spread.
        jobs = stages.plan_snapshots(store, previous, plan.verified)
        entries, cached = stages.batches(jobs.entries), stages.batches(jobs.cached)
        futures = load_snapshot_task.map(unmapped(store), _parcels(entries), _parcels(cached),
                                         [b[0].path for b in entries], [len(b) - 1 for b in entries])
        progress = make_progress(logger=get_run_logger())
        records = stages.collect_records(jobs, _results(futures, len(jobs.entries), progress))  # type: ignore[arg-type]
        # Pages unchanged themselves are reconciled again only when a record they use changed.
        affected = stages.pages_affected(sources, plan, previous, records, changed)
        docs = stages.settle_ids([*docs, *_extract(affected, previous.document_urls)], [*changed, *affected],
                                 previous.document_urls)
        baselines = stages.load_baselines(docs, baseline_dir)  # a bad baseline: refused before anything is written
        inputs = stages.page_inputs(docs, records)
        with stages.records_spared():
            futures = reconcile_task.map(_parcels(stages.batches(docs)), _parcels(stages.batches(inputs)))
            rows = [row for future in futures for row in future.result()]
        run = RunInfo(run_id=run_id, started_at=started, finished_at=datetime.now(UTC))
        trials = stages.describe_trials(docs, records, inputs)
        batch = stages.run_batch(run, docs, records, store, rows, previous, plan.fingerprint,
                                 file_stats=plan.file_stats, basis=plan.basis, trials=trials)
        checks = stages.check_documents(rows, baselines)
        context = stages.report_context(run, docs, rows, records, checks, trials)
        report = None
        # Database, Parquet and reports are published as one unit (see pipeline.load.writer.publishing).
        with publishing(output_dir, run_id):
            result = write_task(Parcel(batch), output_dir, run_id)
            if docs:  # with no page reconciled again, the last report still tells every row
                report_docs, report_rows, report_context = docs, rows, context
                kept = stages.pages_kept(sources, [*changed, *affected])
                if kept:  # the report tells every page of the output, not only those redone
                    kept_docs = stages.settle_ids(_extract(kept, previous.document_urls), kept,
                                                  previous.document_urls)
                    by_source = dict(zip([*changed, *affected, *kept], [*docs, *kept_docs], strict=True))
                    report_docs = [by_source[source] for source in sources]
                    report_rows = [*rows, *stages.stored_rows(result.database,
                                                              [d.document.document_id for d in kept_docs])]
                    report_context = stages.report_context(
                        run, report_docs, report_rows, records,
                        stages.check_documents(report_rows, stages.load_baselines(report_docs, baseline_dir)),
                        stages.describe_trials(report_docs, records))
                [report, _] = report_task(Parcel(report_docs), Parcel(report_rows), Parcel(records), output_dir,
                                          Parcel(report_context))
    for err in records.errors:
        logger.warning("could not use %s: %s", err.snapshot, err.error)
    logger.info("run %s wrote %s", run_id, result.database)
    _publish_summary(rows)
    return RunSummary(
        run_id=run_id,
        database=result.database,
        parquet_dir=result.parquet_dir,
        row_counts=result.row_counts,
        documents=[d.document.document_id for d in docs],
        records=len(records.records),
        parsed=len(records.parsed),
        reused=len(records.records and {e.path for _, e in records.records} - records.parsed),
        work_done=True,
        registry_counts=batch.rows.get("run_registry_counts", []),
        trials_without_records=stages.trials_without_records(docs, records),
        candidate_only=stages.trials_with_candidate_only(docs, records),
        load_errors=records.errors,
        refresh_failures=refresh_failures,
        findings=format_findings(list(checks.values()), report) if docs else [],
        record_provenance=context.record_provenance,
        report=report,
    )


def _extract(sources: list[stages.DocumentSource], taken: dict[str, str]) -> list[ExtractedDocument]:
    """The documents extracted by one task per batch of pages, in order (their ids not yet
    settled across batches: see :func:`stages.settle_ids`)."""
    futures = extract_task.map(_parcels(stages.batches(sources)), unmapped(taken))
    return [doc for future in futures for doc in future.result()]


def _results(
    futures: list[PrefectFuture[list[stages.SnapshotRecords]]], total: int, progress: Progress
) -> list[stages.SnapshotRecords]:
    """Each future's results, in order, reporting progress as they arrive."""
    progress.start("registry snapshots", total)
    results = []
    for future in futures:
        for item in future.result():
            results.append(item)
            progress.advance(item.entry.path)
    progress.finish()
    return results


def _publish_summary(rows: list[ReconciliationRow]) -> None:
    """Counts by verdict as a keyed Prefect artifact, so the UI shows them per run and over time."""
    from collections import Counter

    from prefect.artifacts import create_table_artifact

    counts = Counter(r.verdict for r in rows)
    create_table_artifact(
        key="trialrecon-reconciliation",
        table=[{"verdict": v, "comparisons": counts.get(v, 0)} for v in ("match", "partial", "mismatch", "unverifiable")],
        description="Comparisons of stated facts with registry records, by verdict.",
    )


def flow_on(dask_address: str | None = None) -> Flow:  # type: ignore[type-arg]
    """The flow on the default (thread pool) task runner, or on the Dask cluster at ``dask_address``.

    Args:
        dask_address: a dask.distributed scheduler, e.g. ``tcp://scheduler:8786``; the
            ``TRIALRECON_DASK_ADDRESS`` environment variable when omitted; the default task
            runner when neither is set.
    """
    address = dask_address or os.environ.get(DASK_ADDRESS_ENV)
    if not address:
        return trialrecon_flow
    from prefect_dask import DaskTaskRunner

    return trialrecon_flow.with_options(task_runner=DaskTaskRunner(address=address))


def _record_unchanged_run(
    run_id: str, started: datetime, plan: stages.RunPlan, output_dir: Path, con: duckdb.DuckDBPyConnection | None,
    findings: list[str],
) -> RunSummary:
    run = RunInfo(run_id=run_id, started_at=started, finished_at=datetime.now(UTC))
    rows = stages.unchanged_run_rows(run, plan)
    result = record_run_only(output_dir, rows, con)
    return RunSummary(
        run_id=run_id,
        database=result.database,
        parquet_dir=result.parquet_dir,
        row_counts=result.row_counts,
        documents=plan.document_ids,
        records=0,
        parsed=0,
        reused=plan.snapshot_count,
        work_done=False,
        registry_counts=rows["run_registry_counts"],
        trials_without_records=[],
        findings=findings,
    )


def make_schedule(cron: str | None = None, interval: float | None = None, timezone: str = "UTC"):  # -> Schedule
    """The schedule ``serve`` runs on: every ``interval`` seconds, else on ``cron`` (default daily 06:00),
    in ``timezone``.

    Raises:
        InputError: the cron string, the interval or the time zone is not valid; the message names
            the option and the value.
    """
    from datetime import timedelta

    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
    from prefect.schedules import Cron, Interval
    from pydantic import ValidationError

    if interval is not None and not interval > 0:
        raise InputError(f"--interval {interval:g}: the interval must be a positive number of seconds")
    cron = cron or DEFAULT_CRON
    try:
        # Prefect's own schedule models validate here, before any server is involved.
        if interval is not None:
            IntervalSchedule(interval=timedelta(seconds=interval), timezone=timezone)
        else:
            CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        error = exc.errors()[0]
        # A model-level validator (IntervalSchedule's time zone) reports no field: the message names it.
        field_name = str(error["loc"][0]) if error["loc"] else ("timezone" if "timezone" in error["msg"] else "")
        if field_name == "timezone":
            raise InputError(f"--timezone {timezone!r} is not an IANA time zone (e.g. UTC, Europe/Paris)") from None
        if field_name == "cron":
            raise InputError(f"--cron {cron!r} is not a cron schedule "
                             "(five fields: minute hour day-of-month month day-of-week, e.g. \"0 6 * * *\")") from None
        raise InputError(f"bad schedule: {error['msg']}") from None
    if interval is not None:
        return Interval(timedelta(seconds=interval), timezone=timezone)
    return Cron(cron, timezone=timezone)


def make_deployment(
    schedule,  # a prefect.schedules.Schedule, from make_schedule
    *,
    documents: list[Path] | None = None,
    output_dir: Path = DEFAULT_OUTPUT_DIR,
    snapshots_dir: Path = DEFAULT_SNAPSHOTS_DIR,
    online: bool = False,
):  # -> RunnerDeployment (Prefect's type; not imported at module level to keep typing simple)
    """The scheduled deployment that ``serve`` runs: the flow on ``schedule`` with fixed parameters."""
    return trialrecon_flow.to_deployment(
        name=DEPLOYMENT_NAME,
        schedule=schedule,
        parameters={
            "documents": [str(p) for p in documents] if documents else None,
            "output_dir": str(output_dir),
            "snapshots_dir": str(snapshots_dir),
            "online": online,
        },
        tags=["trialrecon"],
    )
