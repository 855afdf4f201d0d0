import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from selectolax.lexbor import LexborHTMLParser

from pipeline.models import (
    Evidence, ExtractedDocument, ReconciliationRow, SourceDocument, TrialRecord,
)
from pipeline.outputs.report import registry_page_url, render_html, render_markdown


def _doc():
    return ExtractedDocument(
        document=SourceDocument(document_id="drug", source_url="https://example.org/drug/", title="Drug <X>",
                                sha256="ab" * 32, extracted_at=datetime(2026, 1, 1, tzinfo=UTC)),
        trials=[], claims=[], ongoing=[], references=[], glossary=[])


def _row(trial, verdict, field="phase", stated="Phase 2", registry_value="PHASE3"):
    return ReconciliationRow(
        document_id="drug", claim_id=f"table:1:{field}", trial_id=trial, field=field, stated_value=stated,
        registry_value=registry_value, registry="ctgov", verdict=verdict, rule="phase.set_equal",
        detail="<b>not bold</b>",
        evidence=Evidence(snapshot_path=f"ctgov/{trial}.json", snapshot_sha256="cd" * 32,
                          provenance="reconstructed", registry_trial_id=trial,
                          field_path="protocolSection.designModule.phases"))


ROWS = [_row("NCT00000001", "mismatch"), _row("NCT00000001", "match", field="status"),
        _row("NCT00000002", "unverifiable")]
RECORDS = [TrialRecord(trial_id="NCT00000001", registry="ctgov", title="A <script>alert(1)</script> trial")]


def test_html_report_counts_verdicts_and_has_a_section_per_trial():
    tree = LexborHTMLParser(render_html([_doc()], ROWS, RECORDS))
    summary = {div.attributes["data-verdict"]: div.css_first("b").text() for div in tree.css("#summary [data-verdict]")}
    assert summary == {"mismatch": "1", "partial": "0", "unverifiable": "1", "match": "1", "total": "3"}
    assert [s.attributes["id"] for s in tree.css("section.trial")] == ["trial-NCT00000001", "trial-NCT00000002"]


def test_html_report_escapes_every_value():
    html = render_html([_doc()], ROWS, RECORDS)
    assert "<script>" not in html and "<b>not bold</b>" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize("url", ["javascript:alert(9)//", "JavaScript:alert(9)//", " javascript:alert(9)",
                                 "java\tscript:alert(9)", "data:text/html,<script>alert(9)</script>",
                                 "vbscript:msgbox(9)", "//evil.example/x"])
def test_html_report_renders_a_source_url_that_is_not_http_as_text_never_a_link(url):
    doc = _doc()
    doc = doc.model_copy(update={"document": doc.document.model_copy(update={"source_url": url})})
    html = render_html([doc], ROWS, RECORDS)
    tree = LexborHTMLParser(html)
    # in-page anchors (#...) aside, every link is https
    assert [a.attributes["href"] for a in tree.css("a") if not a.attributes["href"].startswith(("https://", "#"))] == []
    assert "javascript:" not in {a.attributes["href"].lower() for a in tree.css("a")}
    assert "<script>alert(9)" not in html


def test_html_report_links_an_https_source_url():
    tree = LexborHTMLParser(render_html([_doc()], ROWS, RECORDS))
    assert "https://example.org/drug/" in {a.attributes["href"] for a in tree.css(".meta a")}


def test_markdown_report_escapes_html_and_links_from_page_text_and_registry_titles():
    doc = _doc()
    rows = [_row("NCT00000001", "mismatch", stated='<img src=x onerror="alert(9)"> [x](javascript:alert(9))')]
    records = [TrialRecord(trial_id="NCT00000001", registry="ctgov", title="A <script>alert(1)</script> trial")]
    md = render_markdown([doc], rows, records)
    assert "<script" not in md and "<img" not in md and "<b>" not in md and "<X>" not in md
    assert "A &lt;script&gt;alert(1)&lt;/script&gt; trial" in md
    assert '&lt;img src=x onerror="alert(9)"&gt; \\[x\\](javascript:alert(9))' in md
    assert "# Reconciliation report: Drug &lt;X&gt;" in md


def test_html_report_links_to_the_registry_record():
    tree = LexborHTMLParser(render_html([_doc()], ROWS, RECORDS))
    links = {a.attributes["href"] for a in tree.css("section.trial a")}
    assert "https://clinicaltrials.gov/study/NCT00000001" in links


