"""RegistryClient: retries, politeness, allowlist, size cap, registry quirks.

respx stands in for the registries (an unmocked request fails the test, so nothing reaches the
internet); the last section uses the loopback server for faults only a real socket can show.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from pipeline import __version__
from pipeline.errors import FetchError, TransientFetchError, UnsafePathError
from pipeline.fetch.client import (
    FetchSettings,
    RegistryClient,
    make_http_client,
    parse_retry_after,
    validate_trial_id,
)

from loopback import Drip, LoopbackServer, Oversize, Redirect, Reset, fetch_settings, loopback  # noqa: F401

T = TypeVar("T")

CTGOV = "https://clinicaltrials.gov/api/v2"
CTIS = "https://euclinicaltrials.eu/ctis-public-api"
EUCTR = "https://www.clinicaltrialsregister.eu"
STUDY_URL = f"{CTGOV}/studies/NCT00000001"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DATE = "Wed, 01 Jan 2025 00:00:00 GMT"

# Quick to run: no real throttling; backoff of 0.5, 1, 2 ... seconds, recorded, never slept.
FAST = FetchSettings(requests_per_second=1000.0, backoff_initial=0.5, backoff_max=4.0, backoff_jitter=0.0)


class HighestJitter:
    """Stands in for random.Random: every jitter draw is the largest allowed."""

    def uniform(self, low: float, high: float) -> float:
        return high


class SleepRecorder:
    """Stands in for asyncio.sleep between attempts: remembers the delay, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def run_with_client(
    use: Callable[[RegistryClient], Awaitable[T]],
    settings: FetchSettings = FAST,
    sleep: SleepRecorder | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    rng: Any = None,
) -> T:
    """Run ``use(client)`` on a fresh RegistryClient (respx, when active, intercepts its requests)."""

    async def main() -> T:
        async with make_http_client(settings, transport=transport) as http:
            client = RegistryClient(http, settings, sleep=sleep or SleepRecorder(), clock=lambda: NOW, rng=rng)
            return await use(client)

    return asyncio.run(main())


def json_response(data: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(data),
                          headers={"Content-Type": "application/json", **headers})


# -- retries --------------------------------------------------------------------------------------


def test_server_error_is_retried_then_success_is_returned(respx_mock):
    route = respx_mock.get(STUDY_URL).mock(side_effect=[httpx.Response(500), json_response({"ok": 1})])
    sleep = SleepRecorder()
    result = run_with_client(lambda c: c.fetch(STUDY_URL), sleep=sleep)
    assert (result.status, result.content, route.call_count) == (200, b'{"ok":1}', 2)
    assert sleep.delays == [0.5]


def test_backoff_doubles_between_attempts(respx_mock):
    respx_mock.get(STUDY_URL).mock(side_effect=[httpx.Response(503)] * 3 + [json_response({})])
    sleep = SleepRecorder()
    run_with_client(lambda c: c.fetch(STUDY_URL), sleep=sleep)
    assert sleep.delays == [0.5, 1.0, 2.0]


def test_backoff_adds_jitter_up_to_the_configured_amount(respx_mock):
    respx_mock.get(STUDY_URL).mock(side_effect=[httpx.Response(502)] * 3 + [json_response({})])
    sleep = SleepRecorder()
    run_with_client(lambda c: c.fetch(STUDY_URL), sleep=sleep, rng=HighestJitter(),
                    settings=FAST.model_copy(update={"backoff_jitter": 0.25}))
    assert sleep.delays == [0.75, 1.25, 2.25]


def test_backoff_never_waits_longer_than_its_ceiling(respx_mock):
    respx_mock.get(STUDY_URL).mock(side_effect=[httpx.Response(500)] * 3 + [json_response({})])
    sleep = SleepRecorder()
    run_with_client(lambda c: c.fetch(STUDY_URL), sleep=sleep,
                    settings=FAST.model_copy(update={"backoff_max": 0.75}))
    assert sleep.delays == [0.5, 0.75, 0.75]


def test_429_waits_the_retry_after_seconds(respx_mock):
    respx_mock.get(STUDY_URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "7"}),
                                                json_response({})])
    sleep = SleepRecorder()
    result = run_with_client(lambda c: c.fetch(STUDY_URL), sleep=sleep)
    assert result.status == 200
    assert sleep.delays == [7.0]


