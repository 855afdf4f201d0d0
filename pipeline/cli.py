"""Command line: ``python -m pipeline <command>`` (also installed as ``trialrecon``).

Exit status: see :class:`pipeline.errors.ExitStatus` (``--help`` lists them). Our errors print one
line on stderr (``--verbose`` adds the traceback); a bad argument does too, with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import tempfile
import textwrap
import traceback
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from pipeline.errors import ExitStatus, InputError, TrialreconError
from pipeline.orchestrate.server import describe_serving
from pipeline.paths import DEFAULT_BASELINE_DIR, DEFAULT_OUTPUT_DIR, DEFAULT_SNAPSHOTS_DIR
from pipeline.store.snapshots import SnapshotStore

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_PARTIAL = (
    ExitStatus.OK, ExitStatus.CHECK_FAILED, ExitStatus.BAD_INPUT, ExitStatus.PARTIAL)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the argument, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitStatus.BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _exit_status_help() -> str:
    return "exit status:\n" + "\n".join(f"  {s.value}  {s.meaning.replace('`', '')}" for s in ExitStatus)


def _positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate (a finite number of requests per second above 0)")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _snapshots_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snapshots", type=Path, default=DEFAULT_SNAPSHOTS_DIR, metavar="DIR",
                   help="snapshot store to read (default: the repo's snapshots/)")


def _documents_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--document", dest="documents", type=Path, action="append", metavar="PATH",
                   help="a page to extract, or a folder of pages (its *.txt files); repeatable; "
                        "default: the embedded Aldesleukin page")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trialrecon",
        description="Reconcile what a page says about a drug's clinical trials with the registries.",
        epilog=_exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="extract, reconcile and load into DuckDB + Parquet (a Prefect flow)",
                         description="Example: python -m pipeline run --document page.txt --output out/")
    _documents_arg(run)
    run.add_argument("--output", type=Path, default=DEFAULT_OUTPUT_DIR, metavar="DIR",
                     help="output folder (default: output/)")
    run.add_argument("--online", action="store_true",
                     help="refresh the snapshots from the live registries first (default: offline)")
    run.add_argument("--baseline-dir", type=Path, default=DEFAULT_BASELINE_DIR, metavar="DIR",
                     help="accepted discrepancies, <document_id>.json each, that the summary and the report "
                          "measure the run against (default: the repo's baseline/)")
    run.add_argument("--dask-address", metavar="ADDRESS",
                     help="run the tasks on this dask.distributed scheduler, e.g. tcp://scheduler:8786 "
                          "(default: $TRIALRECON_DASK_ADDRESS, else threads in this process)")
    _snapshots_arg(run)

    check = sub.add_parser("check", help="compare the page with the registries; exit 1 on unaccepted discrepancies",
                           description="Example: python -m pipeline check --baseline baseline/aldesleukin.json")
    _documents_arg(check)
    check.add_argument("--baseline", type=Path, metavar="FILE",
                       help="accepted discrepancies (default: baseline/<document_id>.json)")
    _snapshots_arg(check)

    inspect = sub.add_parser("inspect", help="print the parsed record(s) of one snapshot file as JSON",
                             description="Example: python -m pipeline inspect snapshots/ctgov/NCT03645928.json")
    inspect.add_argument("path", type=Path)

    refresh = sub.add_parser("refresh", help="fetch the registry records live into snapshots/ (conditional GETs)",
                             description="Example: python -m pipeline refresh --only NCT05727904")
    refresh.add_argument("--only", nargs="+", default=[], metavar="ID", help="refresh only these trial ids")
    _documents_arg(refresh)
    _snapshots_arg(refresh)
    refresh.add_argument("--rate", type=_positive_rate, default=1.0, help="requests per second per host (default 1)")
    refresh.add_argument("--concurrency", type=_positive_int, default=4, help="requests in flight at once (default 4)")

    ingest = sub.add_parser("ingest", help="bulk-load ClinicalTrials.gov v2 records into DuckDB + Parquet",
                            description="Example: python -m pipeline ingest ctg-studies/ --output out/ "
                                        "(PATH: NDJSON, JSON files or /studies pages, a zip, or a folder of them)")
    ingest.add_argument("path", type=Path)
    ingest.add_argument("--output", type=Path, default=DEFAULT_OUTPUT_DIR, metavar="DIR",
                        help="output folder (default: output/)")
    ingest.add_argument("--engine", choices=("duckdb", "python"), default="duckdb",
                        help="duckdb: DuckDB's JSON reader does the decoding and extraction (default, faster); "
                             "python: orjson + the registry parser (the reference; same rows)")

    bench = sub.add_parser("bench", help="measure parse+load, fetch, re-run and start-up against their targets",
                           description="Example: python -m pipeline bench --sizes 20000,100000")
    try:
        from devtools.bench import add_arguments as add_bench_arguments
    except ImportError:
        # The bench lives beside the package in a source checkout (devtools/), not in an installed wheel.
        bench.set_defaults(bench_missing=True)
    else:
        add_bench_arguments(bench)

    schemas = sub.add_parser("schemas", help="regenerate schemas/ (JSON Schemas and the data dictionary)")
    schemas.add_argument("--check", action="store_true", help="exit 1 if schemas/ is stale instead of writing")

    sub.add_parser("reconstruct", help="rebuild the reconstructed snapshots from snapshots/reconstruction/")

    changes = sub.add_parser("changes", help="what changed in the registries, and which verdicts changed with it",
                             description="Example: python -m pipeline changes --since 2026-01-01")
    changes.add_argument("--since", type=_date_arg, default=datetime(1970, 1, 1, tzinfo=UTC), metavar="DATE",
                         help="only changes at or after DATE (YYYY-MM-DD or an ISO timestamp)")
    changes.add_argument("--output", type=Path, default=DEFAULT_OUTPUT_DIR, metavar="DIR")

    serve = sub.add_parser(
        "serve", help="run the flow on a schedule, on a Prefect server with a scheduler and a UI",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Examples: python -m pipeline serve --cron "0 6 * * 1-5" --timezone Europe/Paris\n'
                    "          python -m pipeline serve --interval 3600 --online\n\n"
                    + textwrap.fill(describe_serving(), width=100))
    when = serve.add_mutually_exclusive_group()
    when.add_argument("--cron", help='cron schedule (default: "0 6 * * *", daily at 06:00)')
    when.add_argument("--interval", type=float, metavar="SECONDS", help="run every SECONDS seconds instead")
    serve.add_argument("--timezone", default="UTC", help="IANA time zone of the schedule (default: UTC)")
    serve.add_argument("--port", type=int, metavar="PORT",
                       help="port of the local Prefect server (default: $TRIALRECON_PREFECT_PORT, else 4200); "
                            "unused when PREFECT_API_URL is set")
    _documents_arg(serve)
    serve.add_argument("--output", type=Path, default=DEFAULT_OUTPUT_DIR, metavar="DIR",
                       help="output folder of every run (default: output/)")
    serve.add_argument("--online", action="store_true", help="refresh from the registries before each run")
    _snapshots_arg(serve)
    for command in sub.choices.values():
        command.add_argument("--verbose", action="store_true", help="show the traceback of an error")
        command.epilog = _exit_status_help()
        command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _date_arg(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _print_outputs(row_counts: dict[str, int], database: Path, parquet_dir: Path, *, count_width: int) -> None:
    """Print the rows of each table, then where the database and the Parquet files are."""
    width = max(len(t) for t in row_counts)
    for table, count in row_counts.items():
        print(f"  {table:<{width}}  {count:>{count_width}}")
    print(f"database: {database}")
    print(f"parquet:  {parquet_dir}/")


def _read_inputs(args: argparse.Namespace):  # -> pipeline.run.RunInputs
    """Read every input a run would, once: the manifest, the links, the missing-record reasons and
    every page, the pages the run will extract anew extracted (milliseconds a page), so that a
    bad one is refused now (the others were extracted by an earlier run into the same output
    from the same bytes, links and code)."""
    from pipeline import run

    return run.read_inputs(args.documents, args.snapshots, extract=True, output_dir=args.output)


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.load.writer import check_output_folder

    # Bad input must cost nothing: every input is read (and every page extracted) before a flow
    # starts or the output folder is touched; then make sure the output folder takes files. The
    # flow runs on what was read here: nothing is read or extracted twice.
    inputs = _read_inputs(args)
    check_output_folder(args.output)
    from pipeline.orchestrate.flows import Parcel, flow_on
    from pipeline.orchestrate.server import (
        LocalServer, choose_for_run, configured_api_url, quiet_temporary_server_shutdown, start_temporary_server,
        using_api, without_flow_heartbeats,
    )

    # The run goes where the operator looks: the configured server, else the local one if it is up.
    server = choose_for_run(configured_api_url(), LocalServer.from_environ())
    if server.origin == "temporary":
        log = Path(tempfile.gettempdir()) / f"trialrecon-temporary-server-{os.getpid()}.log"
        print(f"{server.describe()}; its own output: {log}", file=sys.stderr, flush=True)
        quiet_temporary_server_shutdown()
        start_temporary_server(log)
    with using_api(server.api_url), (nullcontext() if server.heartbeats else without_flow_heartbeats()):
        summary = flow_on(args.dask_address)(documents=args.documents, output_dir=args.output,
                                             snapshots_dir=args.snapshots, online=args.online,
                                             baseline_dir=args.baseline_dir, inputs=Parcel(inputs))
    if summary.work_done:
        print(f"run {summary.run_id}: documents {', '.join(summary.documents)}; "
              f"{summary.records} registry records ({summary.parsed} snapshots parsed, {summary.reused} reused"
              + (f"; {summary.ingested} of the records loaded by ingest)" if summary.ingested else ")"))
    else:
        print(f"run {summary.run_id}: nothing changed since the last run ({summary.reused} snapshots unchanged); "
              "no parsing, no loading, the run is recorded")
    # Findings first: what an analyst or operator opens the summary for.
    for line in summary.findings:
        print(line)
    if summary.record_provenance:
        print(f"records: {summary.record_provenance.get('captured', 0)} captured, "
              f"{summary.record_provenance.get('reconstructed', 0)} reconstructed")
    no_record = [t for t in summary.trials_without_records if t not in summary.candidate_only]
    if no_record:
        print(f"no registry record for {len(no_record)} trials: " + ", ".join(no_record)
              + " (why: SELECT * FROM page_trials WHERE record_status <> 'record')")
    if summary.candidate_only:
        print(f"only a candidate (unconfirmed) record for {len(summary.candidate_only)} trials: "
              + ", ".join(f"{t} -> {o}" for t, o in summary.candidate_only.items()))
    _print_outputs(summary.row_counts, summary.database, summary.parquet_dir, count_width=6)
    for registry_counts in summary.registry_counts:
        print(f"  {registry_counts['registry']:<8} " + ", ".join(
            f"{k} {registry_counts[k]}" for k in ("new", "changed", "unchanged", "failed", "removed")))
    for err in summary.load_errors:
        print(f"could not use {err.snapshot}: {err.error}", file=sys.stderr)
    for line in summary.refresh_failures:
        print(f"refresh failed {line} (previous snapshot kept, marked stale)", file=sys.stderr)
    return summary.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    from pipeline import run, stages
    from pipeline.outputs.baseline import check, format_check, load_baseline

    def baseline_path(doc_id: str) -> Path:
        return args.baseline or Path("baseline") / f"{doc_id}.json"

    def baselines(docs):  # -> dict[str, list[AcceptedDiscrepancy]]
        return {d.document.document_id: load_baseline(baseline_path(d.document.document_id),
                                                      required=args.baseline is not None) for d in docs}

    # The run's own sequence, from no previous run: every page against every snapshot.
    done = run.reconcile(run.read_inputs(args.documents, args.snapshots), run.Steps(), baselines)
    # A snapshot that could not be used takes its comparisons with it: the gate fails (exit 3).
    unusable = [f"{err.snapshot}: {err.error}" for err in done.records.errors]
    rows_by_document = stages.rows_by_document(done.rows)
    exit_code = EXIT_OK
    for doc in done.docs:
        doc_id = doc.document.document_id
        result = check(rows_by_document.get(doc_id, []), done.baselines[doc_id], unusable)
        print(f"# {doc_id} (baseline: {baseline_path(doc_id)})")
        print(format_check(result))
        exit_code = max(exit_code, result.exit_code)
    for line in unusable:
        print(f"could not use {line}", file=sys.stderr)
    return exit_code


def cmd_refresh(args: argparse.Namespace) -> int:
    from pipeline import stages
    from pipeline.orchestrate.progress import make_progress
    from pipeline.fetch.refresh import FetchTarget, run_refresh
    from pipeline.fetch.client import FetchSettings

    store = SnapshotStore(args.snapshots)
    sources = stages.document_sources(args.documents, store) if args.documents else stages.default_documents(store)
    docs = stages.extract_documents(sources)
    targets = [FetchTarget(registry=r, trial_id=t) for r, t in stages.refresh_targets(store, docs, args.only)]
    if not targets:
        raise InputError(f"nothing to refresh (--only {' '.join(args.only)} matches no trial)")
    settings = FetchSettings(requests_per_second=args.rate, max_concurrency=args.concurrency)
    report = run_refresh(targets, store=store, settings=settings, progress=make_progress())
    for registry, counts in report.counts.items():
        print(f"{registry:<6} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for failed in report.failed:
        print(f"failed {failed.path}: {failed.error}", file=sys.stderr)
    return EXIT_PARTIAL if report.failed else EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from pipeline.errors import SnapshotError
    from pipeline.files import MAX_SNAPSHOT_BYTES, read_regular_file
    from pipeline.registries import parse_snapshot

    try:
        data = read_regular_file(args.path, limit=MAX_SNAPSHOT_BYTES, what="a snapshot", fail=SnapshotError)
    except FileNotFoundError as exc:
        raise SnapshotError(args.path, "file not found") from exc
    if not data.strip():
        raise SnapshotError(args.path, "file is empty")
    records = parse_snapshot(data, path=str(args.path))
    out = [r.model_dump(mode="json") for r in records]
    print(json.dumps(out[0] if len(out) == 1 else out, indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_schemas(args: argparse.Namespace) -> int:
    from pipeline.outputs.dictionary import SCHEMAS_DIR, stale_files, write_schemas

    if args.check:
        stale = stale_files(SCHEMAS_DIR)
        for name in stale:
            print(f"stale: schemas/{name}")
        return EXIT_CHECK_FAILED if stale else EXIT_OK
    for path in write_schemas(SCHEMAS_DIR):
        print(f"wrote {path}")
    return EXIT_OK


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from pipeline.store.reconstruct import main as reconstruct_main

    return reconstruct_main()


def cmd_changes(args: argparse.Namespace) -> int:
    from pipeline.outputs.changes import changes_since, format_changes
    from pipeline.load.writer import DB_NAME, output_errors

    with output_errors(args.output):
        print(format_changes(changes_since(args.output / DB_NAME, args.since)))
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from pipeline.store.ingest import ingest_ctgov

    report = ingest_ctgov(args.path, args.output, engine=args.engine)
    print(f"ingest {report.run_id}: {report.studies} studies read from {report.source}, "
          f"{report.records} records loaded, {len(report.load_errors)} load errors")
    _print_outputs(report.row_counts, report.database, report.parquet_dir, count_width=8)
    for err in report.load_errors:
        print(f"could not use {err.snapshot}: {err.error}", file=sys.stderr)
    return report.exit_code


def cmd_bench(args: argparse.Namespace) -> int:
    if getattr(args, "bench_missing", False):
        print("bench: needs a source checkout (devtools/ beside pipeline/); run it from the repository's root",
              file=sys.stderr)
        return ExitStatus.BAD_INPUT
    from devtools.bench import main as bench_main

    bench_main(args)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from pipeline.orchestrate.flows import make_deployment, make_schedule
    from pipeline.orchestrate.server import LocalServer, configured_api_url, serving_server, using_api

    # Bad input costs nothing: the schedule and the documents are checked before a server starts.
    schedule = make_schedule(args.cron, args.interval, args.timezone)
    _read_inputs(args)  # each scheduled run reads its own
    local = LocalServer.from_environ(port=args.port)
    # Until Prefect's runner installs its own handler, SIGTERM unwinds like Ctrl-C, so a server
    # started here is stopped. Ctrl-C stops serve even when started where SIGINT is ignored (a
    # background job of a script inherits SIG_IGN). Python's own handler, not ours: asyncio.run
    # then cancels the runner's task on Ctrl-C (which pauses the schedule and unwinds cleanly)
    # instead of a KeyboardInterrupt raised wherever the event loop happens to be.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    origin = None
    try:
        with serving_server(configured_api_url(), local) as choice, using_api(choice.api_url):
            origin = choice.origin
            from prefect import serve
            from prefect.settings import get_current_settings

            print(choice.describe(), flush=True)
            if choice.origin == "started":
                print(f"Prefect state: {local.home} (database {local.database.name}, log {local.log.name})")
            print(f"Prefect UI: {get_current_settings().ui_url or choice.api_url}", flush=True)
            documents = [p.resolve() for p in args.documents] if args.documents else None
            deployment = make_deployment(schedule, documents=documents, output_dir=args.output.resolve(),
                                         snapshots_dir=args.snapshots.resolve(), online=args.online)
            # One run at a time: runs share the output folder (its lock would only make them queue).
            serve(deployment, limit=1)
    except KeyboardInterrupt:
        pass
    print("serve stopped" + (" (and the Prefect server it started)" if origin == "started" else ""))
    return EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


COMMANDS = {
    "ingest": cmd_ingest,
    "bench": cmd_bench,
    "refresh": cmd_refresh,
    "changes": cmd_changes,
    "serve": cmd_serve,
    "run": cmd_run,
    "check": cmd_check,
    "inspect": cmd_inspect,
    "schemas": cmd_schemas,
    "reconstruct": cmd_reconstruct,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the command, and turn our errors into one line and their exit status."""
    args = build_parser().parse_args(argv)
    if not args.verbose:
        _one_line_errors_in_logs()
    try:
        return COMMANDS[args.command](args)
    except TrialreconError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status


class _NoTracebackForOurErrors(logging.Filter):
    """Our errors say all in one line: a log record of one (a failed Prefect task or flow) loses its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], TrialreconError):
            record.exc_info = None
            record.exc_text = None
        return True


_QUIET = _NoTracebackForOurErrors()


def _one_line_errors_in_logs() -> None:
    # One filter object: adding it again (another main() in the same process) is a no-op.
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        logger.addFilter(_QUIET)
        for handler in logger.handlers:
            handler.addFilter(_QUIET)


if __name__ == "__main__":
    sys.exit(main())
