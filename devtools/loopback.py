"""A real HTTP server on 127.0.0.1 for tests and the bench: files from memory, conditional requests, faults.

The server listens on a free port in a background thread (``http.server.ThreadingHTTPServer``),
serves ``path -> bytes`` with an ETag and a Last-Modified, answers ``If-None-Match`` and
``If-Modified-Since`` with 304, and plays a per-path *script* of faults before serving normally::

    def test_something(loopback):
        loopback.add("/api/v2/studies/NCT00000001", b'{"a": 1}')
        loopback.script("/api/v2/studies/NCT00000001", *times(2, Status(500)), TooManyRequests("1"))
        ...  # requests 1-2 get 500, request 3 gets 429, request 4 onwards get the file
        assert loopback.statuses("/api/v2/studies/NCT00000001") == [500, 500, 429, 200]
        # a Delay's status is filled in only once it has answered; steps() is known on arrival

Each script step answers one request. :class:`Delay` and :class:`Drip` then serve the file;
the others answer on their own.

It lives in ``devtools/``, not with the tests, because ``python -m pipeline bench`` serves its
fetch corpus with it; ``tests/loopback.py`` re-exports it with the pytest fixture.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


DEFAULT_LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"


# -- script steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """Answer with this status (and headers, body) instead of the file."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def TooManyRequests(retry_after: str) -> Status:  # noqa: N802 - reads as a step, like the classes
    """A 429 with ``Retry-After`` (seconds or an HTTP-date)."""
    return Status(429, {"Retry-After": retry_after})


@dataclass(frozen=True)
class Delay:
    """Wait this long before answering (normally)."""

    seconds: float


@dataclass(frozen=True)
class Reset:
    """Drop the connection with a TCP reset, answering nothing."""


@dataclass(frozen=True)
class Drip:
    """Serve the file ``chunk`` bytes at a time, ``interval`` seconds apart."""

    chunk: int
    interval: float


@dataclass(frozen=True)
class Oversize:
    """Answer 200 with ``size`` bytes of filler; without ``declare_length`` the body is chunked."""

    size: int
    declare_length: bool = True


@dataclass(frozen=True)
class Redirect:
    """Answer ``status`` with a Location header."""

    location: str
    status: int = 302


Step = Status | Delay | Reset | Drip | Oversize | Redirect


def times(n: int, step: Step) -> list[Step]:
    """The same step ``n`` times: ``*times(3, Status(500))``."""
    return [step] * n


# -- the server -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """A file the server holds."""

    body: bytes
    content_type: str
    etag: str
    last_modified: str


@dataclass
class Hit:
    """One request, recorded as it arrives: the script step it met, and later the status answered.

    ``status`` stays None while the answer is pending (a :class:`Delay`) and when the connection
    was dropped (:class:`Reset`).
    """

    method: str
    path: str
    headers: dict[str, str]
    step: Step | None
    status: int | None = None


