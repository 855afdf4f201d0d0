"""Incremental by page, through the flow, on a generated site (devtools/site.py): a page changed
alone is reconciled alone, a record changed re-reconciles exactly the pages citing it, and every
other page keeps its rows and its history."""

from __future__ import annotations

import duckdb
import pytest

from conftest import small_site
from devtools.site import change_one_page, change_one_record

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return small_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def runs(prefect_harness, site, tmp_path_factory):
    """(first run, run after one page changed, run after one record changed, the record's NCT, its citing pages,
    the changed page's id, the reconciliation rows after each run)."""
    from pipeline.orchestrate.flows import trialrecon_flow

    output = tmp_path_factory.mktemp("out")

    def run():
        summary = trialrecon_flow(documents=[site.pages], output_dir=output, snapshots_dir=site.store)
        return summary, _rows(output)

    first = run()
    page = change_one_page(site)
    after_page = run()
    report_after_page = _reports(output)
    fresh = tmp_path_factory.mktemp("fresh")
    trialrecon_flow(documents=[site.pages], output_dir=fresh, snapshots_dir=site.store)
    report_from_scratch = _reports(fresh)
    nct, citing = change_one_record(site, name="page-00002.txt")
    after_record = run()
    return {"first": first, "page": page, "after_page": after_page, "nct": nct, "citing": citing,
            "after_record": after_record, "output": output,
            "reports": (report_after_page, report_from_scratch)}


def _reports(output):
    """Every Markdown report of an output folder (the site's and each page's), by file name, the run's own line aside."""
    return {path.relative_to(output).as_posix(): [line for line in path.read_text(encoding="utf-8").splitlines()
                                                  if not line.startswith("Run ")]
            for path in [output / "report.md", *sorted((output / "pages").glob("*.md"))]}


def _rows(output):
    with duckdb.connect(str(output / "trialrecon.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT document_id, claim_id, trial_id, field, registry, rule, verdict, run_id "
                           "FROM reconciliation ORDER BY ALL").fetchall()
        history = con.execute("SELECT document_id, count(*) FROM reconciliation_history GROUP BY ALL").fetchall()
    return {"rows": rows, "history": dict(history)}


def _by_document(rows):
    out = {}
    for row in rows:
        out.setdefault(row[0], []).append(row)
    return out


def test_first_run_reconciles_every_page(runs):
    summary, state = runs["first"]
    assert len(summary.documents) == 6
    assert set(_by_document(state["rows"])) == set(summary.documents)


def test_a_page_changed_alone_is_reconciled_alone(runs):
    summary, _ = runs["after_page"]
    assert summary.documents == [runs["page"]]


def test_pages_not_reconciled_keep_their_rows_and_history(runs):
    (first, before), (second, after) = runs["first"], runs["after_page"]
    old, new = _by_document(before["rows"]), _by_document(after["rows"])
    for document_id in set(old) - {runs["page"]}:
        assert new[document_id] == old[document_id]  # run ids included: not rewritten
        assert after["history"][document_id] == before["history"][document_id]
    assert {row[-1] for row in new[runs["page"]]} == {second.run_id}


def test_the_reports_after_one_page_changed_say_what_a_full_run_s_say(runs):
    # The site report is made from the database, every page's own report when the page was last
    # reconciled: after one page changed, each says what it says after a run from scratch.
    incremental, scratch = runs["reports"]
    assert set(incremental) == set(scratch) == {"report.md", *(f"pages/{doc}.md" for doc in runs["first"][0].documents)}
    assert incremental == scratch


def test_the_site_report_leads_with_the_unaccepted_discrepancies_then_every_page(runs):
    site = runs["reports"][0]["report.md"]
    assert site[0] == "# Reconciliation report: 6 pages"
    headings = [line for line in site if line.startswith("## ")]
    assert headings[0].startswith("## Discrepancies no baseline accepts (") and headings[1] == "## Every page (6)"
    pages = [line for line in site[site.index(headings[1]):] if "| pages/" in line]
    assert len(pages) == 6


def test_the_changed_page_gets_its_new_verdict(runs):
    _, after = runs["after_page"]
    enrollment = [r for r in _by_document(after["rows"])[runs["page"]] if r[1] == "table:1:enrollment"]
    assert [r[6] for r in enrollment] == ["mismatch"]


def test_a_record_changed_reconciles_exactly_the_pages_citing_it(runs):
    summary, _ = runs["after_record"]
    assert runs["citing"]  # the record is cited by at least the page it was taken from
    assert sorted(summary.documents) == runs["citing"]
    assert summary.parsed == 1


def test_nothing_changed_does_no_work(runs, site, prefect_harness):
    from pipeline.orchestrate.flows import trialrecon_flow

    summary = trialrecon_flow(documents=[site.pages], output_dir=runs["output"], snapshots_dir=site.store)
    assert (summary.work_done, summary.documents) == (False, [])
