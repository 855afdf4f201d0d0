"""``run`` and ``serve`` check their pages before a flow starts by extracting them; against an
output, only the pages the run will extract anew (a site's warm run had extracted 2,000)."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import small_site
from devtools.site import change_one_page, document_id_for, drug_name
from pipeline import run
from pipeline.errors import DocumentError

NO_BASELINES = Path("/nonexistent-baselines")


@pytest.fixture
def site(tmp_path):
    return small_site(tmp_path, 60, pages=4, seed=7)


def _extracted(inputs: run.RunInputs) -> list[str]:
    return [page.source.path.name for page in inputs.pages if page.extracted is not None]


def test_without_an_output_every_page_is_extracted_up_front(site, tmp_path):
    inputs = run.read_inputs([site.pages], site.store, extract=True, output_dir=tmp_path / "none-yet")
    assert _extracted(inputs) == sorted(p.name for p in site.pages.glob("*.txt"))


def test_against_an_output_only_the_changed_page_is_extracted_up_front(site, tmp_path):
    out = tmp_path / "out"
    run.run_pipeline(run.read_inputs([site.pages], site.store), out, NO_BASELINES)
    assert _extracted(run.read_inputs([site.pages], site.store, extract=True, output_dir=out)) == []
    doc_id = change_one_page(site, "page-00002.txt")
    inputs = run.read_inputs([site.pages], site.store, extract=True, output_dir=out)
    assert _extracted(inputs) == ["page-00002.txt"]
    assert [p.extracted.document.document_id for p in inputs.pages if p.extracted] == [doc_id]


def test_a_page_broken_since_the_last_run_is_refused_up_front(site, tmp_path):
    out = tmp_path / "out"
    run.run_pipeline(run.read_inputs([site.pages], site.store), out, NO_BASELINES)
    page = site.pages / "page-00001.txt"
    page.write_text(f"{drug_name(1)}\nA page that lost its summary table.\n", encoding="utf-8")
    with pytest.raises(DocumentError) as exc:
        run.read_inputs([site.pages], site.store, extract=True, output_dir=out)
    assert "page-00001.txt" in str(exc.value)


def test_a_run_on_pages_checked_against_its_output_gives_the_rows_of_one_that_checked_them_all(site, tmp_path):
    out, again = tmp_path / "out", tmp_path / "again"
    for output in (out, again):
        run.run_pipeline(run.read_inputs([site.pages], site.store), output, NO_BASELINES)
    change_one_page(site)
    partly = run.run_pipeline(run.read_inputs([site.pages], site.store, extract=True, output_dir=out), out, NO_BASELINES)
    whole = run.run_pipeline(run.read_inputs([site.pages], site.store, extract=True), again, NO_BASELINES)
    assert partly.documents == whole.documents == [document_id_for(drug_name(0))]
    assert partly.verdicts == whole.verdicts


def test_the_pages_read_up_front_are_those_the_run_reads_under_its_lock(site, tmp_path):
    from pipeline.load.incremental import read_previous_pages, read_previous_state
    from pipeline.load.writer import DB_NAME

    out = tmp_path / "out"
    run.run_pipeline(run.read_inputs([site.pages], site.store), out, NO_BASELINES)
    light, full = read_previous_pages(out / DB_NAME), read_previous_state(out / DB_NAME)
    assert light.document_urls == full.document_urls and len(light.document_urls) == 4
    assert light.page_heads == {
        doc_id: type(page)(doc_id, page.document_sha256, page.basis) for doc_id, page in full.pages.items()}


def test_the_pages_of_an_output_without_documents_are_none(tmp_path):
    from pipeline.load.incremental import read_previous_pages

    (tmp_path / "foreign.duckdb").write_bytes(b"not a database")
    assert read_previous_pages(tmp_path / "foreign.duckdb").document_urls == {}
    assert read_previous_pages(tmp_path / "missing.duckdb").page_heads == {}