def test_429_waits_until_a_retry_after_http_date(respx_mock):
    respx_mock.get(STUDY_URL).mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "Sun, 01 Mar 2026 12:00:30 GMT"}), json_response({})])
    sleep = SleepRecorder()
    run_with_client(lambda c: c.fetch(STUDY_URL), sleep=sleep)
    assert sleep.delays == [30.0]


def test_retry_after_longer_than_the_cap_is_capped(respx_mock):
    respx_mock.get(STUDY_URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "3600"}),
                                                json_response({})])
    sleep = SleepRecorder()
    run_with_client(lambda c: c.fetch(STUDY_URL), sleep=sleep)
    assert sleep.delays == [120.0]


def test_timeouts_are_retried_then_raise_transient_fetch_error(respx_mock):
    route = respx_mock.get(STUDY_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    sleep = SleepRecorder()
    with pytest.raises(TransientFetchError) as exc:
        run_with_client(lambda c: c.fetch(STUDY_URL), sleep=sleep)
    assert str(exc.value) == f"{STUDY_URL}: timed out (ReadTimeout) (gave up after 4 attempts)"
    assert route.call_count == 4
    assert sleep.delays == [0.5, 1.0, 2.0]


def test_connection_error_is_retried(respx_mock):
    route = respx_mock.get(STUDY_URL).mock(side_effect=[httpx.ConnectError("refused"), json_response({})])
    assert run_with_client(lambda c: c.fetch(STUDY_URL)).status == 200
    assert route.call_count == 2


def test_persistent_server_error_raises_transient_fetch_error_with_its_status(respx_mock):
    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(503))
    with pytest.raises(TransientFetchError) as exc:
        run_with_client(lambda c: c.fetch(STUDY_URL))
    assert (exc.value.status, exc.value.url) == (503, STUDY_URL)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_client_errors_other_than_429_are_not_retried(respx_mock, status):
    route = respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(status))
    sleep = SleepRecorder()
    with pytest.raises(FetchError) as exc:
        run_with_client(lambda c: c.fetch(STUDY_URL), sleep=sleep)
    assert not isinstance(exc.value, TransientFetchError)
    assert (str(exc.value), exc.value.status) == (f"{STUDY_URL}: HTTP {status}", status)
    assert (route.call_count, sleep.delays) == (1, [])


# -- politeness -----------------------------------------------------------------------------------


def test_requests_carry_the_trialrecon_user_agent(respx_mock):
    route = respx_mock.get(STUDY_URL).mock(return_value=json_response({}))
    run_with_client(lambda c: c.fetch(STUDY_URL),
                    settings=FAST.model_copy(update={"contact": "mailto:data@example.org"}))
    assert route.calls.last.request.headers["User-Agent"] == f"trialrecon/{__version__} (+mailto:data@example.org)"


def test_no_more_requests_are_in_flight_than_the_concurrency_cap():
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return json_response({})

    async def fetch_ten(client: RegistryClient) -> None:
        await asyncio.gather(*(client.fetch(f"{CTGOV}/studies/NCT{n:08d}") for n in range(10)))

    run_with_client(fetch_ten, settings=FAST.model_copy(update={"max_concurrency": 2}),
                    transport=httpx.MockTransport(handler))
    assert peak == 2


def test_conditional_request_sends_validators_and_reports_not_modified(respx_mock):
    route = respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(304, headers={"ETag": '"v1"'}))
    result = run_with_client(lambda c: c.fetch(STUDY_URL, etag='"v1"', last_modified=DATE))
    sent = route.calls.last.request.headers
    assert (sent["If-None-Match"], sent["If-Modified-Since"]) == ('"v1"', DATE)
    assert (result.not_modified, result.status, result.content, result.etag) == (True, 304, b"", '"v1"')



def test_unconditional_request_sends_no_validators(respx_mock):
    route = respx_mock.get(STUDY_URL).mock(return_value=json_response({}))
    run_with_client(lambda c: c.fetch(STUDY_URL))
    sent = route.calls.last.request.headers
    assert ("If-None-Match" in sent, "If-Modified-Since" in sent) == (False, False)


# -- allowlist and redirects ----------------------------------------------------------------------


@pytest.mark.respx(assert_all_called=False)
def test_a_host_off_the_allowlist_is_refused_before_sending(respx_mock):
    elsewhere = respx_mock.get("https://evil.example/steal").mock(return_value=httpx.Response(200))
    with pytest.raises(FetchError) as exc:
        run_with_client(lambda c: c.fetch("https://evil.example/steal"))
    assert str(exc.value) == "https://evil.example/steal: host 'evil.example' is not an allowed registry host"
    assert not elsewhere.called


