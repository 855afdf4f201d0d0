"""refresh(): conditional fetches into the snapshot store, outcomes, stale marks.

The first part answers through httpx.MockTransport; the second serves the real registry samples
from ../shared over the loopback server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pipeline.errors import UnsafePathError
from pipeline.fetch.refresh import FetchTarget, RefreshReport, TargetOutcome, refresh, run_refresh, snapshot_path_of
from pipeline.fetch.client import FetchSettings, RegistryClient, make_http_client
from pipeline.store.snapshots import SnapshotStore, sha256_bytes

from conftest import SHARED
from loopback import Delay, LoopbackServer, Reset, Status, TooManyRequests, fetch_settings, loopback, times  # noqa: F401

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EARLIER = datetime(2026, 1, 1, tzinfo=UTC)
NCT = "NCT00000001"
STUDY_URL = f"https://clinicaltrials.gov/api/v2/studies/{NCT}"
TARGET = FetchTarget(registry="ctgov", trial_id=NCT)
FAST = FetchSettings(requests_per_second=1000.0, backoff_initial=0.0, backoff_max=0.0, backoff_jitter=0.0)


def study(nct: str, title: str) -> bytes:
    """The smallest CT.gov study of ``nct`` the parser reads as that trial's record."""
    return json.dumps({"protocolSection": {"identificationModule": {"nctId": nct, "briefTitle": title}}}).encode()


V1 = study(NCT, "version 1")
V2 = study(NCT, "version 2")
VALIDATORS = {"ETag": '"e2"', "Last-Modified": "Sun, 01 Feb 2026 00:00:00 GMT"}

Handler = Callable[[httpx.Request], httpx.Response]


def answer(status: int, body: bytes = b"", **headers: str) -> Handler:
    """A handler giving the same answer to every request, remembering the requests."""

    def handle(request: httpx.Request) -> httpx.Response:
        handle.requests.append(request)  # type: ignore[attr-defined]
        return httpx.Response(status, content=body, headers={"Content-Type": "application/json", **headers})

    handle.requests = []  # type: ignore[attr-defined]
    return handle


def refresh_with(handler: Handler, store: SnapshotStore, targets: list[FetchTarget] | None = None) -> RefreshReport:
    async def main() -> RefreshReport:
        async with make_http_client(FAST, transport=httpx.MockTransport(handler)) as http:
            client = RegistryClient(http, FAST)
            return await refresh(targets or [TARGET], store=store, client=client, now=NOW)

    return asyncio.run(main())


def captured(store: SnapshotStore, content: bytes = V1, *, stale: bool = False) -> None:
    """A snapshot of TARGET fetched earlier, with validators."""
    store.write("ctgov", NCT, "json", content, registry="ctgov", trial_id=NCT, url=STUDY_URL,
                provenance="captured", http_status=200, etag='"e1"',
                last_modified="Thu, 01 Jan 2026 00:00:00 GMT", fetched_at=EARLIER)
    if stale:
        store.mark_stale(f"ctgov/{NCT}.json")


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "snapshots")


# -- outcomes -------------------------------------------------------------------------------------


def test_first_fetch_is_written_as_captured_and_reported_new(store):
    report = refresh_with(answer(200, V1, **VALIDATORS), store)
    [entry] = store.entries()
    assert report.outcomes == [TargetOutcome(registry="ctgov", trial_id=NCT, path=f"ctgov/{NCT}.json",
                                             outcome="new", http_status=200, sha256=sha256_bytes(V1))]
    assert entry.model_dump(exclude={"sha256"}) == {
        "path": f"ctgov/{NCT}.json", "registry": "ctgov", "trial_id": NCT, "url": STUDY_URL,
        "fetched_at": NOW, "http_status": 200, "etag": '"e2"', "last_modified": "Sun, 01 Feb 2026 00:00:00 GMT",
        "content_type": "application/json", "provenance": "captured", "source_urls": [], "stale": False}
    assert store.read(entry) == V1


def test_conditional_request_carries_the_manifest_validators(store):
    captured(store)
    handler = answer(304)
    refresh_with(handler, store)
    [request] = handler.requests  # type: ignore[attr-defined]
    assert (request.headers["If-None-Match"], request.headers["If-Modified-Since"]) == (
        '"e1"', "Thu, 01 Jan 2026 00:00:00 GMT")