@pytest.mark.parametrize(("registry", "trial", "url"), [
    ("ctgov", "NCT00000001", "https://clinicaltrials.gov/study/NCT00000001"),
    ("ctis", "2023-000001-01-00", "https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&EUCT=2023-000001-01-00"),
    ("euctr", "2019-003847-31", "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2019-003847-31"),
    ("document", "NCT00000001", None),
])
def test_registry_page_url(registry, trial, url):
    assert registry_page_url(registry, trial) == url


def test_markdown_report_lists_each_comparison_with_its_evidence():
    md = render_markdown([_doc()], ROWS, RECORDS)
    assert "| mismatch | 1 |" in md
    assert "| table:1:phase | phase | Phase 2 | PHASE3 | **mismatch** |" in md
    assert "ctgov/NCT00000001.json" in md


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
def test_html_report_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    assert browser, "Debian's chromium is required (`make test` installs it)"
    page = tmp_path / "report.html"
    page.write_text(render_html([_doc()], ROWS, RECORDS), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    tree = LexborHTMLParser(dom)
    assert tree.css_first("title").text() == "trialrecon report: Drug <X>"
    assert len(tree.css("tr.claim")) == 3
    assert tree.css_first('tr.claim[data-verdict="mismatch"] .verdict').text() == "mismatch"
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000


# -- the embedded page's report ---------------------------------------------------------------------

from conftest import REPO  # noqa: E402

MEASURE = """<script>
(function () {
  const de = document.documentElement;
  const box = (el) => { if (!el) return null; const b = el.getBoundingClientRect();
    return {top: b.top + scrollY, bottom: b.bottom + scrollY, left: b.left, right: b.right}; };
  const widest = Math.max(...[...document.body.querySelectorAll('*')].map((el) => el.getBoundingClientRect().right));
  const hrefs = (sel) => [...document.querySelectorAll(sel)].map((a) => a.getAttribute('href'));
  const cells = hrefs('#matrix a.cell');
  const findingLinks = hrefs('#findings .finding a[href^="#"], #cross .finding a[href^="#"]');
  const out = {
    innerWidth: innerWidth, innerHeight: innerHeight, scrollWidth: de.scrollWidth, widest: widest,
    summary: box(document.getElementById('summary')),
    firstFinding: box(document.querySelector('#findings .finding')),
    firstFindingText: (document.querySelector('#findings .finding') || {}).textContent,
    matrixRows: [...document.querySelectorAll('#matrix g.mrow')].map((g) => g.getAttribute('data-trial')),
    cells: cells.length,
    missing: [...cells, ...findingLinks].filter((h) => !document.getElementById(h.slice(1))),
  };
  const pre = document.createElement('pre'); pre.id = 'measure'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


@pytest.fixture(scope="module")
def embedded_report():
    """The report of the embedded page, as a run writes it (the baseline's checks included)."""
    from pipeline import stages
    from pipeline.paths import DEFAULT_BASELINE_DIR
    from pipeline.load.rows import RunInfo
    from pipeline.store.snapshots import SnapshotStore

    store = SnapshotStore(REPO / "snapshots")
    docs = stages.extract_documents(stages.default_documents(store))
    records = stages.load_records(store)
    rows = stages.reconcile_documents(docs, records)
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    checks = stages.check_documents(rows, stages.load_baselines(docs, DEFAULT_BASELINE_DIR))
    trials = stages.describe_trials(docs, records)
    inputs = stages.ReportInputs(RunInfo("20261201T060000-abc123", now, now), docs, rows,
                                 stages.page_inputs(docs, records), trials, checks, stages.record_provenance(records))
    doc, page_rows, page_records, context = stages.page_report_context(inputs, 0)
    return {"html": render_html([doc], page_rows, page_records, context), "rows": rows,
            "trials": [t.trial_id for described in trials for t in described.trials]}


def _flags(tmp_path):
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}"]


def test_embedded_report_leads_with_the_run_and_the_findings(embedded_report):
    tree = LexborHTMLParser(embedded_report["html"])
    meta = tree.css_first(".meta").text()
    assert "20261201T060000-abc123" in meta and "2026-12-01 06:00 UTC" in meta
    assert "https://clinicaltrials.eu/drug/aldesleukin/" in meta and "sha256 " in meta
    assert tree.css_first("#provenance").text() == "registry records: 0 captured, 20 reconstructed"
    sections = [s.attributes["id"] for s in tree.css("body > section")]
    assert sections == ["findings", "cross", "matrix", "details"]
    findings = tree.css("#findings .finding")
    assert len(findings) == sum(1 for r in embedded_report["rows"] if r.is_finding)
    # the whole trial's largest gap first: 810 stated, 670 in ClinicalTrials.gov; CTIS's 280 counts
    # the EEA only, says so, and comes after the whole trials' figures
    values = [f.css_first(".values").text() for f in findings]
    assert values[0].endswith("ClinicalTrials.gov: 670") and "NCT05727904" in findings[0].text()
    [eea] = [i for i, v in enumerate(values) if v.endswith("CTIS (EEA only): 280")]
    assert all("(EEA only)" not in v for v in values[:eea]) and "enrollment" in findings[eea - 1].text()
    assert "Summary table, row 5: NCT05727904" in findings[0].css_first("blockquote").text()
    assert all(f.css_first(".accepted, .unaccepted") for f in findings)


def test_accepted_discrepancies_show_the_baseline_reason_in_the_detail(embedded_report):
    tree = LexborHTMLParser(embedded_report["html"])
    row = tree.css_first('#trial-NCT05727904 tr.claim[data-verdict="mismatch"]')
    assert row.css_first(".accepted").text().startswith("Accepted by the baseline: ")


def test_matrix_links_every_cell_to_its_detail_row(embedded_report):
    tree = LexborHTMLParser(embedded_report["html"])
    ids = {n.attributes["id"] for n in tree.css("[id]")}
    cells = tree.css("#matrix a.cell")
    assert cells and all(c.attributes["href"][1:] in ids for c in cells)
    assert [g.attributes["data-trial"] for g in tree.css("#matrix g.mrow")] == embedded_report["trials"]


def test_html_report_links_only_http_urls():
    doc = _doc().model_copy(update={"document": _doc().document.model_copy(
        update={"source_url": "javascript:alert(1)"})})
    tree = LexborHTMLParser(render_html([doc], ROWS, RECORDS))
    hrefs = [a.attributes["href"] for a in tree.css("a")]
    assert hrefs and all(h.startswith(("https://", "http://", "#")) for h in hrefs)
    assert "javascript:alert(1)" in tree.css_first(".meta").text()


@pytest.mark.browser
def test_embedded_report_in_chromium_at_1280_px(embedded_report, tmp_path):
    import json

    browser = _chromium()
    assert browser, "Debian's chromium is required (.ci/run installs it)"
    page = tmp_path / "report.html"
    page.write_text(embedded_report["html"].replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = subprocess.run([browser, *_flags(tmp_path), "--window-size=1280,800", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    m = json.loads(LexborHTMLParser(dom).css_first("#measure").text())
    assert m["innerWidth"] == 1280
    assert m["scrollWidth"] <= m["innerWidth"] and m["widest"] <= m["innerWidth"]  # no sideways scrolling
    # the first screen shows the verdict counts and the first finding, whole
    assert m["summary"]["bottom"] <= m["innerHeight"]
    assert m["firstFinding"]["bottom"] <= m["innerHeight"] and "810" in m["firstFindingText"]
    assert "670" in m["firstFindingText"]
    assert m["matrixRows"] == embedded_report["trials"]  # one row per trial
    assert m["cells"] > len(m["matrixRows"]) and m["missing"] == []  # every cell and finding link lands
    # a screenshot for people to look at
    shot = REPO / "output" / "report-1280.png"
    shot.parent.mkdir(exist_ok=True)
    clean = tmp_path / "clean.html"
    clean.write_text(embedded_report["html"], encoding="utf-8")
    subprocess.run([browser, *_flags(tmp_path), f"--screenshot={shot}", "--window-size=1280,800", clean.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000


def test_markdown_report_escapes_html_and_lists_findings_first():
    md = render_markdown([_doc()], ROWS, RECORDS)
    assert "<b>" not in md and "&lt;b&gt;not bold&lt;/b&gt;" in md
    assert md.index("## Findings") < md.index("## NCT00000001")


# -- the site report (an output of several pages) ----------------------------------------------------


def _summary(doc_id, title, unaccepted=(), accepted=(), report="auto"):
    from pipeline.outputs.baseline import CheckResult
    from pipeline.outputs.report import PageSummary

    counts = {"mismatch": len(unaccepted) + len(accepted), "partial": 0, "unverifiable": 0, "match": 3}
    return PageSummary(doc_id, title, f"https://clinicaltrials.eu/drug/{doc_id}/",
                       CheckResult(unaccepted=list(unaccepted), accepted=list(accepted), counts=counts),
                       f"pages/{doc_id}.html" if report == "auto" else report)


def _site_row(doc_id, trial, stated="810", registry_value="670"):
    return ReconciliationRow(
        document_id=doc_id, claim_id="table:1:enrollment", trial_id=trial, field="enrollment", stated_value=stated,
        registry_value=registry_value, registry="ctgov", verdict="mismatch", rule="enrollment.equal",
        evidence=Evidence())


def test_site_report_leads_with_the_unaccepted_discrepancies_of_every_page_then_ranks_the_pages():
    from pipeline.outputs.report import SiteOverview, render_site_html

    site = SiteOverview([
        _summary("calm", "Calm", accepted=[_site_row("calm", "NCT00000009")]),
        _summary("busy", "Busy", unaccepted=[_site_row("busy", "NCT00000001"), _site_row("busy", "NCT00000002")]),
        _summary("some", "Some", unaccepted=[_site_row("some", "NCT00000003")]),
    ], run_id="20261201T060000-abc123")
    tree = LexborHTMLParser(render_site_html(site))
    assert [s.attributes["id"] for s in tree.css("body > section")] == ["unaccepted", "pages"]
    shown = [f.attributes["data-document"] for f in tree.css("#unaccepted .finding")]
    assert sorted(shown) == ["busy", "busy", "some"]  # the accepted one of "calm" is not among them
    assert [tr.attributes["data-document"] for tr in tree.css("#pages tr[data-document]")] == ["busy", "some", "calm"]
    assert tree.css_first('#summary [data-count="findings"]').text() == "4findings · 3 unaccepted"
    links = {a.attributes["href"] for a in tree.css("#unaccepted a")}
    assert "pages/busy.html#d-NCT00000001-enrollment" in links


def test_site_report_shows_at_most_the_limit_of_discrepancies_and_says_how_many_more():
    from pipeline.outputs.report import SiteOverview, render_site_html, render_site_markdown

    rows = [_site_row("busy", f"NCT{n:08d}") for n in range(5)]
    site = SiteOverview([_summary("busy", "Busy", unaccepted=rows)])
    tree = LexborHTMLParser(render_site_html(site, shown=2))
    assert len(tree.css("#unaccepted .finding")) == 2
    assert "and 3 more" in tree.css_first("#unaccepted .note").text()
    assert "and 3 more: see each page's report." in render_site_markdown(site, shown=2)


def test_site_report_escapes_page_titles_and_links_only_plain_relative_report_addresses():
    from pipeline.outputs.report import SiteOverview, render_site_html

    site = SiteOverview([
        _summary("evil", "<script>alert(1)</script>", unaccepted=[_site_row("evil", "NCT00000001")],
                 report="javascript:alert(1)"),
        _summary("up", "Up", report="../../etc/passwd"),
    ])
    html = render_site_html(site)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    hrefs = [a.attributes["href"] for a in LexborHTMLParser(html).css("a")]
    assert not any(h.startswith("javascript:") or ".." in h for h in hrefs)


def test_each_page_report_is_written_before_the_next_is_rendered(tmp_path):
    from pipeline import stages

    def rendered():
        for n in range(3):
            if n:  # the page before is on disk already: a site's reports are never all held at once
                assert (tmp_path / "pages" / f"page-{n - 1}.md").read_text() == f"md {n - 1}"
            yield f"page-{n}", f"<p>{n}</p>", f"md {n}"

    written = stages.write_page_reports(rendered(), tmp_path)
    assert [p.name for p in written] == [f"page-{n}{s}" for n in range(3) for s in (".html", ".md")]


def test_a_part_of_a_runs_report_inputs_renders_its_pages_as_the_whole_does():
    # The flow sends each rendering task its own pages' part, not every page's rows and records.
    from dataclasses import replace

    from pipeline import stages
    from pipeline.load.rows import RunInfo
    from pipeline.paths import DEFAULT_BASELINE_DIR
    from pipeline.store.snapshots import SnapshotStore

    store = SnapshotStore(REPO / "snapshots")
    [page] = stages.read_pages(stages.default_documents(store))
    twin = replace(page, source=replace(page.source, source_url="https://example.org/another-copy/"))
    docs = stages.extract_pages([page, twin])  # two pages under one title: two document ids
    records = stages.load_records(store)
    inputs_ = stages.page_inputs(docs, records)
    rows = stages.reconcile_pages(docs, inputs_)
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    whole = stages.ReportInputs(RunInfo("r", now, now), docs, rows, inputs_, stages.describe_trials(docs, records, inputs_),
                                stages.check_documents(rows, stages.load_baselines(docs, DEFAULT_BASELINE_DIR)),
                                stages.record_provenance(records))
    part = whole.part([1])
    assert {r.document_id for r in part.rows} == {docs[1].document.document_id} and set(part.checks) <= {docs[1].document.document_id}
    assert list(stages.render_page_reports(part)) == list(stages.render_page_reports(whole, [1]))