@pytest.mark.respx(assert_all_called=False)
def test_a_non_http_scheme_is_refused_before_sending(respx_mock):
    with pytest.raises(FetchError, match="scheme 'file'"):
        run_with_client(lambda c: c.fetch("file:///etc/passwd"))


def test_allowed_hosts_are_the_hosts_of_the_base_urls():
    assert FetchSettings().allowed_hosts == {
        "clinicaltrials.gov", "euclinicaltrials.eu", "www.clinicaltrialsregister.eu", "clinicaltrials.eu"}


def test_redirect_within_the_allowlist_is_followed(respx_mock):
    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(301, headers={"Location": "/api/v2/studies/moved"}))
    respx_mock.get(f"{CTGOV}/studies/moved").mock(return_value=json_response({"here": True}))
    result = run_with_client(lambda c: c.fetch(STUDY_URL))
    assert (result.url, result.redirects, result.content) == (
        f"{CTGOV}/studies/moved", [STUDY_URL], b'{"here":true}')


def test_redirect_keeps_the_conditional_headers(respx_mock):
    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(307, headers={"Location": f"{CTGOV}/studies/b"}))
    moved = respx_mock.get(f"{CTGOV}/studies/b").mock(return_value=httpx.Response(304))
    assert run_with_client(lambda c: c.fetch(STUDY_URL, etag='"x"')).not_modified is True
    assert moved.calls.last.request.headers["If-None-Match"] == '"x"'


@pytest.mark.respx(assert_all_called=False)
def test_redirect_to_another_host_is_refused_without_following(respx_mock):
    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(302, headers={"Location": "https://evil.example/x"}))
    elsewhere = respx_mock.get("https://evil.example/x").mock(return_value=httpx.Response(200))
    with pytest.raises(FetchError) as exc:
        run_with_client(lambda c: c.fetch(STUDY_URL))
    assert str(exc.value) == f"{STUDY_URL}: redirect to evil.example is not an allowed registry host"
    assert not elsewhere.called


def test_redirect_from_https_to_http_is_refused(respx_mock):
    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(
        302, headers={"Location": "http://clinicaltrials.gov/api/v2/studies/NCT00000001"}))
    with pytest.raises(FetchError, match="redirect from https to http://clinicaltrials.gov"):
        run_with_client(lambda c: c.fetch(STUDY_URL))


@pytest.mark.respx(assert_all_called=False)
def test_redirect_to_another_port_on_an_allowed_host_is_refused_without_following(respx_mock):
    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(
        302, headers={"Location": "https://clinicaltrials.gov:8443/api/v2/studies/NCT00000001"}))
    elsewhere = respx_mock.get("https://clinicaltrials.gov:8443/api/v2/studies/NCT00000001").mock(
        return_value=httpx.Response(200))
    with pytest.raises(FetchError) as exc:
        run_with_client(lambda c: c.fetch(STUDY_URL))
    assert str(exc.value) == (f"{STUDY_URL}: redirect to https://clinicaltrials.gov:8443 is not an allowed "
                              "registry origin (scheme, host and port)")
    assert not elsewhere.called


@pytest.mark.respx(assert_all_called=False)
def test_url_on_another_port_of_an_allowed_host_is_refused_before_sending(respx_mock):
    elsewhere = respx_mock.get("https://clinicaltrials.gov:8443/x").mock(return_value=httpx.Response(200))
    with pytest.raises(FetchError, match="URL https://clinicaltrials.gov:8443 is not an allowed registry origin"):
        run_with_client(lambda c: c.fetch("https://clinicaltrials.gov:8443/x"))
    assert not elsewhere.called


def test_redirect_naming_the_default_port_is_the_same_origin_and_followed(respx_mock):
    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(
        301, headers={"Location": "https://clinicaltrials.gov:443/api/v2/studies/moved"}))
    respx_mock.get(f"{CTGOV}/studies/moved").mock(return_value=json_response({"here": True}))
    assert run_with_client(lambda c: c.fetch(STUDY_URL)).content == b'{"here":true}'


def test_credentials_in_a_redirect_are_neither_sent_nor_kept_in_the_url(respx_mock):
    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(
        302, headers={"Location": "https://scott:tiger@clinicaltrials.gov/api/v2/studies/moved"}))
    moved = respx_mock.get(f"{CTGOV}/studies/moved").mock(return_value=json_response({"here": True}))
    result = run_with_client(lambda c: c.fetch(STUDY_URL))
    assert "authorization" not in moved.calls.last.request.headers
    assert "tiger" not in str(moved.calls.last.request.url)
    assert (result.url, result.redirects) == (f"{CTGOV}/studies/moved", [STUDY_URL])


