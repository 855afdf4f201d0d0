"""``python -m pipeline bench``: the pipeline's speed and memory, measured against its targets.

One run prints, side by side:

* **parse+load** of a corpus of CT.gov v2 records (:func:`pipeline.store.ingest.ingest_ctgov`, DuckDB
  engine) against the floor, orjson only decoding the same bytes read the same way: records/s,
  MB/s, the ratio of their times, and the peak RSS of each; the Python engine's time beside it;
* **fetch** (:func:`pipeline.fetch.refresh.run_refresh` on :mod:`pipeline.fetch.client`) against
  a loopback server that answers every request after a fixed latency: records/s against the
  bound ``concurrency cap / latency``;
* a **warm re-run** with nothing changed against the **cold** run: the run's own sequence
  (:func:`pipeline.run.run_pipeline`, what the flow runs) with its steps in this process, not Prefect's;
* **make run** on the Aldesleukin default against an **empty Prefect flow**'s start-up;
* a **warm re-run** of the embedded page through ``python -m pipeline run``, wall clock, with a
  **local Prefect server** running against the same with Prefect's **temporary server**.

Each measurement runs in a fresh subprocess (``python -m devtools.bench _child ...``), so its
peak RSS is its own and no figure is warmed by another. The corpus is built from the complete
records in ``../shared/samples/ctgov_v2``: every record is one of them with its id, titles,
status, enrollment, dates, conditions, locations and secondary ids varied, and its results
section kept for about one record in eight (as on ClinicalTrials.gov), deterministically from
the seed.

This module imports only the standard library at import time: the CLI builds its parser from
:func:`add_arguments` without paying for the pipeline's imports.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SAMPLES = REPO.parent / "shared" / "samples" / "ctgov_v2"
GIB = 1024**3
MB = 1_000_000

# The targets of the "Scale" issue, on a 2-core machine.
MAX_LOAD_TO_DECODE = 2.0  # parse+load time / orjson decode time
MAX_PEAK_RSS = GIB  # parse+load, at every corpus size
MAX_FETCH_TO_BOUND = 1.25  # fetch time / (records * latency / concurrency)
MAX_WARM_TO_COLD = 0.10  # warm re-run / cold run, pipeline work only
MAX_RUN_TO_EMPTY_FLOW = 1.3  # make run / empty Prefect flow, wall clock
MAX_SERVER_RERUN_SECONDS = 4.0  # warm re-run of the embedded page, a local Prefect server running
# The targets of the "Site scale" issue, on a 2-core machine.
MAX_SITE_COLD_SECONDS = 60.0  # 2,000 pages over 20,000 records, cold, through the flow
MAX_SITE_PEAK_RSS = 2 * GIB
MAX_PAGE_TIME_RATIO = 1.2  # per-page reconcile time, large store / small store
MAX_ONE_PAGE_TO_COLD = 0.05  # warm re-run with one page changed / cold run

RESULTS_SHARE = 0.125  # records with posted results on ClinicalTrials.gov: roughly one in eight
STATUSES = (
    "RECRUITING", "COMPLETED", "ACTIVE_NOT_RECRUITING", "NOT_YET_RECRUITING", "TERMINATED",
    "WITHDRAWN", "UNKNOWN", "ENROLLING_BY_INVITATION", "SUSPENDED",
)
TITLE_TAGS = (
    "Extension Study", "Long-term Follow-up", "Dose Expansion Cohort", "Paediatric Cohort",
    "Open-label Extension", "Pilot Phase", "Japanese Sub-study", "Biomarker Sub-study",
    "Investigator-initiated Arm", "Real-world Comparator",
)
DATE_KEYS = (
    "startDateStruct", "primaryCompletionDateStruct", "completionDateStruct",
    "studyFirstPostDateStruct", "lastUpdatePostDateStruct",
)
EMPTY_FLOW = "from prefect import flow\n\n@flow\ndef empty():\n    pass\n\nempty()\n"
# make run links these into a scratch folder, so it runs cold and writes nowhere of the user's.
MAKE_RUN_LINKS = ("Makefile", "pyproject.toml", "pipeline", "snapshots", ".venv")


# -- options --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench command's options (the CLI's ``bench`` sub-command)."""
    parser.add_argument("--records", type=int, default=20_000, metavar="N",
                        help="corpus size for parse+load (default: 20000)")
    parser.add_argument("--sizes", type=_sizes_arg, metavar="N,N,...",
                        help="several corpus sizes instead of --records, e.g. 20000,100000")
    parser.add_argument("--seed", type=int, default=7, help="corpus seed (default: 7)")
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, metavar="DIR",
                        help="real CT.gov v2 records to vary (default: ../shared/samples/ctgov_v2)")
    parser.add_argument("--fetch-records", type=int, default=400, metavar="N", help="records to fetch (default: 400)")
    parser.add_argument("--fetch-latency-ms", type=float, default=50.0, metavar="MS",
                        help="latency the loopback server adds to every answer (default: 50)")
    parser.add_argument("--fetch-concurrency", type=int, default=8, metavar="N",
                        help="the client's concurrency cap (default: 8)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="runs of each parse+load, decode, re-run and start-up measurement; the median counts (default: 3)")
    parser.add_argument("--skip-fetch", action="store_true", help="leave out the fetch figures")
    parser.add_argument("--rerun-records", type=int, default=2000, metavar="N",
                        help="corpus studies added to the snapshot store for the re-run figures (default: 2000)")
    parser.add_argument("--skip-rerun", action="store_true", help="leave out the warm/cold re-run figures")
    parser.add_argument("--skip-startup", action="store_true", help="leave out make run against an empty flow")
    parser.add_argument("--skip-server", action="store_true",
                        help="leave out the warm re-run against a local Prefect server and a temporary one")
    parser.add_argument("--site", type=_site_arg, metavar="PAGES,RECORDS",
                        help="instead of the figures above, the site bench: PAGES generated drug pages over a "
                             "store of RECORDS records, e.g. 2000,20000 (see devtools/site.py)")
    parser.add_argument("--site-dask", type=int, default=0, metavar="WORKERS",
                        help="site bench: run the flow on a local Dask cluster of this many worker processes "
                             "(default: 0, the default task runner)")
    parser.add_argument("--site-small", type=int, default=200, metavar="N",
                        help="site bench: the small store the per-page reconcile time is compared with (default: 200)")
    parser.add_argument("--workdir", type=Path, metavar="DIR",
                        help="where corpora and outputs go, kept afterwards (default: a temporary folder)")


def _site_arg(text: str) -> tuple[int, int]:
    sizes = _sizes_arg(text)
    if len(sizes) != 2:
        raise argparse.ArgumentTypeError(f"{text!r}: give PAGES,RECORDS, e.g. 2000,20000")
    return sizes[0], sizes[1]


def _sizes_arg(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive")
    return sizes


# -- the corpus -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """An NDJSON file of CT.gov v2 records."""

    path: Path
    records: int
    bytes: int


def load_bases(samples: Path) -> list[dict[str, Any]]:
    """The complete study records among the samples, one per NCT number.

    Records of ``fields=``-filtered pages lack most modules (and ``derivedSection``); a bulk
    download never looks like that, so they are left out.

    Raises:
        SnapshotError: ``samples`` is missing or holds no complete record.
    """
    import orjson

    from pipeline.store.ingest import iter_study_bytes
    from pipeline.errors import SnapshotError

    bases: dict[str, dict[str, Any]] = {}
    for _, data in iter_study_bytes(samples):
        study = orjson.loads(data)
        if isinstance(study, dict) and "derivedSection" in study and "protocolSection" in study:
            bases.setdefault(study["protocolSection"]["identificationModule"]["nctId"], study)
    if not bases:
        raise SnapshotError(samples, "holds no complete ClinicalTrials.gov v2 record")
    return [bases[k] for k in sorted(bases)]


def iter_corpus(bases: Sequence[dict[str, Any]], seed: int) -> Iterator[dict[str, Any]]:
    """Endless varied records; the first N are the same for every N (a corpus grows by appending)."""
    rng = random.Random(seed)
    conditions = sorted({c for b in bases for c in b["protocolSection"].get("conditionsModule", {}).get("conditions", [])})
    index = 0
    while True:
        yield vary(bases[rng.randrange(len(bases))], index, rng, conditions)
        index += 1


def vary(base: dict[str, Any], index: int, rng: random.Random, conditions: Sequence[str]) -> dict[str, Any]:
    """A new record from ``base``: its own NCT number (NCT9xxxxxxx, never a real one) and varied facts.

    Only the modules that change are copied; the rest are shared with ``base`` (read-only).
    """
    study = dict(base)
    ps = study["protocolSection"] = dict(base["protocolSection"])

    ident = ps["identificationModule"] = dict(ps["identificationModule"])
    ident["nctId"] = f"NCT{90_000_000 + index:08d}"
    tag = rng.choice(TITLE_TAGS)
    for key in ("briefTitle", "officialTitle"):
        if isinstance(ident.get(key), str):
            ident[key] = f"{ident[key]} ({tag} {index % 997})"
    if isinstance(ident.get("secondaryIdInfos"), list):
        ident["secondaryIdInfos"] = _subset(ident["secondaryIdInfos"], rng)

    status = ps["statusModule"] = dict(ps.get("statusModule", {}))
    status["overallStatus"] = rng.choice(STATUSES)
    months = rng.randint(-96, 24)
    for key in DATE_KEYS:
        struct = status.get(key)
        if isinstance(struct, dict) and isinstance(struct.get("date"), str):
            status[key] = {**struct, "date": shift_date(struct["date"], months)}

    design = ps["designModule"] = dict(ps.get("designModule", {}))
    design["enrollmentInfo"] = {
        "count": max(0, round(rng.lognormvariate(4.2, 1.3))), "type": rng.choice(("ACTUAL", "ESTIMATED"))
    }

    cond = ps["conditionsModule"] = dict(ps.get("conditionsModule", {}))
    own = _subset(cond.get("conditions", []), rng, at_least=1)
    cond["conditions"] = own + [c for c in rng.sample(conditions, k=min(2, len(conditions))) if c not in own][
        : rng.randint(0, 2)]

    contacts = ps.get("contactsLocationsModule")
    if isinstance(contacts, dict) and isinstance(contacts.get("locations"), list):
        ps["contactsLocationsModule"] = {**contacts, "locations": _subset(contacts["locations"], rng)}

    if "resultsSection" in study and rng.random() >= RESULTS_SHARE:
        del study["resultsSection"]
        study["hasResults"] = False
    return study


def _subset(items: list[Any], rng: random.Random, at_least: int = 0) -> list[Any]:
    """A random subset of ``items`` in their order."""
    if not items:
        return []
    keep = rng.randint(min(at_least, len(items)), len(items))
    return [items[i] for i in sorted(rng.sample(range(len(items)), keep))]


def shift_date(text: str, months: int) -> str:
    """``text`` (YYYY, YYYY-MM or YYYY-MM-DD) moved by ``months``, at the same precision."""
    parts = text.split("-")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
        return text
    if len(parts) == 1:
        return str(int(parts[0]) + months // 12)
    total = int(parts[0]) * 12 + int(parts[1]) - 1 + months
    shifted = f"{total // 12:04d}-{total % 12 + 1:02d}"
    return shifted if len(parts) == 2 else f"{shifted}-{min(int(parts[2]), 28):02d}"


def build_corpus(samples: Path, records: int, target: Path, seed: int = 7) -> Corpus:
    """Write ``records`` varied CT.gov v2 records to ``target`` as NDJSON."""
    import itertools

    import orjson

    size = 0
    with target.open("wb") as fh:
        for study in itertools.islice(iter_corpus(load_bases(samples), seed), records):
            line = orjson.dumps(study) + b"\n"
            fh.write(line)
            size += len(line)
    return Corpus(target, records, size)


# -- measurements (each in a fresh subprocess) ----------------------------------------------------


def peak_rss() -> int:
    """This process's peak resident set size, in bytes.

    Linux's VmHWM belongs to the process's own address space. ``ru_maxrss`` would not do: a
    child started with vfork+exec inherits its parent's high-water mark.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def measure_ingest(corpus: Path, output_dir: Path, engine: str = "duckdb") -> dict[str, Any]:
    """Parse and load the corpus into a fresh output folder with one ingest engine ("duckdb" or "python")."""
    from pipeline.store.ingest import ingest_ctgov

    cpu, start = time.process_time(), time.perf_counter()
    report = ingest_ctgov(corpus, output_dir, engine=engine)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "records": report.records,
            "bytes": report.bytes_read, "load_errors": len(report.load_errors), "peak_rss": peak_rss()}


def measure_decode(corpus: Path) -> dict[str, Any]:
    """The floor: the same bytes, read the same way, only decoded by orjson."""
    import orjson

    from pipeline.store.ingest import iter_study_bytes

    cpu, start = time.process_time(), time.perf_counter()
    records = size = 0
    for _, data in iter_study_bytes(corpus):
        orjson.loads(data)
        records += 1
        size += len(data)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "records": records, "bytes": size,
            "peak_rss": peak_rss()}


def measure_fetch(corpus: Path, records: int, latency: float, concurrency: int) -> dict[str, Any]:
    """Fetch ``records`` studies of the corpus from a loopback server that waits ``latency`` s per answer.

    The server runs in a process of its own (:func:`serve_corpus`), so its work does not take
    the client's CPU. Two passes: the client alone (every study asked for at once, the cap
    holding them back), then the fetch stage, :func:`~pipeline.fetch.refresh.run_refresh`, which
    also writes each record into a snapshot store.
    """
    import asyncio
    from types import SimpleNamespace

    from pipeline.fetch.refresh import FetchTarget, run_refresh
    from pipeline.fetch.client import RegistryClient, make_http_client
    from pipeline.store.snapshots import SnapshotStore
    from devtools.loopback import fetch_settings

    command = [sys.executable, "-m", "devtools.bench", "_child", "serve", str(corpus), str(records), str(latency)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO) as server, \
            tempfile.TemporaryDirectory() as tmp:
        assert server.stdout is not None and server.stdin is not None
        served = json.loads(server.stdout.readline())
        targets = [FetchTarget(registry="ctgov", trial_id=t) for t in served["trial_ids"]]
        settings = fetch_settings(SimpleNamespace(url=served["url"]), max_concurrency=concurrency)

        async def client_alone() -> None:
            async with make_http_client(settings) as http:
                client = RegistryClient(http, settings)
                await asyncio.gather(*(client.fetch_ctgov_study(t.trial_id) for t in targets))

        start = time.perf_counter()
        asyncio.run(client_alone())
        client_seconds = time.perf_counter() - start
        start = time.perf_counter()
        report = run_refresh(targets, store=SnapshotStore(Path(tmp)), settings=settings)
        seconds = time.perf_counter() - start
        server.stdin.close()  # the server stops at the end of its input
    return {"seconds": seconds, "client_seconds": client_seconds, "records": len(targets),
            "failed": len(report.failed), "bound_seconds": len(targets) * latency / concurrency,
            "peak_rss": peak_rss()}


def serve_corpus(corpus: Path, records: int, latency: float) -> dict[str, Any]:
    """Serve the first ``records`` studies of the corpus at /api/v2/studies/{nctId} until stdin closes.

    Every study answers its first two requests (one per pass of :func:`measure_fetch`) after
    ``latency`` seconds. Prints ``{"url": ..., "trial_ids": [...]}`` once it is listening.
    """
    import itertools

    import orjson

    from pipeline.store.ingest import iter_study_bytes

    from devtools import loopback

    with loopback.LoopbackServer() as server:
        trial_ids = []
        for _, data in itertools.islice(iter_study_bytes(corpus), records):
            nct_id = orjson.loads(data)["protocolSection"]["identificationModule"]["nctId"]
            path = f"/api/v2/studies/{nct_id}"
            server.add(path, data)
            server.script(path, *loopback.times(2, loopback.Delay(latency)))
            trial_ids.append(nct_id)
        print(json.dumps({"url": server.url, "trial_ids": trial_ids}), flush=True)
        sys.stdin.read()
    return {"served": len(trial_ids)}


def rerun_store(workdir: Path, corpus: Path | None, records: int) -> Path | None:
    """A snapshot store for the re-run figures: the embedded one, plus ``records`` corpus studies.

    The corpus studies are synthetic (varied from real samples), so they are marked
    ``reconstructed``; the store is thrown away with the bench's work folder.
    """
    if corpus is None or records <= 0:
        return None
    import itertools

    from devtools.site import write_store
    from pipeline.paths import DEFAULT_SNAPSHOTS_DIR

    root = workdir / "store"
    with corpus.open("rb") as fh:
        write_store(root, itertools.islice(fh, records), base=DEFAULT_SNAPSHOTS_DIR)
    return root


def measure_rerun(workdir: Path, repeat: int, corpus: Path | None = None, records: int = 0) -> dict[str, Any]:
    """The flow's work: cold (empty output) and warm (nothing changed).

    On the embedded default, or on a store with ``records`` corpus studies beside it (an
    operator's scheduled run over many records). A first run, not counted, imports what the
    stages import lazily, so both figures are the stages' work alone; then ``repeat`` cold runs,
    each into a new folder, and ``repeat`` warm runs into the last one. Medians count.
    """
    snapshots = rerun_store(workdir, corpus, records)
    pipeline_work(workdir / "warm-up", snapshots)
    cold, warm, cold_work, warm_work = [], [], set(), set()
    for n in range(repeat):
        start = time.perf_counter()
        cold_work.add(pipeline_work(workdir / f"cold-{n}", snapshots))
        cold.append(time.perf_counter() - start)
    for _ in range(repeat):
        start = time.perf_counter()
        warm_work.add(pipeline_work(workdir / f"cold-{repeat - 1}", snapshots))
        warm.append(time.perf_counter() - start)
    return {"cold_seconds": statistics.median(cold), "warm_seconds": statistics.median(warm),
            "cold_work_done": cold_work == {True}, "warm_work_done": warm_work != {False},
            "peak_rss": peak_rss()}


def pipeline_work(output_dir: Path, snapshots_dir: Path | None = None) -> bool:
    """One run of the product's own sequence (:func:`pipeline.run.run_pipeline`, what
    ``trialrecon_flow`` runs), its steps executed in this process rather than as Prefect tasks.

    Returns:
        Whether work was done (False: nothing had changed, the run only recorded itself).
    """
    from pipeline import run
    from pipeline.outputs.baseline import DEFAULT_BASELINE_DIR
    from pipeline.store.snapshots import DEFAULT_SNAPSHOTS_DIR

    inputs = run.read_inputs(None, snapshots_dir or DEFAULT_SNAPSHOTS_DIR)
    return run.run_pipeline(inputs, output_dir, DEFAULT_BASELINE_DIR).work_done


def measure_site(workdir: Path, corpus: Path, pages: int, records: int, seed: int, dask_workers: int) -> dict[str, Any]:
    """The flow over a generated site: cold, then warm with nothing changed, one page changed and
    one record changed. Prefect's temporary server is started first by an empty flow (not counted)."""
    import gc

    from prefect import flow

    from pipeline.orchestrate.flows import flow_on
    from pipeline.orchestrate.server import without_flow_heartbeats
    from devtools.site import build_site, change_one_page, change_one_record

    phase(f"site: writing {records:,} records and {pages:,} pages")
    site = build_site(corpus, records, pages, workdir / "site", seed=seed)
    output = workdir / "site-output"
    shutil.rmtree(output, ignore_errors=True)
    phase("site: starting Prefect's temporary server (an empty flow, not counted)")
    flow(name="warm-up")(lambda: None)()
    figures: dict[str, Any] = {"pages": pages, "records": records}
    cluster = None
    if dask_workers:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=dask_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        # As `run` runs the flow when no server is configured: on a temporary server, without flow
        # heartbeats (see pipeline.orchestrate.server.without_flow_heartbeats).
        with without_flow_heartbeats():
            run = flow_on(cluster.scheduler_address if cluster else None)

            def timed(name: str) -> Any:
                gc.collect()
                what = name.removesuffix("_seconds").replace("_", " ")
                phase(f"site: {what} run ...")
                start = time.perf_counter()
                summary = run(documents=[site.pages], output_dir=output, snapshots_dir=site.store)
                figures[name] = time.perf_counter() - start
                done = f"{len(summary.documents):,} pages reconciled" if summary.work_done else "nothing to do"
                phase(f"site: {what} run took {figures[name]:.1f} s ({done}, peak RSS so far {_mib(peak_rss())})")
                return summary

            cold = timed("cold_seconds")
            figures["cold_pages"] = len(cold.documents)
            figures["cold_rss"] = peak_rss()
            figures["nothing_changed_work"] = timed("nothing_changed_seconds").work_done
            page = change_one_page(site)
            figures["one_page_reconciled"] = timed("one_page_seconds").documents
            figures["one_page_changed"] = page
            nct, citing = change_one_record(site)
            figures["one_record_reconciled"] = sorted(timed("one_record_seconds").documents)
            figures["one_record_citing"] = sorted(citing)
            figures["one_record"] = nct
    finally:
        if cluster is not None:
            cluster.close()
    figures["peak_rss"] = peak_rss()
    return figures


def measure_page_time(workdir: Path, small: int, repeat: int) -> dict[str, Any]:
    """Per-page reconcile time of the same pages against the site's whole store and against its
    first ``small`` records (every record the pages cite among them). Records come from the
    store of the site run (its record_cache), the pages are generated over the first ``small``."""
    import gc

    from pipeline import stages
    from pipeline.load.incremental import load_cached, read_previous_state, records_from_json
    from pipeline.reconcile import LoadedRecord, RunRecords, reconcile_page
    from devtools.site import study_facts, write_pages
    from pipeline.store.snapshots import SnapshotStore

    store = SnapshotStore(workdir / "site" / "store")
    cache = read_previous_state(workdir / "site-output" / "trialrecon.duckdb").cached_records
    load_cached(cache, cache)  # every record, in one query
    loaded = [LoadedRecord(record, entry) for entry in store.entries()
              if (raw := cache.get((entry.path, entry.sha256))) for record in records_from_json(raw)]
    import orjson

    facts = [study_facts(orjson.loads(store.read(x.entry))) for x in loaded[:small]]
    folder = workdir / "page-time"
    shutil.rmtree(folder, ignore_errors=True)
    write_pages(folder, facts, PAGE_TIME_PAGES, seed=11)
    docs = stages.extract_documents(stages.document_sources([folder], store))
    runs = {"small": RunRecords(loaded[:small], []), "large": RunRecords(loaded, [])}
    gc.freeze()  # the records live for the run: the collector need not walk them for every page
    times: dict[str, list[float]] = {"small": [], "large": []}
    order = list(runs.items())
    # Interleaved, so that a slowed moment weighs on both; the two take turns going first (the
    # first fills the token caches both use), and a first pass that fills them is not counted.
    for n in range(1 + page_time_passes(repeat)):
        for name, run in (order if n % 2 else order[::-1]):
            start = time.perf_counter()
            for doc in docs:
                reconcile_page(doc, run.for_page(doc))
            if n:
                times[name].append((time.perf_counter() - start) / len(docs))
    ratios = [large / small for small, large in zip(times["small"], times["large"], strict=True)]
    return {"small_records": small, "large_records": len(loaded), "pages": len(docs), "passes": len(ratios),
            "small_seconds": statistics.median(times["small"]), "large_seconds": statistics.median(times["large"]),
            "ratio": statistics.median(ratios), "ratio_range": (min(ratios), max(ratios))}


PAGE_TIME_PAGES = 50
"""Pages of the per-page measurement: 20 took a fifth of a second a pass, short enough for the
machine's moments to move one pass's ratio from 1.07x to 1.40x."""


def page_time_passes(repeat: int) -> int:
    """Counted passes of the per-page measurement: never fewer than 7, the ratio being the median of theirs."""
    return max(7, repeat)


CHILDREN = {
    "ingest": lambda a: measure_ingest(Path(a[0]), Path(a[1]), *a[2:]),
    "decode": lambda a: measure_decode(Path(a[0])),
    "fetch": lambda a: measure_fetch(Path(a[0]), int(a[1]), float(a[2]), int(a[3])),
    "rerun": lambda a: measure_rerun(Path(a[0]), int(a[1]), Path(a[2]) if a[2:] and a[2] else None,
                                     int(a[3]) if a[3:] else 0),
    "serve": lambda a: serve_corpus(Path(a[0]), int(a[1]), float(a[2])),
    "site": lambda a: measure_site(Path(a[0]), Path(a[1]), int(a[2]), int(a[3]), int(a[4]), int(a[5])),
    "page-time": lambda a: measure_page_time(Path(a[0]), int(a[1]), int(a[2])),
}


def in_subprocess(kind: str, *args: object, live: bool = False) -> dict[str, Any]:
    """Run one measurement in a fresh Python process and return its figures.

    With ``live``, the child's stderr (its progress, see :func:`phase`) goes straight to ours as
    it is written, and Prefect logs only its warnings there: a measurement of many minutes
    says what it is doing.

    Raises:
        RuntimeError: the measurement failed (its stderr is in the message, or above it when ``live``).
    """
    command = [sys.executable, "-m", "devtools.bench", "_child", kind, *map(str, args)]
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"} if live else None
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=None if live else subprocess.PIPE, text=True,
                          cwd=REPO, env=env)
    if proc.returncode != 0:
        said = "its stderr is above" if live else proc.stderr.strip()
        raise RuntimeError(f"bench {kind} failed (exit {proc.returncode}):\n{said}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


_PHASE_START = time.perf_counter()


def phase(text: str) -> None:
    """One progress line on stderr, with the seconds since the process started (stdout carries the figures)."""
    print(f"[{time.perf_counter() - _PHASE_START:7.1f} s] {text}", file=sys.stderr, flush=True)


def startup_commands(scratch: Path) -> dict[str, list[str]]:
    """The two start-up commands compared: ``make run`` (cold, in ``scratch``) and an empty flow.

    ``scratch`` gets links to the repo's Makefile, package, snapshots and virtual environment,
    so ``make run`` writes its output there. Its install stamp is made current: the install
    step is up to date, as it is in any set-up checkout, and is not what is measured.
    """
    for name in MAKE_RUN_LINKS:
        link = scratch / name
        if not link.exists():
            link.symlink_to(REPO / name)
    stamp = scratch / ".installed"
    stamp.touch()
    return {
        "make run": ["make", "--no-print-directory", "-s", "-C", str(scratch), "run", f"STAMP={stamp}"],
        "empty flow": [sys.executable, "-c", EMPTY_FLOW],
    }


def _no_server_env() -> dict[str, str]:
    """This environment without a Prefect server: no PREFECT_API_URL, no local server to find."""
    from pipeline.orchestrate.server import API_URL_ENV, PORT_ENV, free_port

    env = {k: v for k, v in os.environ.items() if k != API_URL_ENV}
    env.update({PORT_ENV: str(free_port()), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    return env


def time_startup(commands: dict[str, list[str]], scratch: Path, repeat: int) -> dict[str, float]:
    """Median wall-clock seconds of each command, run alternately, each time from a cold output.

    Both run on Prefect's temporary server, even when a local server is up.
    """
    env = _no_server_env()
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            shutil.rmtree(scratch / "output", ignore_errors=True)
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, cwd=scratch, env=env)
            times[name].append(time.perf_counter() - start)
            if proc.returncode != 0:
                raise RuntimeError(f"{name} failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    return {name: statistics.median(values) for name, values in times.items()}


def measure_server_rerun(workdir: Path, repeat: int) -> dict[str, float]:
    """Wall-clock seconds of ``python -m pipeline run`` on the embedded page with nothing changed,
    with a local Prefect server running (started here, on a free port) and without one (Prefect's
    temporary server), run alternately ``repeat`` times: medians, the run's own CPU time beside
    each (a busy machine stretches the wall clock, not the CPU time), and the server's start-up.

    Raises:
        RuntimeError: a run failed, or did work although nothing had changed.
    """
    from pipeline.orchestrate.server import PORT_ENV, LocalServer, free_port, start_server

    output = workdir / "server-rerun"
    start = time.perf_counter()
    started = start_server(LocalServer(port=free_port(), home=workdir / "prefect"))
    server_start = time.perf_counter() - start
    try:
        without = _no_server_env()
        envs = {"local": {**without, PORT_ENV: str(started.server.port)}, "temporary": without}
        _timed_run(output, envs["local"], warm=False)  # the cold run that the warm ones re-run
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in envs}
        for _ in range(repeat):
            for name, env in envs.items():
                runs[name].append(_timed_run(output, env, warm=True))
    finally:
        started.stop()
    figures = {"server_start_seconds": server_start}
    for name, timings in runs.items():
        figures[name] = statistics.median(wall for wall, _ in timings)
        figures[f"{name}_cpu"] = statistics.median(cpu for _, cpu in timings)
    return figures


def measure_site_cli(workdir: Path, repeat: int) -> dict[str, Any]:
    """``python -m pipeline run`` over the bench's site (its output warm from the flow's runs), as an
    operator runs it: a fresh process each time (imports, the pages read and the changed one
    checked up front, the flow). One page is changed before each run. With a local Prefect server
    running (started here), ``repeat`` times (medians of wall-clock and CPU seconds), then once on
    Prefect's temporary server.

    Raises:
        RuntimeError: a run failed, or reconciled other pages than the one changed.
    """
    from devtools.site import Site, change_one_page
    from pipeline.orchestrate.server import PORT_ENV, LocalServer, free_port, start_server

    site = Site(store=workdir / "site" / "store", pages=workdir / "site" / "pages", studies=[], page_trials={})
    command = ["--document", str(site.pages), "--snapshots", str(site.store), "--output", str(workdir / "site-output")]
    changed = iter(sorted(path.name for path in site.pages.glob("*.txt"))[2:])  # pages the flow's runs left alone

    def one_page(env: dict[str, str]) -> tuple[float, float]:
        page = next(changed)
        doc_id = change_one_page(site, page)
        seconds, cpu, out = _timed_cli(command, env)
        if f"documents {doc_id};" not in out:
            raise RuntimeError(f"changing {page} alone, the run did not reconcile {doc_id} alone:\n{out}")
        return seconds, cpu

    without = _no_server_env()
    started = start_server(LocalServer(port=free_port(), home=workdir / "prefect"))
    try:
        local = {**without, PORT_ENV: str(started.server.port)}
        _timed_cli(command, local)  # the first run in a fresh process on this server, not counted
        timings = [one_page(local) for _ in range(max(1, repeat))]
    finally:
        started.stop()
    temporary, _ = one_page(without)
    return {"local_seconds": statistics.median(t for t, _ in timings),
            "local_cpu": statistics.median(c for _, c in timings), "runs": len(timings), "temporary_seconds": temporary}


def _timed_cli(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds (user + system) of one ``python -m pipeline run ARGS``, and what it printed."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", *args], capture_output=True, text=True,
                          cwd=REPO, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"run failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def _timed_run(output: Path, env: dict[str, str], *, warm: bool) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one ``run`` in a fresh process."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--output", str(output)],
                          capture_output=True, text=True, cwd=REPO, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"run failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    if warm and "nothing changed since the last run" not in proc.stdout:
        raise RuntimeError(f"the warm re-run did work:\n{proc.stdout}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# -- report ---------------------------------------------------------------------------------------


@dataclass
class Report:
    """Figures as printed lines, and the verdict on each target."""

    lines: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, bool | None]] = field(default_factory=list)

    def say(self, line: str = "") -> None:
        self.lines.append(line)
        print(line, flush=True)

    def target(self, name: str, met: bool | None, detail: str) -> None:
        self.verdicts.append((name, met))
        mark = {True: "met", False: "NOT MET", None: "not measured"}[met]
        self.say(f"  target {name}: {detail} -> {mark}")


def _rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def measure_load_and_floor(corpus: Path, output_dir: Path, repeat: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse+load (DuckDB engine) and the orjson floor, ``repeat`` times each, interleaved.

    Each figure is the run of median time (with its own CPU time), so that one run slowed by the
    machine does not decide a ratio; the peak RSS is the largest of all runs, so memory is never
    flattered. Every load goes to a new output folder.
    """
    loads, floors = [], []
    for n in range(max(1, repeat)):
        target = output_dir.with_name(f"{output_dir.name}-{n}")
        loads.append(in_subprocess("ingest", corpus, target, "duckdb"))
        shutil.rmtree(target, ignore_errors=True)
        floors.append(in_subprocess("decode", corpus))

    def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
        chosen = sorted(runs, key=lambda run: run["seconds"])[(len(runs) - 1) // 2]
        return {**chosen, "peak_rss": max(run["peak_rss"] for run in runs)}

    return median_run(loads), median_run(floors)


def run_bench(args: argparse.Namespace, workdir: Path) -> Report:
    """Every measurement the options ask for, printed as it is made."""
    import platform

    report = Report()
    sizes = args.sizes or [args.records]
    report.say(f"trialrecon bench: {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f} at the start), "
               f"Python {platform.python_version()}, seed {args.seed}")

    report.say("")
    report.say(f"parse+load (bulk ingest, DuckDB engine) against orjson decoding the same bytes "
               f"(median of {args.repeat} runs each, interleaved; peak RSS the largest)")
    report.say(f"  {'records':>9}  {'MB':>8}  {'parse+load':>24}  {'orjson decode':>24}  {'ratio':>5}  "
               f"{'peak RSS load':>13}  {'peak RSS decode':>15}")
    largest = max(sizes)
    corpus = None
    for size in sorted(sizes):
        corpus = build_corpus(args.samples, size, workdir / f"corpus-{size}.ndjson", seed=args.seed)
        load, floor = measure_load_and_floor(corpus.path, workdir / f"out-{size}", args.repeat)
        reference = in_subprocess("ingest", corpus.path, workdir / f"out-{size}-python", "python")
        shutil.rmtree(workdir / f"out-{size}-python", ignore_errors=True)
        ratio = load["seconds"] / floor["seconds"]
        mb = corpus.bytes / MB
        report.say(
            f"  {size:>9,}  {mb:>8,.1f}  "
            f"{_rate(load['records'], load['seconds']):>8,.0f} rec/s {_rate(mb, load['seconds']):>6,.1f} MB/s  "
            f"{_rate(floor['records'], floor['seconds']):>8,.0f} rec/s {_rate(mb, floor['seconds']):>6,.1f} MB/s  "
            f"{ratio:>5.2f}  {_mib(load['peak_rss']):>13}  {_mib(floor['peak_rss']):>15}")
        report.say(f"  {'':>9}  {'':>8}  {load['seconds']:>10.2f} s, cpu {load['cpu_seconds']:>6.2f} s  "
                   f"{floor['seconds']:>10.2f} s, cpu {floor['cpu_seconds']:>6.2f} s  "
                   f"{load['cpu_seconds'] / floor['cpu_seconds']:>5.2f} (cpu)"
                   + (f"  {load['load_errors']} load errors" if load["load_errors"] else ""))
        # The Python engine (orjson + parse_study) for reference: the same rows, written the old way.
        report.say(f"  {'':>9}  {'':>8}  python engine: {reference['seconds']:.2f} s, "
                   f"cpu {reference['cpu_seconds']:.2f} s, {reference['seconds'] / floor['seconds']:.2f}x orjson, "
                   f"peak RSS {_mib(reference['peak_rss'])}")
        report.target(f"parse+load within {MAX_LOAD_TO_DECODE:g}x of orjson ({size:,} records)",
                      ratio <= MAX_LOAD_TO_DECODE, f"{ratio:.2f}x")
        report.target(f"peak RSS under 1 GiB ({size:,} records)", load["peak_rss"] < MAX_PEAK_RSS,
                      _mib(load["peak_rss"]))
        if size != largest:
            corpus.path.unlink()
    if 100_000 not in sizes:
        report.target("peak RSS under 1 GiB (100,000 records)", None, "add --sizes 20000,100000")

    report.say("")
    if args.skip_fetch:
        report.say("fetch: skipped")
    else:
        assert corpus is not None
        latency = args.fetch_latency_ms / 1000
        fetch = in_subprocess("fetch", corpus.path, min(args.fetch_records, corpus.records), latency,
                              args.fetch_concurrency)
        bound = _rate(fetch["records"], fetch["bound_seconds"])
        ratio = fetch["seconds"] / fetch["bound_seconds"]
        report.say(f"fetch ({fetch['records']} records, {args.fetch_latency_ms:g} ms latency, "
                   f"concurrency {args.fetch_concurrency}, loopback)")
        report.say(f"  {_rate(fetch['records'], fetch['seconds']):,.1f} rec/s against a bound of {bound:,.1f} rec/s "
                   f"({fetch['seconds']:.2f} s against {fetch['bound_seconds']:.2f} s; "
                   f"{fetch['failed']} failed; peak RSS {_mib(fetch['peak_rss'])})")
        report.say(f"  the client alone, without the snapshot store: "
                   f"{_rate(fetch['records'], fetch['client_seconds']):,.1f} rec/s "
                   f"({fetch['client_seconds'] / fetch['bound_seconds']:.2f}x of the bound)")
        report.target(f"fetch within {MAX_FETCH_TO_BOUND:g}x of its bound", ratio <= MAX_FETCH_TO_BOUND and
                      not fetch["failed"], f"{ratio:.2f}x")

    report.say("")
    if args.skip_rerun:
        report.say("re-run: skipped")
    else:
        # The embedded page alone is tiny (its cold run is a few tenths of a second, mostly fixed
        # costs of opening DuckDB), so the target is judged on a store of realistic size; both print.
        small = in_subprocess("rerun", workdir / "rerun", args.repeat, "", 0)
        report.say(f"re-run, the run's sequence without Prefect (pipeline.run.run_pipeline), median of {args.repeat}")
        report.say(f"  embedded default (20 snapshots): cold {small['cold_seconds']:.3f} s, "
                   f"warm {small['warm_seconds']:.3f} s ({small['warm_seconds'] / small['cold_seconds']:.1%}; "
                   f"work done: cold {small['cold_work_done']}, warm {small['warm_work_done']})")
        records = min(args.rerun_records, corpus.records) if corpus else 0
        if records:
            big = in_subprocess("rerun", workdir / "rerun-corpus", args.repeat, corpus.path, records)
            ratio = big["warm_seconds"] / big["cold_seconds"]
            report.say(f"  embedded default + {records:,} corpus snapshots: cold {big['cold_seconds']:.3f} s, "
                       f"warm {big['warm_seconds']:.3f} s (work done: cold {big['cold_work_done']}, "
                       f"warm {big['warm_work_done']})")
            report.target(f"warm re-run under {MAX_WARM_TO_COLD:.0%} of the cold run ({records:,} snapshots)",
                          ratio < MAX_WARM_TO_COLD and not big["warm_work_done"], f"{ratio:.1%}")

    report.say("")
    if args.skip_startup:
        report.say("start-up: skipped")
    else:
        scratch = workdir / "make-run"
        scratch.mkdir(exist_ok=True)
        medians = time_startup(startup_commands(scratch), scratch, args.repeat)
        run_s, empty_s = medians["make run"], medians["empty flow"]
        report.say(f"start-up, wall clock, median of {args.repeat} (fresh processes)")
        report.say(f"  make run (cold output) {run_s:.2f} s, empty Prefect flow {empty_s:.2f} s")
        report.target(f"make run within {MAX_RUN_TO_EMPTY_FLOW:g}x of an empty flow",
                      run_s / empty_s <= MAX_RUN_TO_EMPTY_FLOW, f"{run_s / empty_s:.2f}x")

    report.say("")
    if args.skip_server:
        report.say("re-run against a Prefect server: skipped")
    else:
        server = measure_server_rerun(workdir, args.repeat)
        report.say(f"warm re-run of the embedded page (python -m pipeline run, nothing changed), wall clock, "
                   f"median of {args.repeat}")
        report.say(f"  local Prefect server running: {server['local']:.2f} s (cpu {server['local_cpu']:.2f} s); "
                   f"temporary server: {server['temporary']:.2f} s (cpu {server['temporary_cpu']:.2f} s)")
        report.say(f"  the local server's own start-up, paid once: {server['server_start_seconds']:.1f} s "
                   f"(load average now {os.getloadavg()[0]:.1f})")
        report.target(f"warm re-run under {MAX_SERVER_RERUN_SECONDS:g} s with a local server running",
                      server["local"] < MAX_SERVER_RERUN_SECONDS, f"{server['local']:.2f} s")
    return report


def run_site_bench(args: argparse.Namespace, workdir: Path) -> Report:
    """The site figures: a generated site run through the flow, cold and warm, and per-page time."""
    import platform

    pages, records = args.site
    report = Report()
    runner = f"a local Dask cluster of {args.site_dask} workers" if args.site_dask else "the default task runner"
    report.say(f"trialrecon site bench: {pages:,} pages over {records:,} records, on {runner}; {os.cpu_count()} cores "
               f"(load average {os.getloadavg()[0]:.1f} at the start), Python {platform.python_version()}, "
               f"seed {args.seed}")
    phase(f"corpus: {records:,} varied CT.gov records")
    corpus = build_corpus(args.samples, records, workdir / f"corpus-{records}.ndjson", seed=args.seed)
    site = in_subprocess("site", workdir, corpus.path, pages, records, args.seed, args.site_dask, live=True)
    cold = site["cold_seconds"]
    report.say("")
    report.say("the flow, end to end, as `run` runs it without a server (Prefect's temporary server already up; no flow heartbeats)")
    report.say(f"  cold: {cold:.1f} s ({site['cold_pages']:,} pages reconciled; peak RSS {_mib(site['cold_rss'])})")
    report.say(f"  warm, nothing changed: {site['nothing_changed_seconds']:.2f} s "
               f"(work done: {site['nothing_changed_work']})")
    report.say(f"  warm, one page changed ({site['one_page_changed']}): {site['one_page_seconds']:.2f} s "
               f"({site['one_page_seconds'] / cold:.1%} of cold); pages reconciled: {site['one_page_reconciled']}")
    report.say(f"  warm, one record changed ({site['one_record']}, cited by {len(site['one_record_citing'])} pages): "
               f"{site['one_record_seconds']:.2f} s; pages reconciled: {len(site['one_record_reconciled'])}, "
               f"exactly those citing it: {site['one_record_reconciled'] == site['one_record_citing']}")
    report.say(f"  peak RSS of the flow's process: {_mib(site['peak_rss'])}")
    full = (pages, records) == (2000, 20000)
    size = "" if full else f" (measured at {pages:,} x {records:,}; the target is for 2,000 x 20,000)"
    report.target(f"cold under {MAX_SITE_COLD_SECONDS:.0f} s{size}", cold < MAX_SITE_COLD_SECONDS if full else None,
                  f"{cold:.1f} s")
    report.target(f"peak RSS under 2 GiB{size}", site["peak_rss"] < MAX_SITE_PEAK_RSS if full else None,
                  _mib(site["peak_rss"]))
    one_page = site["one_page_seconds"] / cold
    report.target(f"warm, one page changed, under {MAX_ONE_PAGE_TO_COLD:.0%} of cold{size}",
                  one_page < MAX_ONE_PAGE_TO_COLD if full else None, f"{one_page:.1%}")
    phase(f"per-page time: the same pages against {args.site_small:,} and {records:,} records")
    per_page = in_subprocess("page-time", workdir, args.site_small, args.repeat, live=True)
    ratio = per_page["ratio"]
    low, high = per_page["ratio_range"]
    report.say("")
    report.say(f"per-page reconcile time, the same {per_page['pages']} pages, {per_page['passes']} interleaved "
               "passes after one uncounted (medians; the ratio is the median of the passes' own ratios)")
    report.say(f"  {per_page['small_records']:,} records: {per_page['small_seconds'] * 1000:.1f} ms a page; "
               f"{per_page['large_records']:,} records: {per_page['large_seconds'] * 1000:.1f} ms a page; "
               f"ratio by pass {low:.2f}x-{high:.2f}x")
    report.target(f"per-page time within {MAX_PAGE_TIME_RATIO:g}x from {per_page['small_records']:,} to "
                  f"{per_page['large_records']:,} records", ratio <= MAX_PAGE_TIME_RATIO, f"{ratio:.2f}x")
    if not args.site_dask:
        phase("the CLI: `python -m pipeline run` over the site, one page changed before each run")
        cli = measure_site_cli(workdir, args.repeat)
        report.say("")
        report.say("`python -m pipeline run` over the site, one page changed, as an operator runs it (a fresh "
                   "process: imports, the pages read and the changed one checked up front, the flow)")
        report.say(f"  with a local Prefect server running: {cli['local_seconds']:.2f} s wall, "
                   f"{cli['local_cpu']:.2f} s CPU (medians of {cli['runs']})")
        report.say(f"  on Prefect's temporary server, started by the run: {cli['temporary_seconds']:.2f} s (once)")
    report.say(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min)")
    return report


def main(args: argparse.Namespace) -> Report:
    """Run the bench in ``--workdir`` (kept) or a temporary folder (removed afterwards)."""
    chosen = run_site_bench if args.site else run_bench
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return chosen(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="trialrecon-bench-") as tmp:
        return chosen(args, Path(tmp))


if __name__ == "__main__" and sys.argv[1:2] == ["_child"]:
    print(json.dumps(CHILDREN[sys.argv[2]](sys.argv[3:])))
