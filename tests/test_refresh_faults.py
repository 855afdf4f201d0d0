"""A failing registry never destroys a good snapshot.

For each registry (CT.gov, CTIS, EU CTR) the registry answers 200 with a well-formed record of
another trial, with an error body, or with an empty body. No stored snapshot may change, each
target is reported failed and marked stale, and ``refresh`` exits 3.
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import httpx
import pytest

from pipeline import cli
from pipeline.fetch import refresh as refresh_module
from pipeline.fetch.refresh import FetchTarget, run_refresh
from pipeline.fetch.client import FetchSettings
from pipeline.store.snapshots import SnapshotStore

from conftest import REPO, SHARED

FAST = FetchSettings(requests_per_second=1000.0, backoff_initial=0.0, backoff_max=0.0, backoff_jitter=0.0)
SAMPLES = SHARED / "samples"

# What each registry holds for its trial (stored before the refresh) and a well-formed record of
# another trial (the wrong answer).
HELD = {
    "ctgov": ("NCT03064438", SAMPLES / "ctgov_v2" / "NCT03064438.json", SAMPLES / "ctgov_v2" / "NCT00184067.json"),
    "ctis": ("2022-500244-37-00", SAMPLES / "ctis" / "2022-500244-37-00.json",
             SAMPLES / "ctis" / "2023-505613-24-00.json"),
    "euctr": ("2022-002568-62", SAMPLES / "euctr" / "euctr_fulltext_download_2022-002568-62_2021-002179-21.txt",
              REPO / "snapshots" / "euctr" / "2015-000894-11.txt"),
}
LAYOUT = {"ctgov": ("ctgov", "json"), "ctis": ("ctis", "json"), "euctr": ("euctr", "txt")}
ERROR_BODY = {"ctgov": b'{"error":"service under maintenance"}', "ctis": b'{"error":"service under maintenance"}',
              "euctr": b"Service under maintenance. Please try again later.\n"}


def _store(tmp_path: Path) -> SnapshotStore:
    store = SnapshotStore(tmp_path / "snapshots")
    for registry, (trial_id, held, _) in HELD.items():
        folder, ext = LAYOUT[registry]
        store.write(folder, trial_id, ext, held.read_bytes(), registry=registry, trial_id=trial_id,
                    url=f"https://example.invalid/{trial_id}", provenance="captured", http_status=200)
    return store


def _answers(fault: str) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        registry = next(r for r, (trial_id, _, _) in HELD.items() if trial_id in str(request.url))
        body = {"wrong trial": HELD[registry][2].read_bytes(), "error body": ERROR_BODY[registry],
                "empty body": b""}[fault]
        kind = "text/plain" if registry == "euctr" else "application/json"
        return httpx.Response(200, content=body, headers={"Content-Type": kind})

    return httpx.MockTransport(handle)


def _files(store: SnapshotStore) -> dict[str, bytes]:
    """Every file of the store but its manifest, by path."""
    return {p.relative_to(store.root).as_posix(): p.read_bytes()
            for p in store.root.rglob("*") if p.is_file() and p.name != "manifest.json"}


FAULTS = ["wrong trial", "error body", "empty body"]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_bad_200_answer_changes_no_snapshot_and_marks_each_target_stale(tmp_path, fault):
    store = _store(tmp_path)
    before = _files(store)
    targets = [FetchTarget(registry=r, trial_id=t) for r, (t, _, _) in HELD.items()]

    report = run_refresh(targets, store=store, settings=FAST, transport=_answers(fault))

    assert _files(store) == before
    assert store.verify() == []
    assert [(o.registry, o.outcome) for o in report.outcomes] == [(r, "failed") for r in HELD]
    assert all(o.error for o in report.outcomes)
    assert {e.registry: (e.stale, e.provenance) for e in store.entries()} == {
        r: (True, "captured") for r in HELD}


def test_a_record_of_another_trial_is_refused_naming_both_trials(tmp_path):
    store = _store(tmp_path)
    report = run_refresh([FetchTarget(registry="ctgov", trial_id="NCT03064438")], store=store, settings=FAST,
                         transport=_answers("wrong trial"))
    [failed] = report.failed
    assert "holds the record of NCT00184067, not of NCT03064438" in (failed.error or "")


@pytest.mark.parametrize("fault", FAULTS)
def test_refresh_command_reports_each_failed_target_and_exits_3(tmp_path, fault, monkeypatch, capsys):
    store = _store(tmp_path)
    before = _files(store)
    monkeypatch.setattr(refresh_module, "run_refresh",
                        partial(_run_refresh_with, transport=_answers(fault)))

    code = cli.main(["refresh", "--snapshots", str(store.root)])

    err = capsys.readouterr().err
    assert code == cli.EXIT_PARTIAL
    assert _files(store) == before
    for registry, (trial_id, _, _) in HELD.items():
        folder, ext = LAYOUT[registry]
        assert f"failed {folder}/{trial_id}.{ext}:" in err


def _run_refresh_with(targets, *, store, settings=None, progress=None, transport):
    """run_refresh as the command calls it, answered by ``transport`` without waiting between requests."""
    return run_refresh(targets, store=store, settings=FAST, transport=transport, progress=progress)


@pytest.mark.flow
def test_an_online_run_whose_refresh_gets_error_bodies_keeps_every_snapshot_and_exits_3(
        prefect_harness, tmp_path, monkeypatch):
    from pipeline.orchestrate.flows import trialrecon_flow

    shutil.copytree(REPO / "snapshots", tmp_path / "snapshots")
    store = SnapshotStore(tmp_path / "snapshots")
    before = _files(store)

    def error_body(request: httpx.Request) -> httpx.Response:
        json_api = "clinicaltrials.gov" in request.url.host or "ctis" in str(request.url)
        body = ERROR_BODY["ctgov"] if json_api else ERROR_BODY["euctr"]
        return httpx.Response(200, content=body,
                              headers={"Content-Type": "application/json" if json_api else "text/plain"})

    monkeypatch.setattr(refresh_module, "run_refresh",
                        partial(_run_refresh_with, transport=httpx.MockTransport(error_body)))
    summary = trialrecon_flow(output_dir=tmp_path / "out", snapshots_dir=store.root, online=True)

    assert summary.exit_code == 3
    assert _files(store) == before
    stored = {e.path for e in store.entries() if e.registry in LAYOUT}
    assert stored <= {line.split(": ")[0] for line in summary.refresh_failures}
    assert all(e.stale for e in store.entries() if e.registry in LAYOUT)
