"""Prefect orchestration: the run's sequence (:mod:`pipeline.run`) as a flow, its steps as thin tasks
over :mod:`pipeline.stages`.

Importing this module imports Prefect (about a second), so the CLI imports it only for the
commands that run a flow.
"""

from __future__ import annotations

import os

from pipeline.orchestrate.server import OFFLINE_ENVIRONMENT

# Before Prefect is imported: the temporary Prefect server must not try to send telemetry.
for _name, _value in OFFLINE_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from prefect import Flow, flow, get_run_logger, task, unmapped  # noqa: E402
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline import run, stages
from pipeline.errors import InputError
from pipeline.load.writer import Batch, LoadResult, output_errors
from pipeline.models import ExtractedDocument, ReconciliationRow, SharedParts, SnapshotEntry
from pipeline.orchestrate.progress import Progress, make_progress
from pipeline.paths import DEFAULT_BASELINE_DIR, DEFAULT_OUTPUT_DIR, DEFAULT_SNAPSHOTS_DIR
from pipeline.reconcile import PageRecords
from pipeline.run import RunSummary
from pipeline.store.snapshots import SnapshotStore

T = TypeVar("T")

DASK_ADDRESS_ENV = "TRIALRECON_DASK_ADDRESS"
DEPLOYMENT_NAME = "trialrecon-scheduled"
DEFAULT_CRON = "0 6 * * *"  # daily at 06:00

# Our inputs are pydantic models and paths; results live in DuckDB, not in Prefect's result store.
# Large inputs (a site's records, pages and rows) are passed in a Parcel (see there).
_task = task(cache_policy=NO_CACHE, persist_result=False)


