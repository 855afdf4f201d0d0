"""Live requests to the registries: polite, bounded, retried, conditional.

:class:`RegistryClient` wraps an injected ``httpx.AsyncClient`` (tests give it a mock transport;
:func:`make_http_client` builds the real one) and adds what a good citizen of a public registry
needs:

* an allowlist of hosts, taken from the configured base URLs: a URL found in a document can never
  make us contact another host. It is refused before anything is sent, and redirects are followed
  by hand (at most ``max_redirects``) only while they stay on the allowlist;
* a cap on concurrent requests (``asyncio.Semaphore``) and a rate limit per host
  (``aiolimiter.AsyncLimiter``), applied to every attempt, retries and redirects included;
* retries with exponential backoff and jitter (tenacity) on timeouts, connection errors, 429 and
  5xx, honouring ``Retry-After`` (seconds or HTTP-date, capped), and never on any other 4xx;
* a cap on the response size: the body is streamed and reading stops past the cap;
* conditional requests (``If-None-Match`` / ``If-Modified-Since``).

Why no HTTP cache library (hishel): our cache *is* the snapshot store. Its manifest already keeps
the ETag and Last-Modified of every captured response, next to bytes we must keep anyway (with
their sha256) for the pipeline to run offline. A second cache would hold a second copy of the
same bytes under its own freshness rules, and could answer from itself when a refresh is meant
to ask the registry. So the caller passes the validators from the manifest and handles 304.

httpx errors are translated here, once, into :class:`~pipeline.errors.FetchError` (permanent) and
:class:`~pipeline.errors.TransientFetchError` (worth retrying); nothing above this module sees
an httpx exception.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from pipeline import __version__
from pipeline.constants import API_BASE_URLS, record_api_url
from pipeline.errors import FetchError, TransientFetchError, UnsafePathError
from pipeline.ids import canonical_trial_id, registry_of
from pipeline.store.snapshots import without_userinfo

__all__ = [
    "FetchResult",
    "FetchSettings",
    "RegistryClient",
    "make_http_client",
    "parse_retry_after",
    "validate_trial_id",
]

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}


class FetchSettings(BaseModel):
    """Where the registries live and how politely we ask them.

    The hosts of the four base URLs are the only hosts the client will ever contact.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ctgov_base_url: str = API_BASE_URLS["ctgov"]
    ctis_base_url: str = API_BASE_URLS["ctis"]
    euctr_base_url: str = API_BASE_URLS["euctr"]
    cteu_base_url: str = API_BASE_URLS["cteu"]
    contact: str = Field(
        default="mailto:trialrecon@example.invalid",
        description="Who to tell when we misbehave; goes into the User-Agent. Set it for real runs.",
    )
    max_concurrency: int = Field(default=4, ge=1, description="Requests in flight at once, all hosts.")
    requests_per_second: float = Field(default=1.0, gt=0, description="Per host, every attempt counted.")
    max_attempts: int = Field(default=4, ge=1, description="Attempts per request, the first included.")
    backoff_initial: float = Field(default=1.0, ge=0, description="Seconds before the second attempt.")
    backoff_max: float = Field(default=30.0, ge=0, description="Ceiling of one exponential wait.")
    backoff_jitter: float = Field(default=1.0, ge=0, description="Up to this many seconds added at random.")
    retry_after_cap: float = Field(default=120.0, ge=0, description="Longest Retry-After we agree to wait.")
    max_response_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_redirects: int = Field(default=5, ge=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0, description="Longest silence between two reads.")
    attempt_deadline: float = Field(
        default=120.0, gt=0, description="Longest one attempt may take, so a slow-drip body cannot hang us."
    )

    @property
    def base_urls(self) -> dict[str, str]:
        """Base URL per registry (ctgov, ctis, euctr, cteu), without a trailing slash."""
        return {
            "ctgov": self.ctgov_base_url.rstrip("/"),
            "ctis": self.ctis_base_url.rstrip("/"),
            "euctr": self.euctr_base_url.rstrip("/"),
            "cteu": self.cteu_base_url.rstrip("/"),
        }

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """The hosts of the base URLs: the only ones we may contact."""
        return frozenset(_host_of(url) for url in self.base_urls.values())

    @property
    def allowed_origins(self) -> frozenset[tuple[str, str, int]]:
        """(scheme, host, port) of the base URLs: a request or redirect must match one of them."""
        return frozenset(_origin(url) for url in self.base_urls.values())

    @property
    def user_agent(self) -> str:
        """``trialrecon/<version> (+<contact>)``."""
        return f"trialrecon/{__version__} (+{self.contact})"


