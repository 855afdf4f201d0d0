"""The same flow on Prefect's Dask task runner, against a dask.distributed cluster.

A LocalCluster of two worker processes stands in for a real cluster: the flow reaches it by its
scheduler address, exactly as it would reach ``tcp://scheduler:8786``. Both runs take the same
folder of two pages, so the many-pages path runs distributed too.
"""

from __future__ import annotations

import duckdb
import pytest

from conftest import EMBEDDED_PAGE
from pipeline.store.snapshots import SnapshotStore
from pipeline.stages import MAX_TASKS, REGISTRIES
from pipeline.load.tables import ALL_TABLES

pytestmark = pytest.mark.flow

# Columns that differ between any two runs: ids and times of the run itself.
VOLATILE = {"run_id", "extracted_at", "started_at", "finished_at", "valid_from", "valid_to"}


def _table(db, name):
    with duckdb.connect(str(db), read_only=True) as con:
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [name]).fetchall()]
        keep = ", ".join(f'"{c}"' for c in cols if c not in VOLATILE)
        return con.execute(f'SELECT {keep} FROM "{name}" ORDER BY ALL').fetchall()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    text = EMBEDDED_PAGE.read_text()
    (folder / "aldesleukin.txt").write_text(text)
    (folder / "proleukin.txt").write_text(text.replace("Aldesleukin", "Proleukin", 1))
    return folder


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


@pytest.fixture(scope="module")
def runs(prefect_harness, cluster, pages, tmp_path_factory):
    """(default runner summary, Dask runner summary, the Dask tasks' (name, worker) pairs)."""
    from distributed import Client, get_task_stream

    from pipeline.orchestrate.flows import flow_on, trialrecon_flow

    default = trialrecon_flow(documents=[pages], output_dir=tmp_path_factory.mktemp("default"))
    with Client(cluster.scheduler_address) as observer, get_task_stream(client=observer) as stream:
        on_dask = flow_on(cluster.scheduler_address)(documents=[pages], output_dir=tmp_path_factory.mktemp("dask"))
    tasks = [(t["key"], t["worker"]) for t in stream.data]
    return default, on_dask, tasks


def test_dask_runner_writes_the_same_tables_as_the_default_runner(runs):
    default, on_dask, _ = runs
    assert on_dask.row_counts == default.row_counts
    for table in ALL_TABLES:
        assert _table(on_dask.database, table.name) == _table(default.database, table.name), table.name


def test_dask_runner_parses_every_snapshot_in_a_task_on_the_cluster(runs):
    default, on_dask, tasks = runs
    snapshots = [e for e in SnapshotStore().entries() if e.registry in REGISTRIES]
    assert (on_dask.parsed, default.parsed) == (len(snapshots), len(snapshots))
    assert sum(1 for key, _ in tasks if "load_snapshot" in key) == len(snapshots)


def test_dask_runner_spreads_the_tasks_over_both_workers(runs, cluster):
    _, _, tasks = runs
    assert {worker for _, worker in tasks} == set(cluster.scheduler_info["workers"])


def test_pages_of_a_folder_stand_apart_by_document_id_on_either_runner(runs):
    for summary in runs[:2]:
        assert summary.documents == ["aldesleukin", "proleukin"]
        with duckdb.connect(str(summary.database), read_only=True) as con:
            assert con.execute("SELECT document_id, count(*) FROM document_trials GROUP BY 1 ORDER BY 1").fetchall() == [
                ("aldesleukin", 15), ("proleukin", 15)]


# -- a generated site: pages spread over the cluster, not only snapshots ---------------------------

SITE_PAGES, SITE_RECORDS = 200, 300


@pytest.fixture(scope="module")
def site_runs(prefect_harness, cluster, tmp_path_factory):
    """200 generated pages over 300 records (as the issue asks): (default runner summary, Dask summary, the Dask tasks).

    More pages than ``stages.MAX_TASKS``, so that each extract and reconcile task takes a batch of
    pages (four), as on a real site."""
    from distributed import Client, get_task_stream

    from conftest import SHARED
    from devtools.bench import build_corpus
    from pipeline.orchestrate.flows import flow_on, trialrecon_flow
    from devtools.site import build_site

    work = tmp_path_factory.mktemp("site")
    corpus = build_corpus(SHARED / "samples" / "ctgov_v2", SITE_RECORDS, work / "corpus.ndjson")
    site = build_site(corpus.path, SITE_RECORDS, SITE_PAGES, work)
    kwargs = {"documents": [site.pages], "snapshots_dir": site.store}
    default = trialrecon_flow(output_dir=tmp_path_factory.mktemp("site-default"), **kwargs)
    with Client(cluster.scheduler_address) as observer, get_task_stream(client=observer) as stream:
        on_dask = flow_on(cluster.scheduler_address)(output_dir=tmp_path_factory.mktemp("site-dask"), **kwargs)
    return default, on_dask, [(t["key"], t["worker"]) for t in stream.data]


def test_generated_pages_in_batches_give_the_same_rows_on_dask_as_on_the_default_runner(site_runs):
    default, on_dask, _ = site_runs
    assert len(default.documents) == SITE_PAGES > MAX_TASKS
    assert on_dask.row_counts == default.row_counts
    for table in ALL_TABLES:
        assert _table(on_dask.database, table.name) == _table(default.database, table.name), table.name


def test_pages_are_extracted_and_reconciled_on_both_workers(site_runs, cluster):
    _, _, tasks = site_runs
    workers = set(cluster.scheduler_info["workers"])
    for step in ("extract_task", "reconcile_task"):
        assert {worker for key, worker in tasks if step in key} == workers, step
