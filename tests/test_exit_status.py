"""Every way a command ends has its own exit status, and every bad input or output one line.

The statuses are defined once (``pipeline.errors.ExitStatus``), listed by ``--help`` and by
README's table. Each case here used to end in a traceback (40 lines of Prefect's, 89 for an
output folder under /proc), in the wrong status (a held lock as bad input, a fetch failure as
partial), or in silence (a missing ``--baseline`` read as an empty one). Now each gives one line
on stderr naming the input and what is wrong, and its status; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

import pipeline.load.writer
from pipeline.cli import main
from pipeline.errors import ExitStatus, FetchError, InputError, OutputError, OutputLockedError, TrialreconError
from pipeline.load.writer import DB_NAME, LOCK_NAME, output_lock
from pipeline.fetch.refresh import FetchTarget, refresh
from pipeline.fetch.client import FetchSettings, RegistryClient, make_http_client
from pipeline.store.snapshots import SnapshotStore

from conftest import REPO

SNAPSHOTS = REPO / "snapshots"
CTGOV_SAMPLE = SNAPSHOTS / "ctgov" / "NCT03645928.json"


def _one_error_line(err: str) -> str:
    """The one ``error:`` line of a command's stderr; there is no traceback beside it."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _store_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "snapshots"
    shutil.copytree(SNAPSHOTS, copy, symlinks=True)
    return copy


# -- the statuses: each defined once, documented, and distinct -----------------------------------

def test_readme_exit_status_table_gives_each_status_its_meaning_from_the_code():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d) \| (.+) \|$", readme, flags=re.MULTILINE)
    assert [(int(code), meaning) for code, meaning in rows] == [(s.value, s.meaning) for s in ExitStatus]


def test_help_lists_every_exit_status(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for status in ExitStatus:
        assert f"  {status.value}  {status.meaning.replace('`', '')}" in out


def test_each_kind_of_error_has_a_status_of_its_own():
    kinds = [InputError, FetchError, OutputLockedError, OutputError]
    statuses = [kind.exit_status for kind in kinds]
    assert statuses == [ExitStatus.BAD_INPUT, ExitStatus.FETCH_FAILED, ExitStatus.OUTPUT_LOCKED,
                        ExitStatus.OUTPUT_FAILED]
    assert ExitStatus.PARTIAL not in {cls.exit_status for cls in (TrialreconError, *kinds)}


def test_a_fetch_failure_that_ends_a_command_exits_4_not_partial(monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise FetchError("https://clinicaltrials.gov/api/v2/studies/NCT03645928", "connection refused")

    monkeypatch.setattr("pipeline.fetch.refresh.run_refresh", fail)
    assert main(["refresh", "--only", "NCT03645928"]) == ExitStatus.FETCH_FAILED == 4
    assert _one_error_line(capsys.readouterr().err) == (
        "error: https://clinicaltrials.gov/api/v2/studies/NCT03645928: connection refused")


def test_an_output_folder_another_run_holds_exits_5_not_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pipeline.load.writer, "LOCK_WAIT_SECONDS", 0.1)
    out = tmp_path / "out"
    with output_lock(out):
        code = main(["ingest", str(CTGOV_SAMPLE), "--output", str(out)])
    assert code == ExitStatus.OUTPUT_LOCKED == 5
    assert _one_error_line(capsys.readouterr().err) == f"error: {out}: another trialrecon run is writing here"
    assert not (out / DB_NAME).exists()


# -- arguments: checked by the parser, one line, status 2 ----------------------------------------

@pytest.mark.parametrize(("argv", "problem"), [
    (["refresh", "--rate", "inf"], "argument --rate: 'inf' is not a rate"),
    (["refresh", "--rate", "0"], "argument --rate: '0' is not a rate"),
    (["refresh", "--rate", "-1"], "argument --rate: '-1' is not a rate"),
    (["refresh", "--rate", "nan"], "argument --rate: 'nan' is not a rate"),
    (["refresh", "--concurrency", "0"], "argument --concurrency: '0' is not a whole number of at least 1"),
])
def test_bad_argument_is_one_line_naming_it_with_status_2(argv, problem, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == ExitStatus.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: trialrecon {argv[0]}: {problem}")


@pytest.mark.parametrize(("argv", "problem"), [
    (["serve", "--cron", "not a cron"], "--cron 'not a cron' is not a cron schedule"),
    (["serve", "--timezone", "Mars/Phobos"], "--timezone 'Mars/Phobos' is not an IANA time zone"),
])
def test_bad_schedule_is_one_line_naming_the_option_with_status_2_before_any_server(argv, problem, capfd):
    assert main(argv) == ExitStatus.BAD_INPUT
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {problem}")


# -- inputs of run and check --------------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "problem"), [
    ("manifest.json", b'[{"path": "ctgov/NCT03645928.json"', "manifest is not valid: Invalid JSON"),
    ("manifest.json", b'[{"path": "ctgov/NCT03645928.json"}]', "manifest is not valid: invalid 0.registry: Field required"),
    ("links.json", b"[{", "not a valid list of trial links: Invalid JSON"),
    ("links.json", b'[{"trial_id": "NCT03645928"}]', "not a valid list of trial links: invalid 0.other_id: Field required"),
])
def test_malformed_manifest_or_links_on_run_is_one_line_exit_2_and_no_output_or_lock(tmp_path, capfd, name, content,
                                                                                        problem):
    store = _store_copy(tmp_path)
    (store / name).write_bytes(content)
    out = tmp_path / "out"
    code = main(["run", "--snapshots", str(store), "--output", str(out)])
    line = _one_error_line(capfd.readouterr().err)
    assert code == ExitStatus.BAD_INPUT
    assert line.startswith(f"error: {store / name}: {problem}")
    assert not out.exists() and not (out / LOCK_NAME).exists()


