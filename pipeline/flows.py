"""Prefect orchestration: thin tasks over :mod:`pipeline.stages`, one flow per command.

Importing this module imports Prefect (about a second), so the CLI imports it only for the
commands that run a flow.
"""

from __future__ import annotations

import os

# Offline by design: the temporary Prefect server must not try to send telemetry.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from prefect import flow  # noqa: E402, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline import stages
from pipeline.dataset import LoadError, RunInfo, build_batch
from pipeline.load import LoadResult, output_lock, write_outputs
from pipeline.models import ExtractedDocument, ReconciliationRow
from pipeline.snapshots import DEFAULT_SNAPSHOTS_DIR, SnapshotStore

DEFAULT_OUTPUT_DIR = Path("output")

# Our inputs are pydantic models and paths; results live in DuckDB, not in Prefect's result store.
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
    trials_without_records: list[str]
    load_errors: list[LoadError] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 complete, 3 partial (some snapshots could not be used)."""
        return 3 if self.load_errors else 0


@_task(name="extract documents")
def extract_task(sources: list[stages.DocumentSource]) -> list[ExtractedDocument]:
    """Extract the stated facts of every document."""
    return stages.extract_documents(sources)


@_task(name="load registry records")
def load_records_task(store: SnapshotStore) -> stages.RecordSet:
    """Parse every registry snapshot in the store."""
    return stages.load_records(store)


@_task(name="reconcile")
def reconcile_task(docs: list[ExtractedDocument], records: stages.RecordSet) -> list[ReconciliationRow]:
    """Compare every stated fact with the registry records."""
    return stages.reconcile_documents(docs, records)


@_task(name="write outputs")
def write_task(
    run: RunInfo,
    docs: list[ExtractedDocument],
    records: stages.RecordSet,
    store: SnapshotStore,
    rows: list[ReconciliationRow],
    output_dir: Path,
) -> LoadResult:
    """Write DuckDB and Parquet atomically."""
    batch = build_batch(run, docs, records.records, store.entries(), records.links, rows, records.errors)
    return write_outputs(batch, output_dir, version=run.run_id)


@flow(name="trialrecon", description="Extract, reconcile and load the stated facts of trial pages.")
def trialrecon_flow(
    documents: list[Path] | None = None,
    output_dir: Path = DEFAULT_OUTPUT_DIR,
    snapshots_dir: Path = DEFAULT_SNAPSHOTS_DIR,
) -> RunSummary:
    """Run the pipeline offline from the snapshot store.

    Args:
        documents: page files to extract; the store's embedded documents when omitted.
        output_dir: where trialrecon.duckdb and parquet/ are written.
        snapshots_dir: the snapshot store to read registry records from.
    """
    logger = get_run_logger()
    started = datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%S") + "-" + uuid4().hex[:6]
    store = SnapshotStore(snapshots_dir)
    sources = (
        [stages.document_source(p, store) for p in documents] if documents else stages.default_documents(store)
    )
    with output_lock(output_dir, timeout=600):
        docs = extract_task(sources)
        records = load_records_task(store)
        rows = reconcile_task(docs, records)
        run = RunInfo(run_id=run_id, started_at=started, finished_at=datetime.now(UTC))
        result = write_task(run, docs, records, store, rows, output_dir)
    summary = RunSummary(
        run_id=run_id,
        database=result.database,
        parquet_dir=result.parquet_dir,
        row_counts=result.row_counts,
        documents=[d.document.document_id for d in docs],
        records=len(records.records),
        trials_without_records=stages.trials_without_records(docs, records),
        load_errors=records.errors,
    )
    for err in records.errors:
        logger.warning("could not use %s: %s", err.snapshot, err.error)
    logger.info("run %s wrote %s", run_id, result.database)
    return summary
