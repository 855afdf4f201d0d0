"""One run of the pipeline: the steps of :mod:`pipeline.stages` in their order, written once.

The Prefect flow (:func:`pipeline.orchestrate.flows.trialrecon_flow`), ``check`` and the bench
all run this sequence. They differ only in how its steps are executed (:class:`Steps`): here, in
this process one after the other, or as Prefect tasks mapped over batches (the flow's
``TaskSteps``), which call the same functions::

    read inputs (once) ─ refresh (--online) ─ plan ─┬─ nothing changed: record the run only
                                                    └─ reconcile ─ describe ─ check ─ write ─ report
    reconcile: extract changed pages ─ load snapshots ─ extract affected pages ─ compare

``check`` runs :func:`reconcile` alone (no previous run: every page, every snapshot); a run
runs :func:`run_pipeline`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import stages
from pipeline.errors import ExitStatus
from pipeline.load.incremental import PreviousState, read_previous_pages, read_previous_state
from pipeline.load.rows import LoadError, RunInfo
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
from pipeline.orchestrate.progress import NoProgress, Progress
from pipeline.outputs.baseline import format_findings
from pipeline.store.ingested import IngestedStudies, read_ingested
from pipeline.store.snapshots import SnapshotStore

if TYPE_CHECKING:
    from pipeline.outputs.baseline import AcceptedDiscrepancy
    from pipeline.reconcile import PageRecords

Baselines = Callable[[Sequence[ExtractedDocument]], dict[str, list["AcceptedDiscrepancy"]]]


@dataclass
class RunSummary:
    """What a run did, for the CLI to print and for callers to assert on."""

    run_id: str
    database: Path
    parquet_dir: Path
    row_counts: dict[str, int]
    documents: list[str]
    """The ids of the documents this run reconciled (none when nothing changed)."""
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
    verdicts: dict[str, int] = field(default_factory=dict)  # comparisons of the pages reconciled, by verdict
    fingerprint: str = ""
    ingested: int = 0  # of ``records``, those ``ingest`` loaded (no snapshot gives their trial)

    @property
    def exit_code(self) -> int:
        """0 complete, 3 partial (some snapshots could not be used, or could not be refreshed)."""
        return ExitStatus.PARTIAL if self.load_errors or self.refresh_failures else ExitStatus.OK


@dataclass(frozen=True)
class RunInputs:
    """What a run reads before anything else: the snapshot store as it stood (pinned: its manifest
    read once) and every page (each file read once, and extracted when the caller asked)."""

    store: SnapshotStore
    pages: list[stages.Page]


def read_inputs(
    documents: Sequence[Path] | None, snapshots_dir: Path, *, extract: bool = False, output_dir: Path | None = None,
) -> RunInputs:
    """Read the manifest and every page once; with ``extract``, extract the pages and read the
    links and missing-record reasons too, so that a bad input is refused before anything else
    happens (the run then uses these extractions, it does not extract the pages again).

    Args:
        documents: page files or folders of them; the store's embedded documents when None or empty.
        snapshots_dir: the snapshot store.
        extract: extract the pages now.
        output_dir: the output the run will write, with ``extract``: only the pages it will
            extract anew are extracted now (:func:`stages.pages_to_extract`: new or changed
            text, links or code); the others were extracted by an earlier run from the same
            bytes, links and code. A site's warm run had extracted 2,000 pages to check them.

    Raises:
        DocumentError: a page is missing, empty, binary or (with ``extract``) has no summary table.
        SnapshotError: the manifest (or, with ``extract``, the links or reasons file) is not valid.
    """
    store = SnapshotStore(snapshots_dir).pinned()
    sources = stages.document_sources(documents, store) if documents else stages.default_documents(store)
    pages = stages.read_pages(sources)
    if extract:
        stages.load_links(store)
        stages.load_missing(store)
        new = pages
        if output_dir is not None:
            previous = read_previous_pages(output_dir / DB_NAME)
            new = stages.pages_to_extract(pages, stages.page_basis(stages.side_files_sha(store)), previous)
        fresh = dict(zip((page.source for page in new), stages.extract_pages(new), strict=True))
        pages = [replace(page, extracted=fresh[page.source]) if page.source in fresh else page for page in pages]
    return RunInputs(store, pages)


class Steps:
    """How a run's steps are executed: here, in this process, one after the other.

    The flow's ``TaskSteps`` runs each as Prefect tasks (mapped over batches where there are many
    items), calling the same functions of :mod:`pipeline.stages`.
    """

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
                 progress: Progress | None = None) -> None:
        self.logger = logger or logging.getLogger("pipeline.run")
        self.progress = progress or NoProgress()

    def refresh(self, store: SnapshotStore, docs: Sequence[ExtractedDocument]) -> list[str]:
        """Fetch the documents' records live into ``store`` (see :func:`stages.refresh_store`)."""
        return stages.refresh_store(store, docs, self.progress)

    def extract(self, pages: Sequence[stages.Page], taken: Mapping[str, str]) -> list[ExtractedDocument]:
        """The pages' facts (see :func:`stages.extract_pages`)."""
        return stages.extract_pages(pages, taken=taken)

    def load_snapshots(self, store: SnapshotStore, jobs: stages.SnapshotJobs) -> list[stages.SnapshotRecords]:
        """Each snapshot's records, parsed or reused (see :func:`stages.load_snapshots`)."""
        return stages.load_snapshots(store, jobs, self.progress)

    def reconcile(self, docs: Sequence[ExtractedDocument], inputs: Sequence[PageRecords]) -> list[ReconciliationRow]:
        """Every stated fact of the pages against their records (see :func:`stages.reconcile_pages`)."""
        return stages.reconcile_pages(docs, inputs)

    def write(self, batch: Batch, output_dir: Path, run_id: str, *, link_unchanged: bool = True) -> LoadResult:
        """DuckDB and Parquet, written atomically (see :func:`pipeline.load.writer.write_outputs`)."""
        with output_errors(output_dir):
            return write_outputs(batch, output_dir, version=run_id, link_unchanged=link_unchanged)

    def report(self, inputs: stages.ReportInputs, output_dir: Path, baseline_dir: Path, *,
               pages_written: bool = False) -> list[Path]:
        """Each reconciled page's report (unless ``pages_written``), then report.html and report.md
        (see :func:`stages.write_reports`)."""
        with output_errors(output_dir):
            return stages.write_reports(inputs, output_dir, baseline_dir, pages_written=pages_written)