def test_check_with_a_baseline_file_that_does_not_exist_is_an_error_not_an_empty_baseline(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["check", "--baseline", str(missing)]) == ExitStatus.BAD_INPUT
    assert _one_error_line(capsys.readouterr().err) == f"error: {missing}: file not found"


# -- refresh: a snapshot a symlink leads outside the store fails alone --------------------------

def test_refresh_target_whose_snapshot_is_symlinked_outside_the_store_fails_alone(tmp_path):
    store = SnapshotStore(tmp_path / "snapshots")
    outside = tmp_path / "outside.json"
    outside.write_bytes(b"{}")
    (store.root / "ctgov").mkdir(parents=True)
    (store.root / "ctgov" / "NCT05727904.json").symlink_to(outside)
    bodies = {name: (SNAPSHOTS / "ctgov" / f"{name}.json").read_bytes() for name in ("NCT03645928", "NCT05727904")}

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bodies[request.url.path.rsplit("/", 1)[-1]],
                              headers={"Content-Type": "application/json"})

    settings = FetchSettings(requests_per_second=1000.0, backoff_initial=0.0, backoff_max=0.0, backoff_jitter=0.0)

    async def run():
        async with make_http_client(settings, transport=httpx.MockTransport(handle)) as http:
            targets = [FetchTarget(registry="ctgov", trial_id=t) for t in bodies]
            return await refresh(targets, store=store, client=RegistryClient(http, settings),
                                 now=datetime(2026, 3, 1, tzinfo=UTC))

    report = asyncio.run(run())
    assert [(o.trial_id, o.outcome, o.error) for o in report.outcomes] == [
        ("NCT03645928", "new", None),
        ("NCT05727904", "failed", "'ctgov/NCT05727904.json' leads outside the snapshot store (through a symlink)"),
    ]
    assert outside.read_bytes() == b"{}"
    assert [e.path for e in store.entries()] == ["ctgov/NCT03645928.json"]


# -- outputs: status 6, one line, the previous outputs unchanged --------------------------------

