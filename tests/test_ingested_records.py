"""One store of records: a run reconciles its pages against the records ``ingest`` loaded into the
output as well as the snapshots' (``pipeline.store.ingested``), parsing each ingested study once."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import duckdb
import pytest

from conftest import REPO
from pipeline import run
from pipeline.load.writer import DB_NAME
from pipeline.errors import SnapshotError
from pipeline.models import SnapshotEntry
from pipeline.store.ingest import ingest_ctgov, iter_study_bytes
from pipeline.store.ingested import IngestedStudies
from pipeline.store.snapshots import SnapshotStore

NCT = "NCT03645928"  # the page states 268 enrolled; its snapshot gives 245
PATH = f"ctgov/{NCT}.json"
NO_BASELINES = Path("/nonexistent-baselines")


@pytest.fixture
def store_without_it(tmp_path):
    """The embedded store with the trial's snapshot taken out (its bytes kept as ``study.json``)."""
    root = tmp_path / "snapshots"
    shutil.copytree(REPO / "snapshots", root)
    store = SnapshotStore(root)
    store.save_entries([entry for entry in store.entries() if entry.path != PATH])
    (root / PATH).rename(tmp_path / "study.json")
    return root


def _run(snapshots: Path, output: Path) -> run.RunSummary:
    return run.run_pipeline(run.read_inputs(None, snapshots), output, NO_BASELINES)


def _rows(output: Path, trial_id: str = NCT) -> list[tuple]:
    with duckdb.connect(str(output / DB_NAME), read_only=True) as con:
        return con.execute(
            "SELECT claim_id, field, registry, verdict, registry_value, evidence_snapshot, evidence_sha256 "
            "FROM reconciliation WHERE trial_id = ? ORDER BY ALL", [trial_id]).fetchall()