def test_not_modified_is_unchanged_and_writes_nothing(store):
    captured(store)
    manifest_before = store.manifest_path.read_bytes()
    report = refresh_with(answer(304), store)
    assert [(o.outcome, o.http_status, o.sha256) for o in report.outcomes] == [
        ("unchanged", 304, sha256_bytes(V1))]
    assert store.manifest_path.read_bytes() == manifest_before


def test_same_bytes_with_200_is_unchanged_and_writes_nothing(store):
    captured(store)
    manifest_before = store.manifest_path.read_bytes()
    report = refresh_with(answer(200, V1, **VALIDATORS), store)
    assert [(o.outcome, o.http_status) for o in report.outcomes] == [("unchanged", 200)]
    assert store.manifest_path.read_bytes() == manifest_before


def test_new_bytes_replace_the_snapshot_and_are_reported_changed(store):
    captured(store)
    report = refresh_with(answer(200, V2, **VALIDATORS), store)
    [entry] = store.entries()
    assert [o.outcome for o in report.outcomes] == ["changed"]
    assert (store.read(entry), entry.etag, entry.fetched_at) == (V2, '"e2"', NOW)


def test_a_captured_record_replaces_a_reconstructed_one(store):
    store.write("ctgov", NCT, "json", V1, registry="ctgov", trial_id=NCT, url=STUDY_URL,
                provenance="reconstructed", source_urls=["https://example.org/facts"], fetched_at=EARLIER)
    handler = answer(200, V1, **VALIDATORS)
    report = refresh_with(handler, store)
    [entry] = store.entries()
    assert [o.outcome for o in report.outcomes] == ["changed"]
    assert (entry.provenance, entry.source_urls, entry.fetched_at) == ("captured", [], NOW)
    assert "If-None-Match" not in handler.requests[0].headers  # type: ignore[attr-defined]


def test_failure_keeps_the_previous_snapshot_and_marks_it_stale(store):
    captured(store)
    report = refresh_with(answer(404), store)
    [entry] = store.entries()
    assert report.outcomes == [TargetOutcome(
        registry="ctgov", trial_id=NCT, path=f"ctgov/{NCT}.json", outcome="failed", http_status=404,
        sha256=sha256_bytes(V1), error=f"{STUDY_URL}: HTTP 404")]
    assert (store.read(entry), entry.stale, entry.fetched_at) == (V1, True, EARLIER)


def test_failure_without_a_previous_snapshot_writes_nothing(store):
    report = refresh_with(answer(500), store)
    assert [(o.outcome, o.sha256) for o in report.outcomes] == [("failed", None)]
    assert report.outcomes[0].error == f"{STUDY_URL}: HTTP 500 (gave up after 4 attempts)"
    assert store.entries() == []


def test_a_later_not_modified_clears_stale(store):
    captured(store, stale=True)
    refresh_with(answer(304), store)
    assert [e.stale for e in store.entries()] == [False]


def test_a_later_changed_fetch_clears_stale(store):
    captured(store, stale=True)
    refresh_with(answer(200, V2), store)
    assert [e.stale for e in store.entries()] == [False]


def test_a_tampered_previous_file_is_fetched_unconditionally_and_restored(store):
    captured(store)
    (store.root / f"ctgov/{NCT}.json").write_bytes(b"tampered")
    handler = answer(200, V1)
    report = refresh_with(handler, store)
    assert "If-None-Match" not in handler.requests[0].headers  # type: ignore[attr-defined]
    assert [o.outcome for o in report.outcomes] == ["changed"]
    assert store.verify() == []


def test_a_304_to_an_unconditional_request_is_a_failure(store):
    report = refresh_with(answer(304), store)
    assert [(o.outcome, o.error) for o in report.outcomes] == [
        ("failed", f"{STUDY_URL}: answered 304 to a request without validators")]
    assert store.entries() == []


def test_ctis_no_record_is_a_failure_naming_the_trial(store):
    target = FetchTarget(registry="ctis", trial_id="2023-000001-01-00")
    report = refresh_with(answer(200, b"{}"), store, [target])
    assert [o.error for o in report.outcomes] == [
        "https://euclinicaltrials.eu/ctis-public-api/retrieve/2023-000001-01-00: "
        "CTIS has no record of 2023-000001-01-00 (empty JSON object)"]


# -- report ---------------------------------------------------------------------------------------