class Parcel(Generic[T]):
    """A task's large input, passed whole: Prefect walks every list, tuple, dict, dataclass and
    pydantic model in a task's parameters looking for futures, which for a site's records, pages
    and rows cost more than the work itself; it does not look inside an object of another kind.
    (``prefect.utilities.annotations.quote`` says the same, but the Dask runner hands it on unopened.)
    As a flow's parameter it is not JSON, so it is never stored with the flow run.
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
def extract_task(pages: Parcel[list[stages.Page]], taken: dict[str, str]) -> list[ExtractedDocument]:
    """Extract the stated facts of some documents (one batch of a site's pages; ``taken``: the
    output's document ids and their URLs)."""
    return stages.extract_pages(pages.value, taken=taken)


@_task(name="load snapshot", task_run_name="load {first} (+{extra})")
def load_snapshot_task(
    store: SnapshotStore, entries: Parcel[list[SnapshotEntry]], cached: Parcel[list[stages.Reuse | None]], first: str,
    extra: int = 0,
) -> list[stages.SnapshotRecords]:
    """Parse some registry snapshots (the first named ``first``), or reuse last run's records of the same bytes."""
    shared = SharedParts()
    return [stages.load_snapshot(store, entry, raw, shared)
            for entry, raw in zip(entries.value, cached.value, strict=True)]


@_task(name="reconcile")
def reconcile_task(docs: Parcel[list[ExtractedDocument]], inputs: Parcel[list[PageRecords]]) -> list[ReconciliationRow]:
    """Compare every stated fact of some documents with the records each needs."""
    return stages.reconcile_pages(docs.value, inputs.value)


@_task(name="refresh snapshots", retries=0)
def refresh_task(store: SnapshotStore, docs: Parcel[list[ExtractedDocument]]) -> list[str]:
    """Fetch every record live into the store (conditional GETs); failures keep the old snapshot.

    Returns:
        One "path: why" line per target whose refresh failed (its snapshot is marked stale).
    """
    return stages.refresh_store(store, docs.value, make_progress(logger=get_run_logger()))  # type: ignore[arg-type]


@_task(name="write outputs")
def write_task(batch: Parcel[Batch], output_dir: Path, run_id: str, link_unchanged: bool = True) -> LoadResult:
    """Write DuckDB and Parquet atomically."""
    return run.Steps().write(batch.value, output_dir, run_id, link_unchanged=link_unchanged)


@_task(name="render page reports")
def render_reports_task(inputs: Parcel[stages.ReportInputs]) -> list[stages.RenderedPage]:
    """Some pages' own reports (a :meth:`~stages.ReportInputs.part`): (document_id, HTML, Markdown) each."""
    return list(stages.render_page_reports(inputs.value))


@_task(name="write site report")
def report_task(inputs: Parcel[stages.ReportInputs], output_dir: Path, baseline_dir: Path) -> list[Path]:
    """Write output/report.html and report.md (each replaced atomically), the pages' own reports being written."""
    return run.Steps().report(inputs.value, output_dir, baseline_dir, pages_written=True)


class TaskSteps(run.Steps):
    """The run's steps as Prefect tasks: extraction, snapshot loading and reconciliation mapped
    over batches (a distributed task runner has them to spread), the others one task each."""

    def __init__(self) -> None:
        logger = get_run_logger()
        super().__init__(logger, make_progress(logger=logger))  # type: ignore[arg-type]

    def refresh(self, store: SnapshotStore, docs: Sequence[ExtractedDocument]) -> list[str]:
        return refresh_task(store, Parcel(list(docs)))

    def extract(self, pages: Sequence[stages.Page], taken: Mapping[str, str]) -> list[ExtractedDocument]:
        """The documents extracted by one task per batch of pages, in order (their ids not yet
        settled across batches: see :func:`stages.settle_ids`)."""
        if all(page.extracted is not None for page in pages):  # read by the caller: ids to settle, no work to spread
            return super().extract(pages, taken)
        futures = extract_task.map(_parcels(stages.batches(pages)), unmapped(dict(taken)))
        return [doc for future in futures for doc in future.result()]

    def load_snapshots(self, store: SnapshotStore, jobs: stages.SnapshotJobs) -> list[stages.SnapshotRecords]:
        """The snapshots to parse by one task per batch; those whose records are reused (cached
        from the same bytes: no parsing, the records validated only when a page needs them) here,
        where they cost less than the tasks would."""
        to_parse = [n for n, reuse in enumerate(jobs.cached) if reuse is None]
        if not to_parse:
            return super().load_snapshots(store, jobs)
        loaded: list[stages.SnapshotRecords | None] = [
            None if reuse is None else stages.load_snapshot(store, entry, reuse)
            for entry, reuse in zip(jobs.entries, jobs.cached, strict=True)]
        entries = stages.batches([jobs.entries[n] for n in to_parse])
        # The tasks read snapshot files only: they get the store's folder, not the run's manifest.
        futures = load_snapshot_task.map(unmapped(store.unpinned()), _parcels(entries),
                                         _parcels([[None] * len(b) for b in entries]),
                                         [b[0].path for b in entries], [len(b) - 1 for b in entries])
        parsed = iter(_results(futures, len(to_parse), self.progress))
        return [item if item is not None else next(parsed) for item in loaded]

    def reconcile(self, docs: Sequence[ExtractedDocument], inputs: Sequence[PageRecords]) -> list[ReconciliationRow]:
        futures = reconcile_task.map(_parcels(stages.batches(docs)), _parcels(stages.batches(inputs)))
        return [row for future in futures for row in future.result()]

    def write(self, batch: Batch, output_dir: Path, run_id: str, *, link_unchanged: bool = True) -> LoadResult:
        return write_task(Parcel(batch), output_dir, run_id, link_unchanged)

    def report(self, inputs: stages.ReportInputs, output_dir: Path, baseline_dir: Path, *,
               pages_written: bool = False) -> list[Path]:
        """The pages' reports rendered by one task per batch of pages and written here as each batch
        comes (a site's reports are never all held at once), then the site report."""
        # Each task gets its own pages' part: a worker is not sent every page's rows and records.
        parts = [Parcel(inputs.part(batch)) for batch in stages.batches(range(len(inputs.docs)))]
        futures = list(render_reports_task.map(parts))
        futures.reverse()
        with output_errors(output_dir):
            while futures:  # each batch's texts dropped once written
                stages.write_page_reports(futures.pop().result(), output_dir)
        return report_task(Parcel(inputs), output_dir, baseline_dir)


LOCAL_TASK_THREADS = 1
"""Tasks run one at a time on the default runner. The steps are CPU-bound Python: Prefect's default
pool of several threads only makes them contend for the GIL, and every file read hands it to
another thread for 5 ms (500 pages over 20,000 records: 122 s with the default pool, 67 s with
one thread). A Dask cluster (:func:`flow_on`) is where tasks run side by side."""


@flow(name="trialrecon", description="Extract, reconcile and load the stated facts of trial pages.",
      task_runner=ThreadPoolTaskRunner(max_workers=LOCAL_TASK_THREADS))
def trialrecon_flow(
    documents: list[Path] | None = None,
    output_dir: Path = DEFAULT_OUTPUT_DIR,
    snapshots_dir: Path = DEFAULT_SNAPSHOTS_DIR,
    online: bool = False,
    baseline_dir: Path = DEFAULT_BASELINE_DIR,
    inputs: Parcel[run.RunInputs] | None = None,
) -> RunSummary:
    """Run the pipeline (:func:`pipeline.run.run_pipeline`) from the snapshot store, offline unless ``online``.

    Args:
        documents: page files to extract; the store's embedded documents when omitted.
        output_dir: where trialrecon.duckdb and parquet/ are written.
        snapshots_dir: the snapshot store to read registry records from.
        online: refresh the store from the live registries first (registry hosts only).
        baseline_dir: accepted discrepancies, ``<document_id>.json`` per document: the summary
            and the report say which discrepancies no baseline accepts.
        inputs: the pages and store of ``documents`` and ``snapshots_dir`` as the caller read them
            already (:func:`pipeline.run.read_inputs`), so that the run reads them no more;
            never stored with the flow run (not JSON).
    """
    read = inputs.value if inputs is not None else run.read_inputs(documents, snapshots_dir)
    summary = run.run_pipeline(read, output_dir, baseline_dir, TaskSteps(), online=online)
    if summary.work_done:
        _publish_summary(summary.verdicts)
    return summary


def _results(
    futures: list[PrefectFuture[list[stages.SnapshotRecords]]], total: int, progress: Progress
) -> list[stages.SnapshotRecords]:
    """Each future's results, in order, reporting progress as they arrive."""
    progress.start("registry snapshots", total)
    results = []
    for future in stages.spared_as_they_come(futures, every=1):  # a future is a batch of snapshots
        for item in future.result():
            results.append(item)
            progress.advance(item.entry.path)
    progress.finish()
    return results


def _publish_summary(counts: Mapping[str, int]) -> None:
    """Counts by verdict as a keyed Prefect artifact, so the UI shows them per run and over time."""
    from prefect.artifacts import create_table_artifact

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
