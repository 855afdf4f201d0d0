"""`serve` runs the flow on a schedule on a real Prefect server, and `run` reports to it.

The end-to-end tests start ``python -m pipeline serve`` in a subprocess with a 5-second interval
schedule, wait (bounded) for a scheduled flow run to write the output, stop it and look for any
process left behind. One Prefect server (``prefect_server``) serves the whole session; the one
test that needs ``serve`` to start its own server pays for a second.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest

from pipeline.cli import build_parser, main
from pipeline.orchestrate.server import (
    HOME_ENV,
    PORT_ENV,
    LocalServer,
    ServerChoice,
    StartedServer,
    choose_for_run,
    describe_serving,
    free_port,
    is_healthy,
    start_server,
)
from pipeline.store.snapshots import SnapshotStore
from conftest import EMBEDDED_PAGE, REPO

RUN_TIMEOUT = 240.0  # a server start and a scheduled run, on 2 busy cores
STOP_TIMEOUT = 60.0


# -- helpers ----------------------------------------------------------------------------------------


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for ``serve``: no Prefect settings of the developer's, a fast runner."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k not in (PORT_ENV, HOME_ENV)}
    env.update({
        "PREFECT_HOME": str(tmp_path / "client-home"),  # the serving process's own Prefect files
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # look for due runs every second (default 10)
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    })
    env.update(extra)
    return env


MARKED_TRIAL = "NCT05727904"  # RECRUITING in the embedded store; COMPLETED in the tests' copy


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the embedded snapshot store, told apart from the embedded one by one record's
    status (so that the output shows which store a run read), and an empty output folder."""
    snapshots = tmp_path / "snapshots"
    shutil.copytree(REPO / "snapshots", snapshots)
    store = SnapshotStore(snapshots)
    entry = store.entry_for("ctgov", MARKED_TRIAL)
    study = json.loads(store.read(entry))
    study["protocolSection"]["statusModule"]["overallStatus"] = "COMPLETED"
    store.write("ctgov", MARKED_TRIAL, "json", json.dumps(study, indent=2).encode(), registry="ctgov",
                trial_id=MARKED_TRIAL, url=entry.url, provenance=entry.provenance, http_status=200,
                source_urls=entry.source_urls)
    return snapshots, tmp_path / "out"


def _read_from(database: Path) -> tuple[list[tuple[str, str]], str]:
    """(document id and source URL of each document, the marked trial's status) in a run's output."""
    with duckdb.connect(str(database), read_only=True) as con:
        documents = con.execute("SELECT document_id, source_url FROM documents ORDER BY 1").fetchall()
        [(status,)] = con.execute("SELECT status FROM trials WHERE registry = 'ctgov' AND trial_id = ?",
                                  [MARKED_TRIAL]).fetchall()
    return documents, status


def _start_serve(tmp_path: Path, env: dict[str, str], output: Path, snapshots: Path,
                 *args: str) -> subprocess.Popen[bytes]:
    log = (tmp_path / "serve.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "serve", "--interval", "5", "--output", str(output),
         "--snapshots", str(snapshots), *args],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _log(tmp_path: Path) -> str:
    return (tmp_path / "serve.log").read_text(errors="replace")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _servers_under(pid: int) -> list[int]:
    """Prefect servers started by ``pid`` or its children."""
    return [p for p in _descendants(pid) if "prefect server start" in _cmdline(p)]


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _completed_scheduled_runs(api_url: str, output: Path) -> list[dict]:
    """Flow runs of the served deployment into ``output`` that the scheduler created and that completed."""
    response = httpx.post(f"{api_url}/flow_runs/filter", timeout=10, json={
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
        "deployments": {"name": {"any_": ["trialrecon-scheduled"]}},
    })
    response.raise_for_status()
    return [run for run in response.json()
            if run["auto_scheduled"] and run["parameters"].get("output_dir") == str(output)]


def _pipeline_runs(database: Path) -> int:
    """Rows in pipeline_runs, or 0 while the database is absent or being replaced."""
    if not database.exists():
        return 0
    try:
        with duckdb.connect(str(database), read_only=True) as con:
            return con.execute("SELECT count(*) FROM pipeline_runs").fetchone()[0]
    except duckdb.Error:
        return 0


