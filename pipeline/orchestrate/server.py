"""The Prefect server that scheduled runs need: where the local one lives, whether a server
answers, starting one and stopping it again.

Prefect 3 runs no scheduler in the temporary server a flow starts when no ``PREFECT_API_URL`` is
set, so a deployment served against it is never run. ``serve`` therefore uses a persistent local
``prefect server start``: bound to 127.0.0.1, its SQLite database and log under ``.prefect/`` in
the repo, in a process group of its own so that stopping it leaves no process behind.

Plain functions over the standard library and httpx; only :func:`using_api` and
:func:`configured_api_url` import Prefect.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError, ServerError
from pipeline.paths import REPO_DIR

REPO = REPO_DIR
LOCAL_HOST = "127.0.0.1"
DEFAULT_PORT = 4200  # Prefect's own default, so `prefect` commands find the server without settings
DEFAULT_HOME = REPO / ".prefect"
API_URL_ENV = "PREFECT_API_URL"
PORT_ENV = "TRIALRECON_PREFECT_PORT"
HOME_ENV = "TRIALRECON_PREFECT_HOME"
START_TIMEOUT = 180.0  # a first start creates the database: ~12 s on 2 idle cores, far more when busy
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class LocalServer:
    """Where the local Prefect server listens and keeps its state."""

    port: int = DEFAULT_PORT
    home: Path = DEFAULT_HOME
    host: str = LOCAL_HOST

    @property
    def url(self) -> str:
        """The UI's address."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """What ``PREFECT_API_URL`` is set to for clients of this server."""
        return f"{self.url}/api"

    @property
    def database(self) -> Path:
        return self.home / "prefect.db"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ, port: int | None = None) -> LocalServer:
        """The local server: ``port`` or ``$TRIALRECON_PREFECT_PORT`` or 4200, state in
        ``$TRIALRECON_PREFECT_HOME`` or the repo's ``.prefect/``.

        Raises:
            InputError: the port is not a number from 1 to 65535.
        """
        if port is None:
            text = environ.get(PORT_ENV, "").strip()
            try:
                port = int(text) if text else DEFAULT_PORT
            except ValueError:
                raise InputError(f"{PORT_ENV}={text!r} is not a port number") from None
        if not 0 < port < 65536:
            raise InputError(f"port {port} is not a port number (1-65535)")
        home = environ.get(HOME_ENV, "").strip()
        return cls(port=port, home=Path(home).resolve() if home else DEFAULT_HOME)


def free_port(host: str = LOCAL_HOST) -> int:
    """A loopback port nothing listens on now (the OS picks it)."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no obstacle
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect server answers at ``api_url`` (its ``/health`` route says true)."""
    import httpx

    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
        return response.status_code == 200 and response.json() is True
    except (httpx.HTTPError, ValueError):
        return False


OFFLINE_ENVIRONMENT = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
"""Offline by design: a Prefect server we start, in a process or in ours, sends no telemetry."""


def server_environment(server: LocalServer, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The server process's environment: its home and SQLite database under ``server.home``."""
    env = {k: v for k, v in environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(server.home),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{server.database}",
        "PREFECT_API_URL": server.api_url,
        **OFFLINE_ENVIRONMENT,
    })
    # Settings that tune the server's own services (e.g. a faster scheduler loop) pass through.
    env.update({k: v for k, v in environ.items() if k.startswith("PREFECT_SERVER_SERVICES_")})
    return env


@dataclass
class StartedServer:
    """A local server this process started; :meth:`stop` ends its whole process group."""

    server: LocalServer
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the server's process group, SIGKILL if it has not ended after ``timeout``."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass  # already gone
            try:
                self.process.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        _reap_group(self.process.pid)


