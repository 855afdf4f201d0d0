"""The reconciliation report for people: ``output/report.html`` (self-contained) and ``report.md``.

Pure rendering: the caller passes the extracted documents, the reconciliation rows and the
registry records; nothing here reads files or the network.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from html import escape
from urllib.parse import quote, urlsplit

from pipeline.models import ExtractedDocument, ReconciliationRow, TrialRecord

VERDICT_ORDER = ("mismatch", "partial", "unverifiable", "match")
VERDICT_COLORS = {
    "match": "#1a7f37",
    "partial": "#9a6700",
    "mismatch": "#cf222e",
    "unverifiable": "#6e7781",
}
PAGE_WIDE = "(page-wide)"


def registry_page_url(registry: str | None, trial_id: str | None) -> str | None:
    """The public web page of a registry record (what a reader clicks), not the API URL."""
    if not registry or not trial_id:
        return None
    tid = quote(trial_id)
    return {
        "ctgov": f"https://clinicaltrials.gov/study/{tid}",
        "ctis": f"https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&EUCT={tid}",
        "euctr": f"https://www.clinicaltrialsregister.eu/ctr-search/search?query={tid}",
    }.get(registry)


def _by_trial(rows: Sequence[ReconciliationRow]) -> dict[str, list[ReconciliationRow]]:
    grouped: dict[str, list[ReconciliationRow]] = defaultdict(list)
    for row in rows:
        grouped[row.trial_id or PAGE_WIDE].append(row)
    return dict(sorted(grouped.items(), key=lambda kv: (kv[0] == PAGE_WIDE, kv[0])))


def _titles(records: Sequence[TrialRecord]) -> dict[str, str]:
    titles: dict[str, str] = {}
    for record in records:
        if record.title and record.trial_id not in titles:
            titles[record.trial_id] = record.title
    return titles


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:75rem;color:#1f2328;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;vertical-align:top;text-align:left}
th{background:#f6f8fa}
.verdict{color:#fff;border-radius:.3rem;padding:.05rem .45rem;font-weight:600;white-space:nowrap}
.summary td{text-align:right}.muted{color:#6e7781}.evidence{font-size:.85em;color:#57606a}
"""


def _link(url: str, text: str) -> str:
    """``<a href=url>text</a>`` for an http(s) URL; any other URL (``javascript:``, ``data:``) as text only.

    Browsers drop control characters and surrounding spaces before they read a scheme
    ("java\tscript:"), so a URL holding any is not a link either.
    """
    if url == url.strip() and url.isprintable() and urlsplit(url).scheme.lower() in ("http", "https"):
        return f'<a href="{escape(url)}">{escape(text)}</a>'
    return escape(text)


def _badge(verdict: str) -> str:
    return f'<span class="verdict verdict-{verdict}" style="background:{VERDICT_COLORS[verdict]}">{verdict}</span>'


