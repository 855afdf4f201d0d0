"""One run sequence (pipeline.run) for the flow, `check` and the bench; its inputs read once; and
one answer to "which trials have a record" for the summary and the reconciliation."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from conftest import REPO
from pipeline import run, stages
from pipeline.cli import main
from pipeline.load.incremental import PreviousState
from pipeline.outputs.baseline import DEFAULT_BASELINE_DIR
from pipeline.store import snapshots as snapshots_module
from pipeline.store.snapshots import SnapshotStore, sha256_bytes

LISTED = "2023-504632-17-00"  # a trial of the page with no record of its own
LISTING = "NCT05810792"  # a CT.gov record that will list it among its secondary ids


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "snapshots"
    shutil.copytree(REPO / "snapshots", root)
    return root


def _list_in_ctgov_record(root, nct_id, other_id):
    """Add ``other_id`` to the secondary ids of the store's CT.gov record of ``nct_id`` (manifest updated)."""
    path = root / "ctgov" / f"{nct_id}.json"
    study = json.loads(path.read_text())
    ident = study["protocolSection"]["identificationModule"]
    ident.setdefault("secondaryIdInfos", []).append({"id": other_id, "type": "OTHER"})
    data = json.dumps(study, indent=2).encode()
    path.write_bytes(data)
    store = SnapshotStore(root)
    store.save_entries(e.model_copy(update={"sha256": sha256_bytes(data)}) if e.path == f"ctgov/{nct_id}.json" else e
                       for e in store.entries())


def _run(root, out, steps=None):
    return run.run_pipeline(run.read_inputs(None, root), out, DEFAULT_BASELINE_DIR, steps)


def test_a_trial_a_registry_record_lists_has_a_record_in_the_summary_as_in_the_reconciliation(store, tmp_path):
    _list_in_ctgov_record(store, LISTING, LISTED)
    summary = _run(store, tmp_path / "out")
    with duckdb.connect(str(summary.database), read_only=True) as con:
        against_it = con.execute("SELECT count(*) FROM reconciliation WHERE trial_id = ? AND evidence_record = ?",
                                 [LISTED, LISTING]).fetchone()[0]
        [status] = con.execute("SELECT record_status FROM page_trials WHERE trial_id = ?", [LISTED]).fetchone()
    assert against_it == 9
    assert status == "record"
    assert LISTED not in summary.trials_without_records
    assert LISTED not in summary.candidate_only


def test_the_summary_names_the_trials_page_trials_gives_no_record(store, tmp_path):
    summary = _run(store, tmp_path / "out")
    with duckdb.connect(str(summary.database), read_only=True) as con:
        rows = con.execute("SELECT trial_id, record_status FROM page_trials WHERE record_status <> 'record'").fetchall()
    assert summary.trials_without_records == sorted(t for t, _ in rows)
    assert set(summary.candidate_only) == {t for t, status in rows if status == "candidate_only"}
    assert summary.candidate_only["2023-506979-10-00"] == LISTING


def _count_manifest_reads(monkeypatch, name=snapshots_module.MANIFEST_NAME):
    reads = []
    real = snapshots_module.read_regular_file

    def counting(path, **kwargs):
        if path.name == name:
            reads.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(snapshots_module, "read_regular_file", counting)
    return reads


@pytest.mark.parametrize("name", [snapshots_module.MANIFEST_NAME, stages.LINKS_NAME, stages.MISSING_NAME])
def test_a_run_reads_the_manifest_and_the_files_beside_it_once_cold_and_warm(store, tmp_path, monkeypatch, name):
    reads = _count_manifest_reads(monkeypatch, name)
    assert _run(store, tmp_path / "out").work_done
    assert len(reads) == 1
    reads.clear()
    assert not _run(store, tmp_path / "out").work_done
    assert len(reads) == 1


class _ManifestChangedMidRun(run.Steps):
    """Steps that drop a snapshot from the manifest on disk once the run has started loading."""

    def __init__(self, root, dropped):
        super().__init__()
        self.root, self.dropped = root, dropped

    def load_snapshots(self, store, jobs):
        disk = SnapshotStore(self.root)
        disk.save_entries(e for e in disk.entries() if e.path != self.dropped)
        return super().load_snapshots(store, jobs)


def test_a_manifest_changed_after_the_run_started_changes_neither_what_it_parsed_nor_its_fingerprint(
        store, tmp_path):
    dropped = f"ctgov/{LISTING}.json"
    before = run.read_inputs(None, store)
    expected = stages.plan_run(before.pages, before.store, PreviousState()).fingerprint
    summary = _run(store, tmp_path / "out", _ManifestChangedMidRun(store, dropped))
    assert summary.fingerprint == expected
    assert summary.records == len([e for e in before.store.entries() if e.registry in stages.REGISTRIES])
    with duckdb.connect(str(summary.database), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM snapshots WHERE path = ?", [dropped]).fetchone()[0] == 1
    # The next run sees the manifest as it is now: its fingerprint differs, so it does the work.
    again = _run(store, tmp_path / "out")
    assert again.work_done and again.fingerprint != expected


def test_a_pinned_store_is_read_only(store):
    pinned = SnapshotStore(store).pinned()
    with pytest.raises(TypeError, match="read-only"):
        pinned.save_entries(pinned.entries())


def test_check_runs_the_runs_reconcile_step(store, monkeypatch, capsys):
    calls = []
    real = run.reconcile
    monkeypatch.setattr(run, "reconcile", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert main(["check", "--snapshots", str(store)]) == 0
    assert len(calls) == 1
    assert "result: OK" in capsys.readouterr().out


def test_the_bench_times_the_runs_own_sequence(store, tmp_path, monkeypatch):
    from devtools.bench import pipeline_work

    calls = []
    real = run.run_pipeline
    monkeypatch.setattr(run, "run_pipeline", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert pipeline_work(tmp_path / "out", store) is True
    assert pipeline_work(tmp_path / "out", store) is False
    assert len(calls) == 2


@pytest.mark.flow
def test_the_run_command_extracts_each_page_once(prefect_harness, store, tmp_path, monkeypatch):
    extracted = []
    real = stages.extract_document
    monkeypatch.setattr(stages, "extract_document", lambda text, **k: extracted.append(k["path"]) or real(text, **k))
    reads = _count_manifest_reads(monkeypatch)
    assert main(["run", "--snapshots", str(store), "--output", str(tmp_path / "out")]) == 0
    assert extracted == [str(store / "documents" / "aldesleukin.txt")]
    assert len(reads) == 1