def _wait_for_a_scheduled_run(process: subprocess.Popen[bytes], tmp_path: Path, api_url: str, output: Path) -> dict:
    """The first completed scheduled run, once its output is readable (bounded by RUN_TIMEOUT)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve ended (exit {process.returncode}):\n{_log(tmp_path)}"
        runs = _completed_scheduled_runs(api_url, output) if is_healthy(api_url) else []
        if runs and _pipeline_runs(output / "trialrecon.duckdb"):
            return runs[0]
        time.sleep(1)
    pytest.fail(f"no scheduled run completed within {RUN_TIMEOUT:g} s:\n{_log(tmp_path)}")


def _stop(process: subprocess.Popen[bytes], sig: int) -> int:
    process.send_signal(sig)
    return process.wait(STOP_TIMEOUT)


@pytest.fixture
def reap() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started: whatever a failing test left running is killed with its group."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            for pid in _servers_under(process.pid):
                os.killpg(pid, signal.SIGKILL)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class SessionServer:
    started: StartedServer
    empty_database: Path  # a copy of its database as it was new: tables created, nothing in them


@pytest.fixture(scope="session")
def session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionServer]:
    """One local Prefect server for the session, started the way ``serve`` starts one, on a new
    database (Prefect creates its tables: most of a first start's ~15-30 s)."""
    started = start_server(LocalServer(port=free_port(), home=tmp_path_factory.mktemp("prefect-home")))
    empty = tmp_path_factory.mktemp("prefect-empty") / "prefect.db"
    with sqlite3.connect(started.server.database) as source, sqlite3.connect(empty) as copy:
        source.backup(copy)  # consistent while the server runs
    yield SessionServer(started, empty)
    started.stop()
    assert not _alive(started.pid)


@pytest.fixture
def prefect_server(session_server: SessionServer) -> StartedServer:
    return session_server.started


@pytest.fixture
def prefect_home(session_server: SessionServer, tmp_path: Path) -> Path:
    """A Prefect home whose database has its tables and nothing else (as after a first ``serve``),
    so that a server started on it need not create them again."""
    home = tmp_path / "prefect"
    home.mkdir()
    shutil.copyfile(session_server.empty_database, home / "prefect.db")
    return home


# -- bad input costs nothing -----------------------------------------------------------------------


@pytest.mark.parametrize(("args", "says"), [
    (["--cron", "* * *"], "error: --cron '* * *' is not a cron schedule"),
    (["--cron", "61 6 * * *"], "error: --cron '61 6 * * *' is not a cron schedule"),
    (["--timezone", "Mars/Olympus_Mons"], "error: --timezone 'Mars/Olympus_Mons' is not an IANA time zone"),
    (["--interval", "60", "--timezone", "Nowhere"], "error: --timezone 'Nowhere' is not an IANA time zone"),
    (["--interval", "0"], "error: --interval 0: the interval must be a positive number of seconds"),
])
def test_bad_schedule_is_one_line_exit_2_and_no_server_is_looked_for(args, says, monkeypatch, capsys, tmp_path):
    def looked_for_a_server() -> None:
        raise AssertionError("a server was looked for")

    monkeypatch.setattr("pipeline.orchestrate.server.configured_api_url", looked_for_a_server)
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(says) and err.count("\n") == 1
    assert not (tmp_path / "home").exists()


def test_a_taken_port_is_one_line_exit_2_and_leaves_no_process(tmp_path, reap):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", str(port)], cwd=tmp_path,
                                env=_env(tmp_path, **{HOME_ENV: str(tmp_path / "home")}),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        reap.append(proc)  # type: ignore[arg-type]
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, out + err
    [line] = err.strip().splitlines()
    assert line == (f"error: http://127.0.0.1:{port}: port {port} is taken by something that is not a Prefect "
                    "server (choose another with --port or TRIALRECON_PREFECT_PORT)")
    assert not _group_alive(proc.pid) and not (tmp_path / "home").exists()


# -- which server ----------------------------------------------------------------------------------


def test_serve_help_says_it_starts_or_reuses_the_local_server_when_no_api_url_is_set(monkeypatch, capsys):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv(PORT_ENV, "4321")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "the local Prefect server at http://127.0.0.1:4321" in help_text
    assert "state in" in help_text and ".prefect" in help_text


def test_serve_help_says_it_uses_prefect_api_url_and_starts_none():
    text = describe_serving({"PREFECT_API_URL": "http://prefect-host:4200/api"})
    assert text == "PREFECT_API_URL is set (http://prefect-host:4200/api): serve schedules on that server and starts none."


def test_local_server_defaults_to_port_4200_and_the_repos_ignored_prefect_folder():
    local = LocalServer.from_environ({})
    assert (local.url, local.home, local.database.name) == ("http://127.0.0.1:4200", REPO / ".prefect", "prefect.db")
    assert ".prefect/" in (REPO / ".gitignore").read_text().splitlines()


def test_local_server_port_from_the_environment_must_be_a_port():
    assert LocalServer.from_environ({PORT_ENV: "4711"}).api_url == "http://127.0.0.1:4711/api"
    with pytest.raises(Exception, match="TRIALRECON_PREFECT_PORT='http' is not a port number"):
        LocalServer.from_environ({PORT_ENV: "http"})


@pytest.mark.serve
def test_run_uses_the_configured_server_else_the_running_local_one_else_a_temporary_one(prefect_server):
    running, idle = prefect_server.server, LocalServer(port=free_port())
    assert choose_for_run("http://remote:4200/api", running).origin == "configured"
    assert choose_for_run(None, running).api_url == running.api_url
    fallback = choose_for_run(None, idle)
    assert (fallback.api_url, fallback.origin) == (None, "temporary")


@pytest.mark.flow
def test_run_without_a_server_says_in_one_line_that_it_uses_a_temporary_one(prefect_harness, monkeypatch, capsys,
                                                                             tmp_path):
    # The session's test harness stands in for Prefect's temporary server, which Prefect starts itself.
    monkeypatch.setattr("pipeline.orchestrate.server.configured_api_url", lambda: None)
    monkeypatch.setenv(PORT_ENV, str(free_port()))
    assert main(["run", "--output", str(tmp_path / "out")]) == 0
    [line] = [ln for ln in capsys.readouterr().err.splitlines() if "Prefect server" in ln]
    assert line.startswith("no Prefect server is running: this run uses a temporary one")


@pytest.mark.flow
def test_a_run_on_a_temporary_server_sends_no_flow_heartbeats(prefect_harness, monkeypatch, capsys, tmp_path):
    # Prefect's heartbeat thread sleeps a second at a time and is joined at the run's end; a
    # temporary server, gone with the run, has nothing to do with heartbeats.
    import prefect.flow_engine

    intervals = []
    send = prefect.flow_engine._send_heartbeats
    monkeypatch.setattr(prefect.flow_engine, "_send_heartbeats",
                        lambda engine, *a, **k: intervals.append(engine.heartbeat_seconds) or send(engine, *a, **k))
    monkeypatch.setattr("pipeline.orchestrate.server.configured_api_url", lambda: None)
    monkeypatch.setenv(PORT_ENV, str(free_port()))
    assert main(["run", "--output", str(tmp_path / "out")]) == 0
    assert intervals == [None]


def test_only_a_run_on_a_temporary_server_goes_without_heartbeats():
    choices = [ServerChoice("http://remote:4200/api", "configured"), ServerChoice("http://127.0.0.1:4200/api", "local"),
               ServerChoice("http://127.0.0.1:4200/api", "started"), ServerChoice(None, "temporary")]
    assert [c.heartbeats for c in choices] == [True, True, True, False]


def test_flow_runs_in_the_block_send_no_heartbeats_and_after_it_do_as_prefect_says():
    from prefect.settings import get_current_settings

    from pipeline.orchestrate.server import without_flow_heartbeats

    before = get_current_settings().flows.heartbeat_frequency
    with without_flow_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency == before


@pytest.mark.serve
def test_run_reports_to_the_running_local_server(prefect_server, tmp_path):
    output = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--output", str(output)], cwd=tmp_path,
                          env=_env(tmp_path, **{PORT_ENV: str(prefect_server.server.port)}),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "temporary" not in proc.stderr
    runs = httpx.post(f"{prefect_server.server.api_url}/flow_runs/filter", json={}, timeout=10).json()
    assert [r["state_type"] for r in runs if r["parameters"].get("output_dir") == str(output)] == ["COMPLETED"]


# -- scheduled runs, end to end --------------------------------------------------------------------


@pytest.mark.serve
def test_serve_starts_a_local_server_whose_scheduler_runs_the_flow_and_sigterm_leaves_nothing(tmp_path, prefect_home,
                                                                                               reap):
    snapshots, output = _inputs(tmp_path)
    port, home = free_port(), prefect_home
    process = _start_serve(tmp_path, _env(tmp_path, **{PORT_ENV: str(port), HOME_ENV: str(home)}), output, snapshots)
    reap.append(process)
    api_url = f"http://127.0.0.1:{port}/api"

    _wait_for_a_scheduled_run(process, tmp_path, api_url, output)
    [server_pid] = _servers_under(process.pid)
    # The scheduled run read the embedded page from the store serve was given, not the repo's.
    documents, status = _read_from(output / "trialrecon.duckdb")
    assert [doc for doc, _ in documents] == ["aldesleukin"] and status == "COMPLETED"
    assert (home / "prefect.db").is_file()  # the server's state is where serve said
    log = _log(tmp_path)
    assert f"Prefect server: {api_url} (a local server started for this command)" in log
    assert f"Prefect UI: http://127.0.0.1:{port}" in log

    assert _stop(process, signal.SIGTERM) == 0
    assert not _alive(server_pid) and not _group_alive(server_pid) and not _group_alive(process.pid)
    assert not _listening(port)


@pytest.mark.serve
def test_serve_with_prefect_api_url_schedules_there_and_starts_no_server(prefect_server, tmp_path, reap):
    snapshots, output = _inputs(tmp_path)
    api_url, unused_port = prefect_server.server.api_url, free_port()
    env = _env(tmp_path, PREFECT_API_URL=api_url, **{PORT_ENV: str(unused_port), HOME_ENV: str(tmp_path / "h")})
    page = tmp_path / "page.txt"
    shutil.copyfile(EMBEDDED_PAGE, page)
    process = _start_serve(tmp_path, env, output, snapshots, "--document", str(page))
    reap.append(process)

    run = _wait_for_a_scheduled_run(process, tmp_path, api_url, output)
    # The scheduled run read the page and the store serve was given, and did not go online.
    assert _read_from(output / "trialrecon.duckdb") == ([("aldesleukin", page.as_uri())], "COMPLETED")
    assert run["parameters"]["online"] is False
    assert _servers_under(process.pid) == []
    assert not _listening(unused_port) and not (tmp_path / "h").exists()
    assert f"Prefect server: {api_url} (from PREFECT_API_URL)" in _log(tmp_path)

    assert _stop(process, signal.SIGINT) == 0
    assert is_healthy(api_url)  # not ours to stop
    [deployment] = httpx.post(f"{api_url}/deployments/filter", timeout=10, json={
        "deployments": {"name": {"any_": ["trialrecon-scheduled"]}}}).json()
    assert deployment["paused"] is True


@pytest.mark.serve
def test_serve_reuses_a_running_local_server_and_ctrl_c_leaves_it_running(prefect_server, tmp_path, reap):
    snapshots, output = _inputs(tmp_path)
    local = prefect_server.server
    env = _env(tmp_path, **{PORT_ENV: str(local.port), HOME_ENV: str(local.home)})
    process = _start_serve(tmp_path, env, output, snapshots)
    reap.append(process)

    deadline = time.monotonic() + RUN_TIMEOUT
    while "polling for scheduled runs" not in _log(tmp_path):  # serving: Ctrl-C now reaches Prefect's runner
        assert process.poll() is None and time.monotonic() < deadline, _log(tmp_path)
        time.sleep(0.5)
    assert f"Prefect server: {local.api_url} (the local server, already running)" in _log(tmp_path)
    assert f"Prefect UI: {local.url}" in _log(tmp_path)
    assert "<html" in httpx.get(local.url, timeout=10, follow_redirects=True).text.lower()
    assert _servers_under(process.pid) == []

    assert _stop(process, signal.SIGINT) == 0
    assert is_healthy(local.api_url) and _alive(prefect_server.pid)


@pytest.mark.serve
def test_a_run_on_a_temporary_server_prints_no_traceback_when_the_server_stops(tmp_path):
    # A real temporary server (no server configured, none on the port): when a short run over a
    # few pages stops it, its services' CancelledError tracebacks used to reach the run's stderr.
    from devtools.bench import build_corpus
    from devtools.site import build_site
    from conftest import SHARED

    corpus = build_corpus(SHARED / "samples" / "ctgov_v2", 60, tmp_path / "corpus.ndjson")
    site = build_site(corpus.path, 60, 6, tmp_path / "site", seed=3, trials_per_page=5)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--document", str(site.pages), "--snapshots", str(site.store),
         "--output", str(tmp_path / "out")],
        cwd=REPO, env=_env(tmp_path, **{PORT_ENV: str(free_port()),
                                         # beside the rest of the suite, a fresh server may take more than 20 s to start
                                         "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "this run uses a temporary one" in proc.stderr
    assert "Traceback" not in proc.stderr and "CancelledError" not in proc.stderr


def test_what_a_process_started_with_stderr_sent_to_a_log_prints_goes_to_the_log(tmp_path, capfd):
    from pipeline.orchestrate.server import stderr_to

    log = tmp_path / "server.log"
    with stderr_to(log):
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('Traceback from the server')"], check=True)
    print("the run's own line", file=sys.stderr)
    assert "Traceback from the server" in log.read_text()
    assert capfd.readouterr().err == "the run's own line\n"