def _study(source: Path, target: Path, enrollment: int | None = None) -> Path:
    study = json.loads(source.read_bytes())
    if enrollment is not None:
        study["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = enrollment
    target.write_text(json.dumps(study), encoding="utf-8")
    return target


def _trials_row(output: Path, trial_id: str = NCT) -> tuple:
    with duckdb.connect(str(output / DB_NAME), read_only=True) as con:
        return con.execute("SELECT enrollment, snapshot_path FROM trials WHERE trial_id = ?", [trial_id]).fetchone()


def test_a_trial_without_a_snapshot_is_reconciled_against_its_ingested_record(store_without_it, tmp_path):
    _run(REPO / "snapshots", tmp_path / "with_snapshot")
    source = tmp_path / "study.json"
    ingest_ctgov(source, tmp_path / "out")
    assert _run(store_without_it, tmp_path / "out").ingested == 1
    expected = [(*row[:5], str(source) if row[5] == PATH else row[5], row[6])
                for row in _rows(tmp_path / "with_snapshot")]
    assert _rows(tmp_path / "out") == expected
    assert any(row[5] == str(source) for row in expected)


def test_without_the_ingest_no_ctgov_record_backs_the_trial(store_without_it, tmp_path):
    _run(store_without_it, tmp_path / "out")
    assert [row for row in _rows(tmp_path / "out") if row[2] == "ctgov"] == []


def test_a_snapshot_comes_before_the_ingested_record_of_its_trial(tmp_path):
    _run(REPO / "snapshots", tmp_path / "out")
    before = _rows(tmp_path / "out")
    ingest_ctgov(_study(REPO / "snapshots" / PATH, tmp_path / "newer.json", enrollment=268), tmp_path / "out")
    assert _trials_row(tmp_path / "out") == (268, str(tmp_path / "newer.json"))
    summary = _run(REPO / "snapshots", tmp_path / "out")
    # The run did its work: the trials table holds again the record reconciliation used.
    assert summary.work_done
    assert (_rows(tmp_path / "out"), _trials_row(tmp_path / "out")) == (before, (245, PATH))
    assert not _run(REPO / "snapshots", tmp_path / "out").work_done


def test_an_ingested_record_is_parsed_once_and_then_reused_without_its_source(store_without_it, tmp_path):
    source = tmp_path / "study.json"
    ingest_ctgov(source, tmp_path / "out")
    first = _run(store_without_it, tmp_path / "out")
    rows = _rows(tmp_path / "out")
    assert not _run(store_without_it, tmp_path / "out").work_done
    source.unlink()
    (store_without_it / "documents" / "aldesleukin.txt").write_text(
        (store_without_it / "documents" / "aldesleukin.txt").read_text(encoding="utf-8") + "\n", encoding="utf-8")
    again = _run(store_without_it, tmp_path / "out")
    assert first.parsed == len([e for e in SnapshotStore(store_without_it).entries() if e.registry != "document"]) + 1
    assert (again.documents, again.parsed, again.load_errors, _rows(tmp_path / "out")) == (["aldesleukin"], 0, [], rows)


def test_a_record_ingested_again_with_other_values_reconciles_the_page_again(store_without_it, tmp_path):
    ingest_ctgov(tmp_path / "study.json", tmp_path / "out")
    _run(store_without_it, tmp_path / "out")
    enrollment = [row for row in _rows(tmp_path / "out") if row[1] == "enrollment" and row[2] == "ctgov"]
    assert {row[3] for row in enrollment} == {"mismatch"}
    ingest_ctgov(_study(tmp_path / "study.json", tmp_path / "newer.json", enrollment=268), tmp_path / "out")
    summary = _run(store_without_it, tmp_path / "out")
    assert summary.work_done and summary.documents
    assert {row[3] for row in _rows(tmp_path / "out") if row[1] == "enrollment" and row[2] == "ctgov"} == {"match"}


def test_an_ingested_record_whose_source_is_gone_is_a_load_error_naming_it(store_without_it, tmp_path):
    source = tmp_path / "study.json"
    ingest_ctgov(source, tmp_path / "out")
    source.unlink()
    summary = _run(store_without_it, tmp_path / "out")
    assert [(error.snapshot, error.error) for error in summary.load_errors] == [
        (str(source), "the ingested source is gone")]
    assert summary.exit_code == 3
    assert [row for row in _rows(tmp_path / "out") if row[2] == "ctgov"] == []
    assert {row[3] for row in _rows(tmp_path / "out", "NCT02919644")} != {"unverifiable"}


def _entry(label: str, data: bytes) -> SnapshotEntry:
    return SnapshotEntry(path=label, registry="ctgov", trial_id="NCT00000001", url="u",
                         sha256=hashlib.sha256(data).hexdigest(), provenance="captured")


@pytest.fixture
def sources(tmp_path):
    """A folder with every kind of source ingest reads: NDJSON (a blank line in it), a /studies page,
    a single study, and a zip holding a study and a page."""
    study = (REPO / "snapshots" / PATH).read_bytes()
    line = json.dumps(json.loads(study)).encode()
    (tmp_path / "a.ndjson").write_bytes(line + b"\n\n" + line.replace(b"245", b"246") + b"\n")
    page = json.dumps({"studies": [json.loads(study), json.loads(study.replace(b"245", b"247"))]}).encode()
    (tmp_path / "b.json").write_bytes(page)
    (tmp_path / "c.json").write_bytes(study)
    with zipfile.ZipFile(tmp_path / "d.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("one!study.json", study)
        archive.writestr("page.json", page)
    return tmp_path


def test_every_study_ingest_reads_is_read_back_by_its_label(sources):
    studies = list(iter_study_bytes(sources))
    reader = IngestedStudies()
    assert len(studies) == 8
    assert [reader.read(_entry(label, data)) for label, data in studies] == [data for _, data in studies]


def test_a_study_whose_bytes_changed_since_the_ingest_is_refused_naming_its_label(sources):
    [(label, data), *_] = iter_study_bytes(sources / "a.ndjson")
    (sources / "a.ndjson").write_bytes(data.replace(b"245", b"999"))
    with pytest.raises(SnapshotError, match=f"^{label}: holds other bytes than were ingested"):
        IngestedStudies().read(_entry(label, data))


def test_a_line_past_the_end_of_its_source_is_refused(sources):
    with pytest.raises(SnapshotError, match=r"a\.ndjson:9: the source has 3 lines, not 9$"):
        IngestedStudies().read(_entry(f"{sources}/a.ndjson:9", b""))


def test_a_zip_member_gone_is_refused_naming_the_zip(sources):
    label = f"{sources}/d.zip!gone.json"
    with pytest.raises(SnapshotError, match=f"the ingested source {sources}/d.zip no longer holds gone.json$"):
        IngestedStudies().read(_entry(label, b""))


def test_a_source_ingested_by_a_relative_path_is_read_back_from_another_folder(store_without_it, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    ingest_ctgov(Path("study.json"), tmp_path / "out")
    monkeypatch.chdir(store_without_it)
    summary = _run(store_without_it, tmp_path / "out")
    assert (summary.ingested, summary.load_errors) == (1, [])
    assert _trials_row(tmp_path / "out")[1] == str(tmp_path / "study.json")
