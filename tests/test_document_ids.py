"""Two pages with one title are two documents: each keeps its own document_id and its own rows."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from pipeline import stages
from pipeline.store.snapshots import SnapshotStore, sha256_bytes

from conftest import EMBEDDED_PAGE, REPO


def _two_copies(tmp_path):
    first, second = tmp_path / "a" / "aldesleukin.txt", tmp_path / "b" / "aldesleukin.txt"
    for page in (first, second):
        page.parent.mkdir()
        shutil.copyfile(EMBEDDED_PAGE, page)
    return first, second


def test_two_pages_with_one_title_in_one_run_get_distinct_ids(tmp_path):
    first, second = _two_copies(tmp_path)
    store = SnapshotStore(tmp_path / "snapshots")
    docs = stages.extract_documents(stages.document_sources([first, second], store))
    suffix = sha256_bytes(second.resolve().as_uri().encode())[:8]
    assert [d.document.document_id for d in docs] == ["aldesleukin", f"aldesleukin-{suffix}"]
    assert {row.document_id for row in docs[1].trials} == {f"aldesleukin-{suffix}"}


def test_a_page_whose_id_the_output_holds_for_another_url_gets_a_distinct_id(tmp_path):
    first, _ = _two_copies(tmp_path)
    store = SnapshotStore(tmp_path / "snapshots")
    sources = stages.document_sources([first], store)
    taken_elsewhere = stages.extract_documents(sources, taken={"aldesleukin": "https://other.example/page"})
    taken_by_itself = stages.extract_documents(sources, taken={"aldesleukin": first.resolve().as_uri()})
    assert taken_elsewhere[0].document.document_id.startswith("aldesleukin-")
    assert taken_by_itself[0].document.document_id == "aldesleukin"


@pytest.mark.flow
def test_a_later_page_with_the_same_title_stands_beside_the_first_instead_of_replacing_it(
        prefect_harness, tmp_path):
    from pipeline.orchestrate.flows import trialrecon_flow

    first, second = _two_copies(tmp_path)
    snapshots = tmp_path / "snapshots"
    shutil.copytree(REPO / "snapshots", snapshots)
    out = tmp_path / "out"
    trialrecon_flow(documents=[first], output_dir=out, snapshots_dir=snapshots)
    trialrecon_flow(documents=[second], output_dir=out, snapshots_dir=snapshots)
    with duckdb.connect(str(out / "trialrecon.duckdb"), read_only=True) as con:
        documents = con.execute("SELECT document_id, source_url FROM documents ORDER BY source_url").fetchall()
        rows = dict(con.execute("SELECT document_id, count(*) FROM document_trials GROUP BY 1").fetchall())
    assert [url for _, url in documents] == [first.resolve().as_uri(), second.resolve().as_uri()]
    assert len({doc_id for doc_id, _ in documents}) == 2
    assert set(rows.values()) == {15}