def _reap_group(pgid: int) -> None:
    """Kill whatever is left in the group (a child the server started and did not stop)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start_server(server: LocalServer, timeout: float = START_TIMEOUT) -> StartedServer:
    """Start ``prefect server start`` for ``server`` and wait until it answers.

    The server runs in a session (process group) of its own, so a Ctrl-C meant for us does not
    reach it half-way and :meth:`StartedServer.stop` can end it with everything it started. Its
    output goes to ``server.log``.

    Raises:
        ServerError: the port is taken, the server ended before answering, or it did not answer
            within ``timeout`` seconds (then it is stopped).
    """
    if not _port_is_free(server.host, server.port):
        raise ServerError(server.url, f"port {server.port} is taken by something that is not a Prefect server "
                                      f"(choose another with --port or {PORT_ENV})")
    server.home.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", server.host, "--port", str(server.port)]
    with server.log.open("ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   env=server_environment(server), start_new_session=True)
    started = StartedServer(server, process)
    try:
        deadline = time.monotonic() + timeout
        while not is_healthy(server.api_url, timeout=1.0):
            if process.poll() is not None:
                raise ServerError(server.url, f"the Prefect server ended (exit {process.returncode}) before answering: "
                                              f"{_last_line(server.log)} (log: {server.log})")
            if time.monotonic() > deadline:
                raise ServerError(server.url, f"the Prefect server did not answer within {timeout:g} s "
                                              f"(log: {server.log})")
            time.sleep(0.25)
    except BaseException:  # a timeout, a Ctrl-C or a SIGTERM while waiting: leave nothing behind
        started.stop()
        raise
    return started


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


@dataclass(frozen=True)
class ServerChoice:
    """The Prefect API a command talks to, and how it was chosen."""

    api_url: str | None  # None: Prefect's temporary server
    origin: str  # "configured" (PREFECT_API_URL), "local" (already running), "started", "temporary"

    def describe(self) -> str:
        """One line for the operator."""
        return {
            "configured": f"Prefect server: {self.api_url} (from {API_URL_ENV})",
            "local": f"Prefect server: {self.api_url} (the local server, already running)",
            "started": f"Prefect server: {self.api_url} (a local server started for this command)",
            "temporary": "no Prefect server is running: this run uses a temporary one, and its history is not kept "
                         "(start one with `python -m pipeline serve`, or set PREFECT_API_URL)",
        }[self.origin]

    @property
    def heartbeats(self) -> bool:
        """Whether its flow runs send heartbeats: not to a temporary server, which stops with the run
        (no automation can ever act on them there; see :func:`without_flow_heartbeats`)."""
        return self.origin != "temporary"


@contextmanager
def without_flow_heartbeats() -> Iterator[None]:
    """Flow runs started in the block send no heartbeats.

    Prefect (3.9) sends a flow run's heartbeats from a thread that sleeps a second at a time and
    is joined when the run ends: every flow run then ends on the next whole second (a flow doing
    0.2 s of work took 1.1 s, one doing 1.1 s took 2.1 s), half a second a run on average.
    Heartbeats let a server's automations tell a crashed run; a server that lives only as long
    as the run has none. Imports Prefect's settings (about a second).
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


TEMPORARY_SERVER_LOG_LEVEL = {"PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL"}
"""The log level of a temporary server's own loggers (``prefect.server``). When a short run stops
it, its event services are cancelled while flushing the events of a server that is being
thrown away, and each prints an asyncio ``CancelledError`` traceback on the run's stderr
(Prefect's own shutdown noise: the run's state and exit status are not affected). The run's
own logs (flow and task runs) are not the server's, and keep their level."""