@dataclass(frozen=True)
class Reconciled:
    """The pages a run reconciled (in this order: changed, then affected by a changed record),
    every record of the store, the records each page used, the comparisons and the pages' baselines."""

    pages: list[stages.Page]
    docs: list[ExtractedDocument]
    records: stages.RecordSet
    page_records: list[PageRecords]
    rows: list[ReconciliationRow]
    baselines: dict[str, list[AcceptedDiscrepancy]]


def reconcile(
    inputs: RunInputs, steps: Steps, baselines: Baselines, previous: PreviousState | None = None,
    basis: str = "", every_page: bool = False, verified: frozenset[str] = frozenset(),
    ingested: Sequence[SnapshotEntry] = (),
) -> Reconciled:
    """Extract, load and compare: the pages whose text (or ``basis``: links, code) changed since
    ``previous``, and those citing a record that changed; every page when there is no previous
    run or ``every_page``. ``verified``: snapshot paths the plan already found to hold their
    entries' bytes, not read again to check them (:attr:`stages.RunPlan.verified`). ``ingested``:
    the records ``ingest`` loaded into the output (:func:`read_ingested`), used for the trials no
    snapshot gives.

    Raises:
        DocumentError: a page to extract is bad (before any snapshot is parsed).
        BaselineError: a page's baseline is not valid (before any comparison).
    """
    previous = previous or PreviousState()
    taken = previous.document_urls
    changed = list(inputs.pages) if every_page else stages.pages_to_extract(inputs.pages, basis, previous)
    docs = steps.extract(changed, taken)  # a bad page stops the run before any parsing
    jobs = stages.plan_snapshots(inputs.store, previous, verified)
    from_snapshots = steps.load_snapshots(inputs.store, jobs)
    from_ingest = stages.plan_ingested(ingested, jobs, previous)
    with closing(IngestedStudies()) as studies:
        loaded = steps.load_snapshots(studies, from_ingest) if from_ingest.entries else []
    records = stages.collect_records(jobs, from_snapshots, from_ingest, loaded,
                                     relanded=stages.shadowed(ingested, jobs.entries))
    # Pages unchanged themselves are reconciled again only when a record they use changed.
    affected = stages.pages_affected(inputs.pages, previous, records, changed)
    redone = [*changed, *affected]
    docs = stages.settle_ids([*docs, *steps.extract(affected, taken)], redone, taken)
    accepted = baselines(docs)  # a bad baseline: refused before anything is written
    page_records = stages.page_inputs(docs, records)
    with stages.records_spared():
        rows = steps.reconcile(docs, page_records)
    return Reconciled(redone, docs, records, page_records, rows, accepted)