@dataclass(frozen=True)
class FetchResult:
    """One registry response, read in full (or a 304 with no body).

    ``url`` is where the bytes came from, after redirects; header names are lower case.
    """

    status: int
    content: bytes
    headers: Mapping[str, str]
    url: str
    not_modified: bool = False
    redirects: list[str] = field(default_factory=list)

    @property
    def etag(self) -> str | None:
        """The ETag validator, if the registry sent one."""
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        """The Last-Modified validator, if the registry sent one."""
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str | None:
        """The Content-Type header, if any."""
        return self.headers.get("content-type")


def make_http_client(
    settings: FetchSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The real HTTP client: timeouts, our User-Agent, and no automatic redirects.

    Args:
        settings: timeouts and the contact for the User-Agent.
        transport: a transport to use instead of the network (tests, loopback).
    """
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.attempt_deadline,
    )
    return httpx.AsyncClient(
        timeout=timeout,
        headers={"User-Agent": settings.user_agent},
        # Redirects are followed by RegistryClient, which checks each hop against the allowlist.
        follow_redirects=False,
        transport=transport,
    )


def validate_trial_id(registry: str, trial_id: str) -> str:
    """Return ``trial_id`` if it is a well-formed id of ``registry``, before it goes into a URL.

    Raises:
        UnsafePathError: the id does not have the registry's shape (NCT########,
            YYYY-NNNNNN-NN-NN for CTIS, YYYY-NNNNNN-NN for EU CTR), or the registry is unknown.
    """
    # Exactly as the registry writes it: no look-alike digits, no surrounding spaces, the prefix
    # in capitals (see pipeline.ids).
    if not isinstance(trial_id, str) or registry_of(trial_id) != registry or canonical_trial_id(trial_id) != trial_id:
        raise UnsafePathError(trial_id)
    return trial_id


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    Returns ``None`` for a missing or unreadable header, and 0 for a date already past.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, the port filled in from the scheme when the URL gives none.

    Raises:
        ValueError: the port is not a number from 0 to 65535.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def _looks_like_html(result: FetchResult) -> bool:
    content_type = (result.content_type or "").lower()
    head = result.content[:512].lstrip().lower()
    return "html" in content_type or head.startswith((b"<!doctype html", b"<html", b"<"))


class RegistryClient:
    """Polite, retried, size-capped requests to the allowed registry hosts.

    Example::

        async with make_http_client(settings) as http:
            client = RegistryClient(http, settings)
            result = await client.fetch_ctgov_study("NCT03645928", etag=entry.etag)

    Args:
        http: the HTTP client to send with (its transport decides whether the network is used).
        settings: base URLs, limits, retry policy.
        sleep: how to wait between attempts (tests pass a recorder that returns at once).
        clock: the current time, for ``Retry-After`` dates.
        rng: source of the backoff jitter.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: FetchSettings | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.http = http
        self.settings = settings or FetchSettings()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._allowed = self.settings.allowed_hosts
        self._allowed_origins = self.settings.allowed_origins
        self._semaphore = asyncio.Semaphore(self.settings.max_concurrency)
        self._limiters: dict[str, AsyncLimiter] = {}

    # -- generic ----------------------------------------------------------------------------

    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET ``url`` with retries; a 304 comes back as ``not_modified``.

        Args:
            url: an absolute URL on an allowed host.
            etag: sent as ``If-None-Match``.
            last_modified: sent as ``If-Modified-Since``.

        Raises:
            FetchError: the host is not allowed, a redirect leaves the allowlist or loops, the
                registry answered a 4xx other than 429, or the body is larger than the cap.
            TransientFetchError: timeouts, connection errors, 429 or 5xx on every attempt.
        """
        request_url = without_userinfo(url)
        self._check_allowed(request_url, request_url)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=self._wait_before_retry,
            retry=retry_if_exception_type(TransientFetchError),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._follow(request_url, headers)
        except TransientFetchError as exc:
            if self.settings.max_attempts == 1:
                raise
            raise TransientFetchError(
                exc.url, f"{exc.problem} (gave up after {self.settings.max_attempts} attempts)",
                status=exc.status, retry_after=exc.retry_after,
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    # -- registries -------------------------------------------------------------------------

    def ctgov_study_url(self, nct_id: str) -> str:
        """URL of one study in the ClinicalTrials.gov API v2."""
        return record_api_url("ctgov", validate_trial_id("ctgov", nct_id), self.settings.base_urls["ctgov"])

    def ctis_url(self, ct_number: str) -> str:
        """URL of one trial in the CTIS public API ("retrieve")."""
        return record_api_url("ctis", validate_trial_id("ctis", ct_number), self.settings.base_urls["ctis"])

    def euctr_url(self, eudract: str) -> str:
        """URL of the EU CTR full-text download of one trial (all member-state records)."""
        return record_api_url("euctr", validate_trial_id("euctr", eudract), self.settings.base_urls["euctr"])

    async def fetch_ctgov_study(self, nct_id: str, *, etag: str | None = None,
                                last_modified: str | None = None) -> FetchResult:
        """One ClinicalTrials.gov study as JSON (``/studies/{nctId}``).

        Raises:
            UnsafePathError: ``nct_id`` is not NCT followed by 8 digits.
            FetchError: as :meth:`fetch`, or the body is not a JSON object.
        """
        result = await self.fetch(self.ctgov_study_url(nct_id), etag=etag, last_modified=last_modified)
        if not result.not_modified:
            self._json_object(result)
        return result

    async def fetch_ctis(self, ct_number: str, *, etag: str | None = None,
                         last_modified: str | None = None) -> FetchResult:
        """One CTIS trial as JSON (``/retrieve/{ctNumber}``).

        CTIS answers an unknown number with 200 and ``{}``, and sometimes with its HTML portal:
        both become a :class:`FetchError`.

        Raises:
            UnsafePathError: ``ct_number`` is not an EU CT number.
            FetchError: as :meth:`fetch`; "CTIS has no record ..." for ``{}``; "expected JSON,
                got HTML" for an HTML body.
        """
        result = await self.fetch(self.ctis_url(ct_number), etag=etag, last_modified=last_modified)
        if not result.not_modified and not self._json_object(result):
            raise FetchError(result.url, f"CTIS has no record of {ct_number} (empty JSON object)",
                             status=result.status)
        return result

    async def fetch_euctr(self, eudract: str, *, etag: str | None = None,
                          last_modified: str | None = None) -> FetchResult:
        """The EU CTR full-text download of one trial (plain text).

        Raises:
            UnsafePathError: ``eudract`` is not an EudraCT number.
            FetchError: as :meth:`fetch`, or the text does not mention the trial (no record).
        """
        result = await self.fetch(self.euctr_url(eudract), etag=etag, last_modified=last_modified)
        if not result.not_modified and f"EudraCT Number: {eudract}".encode() not in result.content:
            problem = ("expected text, got HTML" if _looks_like_html(result)
                       else f"EU CTR has no record of {eudract}")
            raise FetchError(result.url, problem, status=result.status)
        return result

    # -- one attempt ------------------------------------------------------------------------

    async def _follow(self, url: str, headers: dict[str, str]) -> FetchResult:
        hops: list[str] = []
        current = url
        while True:
            status, response_headers, content = await self._send(current, headers)
            if status in _REDIRECT_STATUSES:
                location = response_headers.get("location")
                if not location:
                    raise FetchError(current, f"redirect {status} without a Location", status=status)
                # Credentials in a Location are neither sent on (httpx would turn them into an
                # Authorization header) nor kept in the URL that ends up in the manifest.
                target = without_userinfo(str(httpx.URL(current).join(location)))
                if len(hops) >= self.settings.max_redirects:
                    raise FetchError(url, f"more than {self.settings.max_redirects} redirects", status=status)
                self._check_allowed(target, url, redirected_from=current)
                hops.append(current)
                current = target
                continue
            return self._result(current, status, response_headers, content, hops)

    def _result(self, url: str, status: int, headers: dict[str, str], content: bytes,
                hops: list[str]) -> FetchResult:
        if status == 304:
            return FetchResult(status, b"", headers, url, not_modified=True, redirects=hops)
        if 200 <= status < 300:
            return FetchResult(status, content, headers, url, redirects=hops)
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(headers.get("retry-after"), self._clock())
            raise TransientFetchError(url, f"HTTP {status}", status=status, retry_after=retry_after)
        raise FetchError(url, f"HTTP {status}", status=status)

    async def _send(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Send one GET under the politeness limits, and read it within the deadline."""
        async with self._semaphore, self._limiter(_host_of(url)):
            # The deadline starts once we may send, so waiting our turn never counts as slowness.
            try:
                async with asyncio.timeout(self.settings.attempt_deadline):
                    return await self._exchange(url, headers)
            except TimeoutError as exc:
                raise TransientFetchError(
                    url, f"took longer than {self.settings.attempt_deadline:g} s") from exc

    async def _exchange(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One GET, its body read up to the size cap; httpx errors become ours here."""
        cap = self.settings.max_response_bytes
        try:
            request = self.http.build_request("GET", url, headers=headers)
            response = await self.http.send(request, stream=True, follow_redirects=False)
            try:
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                declared = response_headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise FetchError(url, f"response larger than {cap} bytes", status=response.status_code)
                body = bytearray()
                # aiter_bytes yields decoded bytes, so the cap also bounds a compressed bomb.
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > cap:
                        raise FetchError(url, f"response larger than {cap} bytes", status=response.status_code)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise TransientFetchError(url, f"timed out ({type(exc).__name__})") from exc
        except httpx.UnsupportedProtocol as exc:
            raise FetchError(url, f"unsupported protocol: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientFetchError(url, f"connection failed ({type(exc).__name__}: {exc})") from exc
        except httpx.HTTPError as exc:
            raise FetchError(url, f"request failed ({type(exc).__name__}: {exc})") from exc
        return response.status_code, response_headers, bytes(body)

    # -- policies ---------------------------------------------------------------------------

    def _check_allowed(self, url: str, original: str, *, redirected_from: str | None = None) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https"):
            raise FetchError(original, f"scheme {parts.scheme!r} of {url} is not allowed")
        if host not in self._allowed:
            where = f"redirect to {host}" if redirected_from else f"host {host!r}"
            raise FetchError(original, f"{where} is not an allowed registry host")
        if redirected_from and urlsplit(redirected_from).scheme == "https" and parts.scheme != "https":
            raise FetchError(original, f"redirect from https to {url} is not allowed")
        try:
            scheme, _, port = _origin(url)
        except ValueError as exc:
            raise FetchError(original, f"port of {url} is not valid") from exc
        if (scheme, host, port) not in self._allowed_origins:
            where = "redirect to" if redirected_from else "URL"
            raise FetchError(original, f"{where} {scheme}://{host}:{port} is not an allowed registry origin "
                                       "(scheme, host and port)")

    def _limiter(self, host: str) -> AsyncLimiter:
        limiter = self._limiters.get(host)
        if limiter is None:
            # A bucket of one: requests are spaced evenly, never sent in a burst.
            limiter = AsyncLimiter(1, 1.0 / self.settings.requests_per_second)
            self._limiters[host] = limiter
        return limiter

    def _wait_before_retry(self, state: RetryCallState) -> float:
        """Retry-After when the registry gave one (capped), else exponential backoff + jitter."""
        settings = self.settings
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientFetchError) and exc.retry_after is not None:
            return min(exc.retry_after, settings.retry_after_cap)
        exponential = settings.backoff_initial * 2 ** (state.attempt_number - 1)
        return min(exponential, settings.backoff_max) + self._rng.uniform(0, settings.backoff_jitter)

    # -- bodies -----------------------------------------------------------------------------

    @staticmethod
    def _json_object(result: FetchResult) -> dict[str, Any]:
        try:
            data = orjson.loads(result.content)
        except orjson.JSONDecodeError as exc:
            problem = "expected JSON, got HTML" if _looks_like_html(result) else "expected JSON, body is not JSON"
            raise FetchError(result.url, problem, status=result.status) from exc
        if not isinstance(data, dict):
            raise FetchError(result.url, f"expected a JSON object, got {type(data).__name__}",
                             status=result.status)
        return data
