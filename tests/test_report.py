import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from selectolax.lexbor import LexborHTMLParser

from pipeline.models import (
    Evidence, ExtractedDocument, ReconciliationRow, SourceDocument, TrialRecord,
)
from pipeline.report import registry_page_url, render_html, render_markdown


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
    summary = {tr.attributes["data-verdict"]: tr.css_first("td").text() for tr in tree.css("#summary tr[data-verdict]")}
    assert summary == {"mismatch": "1", "partial": "0", "unverifiable": "1", "match": "1"}
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
    assert [a.attributes["href"] for a in tree.css("a") if not a.attributes["href"].startswith("https://")] == []
    assert "javascript:" not in {a.attributes["href"].lower() for a in tree.css("a")}
    assert "<script>alert(9)" not in html


def test_html_report_links_an_https_source_url():
    tree = LexborHTMLParser(render_html([_doc()], ROWS, RECORDS))
    assert "https://example.org/drug/" in {a.attributes["href"] for a in tree.css("p.muted a")}


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