def test_report_counts_outcomes_per_registry(store):
    captured(store)
    by_path = {
        f"/api/v2/studies/{NCT}": httpx.Response(304),
        "/api/v2/studies/NCT00000002": httpx.Response(200, content=study("NCT00000002", "v1")),
        "/ctis-public-api/retrieve/2023-000001-01-00": httpx.Response(200, content=b"{}"),
    }
    targets = [TARGET, FetchTarget(registry="ctgov", trial_id="NCT00000002"),
               FetchTarget(registry="ctis", trial_id="2023-000001-01-00")]
    report = refresh_with(lambda request: by_path[request.url.path], store, targets)
    assert report.counts == {
        "ctgov": {"new": 1, "changed": 0, "unchanged": 1, "failed": 0},
        "ctis": {"new": 0, "changed": 0, "unchanged": 0, "failed": 1},
    }
    assert [o.trial_id for o in report.failed] == ["2023-000001-01-00"]
    assert [o.trial_id for o in report.outcomes] == [NCT, "NCT00000002", "2023-000001-01-00"]


def test_a_target_listed_twice_is_fetched_once(store):
    handler = answer(200, V1)
    report = refresh_with(handler, store, [TARGET, TARGET])
    assert (len(report.outcomes), len(handler.requests)) == (1, 1)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("registry", "trial_id", "path"), [
    ("ctgov", "NCT03645928", "ctgov/NCT03645928.json"),
    ("ctis", "2023-506979-10-00", "ctis/2023-506979-10-00.json"),
    ("euctr", "2015-000590-12", "euctr/2015-000590-12.txt"),
])
def test_snapshot_names_follow_the_registry_layout(registry, trial_id, path):
    assert snapshot_path_of(FetchTarget(registry=registry, trial_id=trial_id)) == path


@pytest.mark.parametrize(("registry", "trial_id"), [
    ("ctgov", "../../etc/passwd"), ("ctis", "NCT03645928"), ("euctr", "2023-506979-10-00")])
def test_a_target_with_a_malformed_id_is_refused(registry, trial_id):
    with pytest.raises(UnsafePathError):
        FetchTarget(registry=registry, trial_id=trial_id)


def test_run_refresh_runs_from_synchronous_code(store):
    report = run_refresh([TARGET], store=store, settings=FAST, now=NOW,
                         transport=httpx.MockTransport(answer(200, V1)))
    assert [o.outcome for o in report.outcomes] == ["new"]
    assert [e.fetched_at for e in store.entries()] == [NOW]


# -- the real samples over loopback ---------------------------------------------------------------

CTGOV_SAMPLES = sorted((SHARED / "samples" / "ctgov_v2").glob("NCT*.json"))
CTIS_SAMPLES = sorted((SHARED / "samples" / "ctis").glob("*.json"))


def serve_samples(server: LoopbackServer) -> list[FetchTarget]:
    """Serve every CT.gov and CTIS sample where the registry would; the targets to fetch them."""
    targets = []
    for sample in CTGOV_SAMPLES:
        server.add(f"/api/v2/studies/{sample.stem}", sample.read_bytes())
        targets.append(FetchTarget(registry="ctgov", trial_id=sample.stem))
    for sample in CTIS_SAMPLES:
        server.add(f"/ctis-public-api/retrieve/{sample.stem}", sample.read_bytes())
        targets.append(FetchTarget(registry="ctis", trial_id=sample.stem))
    return targets


def sample_path(target: FetchTarget) -> str:
    return (f"/api/v2/studies/{target.trial_id}" if target.registry == "ctgov"
            else f"/ctis-public-api/retrieve/{target.trial_id}")


def stored_files(store: SnapshotStore) -> dict[str, bytes]:
    return {e.path: store.read(e) for e in store.entries()}


def test_samples_are_present():
    assert (len(CTGOV_SAMPLES), len(CTIS_SAMPLES)) == (17, 4)


def test_loopback_refresh_captures_every_sample(loopback, tmp_path):
    targets = serve_samples(loopback)
    store = SnapshotStore(tmp_path / "snapshots")
    report = run_refresh(targets, store=store, settings=fetch_settings(loopback), now=NOW)
    assert report.counts == {
        "ctgov": {"new": 17, "changed": 0, "unchanged": 0, "failed": 0},
        "ctis": {"new": 4, "changed": 0, "unchanged": 0, "failed": 0},
    }
    expected = {f"ctgov/{p.stem}.json": p.read_bytes() for p in CTGOV_SAMPLES}
    expected |= {f"ctis/{p.stem}.json": p.read_bytes() for p in CTIS_SAMPLES}
    assert stored_files(store) == expected
    assert {(e.provenance, e.http_status, e.fetched_at) for e in store.entries()} == {("captured", 200, NOW)}
    assert all(e.etag and e.last_modified for e in store.entries())