def run_pipeline(
    inputs: RunInputs, output_dir: Path, baseline_dir: Path, steps: Steps | None = None, *, online: bool = False,
) -> RunSummary:
    """One run into ``output_dir``: refresh (``online``), plan, and either record that nothing
    changed or reconcile, write the outputs and the reports, all under the output folder's lock.

    Args:
        inputs: the pages and the pinned store (:func:`read_inputs`).
        output_dir: where trialrecon.duckdb, parquet/ and the reports are written.
        baseline_dir: accepted discrepancies, ``<document_id>.json`` per document.
        steps: how the steps are executed (default: here, one after the other).
        online: refresh the store from the live registries first.
    """
    steps = steps or Steps()
    log = steps.logger
    started = datetime.now(UTC)
    run_id = stages.new_run_id(started)
    # A system or DuckDB error about the output folder is one OutputError naming the file.
    with output_errors(output_dir), output_lock(output_dir):
        refresh_failures: list[str] = []
        if online:
            inputs, refresh_failures = _refreshed(inputs, steps)
        interrupted = interrupted_publish(output_dir)
        if interrupted:
            log.warning("run %s was stopped while publishing its outputs: they may disagree, "
                        "so this run writes all of them again", interrupted)
        with open_output_database(output_dir) as con:  # closed before the work below replaces the file
            previous = read_previous_state(output_dir / DB_NAME, con)
            ingested = read_ingested(con)
            plan = stages.plan_run(inputs.pages, inputs.store, previous, ingested)
            if not plan.work_needed and not interrupted:
                log.info("nothing changed since the last run: recording the run only")
                findings = stages.stored_findings(con, baseline_dir, output_dir / "report.html")
                with publishing(output_dir, run_id):
                    run = RunInfo(run_id=run_id, started_at=started, finished_at=datetime.now(UTC))
                    rows = stages.unchanged_run_rows(run, plan)
                    result = record_run_only(output_dir, rows, con)
                return RunSummary(
                    run_id=run_id, database=result.database, parquet_dir=result.parquet_dir,
                    row_counts=result.row_counts, documents=[], records=0, parsed=0,
                    reused=plan.snapshot_count, work_done=False, registry_counts=rows["run_registry_counts"],
                    trials_without_records=[], refresh_failures=refresh_failures, findings=findings,
                    fingerprint=plan.fingerprint)
        # The records and comparisons live to the end of the run: the cyclic collector is spared
        # walking them at every full collection (about a tenth of a site's run at 20,000 records).
        with stages.records_spared():
            # After an interrupted publish every page is done again, so that every output is whole.
            done = reconcile(inputs, steps, lambda docs: stages.load_baselines(docs, baseline_dir), previous,
                             plan.basis, every_page=bool(interrupted), verified=plan.verified, ingested=ingested)
            docs, records, rows = done.docs, done.records, done.rows
            run = RunInfo(run_id=run_id, started_at=started, finished_at=datetime.now(UTC))
            trials = stages.describe_trials(docs, records, done.page_records)
            batch = stages.run_batch(run, docs, records, inputs.store, rows, previous, plan.fingerprint,
                                     file_stats=plan.file_stats, basis=plan.basis, trials=trials,
                                     snapshots_fingerprint=plan.snapshots_fingerprint)
            checks = stages.check_documents(rows, done.baselines)
            reports = stages.ReportInputs(run, docs, rows, done.page_records, trials, checks,
                                          stages.record_provenance(records))
            report = None
            # Database, Parquet and reports are published as one unit (see pipeline.load.writer.publishing).
            with publishing(output_dir, run_id):
                # After an interrupted publish the published Parquet files may not be the database's.
                result = steps.write(batch, output_dir, run_id, link_unchanged=not interrupted)
                # The batch's own row dictionaries (the snapshots' among them) freed before the reports are made.
                registry_counts, batch = batch.rows.get("run_registry_counts", []), None
                if docs:  # with no page reconciled again, the last reports stand
                    [report, *_] = steps.report(reports, output_dir, baseline_dir)
    for err in records.errors:
        log.warning("could not use %s: %s", err.snapshot, err.error)
    log.info("run %s wrote %s", run_id, result.database)
    return RunSummary(
        run_id=run_id,
        database=result.database,
        parquet_dir=result.parquet_dir,
        row_counts=result.row_counts,
        documents=[d.document.document_id for d in docs],
        records=len(records.loaded),
        parsed=len(records.parsed),
        reused=len(records.loaded and {loaded.entry.path for loaded in records.loaded} - records.parsed),
        work_done=True,
        registry_counts=registry_counts,
        trials_without_records=stages.trials_without_records(trials),
        candidate_only=stages.trials_with_candidate_only(trials),
        load_errors=records.errors,
        refresh_failures=refresh_failures,
        findings=format_findings(list(checks.values()), report) if docs else [],
        record_provenance=reports.record_provenance,
        report=report,
        verdicts=dict(Counter(r.verdict for r in rows)),
        fingerprint=plan.fingerprint,
        ingested=len(records.ingested_records()),
    )


def _refreshed(inputs: RunInputs, steps: Steps) -> tuple[RunInputs, list[str]]:
    """Refresh the store from the registries, then pin it again: the run reads the manifest as the
    refresh left it. The pages' extractions (the refresh's targets) are kept for the run."""
    docs = steps.extract(inputs.pages, {})
    failures = steps.refresh(inputs.store.unpinned(), docs)
    for line in failures:
        steps.logger.warning("refresh failed, previous snapshot kept (stale): %s", line)
    return RunInputs(inputs.store.unpinned().pinned(), stages.with_extracted(inputs.pages, docs)), failures