def test_run_with_an_output_folder_that_cannot_be_created_is_one_line_exit_6(capsys):
    assert main(["run", "--output", "/proc/nope"]) == ExitStatus.OUTPUT_FAILED == 6
    assert _one_error_line(capsys.readouterr().err) == "error: /proc/nope: cannot be written (No such file or directory)"


def test_verbose_adds_the_traceback_to_the_one_line(capsys):
    assert main(["run", "--output", "/proc/nope", "--verbose"]) == ExitStatus.OUTPUT_FAILED
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("error: /proc/nope: cannot be written (No such file or directory)\n")


@pytest.fixture
def read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes through permission bits: make the folder immutable instead
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def test_run_into_a_read_only_output_folder_is_one_line_exit_6(read_only_folder, capsys):
    code = main(["run", "--output", str(read_only_folder)])
    line = _one_error_line(capsys.readouterr().err)
    assert code == ExitStatus.OUTPUT_FAILED
    assert re.fullmatch(rf"error: {read_only_folder}/\.trialrecon-probe-\w+: cannot be written "
                        r"\((Operation not permitted|Permission denied)\)", line) or \
        line in (f"error: {read_only_folder}: cannot be written (Operation not permitted)",
                 f"error: {read_only_folder}: cannot be written (Permission denied)"), line


def test_ingest_into_a_read_only_output_folder_is_one_line_exit_6(read_only_folder, capsys):
    assert main(["ingest", str(CTGOV_SAMPLE), "--output", str(read_only_folder)]) == ExitStatus.OUTPUT_FAILED
    assert "cannot be written" in _one_error_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def good_output(tmp_path_factory, prefect_harness):
    out = tmp_path_factory.mktemp("good") / "out"
    assert main(["run", "--output", str(out)]) == ExitStatus.OK
    return out


def _outputs(out: Path) -> dict[str, bytes]:
    """The published outputs' bytes: the database, the Parquet versions, the reports (not the lock
    or other bookkeeping files a failed run may leave for the next one)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and (not p.name.startswith(".") or p.parent != out)}


@pytest.mark.parametrize("damage", ["not duckdb", "truncated in its header", "truncated in its data"])
def test_run_over_an_output_database_duckdb_cannot_use_is_one_line_exit_6(good_output, tmp_path, capfd, damage):
    out = tmp_path / "out"
    shutil.copytree(good_output, out, symlinks=True)
    database = out / DB_NAME
    if damage == "not duckdb":
        database.write_text("id,name\n1,not a database\n" * 100)
    elif damage == "truncated in its header":
        database.write_bytes(database.read_bytes()[:100])
    else:  # DuckDB opens it, and fails reading the blocks that are gone
        database.write_bytes(database.read_bytes()[:database.stat().st_size // 2])
    before = _outputs(out)
    code = main(["run", "--output", str(out)])
    line = _one_error_line(capfd.readouterr().err)
    assert code == ExitStatus.OUTPUT_FAILED
    assert line.startswith(f"error: {database}: DuckDB cannot use it (IO Error: ")
    assert _outputs(out) == before


def test_run_on_a_full_filesystem_is_one_line_exit_6_and_the_previous_outputs_stay(good_output, tmp_path, capfd,
                                                                                   monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(good_output, out, symlinks=True)
    # A page that differs from the last run's, so the run has outputs to write.
    page = tmp_path / "page.txt"
    page.write_text((SNAPSHOTS / "documents" / "aldesleukin.txt").read_text().replace("Completed88", "Completed89"))
    before = _outputs(out)

    def disk_full(path: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(pipeline.load.writer, "_fsync_dir", disk_full)
    code = main(["run", "--document", str(page), "--output", str(out)])
    line = _one_error_line(capfd.readouterr().err)
    assert code == ExitStatus.OUTPUT_FAILED
    assert re.fullmatch(rf"error: {out}(/\S+)?: cannot be written \(No space left on device\)", line), line
    assert _outputs(out) == before