def test_credentials_in_the_url_asked_for_are_not_sent(respx_mock):
    route = respx_mock.get(STUDY_URL).mock(return_value=json_response({"ok": 1}))
    result = run_with_client(lambda c: c.fetch("https://scott:tiger@clinicaltrials.gov/api/v2/studies/NCT00000001"))
    assert "authorization" not in route.calls.last.request.headers
    assert result.url == STUDY_URL


def test_more_than_five_redirects_is_refused(respx_mock):
    route = respx_mock.get(url__regex=rf"{CTGOV}/studies/hop\d+|{STUDY_URL}").mock(side_effect=[
        httpx.Response(302, headers={"Location": f"{CTGOV}/studies/hop{n}"}) for n in range(7)])
    with pytest.raises(FetchError) as exc:
        run_with_client(lambda c: c.fetch(STUDY_URL))
    assert str(exc.value) == f"{STUDY_URL}: more than 5 redirects"
    assert route.call_count == 6


# -- size cap -------------------------------------------------------------------------------------


def test_a_declared_length_over_the_cap_is_refused_unread(respx_mock):
    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(200, content=b"x" * 2000))
    with pytest.raises(FetchError) as exc:
        run_with_client(lambda c: c.fetch(STUDY_URL), settings=FAST.model_copy(update={"max_response_bytes": 1000}))
    assert str(exc.value) == f"{STUDY_URL}: response larger than 1000 bytes"
    assert not isinstance(exc.value, TransientFetchError)


def test_a_streamed_body_stops_being_read_past_the_cap(respx_mock):
    chunks_sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        for _ in range(1000):
            chunks_sent += 1
            yield b"y" * 100

    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(200, content=endless()))
    with pytest.raises(FetchError, match="response larger than 1000 bytes"):
        run_with_client(lambda c: c.fetch(STUDY_URL), settings=FAST.model_copy(update={"max_response_bytes": 1000}))
    assert chunks_sent == 11


def test_a_body_exactly_at_the_cap_is_accepted(respx_mock):
    respx_mock.get(STUDY_URL).mock(return_value=httpx.Response(200, content=b"z" * 1000))
    result = run_with_client(lambda c: c.fetch(STUDY_URL),
                             settings=FAST.model_copy(update={"max_response_bytes": 1000}))
    assert len(result.content) == 1000


# -- registries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("registry", "trial_id"), [
    ("ctgov", "NCT0000001"), ("ctgov", "NCT000000011"), ("ctgov", "nct00000001"), ("ctgov", "NCT00000001\n"),
    ("ctgov", "../NCT00000001"), ("ctis", "2023-000001-01"), ("ctis", "2023-000001-01-00/../x"),
    ("euctr", "2023-000001-01-00"), ("euctr", "2023-00001-01"), ("cteu", "NCT00000001"),
])
def test_malformed_ids_are_refused(registry, trial_id):
    with pytest.raises(UnsafePathError):
        validate_trial_id(registry, trial_id)


@pytest.mark.respx(assert_all_called=False)
def test_fetching_a_malformed_id_sends_nothing(respx_mock):
    with pytest.raises(UnsafePathError):
        run_with_client(lambda c: c.fetch_ctgov_study("NCT1/../../x"))
    assert respx_mock.calls.call_count == 0


def test_ctgov_study_is_fetched_from_the_studies_endpoint(respx_mock):
    route = respx_mock.get(STUDY_URL).mock(return_value=json_response({"protocolSection": {}}))
    result = run_with_client(lambda c: c.fetch_ctgov_study("NCT00000001"))
    assert (route.call_count, result.content) == (1, b'{"protocolSection":{}}')


def test_ctis_empty_object_means_no_record(respx_mock):
    url = f"{CTIS}/retrieve/2023-000001-01-00"
    respx_mock.get(url).mock(return_value=json_response({}))
    with pytest.raises(FetchError) as exc:
        run_with_client(lambda c: c.fetch_ctis("2023-000001-01-00"))
    assert str(exc.value) == f"{url}: CTIS has no record of 2023-000001-01-00 (empty JSON object)"
    assert exc.value.status == 200