def render_html(
    docs: Sequence[ExtractedDocument], rows: Sequence[ReconciliationRow], records: Sequence[TrialRecord]
) -> str:
    """One self-contained HTML page: summary counts, then a section per trial."""
    titles = _titles(records)
    counts = Counter(r.verdict for r in rows)
    doc_names = ", ".join(escape(d.document.title) for d in docs)
    out = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>trialrecon report: {doc_names}</title><style>{_CSS}</style></head><body>",
        f"<h1>Reconciliation report: {doc_names}</h1>",
    ]
    for d in docs:
        out.append(
            f'<p class="muted">Source: {_link(d.document.source_url, d.document.source_url)}'
            f" (sha256 {escape(d.document.sha256[:12])}…)</p>"
        )
    out.append('<table class="summary" id="summary"><tr><th>verdict</th><th>comparisons</th></tr>')
    for verdict in VERDICT_ORDER:
        out.append(f'<tr data-verdict="{verdict}"><th>{_badge(verdict)}</th><td>{counts.get(verdict, 0)}</td></tr>')
    out.append(f"<tr><th>total</th><td>{len(rows)}</td></tr></table>")

    for trial_id, trial_rows in _by_trial(rows).items():
        anchor = escape(trial_id.replace(" ", "-"))
        title = titles.get(trial_id)
        tc = Counter(r.verdict for r in trial_rows)
        out.append(f'<section class="trial" id="trial-{anchor}"><h2>{escape(trial_id)}</h2>')
        if title:
            out.append(f"<p>{escape(title)}</p>")
        out.append('<p class="muted">' + ", ".join(f"{tc[v]} {v}" for v in VERDICT_ORDER if tc[v]) + "</p>")
        out.append("<table><tr><th>claim</th><th>field</th><th>stated</th><th>registry</th>"
                   "<th>verdict</th><th>why</th></tr>")
        for row in sorted(trial_rows, key=lambda r: (VERDICT_ORDER.index(r.verdict), r.claim_id, r.field)):
            ev = row.evidence
            link = registry_page_url(row.registry, ev.registry_trial_id)
            where = escape(row.registry or "")
            if link:
                where = _link(link, f"{row.registry or ''} {ev.registry_trial_id or ''}")
            evidence = " · ".join(
                escape(x) for x in (ev.snapshot_path, ev.field_path, ev.provenance, (ev.snapshot_sha256 or "")[:12]) if x
            )
            out.append(
                f'<tr class="claim" data-verdict="{row.verdict}"><td>{escape(row.claim_id)}</td><td>{escape(row.field)}</td>'
                f"<td>{escape(_stated(row) or '')}</td><td>{escape(row.registry_value or '')}"
                f'<div class="evidence">{where} {evidence}</div></td><td>{_badge(row.verdict)}</td>'
                f"<td>{escape(row.detail or '')}<div class=\"evidence\">{escape(row.rule)}</div></td></tr>"
            )
        out.append("</table></section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _stated(row: ReconciliationRow) -> str | None:
    """The stated cell: what the page states, or for a registry-vs-registry row the compared registry's value."""
    if row.compared_registry is not None:
        return f"{row.compared_registry}: {row.compared_value or '(none)'}"
    return row.stated_value


def _md(text: str | None) -> str:
    """Text as Markdown shows it, never as markup: most viewers render Markdown as HTML, so a
    page's or a registry's ``<script>`` or ``<img onerror>`` is escaped, and so are ``[`` and ``]``
    (a link) and ``|`` (a table cell)."""
    escaped = escape(text or "", quote=False)
    return escaped.replace("[", "\\[").replace("]", "\\]").replace("|", "\\|").replace("\n", " ")


def render_markdown(
    docs: Sequence[ExtractedDocument], rows: Sequence[ReconciliationRow], records: Sequence[TrialRecord]
) -> str:
    """The same report in Markdown: summary, then each trial's discrepancies and checks."""
    titles = _titles(records)
    counts = Counter(r.verdict for r in rows)
    lines = [f"# Reconciliation report: {_md(', '.join(d.document.title for d in docs))}", ""]
    lines += ["| verdict | comparisons |", "|---|---|"]
    lines += [f"| {v} | {counts.get(v, 0)} |" for v in VERDICT_ORDER]
    lines += [f"| total | {len(rows)} |", ""]
    for trial_id, trial_rows in _by_trial(rows).items():
        lines += [f"## {_md(trial_id)}", ""]
        if titles.get(trial_id):
            lines += [_md(titles[trial_id]), ""]
        lines += ["| claim | field | stated | registry | verdict | why | evidence |", "|---|---|---|---|---|---|---|"]
        for row in sorted(trial_rows, key=lambda r: (VERDICT_ORDER.index(r.verdict), r.claim_id, r.field)):
            ev = row.evidence
            evidence = " ".join(x for x in (row.registry, ev.snapshot_path, ev.field_path) if x)
            lines.append(
                f"| {_md(row.claim_id)} | {_md(row.field)} | {_md(_stated(row))} | {_md(row.registry_value)} "
                f"| **{row.verdict}** | {_md(row.detail)} | {_md(evidence)} |"
            )
        lines.append("")
    return "\n".join(lines)