def quiet_temporary_server_shutdown(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set :data:`TEMPORARY_SERVER_LOG_LEVEL` for the temporary server about to start (its own
    process, which inherits ``environ``), unless the operator chose a level."""
    for name, value in TEMPORARY_SERVER_LOG_LEVEL.items():
        environ.setdefault(name, value)


@contextmanager
def stderr_to(log: Path) -> Iterator[None]:
    """This process's standard error (file descriptor 2, so also that of the processes it starts
    inside the block) appended to ``log``; restored when the block ends."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with log.open("ab") as out:
            os.dup2(out.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def start_temporary_server(log: Path) -> None:
    """Start the temporary Prefect server this process's flow runs will use (the one Prefect
    would start on first use, and stops when the process exits), its process's standard error
    going to ``log``.

    Prefect starts it with our standard error. As it is stopped, its interpreter may still print
    a traceback (SQLAlchemy's pool finalizing a connection) that no log level silences, and that
    would land after the run's summary as if the run had failed.

    Raises:
        ServerError: it did not start (what it printed is in ``log``).
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:  # Prefect's settings name an API after all: it starts no server
        return
    try:
        with stderr_to(log):
            SubprocessASGIServer().start()
    except RuntimeError as exc:  # Prefect's: it timed out, or the process exited
        raise ServerError("the temporary Prefect server", f"{exc} (its output: {log})") from exc


def choose_for_run(configured: str | None, local: LocalServer) -> ServerChoice:
    """The server a one-off ``run`` reports to: the configured one, else the local one if it
    answers, else a temporary one (Prefect starts it; its history is lost with it)."""
    if configured:
        return ServerChoice(configured, "configured")
    if is_healthy(local.api_url, timeout=1.0):
        return ServerChoice(local.api_url, "local")
    return ServerChoice(None, "temporary")


@contextmanager
def serving_server(configured: str | None, local: LocalServer) -> Iterator[ServerChoice]:
    """The server ``serve`` schedules on, for as long as the block runs.

    The configured one (it must answer; nothing is started), else the local one: reused when it
    answers, started otherwise and then stopped, with its whole process group, when the block
    ends however it ends.

    Raises:
        ServerError: the configured server does not answer, or the local one cannot be started.
    """
    if configured:
        if not is_healthy(configured, timeout=5.0):
            raise ServerError(configured, f"the Prefect server in {API_URL_ENV} does not answer")
        yield ServerChoice(configured, "configured")
        return
    if is_healthy(local.api_url, timeout=2.0):
        yield ServerChoice(local.api_url, "local")
        return
    started = start_server(local)
    try:
        yield ServerChoice(local.api_url, "started")
    finally:
        started.stop()


@contextmanager
def using_api(api_url: str | None) -> Iterator[None]:
    """Point Prefect (this process and the flow-run processes it starts) at ``api_url``.

    Nothing changes when ``api_url`` is None. Imports Prefect's settings (about a second).
    """
    if api_url is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    previous = os.environ.get(API_URL_ENV)
    os.environ[API_URL_ENV] = api_url
    try:
        with temporary_settings({PREFECT_API_URL: api_url}):
            try:
                yield
            finally:
                _drain_to_api()
    finally:
        if previous is None:
            os.environ.pop(API_URL_ENV, None)
        else:
            os.environ[API_URL_ENV] = previous


def _drain_to_api(timeout: float = 5.0) -> None:
    """Send the logs and events Prefect still holds while the server is there to take them
    (a server we started is stopped next; at exit they would only fail to arrive)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout)


def configured_api_url() -> str | None:
    """The API URL Prefect's settings give (``PREFECT_API_URL`` or the active profile), if any."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def describe_serving(environ: Mapping[str, str] = os.environ) -> str:
    """Which server ``serve`` will use, given the environment (for ``serve --help``)."""
    configured = environ.get(API_URL_ENV, "").strip()
    if configured:
        return (f"{API_URL_ENV} is set ({configured}): serve schedules on that server and starts none.")
    try:
        local = LocalServer.from_environ(environ)
    except InputError as exc:
        return f"{API_URL_ENV} is not set, and the local server cannot be placed: {exc}"
    return (f"{API_URL_ENV} is not set: serve uses the local Prefect server at {local.url} (UI and API), "
            f"reusing it if it is running, else starting `prefect server start` there with its state in "
            f"{_shown(local.home)}/ (database prefect.db, log server.log) and stopping it again on Ctrl-C or "
            f"SIGTERM. Set {PORT_ENV} or --port for another port, {HOME_ENV} for another folder, "
            f"{API_URL_ENV} for another server.")


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