def test_ctis_html_instead_of_json_is_refused(respx_mock):
    url = f"{CTIS}/retrieve/2023-000001-01-00"
    respx_mock.get(url).mock(return_value=httpx.Response(
        200, content=b"<!DOCTYPE html><html><body>Maintenance</body></html>",
        headers={"Content-Type": "text/html"}))
    with pytest.raises(FetchError) as exc:
        run_with_client(lambda c: c.fetch_ctis("2023-000001-01-00"))
    assert str(exc.value) == f"{url}: expected JSON, got HTML"


def test_ctis_not_modified_skips_the_body_checks(respx_mock):
    respx_mock.get(f"{CTIS}/retrieve/2023-000001-01-00").mock(return_value=httpx.Response(304))
    assert run_with_client(lambda c: c.fetch_ctis("2023-000001-01-00", etag='"a"')).not_modified is True


def test_euctr_full_text_is_fetched_by_eudract_number(respx_mock):
    url = f"{EUCTR}/ctr-search/rest/download/full?query=2015-000590-12&mode=current_page"
    route = respx_mock.get(url).mock(return_value=httpx.Response(
        200, content=b"EudraCT Number: 2015-000590-12\n", headers={"Content-Type": "text/plain"}))
    result = run_with_client(lambda c: c.fetch_euctr("2015-000590-12"))
    assert (route.call_count, result.url) == (1, url)


def test_euctr_text_without_the_trial_means_no_record(respx_mock):
    url = f"{EUCTR}/ctr-search/rest/download/full?query=2015-000590-12&mode=current_page"
    respx_mock.get(url).mock(return_value=httpx.Response(200, content=b"\n", headers={"Content-Type": "text/plain"}))
    with pytest.raises(FetchError) as exc:
        run_with_client(lambda c: c.fetch_euctr("2015-000590-12"))
    assert str(exc.value) == f"{url}: EU CTR has no record of 2015-000590-12"


# -- Retry-After parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "seconds"), [
    ("0", 0.0), ("12", 12.0), (" 5 ", 5.0), ("Sun, 01 Mar 2026 12:01:00 GMT", 60.0),
    ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0), ("soon", None), ("-3", None), (None, None),
])
def test_retry_after_is_read_as_seconds_or_http_date(header, seconds):
    assert parse_retry_after(header, NOW) == seconds


# -- over a real socket (loopback) ----------------------------------------------------------------


def loopback_fetch(server: LoopbackServer, path: str, **overrides: Any) -> Any:
    settings = fetch_settings(server, **overrides)
    return run_with_client(lambda c: c.fetch(f"{server.url}{path}"), settings=settings)


def test_loopback_connection_reset_is_retried(loopback):
    loopback.add("/api/v2/studies/NCT00000001", b'{"a":1}')
    loopback.script("/api/v2/studies/NCT00000001", Reset())
    assert loopback_fetch(loopback, "/api/v2/studies/NCT00000001").content == b'{"a":1}'
    assert loopback.statuses("/api/v2/studies/NCT00000001") == [None, 200]


def test_loopback_slow_drip_body_hits_the_attempt_deadline(loopback):
    loopback.add("/slow", b"0123456789")
    loopback.script("/slow", Drip(chunk=1, interval=0.1))
    with pytest.raises(TransientFetchError) as exc:
        loopback_fetch(loopback, "/slow", attempt_deadline=0.3, max_attempts=1)
    assert str(exc.value) == f"{loopback.url}/slow: took longer than 0.3 s"


def test_loopback_chunked_oversize_body_is_cut_off(loopback):
    loopback.script("/big", Oversize(5_000_000, declare_length=False))
    with pytest.raises(FetchError) as exc:
        loopback_fetch(loopback, "/big", max_response_bytes=100_000)
    assert str(exc.value) == f"{loopback.url}/big: response larger than 100000 bytes"


def test_loopback_redirect_to_another_port_of_the_same_host_is_refused_unsent(loopback):
    loopback.script("/here", Redirect(f"http://127.0.0.1:{loopback.port + 1}/there"))
    with pytest.raises(FetchError, match=rf"redirect to http://127.0.0.1:{loopback.port + 1} is not an allowed"):
        loopback_fetch(loopback, "/here")
    assert [h.path for h in loopback.hits] == ["/here"]


def test_loopback_redirect_to_localhost_is_refused_as_another_host(loopback):
    loopback.script("/here", Redirect(f"http://localhost:{loopback.port}/there"))
    with pytest.raises(FetchError, match="redirect to localhost is not an allowed registry host"):
        loopback_fetch(loopback, "/here")
    assert [h.path for h in loopback.hits] == ["/here"]