def test_loopback_second_refresh_gets_304s_and_writes_nothing(loopback, tmp_path):
    targets = serve_samples(loopback)
    store = SnapshotStore(tmp_path / "snapshots")
    settings = fetch_settings(loopback)
    run_refresh(targets, store=store, settings=settings, now=NOW)
    manifest_before = store.manifest_path.read_bytes()
    files_before = stored_files(store)

    report = run_refresh(targets, store=store, settings=settings, now=datetime(2026, 3, 2, tzinfo=UTC))

    assert {o.outcome for o in report.outcomes} == {"unchanged"}
    assert [loopback.statuses(sample_path(t))[-1] for t in targets] == [304] * 21
    assert all("if-none-match" in loopback.hits_for(sample_path(t))[-1].headers for t in targets)
    assert store.manifest_path.read_bytes() == manifest_before
    assert stored_files(store) == files_before


def test_loopback_refresh_through_faults_ends_with_identical_snapshots(loopback, tmp_path):
    targets = serve_samples(loopback)
    settings = fetch_settings(loopback, read_timeout=0.2)
    clean = SnapshotStore(tmp_path / "clean")
    run_refresh(targets, store=clean, settings=settings, now=NOW)
    faulted = {
        sample_path(targets[0]): [TooManyRequests("1"), TooManyRequests("Wed, 01 Jan 2025 00:00:00 GMT")],
        sample_path(targets[1]): times(3, Status(500)),
        sample_path(targets[2]): [Delay(0.5)],
        sample_path(targets[3]): [Reset(), Status(503)],
        sample_path(targets[-1]): [Status(502), Delay(0.5)],
    }
    for path, steps in faulted.items():
        loopback.script(path, *steps)

    stormy = SnapshotStore(tmp_path / "stormy")
    report = run_refresh(targets, store=stormy, settings=settings, now=NOW)

    assert report.counts["ctgov"]["new"] + report.counts["ctis"]["new"] == 21
    assert stored_files(stormy) == stored_files(clean)
    assert stormy.manifest_path.read_bytes() == clean.manifest_path.read_bytes()
    # Every fault was met once, in order, and then one clean request succeeded.
    assert [loopback.steps(p)[-len(steps) - 1:] for p, steps in faulted.items()] == [
        [*steps, None] for steps in faulted.values()]


def test_loopback_failure_marks_stale_and_a_later_304_clears_it(loopback, tmp_path):
    targets = serve_samples(loopback)[:2]
    store = SnapshotStore(tmp_path / "snapshots")
    settings = fetch_settings(loopback)
    run_refresh(targets, store=store, settings=settings, now=NOW)
    loopback.script(sample_path(targets[0]), *times(4, Status(500)))

    failed = run_refresh(targets, store=store, settings=settings, now=NOW)
    stale = {e.trial_id: e.stale for e in store.entries()}
    healed = run_refresh(targets, store=store, settings=settings, now=NOW)

    assert [o.outcome for o in failed.outcomes] == ["failed", "unchanged"]
    assert stale == {targets[0].trial_id: True, targets[1].trial_id: False}
    assert [o.outcome for o in healed.outcomes] == ["unchanged", "unchanged"]
    assert [e.stale for e in store.entries()] == [False, False]
    assert store.verify() == []


def test_credentials_in_a_redirect_never_reach_the_manifest(store):
    real = "NCT03645928"
    body = (Path(__file__).resolve().parents[1] / "snapshots" / "ctgov" / f"{real}.json").read_bytes()
    moved = f"https://clinicaltrials.gov/api/v2/studies/{real}?moved=1"

    def handle(request: httpx.Request) -> httpx.Response:
        handle.requests.append(request)  # type: ignore[attr-defined]
        if "moved" not in str(request.url):
            return httpx.Response(302, headers={"Location": moved.replace("https://", "https://scott:tiger@")})
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    handle.requests = []  # type: ignore[attr-defined]
    report = refresh_with(handle, store, [FetchTarget(registry="ctgov", trial_id=real)])
    assert [o.outcome for o in report.outcomes] == ["new"]
    assert [e.url for e in store.entries()] == [moved]
    assert b"tiger" not in store.manifest_path.read_bytes()
    assert all("authorization" not in r.headers for r in handle.requests)  # type: ignore[attr-defined]