class LoopbackServer:
    """An HTTP/1.1 server on 127.0.0.1 with in-memory files and scripted faults.

    Use as a context manager or through the :func:`loopback` fixture.
    """

    def __init__(self) -> None:
        self._resources: dict[str, Resource] = {}
        self._scripts: dict[str, deque[Step]] = defaultdict(deque)
        self._hits: list[Hit] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="loopback-http", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, no trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    # -- content ------------------------------------------------------------------------------

    def add(self, path: str, body: bytes, *, content_type: str = "application/json",
            etag: str | None = None, last_modified: str = DEFAULT_LAST_MODIFIED) -> Resource:
        """Serve ``body`` at ``path`` (which may include a query string, matched exactly first)."""
        resource = Resource(body, content_type, etag or f'"{hashlib.sha256(body).hexdigest()[:20]}"', last_modified)
        with self._lock:
            self._resources[path] = resource
        return resource

    def script(self, path: str, *steps: Step) -> None:
        """Queue fault steps for ``path``: each answers one request, in order."""
        with self._lock:
            self._scripts[path].extend(steps)

    # -- what happened ------------------------------------------------------------------------

    @property
    def hits(self) -> list[Hit]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._hits)

    def hits_for(self, path: str) -> list[Hit]:
        """Requests received for ``path`` (query string ignored)."""
        return [h for h in self.hits if urlsplit(h.path).path == path]

    def statuses(self, path: str) -> list[int | None]:
        """The status answered to each request for ``path``, in order of arrival."""
        return [h.status for h in self.hits_for(path)]

    def steps(self, path: str) -> list[Step | None]:
        """The script step each request for ``path`` met (None: served normally), in order."""
        return [h.step for h in self.hits_for(path)]

    # -- used by the handler ------------------------------------------------------------------

    def _arrive(self, method: str, raw_path: str, headers: dict[str, str]) -> Hit:
        """Record a request with the script step it meets. Taking the step and recording the hit
        under one lock keeps the recorded order the order the steps were met, even when a slow
        handler thread is overtaken by the client's retry."""
        with self._lock:
            step = None
            for key in (raw_path, urlsplit(raw_path).path):
                if self._scripts.get(key):
                    step = self._scripts[key].popleft()
                    break
            hit = Hit(method, raw_path, headers, step)
            self._hits.append(hit)
            return hit

    def _resource(self, raw_path: str) -> Resource | None:
        with self._lock:
            return self._resources.get(raw_path) or self._resources.get(urlsplit(raw_path).path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out hang up on us mid-answer; that is the point of several tests.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, the body then waits for
    # the client's delayed ACK of the headers (40 ms on Linux), which would count as latency.
    disable_nagle_algorithm = True
    server: _Server
    _hit: Hit | None = None  # the request being answered, until its status line goes out

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        owner = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        self._hit = owner._arrive("GET", self.path, headers)
        self._answer(owner, self._hit.step, headers)

    def send_response(self, code: int, message: str | None = None) -> None:
        # Known as the status line goes out: a client may read the whole answer, and a test then
        # look at the status, before this thread gets to run again.
        if self._hit is not None:  # None for an error answered before do_GET (send_error)
            self._hit.status, self._hit = code, None
        super().send_response(code, message)

    def _answer(self, owner: LoopbackServer, step: Step | None, headers: dict[str, str]) -> int | None:
        if isinstance(step, Reset):
            # SO_LINGER 0 makes close() send RST instead of a polite FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return None
        if isinstance(step, Delay):
            time.sleep(step.seconds)
        if isinstance(step, Status):
            return self._send(step.code, step.body, step.headers)
        if isinstance(step, Redirect):
            return self._send(step.status, b"", {"Location": step.location})
        if isinstance(step, Oversize):
            return self._send_oversize(step)

        resource = owner._resource(self.path)
        if resource is None:
            return self._send(404, b"not found", {"Content-Type": "text/plain"})
        validators = {"ETag": resource.etag, "Last-Modified": resource.last_modified}
        if _not_modified(resource, headers):
            return self._send(304, b"", validators)
        if isinstance(step, Drip):
            return self._send_drip(resource, validators, step)
        return self._send(200, resource.body, {"Content-Type": resource.content_type, **validators})

    def _send(self, code: int, body: bytes, headers: dict[str, str]) -> int:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        if code != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and code != 304:
            self.wfile.write(body)
        return code

    def _send_drip(self, resource: Resource, validators: dict[str, str], step: Drip) -> int:
        self.send_response(200)
        self.send_header("Content-Type", resource.content_type)
        self.send_header("Content-Length", str(len(resource.body)))
        for name, value in validators.items():
            self.send_header(name, value)
        self.end_headers()
        for start in range(0, len(resource.body), step.chunk):
            self.wfile.write(resource.body[start:start + step.chunk])
            self.wfile.flush()
            time.sleep(step.interval)
        return 200

    def _send_oversize(self, step: Oversize) -> int:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        block = b"x" * 65536
        if step.declare_length:
            self.send_header("Content-Length", str(step.size))
            self.end_headers()
            remaining = step.size
            while remaining > 0:
                self.wfile.write(block[:remaining])
                remaining -= len(block)
            return 200
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        remaining = step.size
        while remaining > 0:
            piece = block[:remaining]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            remaining -= len(piece)
        self.wfile.write(b"0\r\n\r\n")
        return 200


def _not_modified(resource: Resource, headers: dict[str, str]) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if "if-none-match" in headers:
        tags = {t.strip() for t in headers["if-none-match"].split(",")}
        return "*" in tags or resource.etag in tags
    if "if-modified-since" in headers:
        try:
            since = parsedate_to_datetime(headers["if-modified-since"])
        except (TypeError, ValueError):
            return False
        return parsedate_to_datetime(resource.last_modified) <= since
    return False


def fetch_settings(server: LoopbackServer, **overrides: Any) -> Any:
    """FetchSettings whose registries all live on ``server``, quick to retry and unthrottled.

    Overrides are FetchSettings fields (e.g. ``max_attempts=2``).
    """
    from pipeline.fetch.client import FetchSettings

    quick: dict[str, Any] = {
        "ctgov_base_url": f"{server.url}/api/v2",
        "ctis_base_url": f"{server.url}/ctis-public-api",
        "euctr_base_url": server.url,
        "cteu_base_url": server.url,
        "requests_per_second": 1000.0,
        "max_concurrency": 8,
        "backoff_initial": 0.001,
        "backoff_max": 0.01,
        "backoff_jitter": 0.0,
        "retry_after_cap": 0.05,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "attempt_deadline": 5.0,
    }
    return FetchSettings(**{**quick, **overrides})
