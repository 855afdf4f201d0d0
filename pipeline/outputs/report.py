"""The reconciliation report for people: ``output/report.html`` (self-contained) and ``report.md``.

A page's report (:func:`render_html`, :func:`render_markdown`), findings first: the run and its
inputs at the top, then the page's facts a registry contradicts, then the registries that
disagree with each other, then a trial x field matrix coloured by verdict (inline SVG, each cell
a link to its detail), then the detail per trial with the baseline's reason beside each accepted
discrepancy.

An output of several pages (a site) is reported in two levels: each page's report as above, and
a site report (:func:`render_site_html`, :func:`render_site_markdown`) that leads with the
discrepancies no baseline accepts, across every page, then lists every page with its counts and
a link to its report. The site report is made from counts and discrepancies only, so it costs
the same whether one page or every page was reconciled again.

Pure rendering: the caller passes the extracted documents, the reconciliation rows, the registry
records and a :class:`ReportContext`; nothing here reads files or the network. Every value is
escaped, and only http(s) URLs become links.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipeline.constants import VERDICT_ORDER, registry_page_url
from pipeline.models import ExtractedDocument, ReconciliationRow, TrialRecord
from pipeline.reconcile import row_order

if TYPE_CHECKING:
    from pipeline.outputs.baseline import CheckResult
    from pipeline.reconcile.entities import PageTrial

VERDICT_COLORS = {
    "match": "#1a7f37",
    "partial": "#9a6700",
    "mismatch": "#cf222e",
    "unverifiable": "#8c959f",
}
# A matrix cell shows the verdict that matters most among its rows.
_CELL_PRIORITY = ("mismatch", "partial", "match", "unverifiable")
PAGE_WIDE = "(page-wide)"
FIELD_ORDER = ("phase", "condition", "status", "enrollment", "intervention", "primary_endpoint", "design",
               "population", "countries", "country_count", "title", "url")
# Findings lead with the figures and states a reader checks first.
FINDING_FIELDS = ("enrollment", "status", "phase", "condition", "countries", "country_count", "intervention",
                  "primary_endpoint", "design", "population", "title", "url")
FIELD_LABELS = {"primary_endpoint": "endpoint", "country_count": "country n", "url": "reference"}
REGISTRY_NAMES = {"ctgov": "ClinicalTrials.gov", "ctis": "CTIS", "euctr": "EU CTR", "cteu": "clinicaltrials.eu",
                  "document": "the page"}


@dataclass(frozen=True)
class ReportContext:
    """What the report says about the run beside the rows: its id and date, where the records
    came from, each document's check against its baseline, and the page's trials."""

    run_id: str | None = None
    generated_at: datetime | None = None
    record_provenance: dict[str, int] = field(default_factory=dict)
    checks: dict[str, CheckResult] = field(default_factory=dict)
    trials: Sequence[PageTrial] = ()
    statements: dict[tuple[str, str], str] = field(default_factory=dict)  # (document_id, claim_id) -> words
    site_report: str | None = None  # the site report's address from this page's report, when there is one


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an http(s) URL with a host; None for anything else (javascript:, data:,
    file:, relative), which the report shows as text, never as a link.

    Browsers drop control characters and surrounding spaces before they read a scheme
    ("java\tscript:"), so a URL holding any is not a link either.
    """
    if not url or url != url.strip() or not url.isprintable():
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


_NOT_IN_ANCHOR = re.compile(r"[^A-Za-z0-9]+")


@lru_cache(maxsize=1 << 14)
def anchor(*parts: str) -> str:
    """An HTML id made of ``parts``: letters, digits and '-' only (cached: a site's reports link the
    same trials and fields page after page)."""
    return "-".join(_NOT_IN_ANCHOR.sub("-", p).strip("-") for p in parts)


def _link(url: str | None, text: str) -> str:
    safe = safe_url(url)
    return f'<a href="{escape(safe)}">{escape(text)}</a>' if safe else escape(text)


def _badge(verdict: str) -> str:
    return f'<span class="verdict v-{verdict}">{verdict}</span>'


def _show(value: str | None) -> str:
    return "—" if value is None else value


def _stated(row: ReconciliationRow) -> str | None:
    """What the row sets against the registry's value: the page's, or in a registry-vs-registry
    row the compared registry's."""
    return row.compared_value if row.compared_registry is not None else row.stated_value


def _enrollment_gap(row: ReconciliationRow) -> float:
    try:
        return abs(float(_stated(row) or "") - float(row.registry_value or ""))
    except ValueError:
        return 0.0


def _field_rank(name: str) -> int:
    return FIELD_ORDER.index(name) if name in FIELD_ORDER else len(FIELD_ORDER)


def enrollment_scopes(records: Iterable[TrialRecord]) -> dict[tuple[str, str], str]:
    """(registry, record id) -> the scope of the record's enrollment figure, where it is not the whole trial."""
    return {(r.registry, r.trial_id): r.enrollment_scope for r in records
            if r.enrollment_scope not in (None, "whole_trial")}


def _part_scope(row: ReconciliationRow, scopes: dict[tuple[str, str], str]) -> str | None:
    """The part of the trial the registry's enrollment figure counts (eea, member_state), if only a part."""
    if row.field != "enrollment" or row.registry is None or row.evidence.registry_trial_id is None:
        return None
    return scopes.get((row.registry, row.evidence.registry_trial_id))


def order_findings(
    rows: Iterable[ReconciliationRow], checks: dict[str, CheckResult], scopes: dict[tuple[str, str], str] | None = None,
) -> list[ReconciliationRow]:
    """Unaccepted before accepted, mismatch before partial, the page's main fields first, a whole
    trial's figure before a part's (``scopes``: see :func:`enrollment_scopes`), the largest gap first."""
    def key(row: ReconciliationRow) -> tuple:
        check = checks.get(row.document_id)
        accepted = check is not None and check.reason_for(row) is not None
        rank = FINDING_FIELDS.index(row.field) if row.field in FINDING_FIELDS else len(FINDING_FIELDS)
        return (accepted, row.verdict != "mismatch", rank, _part_scope(row, scopes or {}) is not None,
                -_enrollment_gap(row), row.trial_id or "", row.claim_id, row.registry or "")
    return sorted(rows, key=key)


def _titles(records: Sequence[TrialRecord]) -> dict[str, str]:
    titles: dict[str, str] = {}
    for record in records:
        if record.title and record.trial_id not in titles:
            titles[record.trial_id] = record.title
    return titles


def _trial_ids(rows: Sequence[ReconciliationRow], trials: Sequence[PageTrial]) -> list[str]:
    """The matrix's rows: the page's trials (in the page's order), then any other trial a row names."""
    ids = list(dict.fromkeys(t.trial_id for t in trials))
    ids += sorted({r.trial_id for r in rows if r.trial_id} - set(ids))
    return ids


def _cell_verdict(rows: Iterable[ReconciliationRow]) -> str:
    verdicts = {r.verdict for r in rows}
    return next(v for v in _CELL_PRIORITY if v in verdicts)


_CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1180px;color:#1f2328;
  padding:1.2rem 1.5rem 3rem;overflow-wrap:anywhere}
h1{font-size:1.55rem;margin:.2rem 0 .3rem}h2{font-size:1.25rem;margin:2rem 0 .6rem;padding-bottom:.25rem;
  border-bottom:2px solid #d0d7de}h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
a{color:#0969da}.muted{color:#57606a}.small{font-size:.85em}
.meta{display:flex;flex-wrap:wrap;gap:.2rem 1.4rem;margin:.2rem 0 .8rem;font-size:.9em;color:#57606a}
.meta b{color:#1f2328;font-weight:600}
.counts{display:flex;flex-wrap:wrap;gap:.6rem;margin:.4rem 0 .6rem}
.count{border-radius:.45rem;padding:.35rem .8rem;color:#fff;min-width:7.5rem}
.count b{display:block;font-size:1.5rem;line-height:1.1}
.count.findings{background:#fff;color:#1f2328;border:2px solid #cf222e}
.v-match{background:#1a7f37}.v-partial{background:#9a6700}.v-mismatch{background:#cf222e}.v-unverifiable{background:#8c959f}
.verdict{color:#fff;border-radius:.3rem;padding:.05rem .45rem;font-weight:600;font-size:.85em;white-space:nowrap}
.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:.4rem;padding:.4rem .7rem;font-size:.9em;margin:.5rem 0}
.finding{border:1px solid #d0d7de;border-left:6px solid #cf222e;border-radius:.4rem;padding:.55rem .8rem;margin:.55rem 0;
  break-inside:avoid}
.finding.partial{border-left-color:#9a6700}
.finding .head{display:flex;flex-wrap:wrap;gap:.3rem .8rem;align-items:baseline}
.finding .head .what{font-weight:600}
.finding blockquote{margin:.35rem 0;padding:.1rem .7rem;border-left:3px solid #d0d7de;color:#424a53}
.values{display:flex;flex-wrap:wrap;gap:.3rem 2rem;margin:.25rem 0;font-size:1.02em}
.values span b{font-size:1.1em}
.accepted{color:#1a7f37}.unaccepted{color:#cf222e;font-weight:600}
table{border-collapse:collapse;width:100%;table-layout:fixed;margin:.4rem 0 1rem;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:.25rem .4rem;vertical-align:top;text-align:left}
th{background:#f6f8fa}
tr:target,tr.target{outline:3px solid #0969da}
.matrix svg{max-width:100%;height:auto;display:block}
.legend{display:flex;gap:1rem;font-size:.85em;margin:.3rem 0}
.legend i{display:inline-block;width:.9em;height:.9em;border-radius:.15rem;margin-right:.3rem;vertical-align:-.1em}
.trial{break-inside:auto}
@media print{
  body{max-width:none;padding:0;font-size:10.5pt}
  h2{break-after:avoid}.finding,tr{break-inside:avoid}
  a{color:inherit;text-decoration:none}
  .count,.verdict,.v-match,.v-partial,.v-mismatch,.v-unverifiable{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def render_html(
    docs: Sequence[ExtractedDocument], rows: Sequence[ReconciliationRow], records: Sequence[TrialRecord],
    context: ReportContext | None = None,
) -> str:
    """One self-contained HTML page, findings first (see the module docstring)."""
    ctx = context or ReportContext()
    titles = _titles(records)
    names = ", ".join(d.document.title for d in docs)
    out = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>trialrecon report: {escape(names)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(names)}: what the page says, against the registries</h1>",
    ]
    if ctx.site_report:
        out.append(f'<p class="small"><a href="{escape(ctx.site_report)}">Every page of the site</a></p>')
    out += _header(docs, rows, ctx)
    scopes = enrollment_scopes(records)
    findings = order_findings([r for r in rows if r.is_finding], ctx.checks, scopes)
    cross = order_findings([r for r in rows if r.comparison == "registry_vs_registry"
                            and r.verdict in ("mismatch", "partial")], ctx.checks, scopes)
    out.append(f'<section id="findings"><h2>Findings: the page against the registries ({len(findings)})</h2>')
    if not findings:
        out.append("<p>No fact of the page is contradicted by a registry record.</p>")
    out += [_finding(r, ctx, _part_scope(r, scopes)) for r in findings]
    out.append(f'</section><section id="cross"><h2>The registries against each other ({len(cross)})</h2>')
    if not cross:
        out.append("<p>Where two registries hold the same trial, they agree.</p>")
    out += [_finding(r, ctx, _part_scope(r, scopes)) for r in cross]
    out.append("</section>")
    out += _matrix(rows, ctx)
    out += _details(rows, ctx, titles)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _header(docs: Sequence[ExtractedDocument], rows: Sequence[ReconciliationRow], ctx: ReportContext) -> list[str]:
    sources = [f"<span>source: {_link(d.document.source_url, d.document.source_url)} "
               f"(sha256 {escape(d.document.sha256[:12])})</span>" for d in docs]
    out = _html_meta(ctx.run_id, ctx.generated_at, sources, ctx.record_provenance)
    unaccepted = sum(len(c.unaccepted) for c in ctx.checks.values())
    out += _html_counts(Counter(r.verdict for r in rows), sum(1 for r in rows if r.is_finding),
                        unaccepted if ctx.checks else None)
    if ctx.record_provenance.get("reconstructed") and not ctx.record_provenance.get("captured"):
        out.append('<p class="note">No registry record was fetched: every record compared here is '
                   "<b>reconstructed</b> in the registry's format from public facts (see each snapshot's "
                   "source URLs), not captured from the registry.</p>")
    return out


def _html_meta(run_id: str | None, generated_at: datetime | None, sources: Sequence[str],
               provenance: dict[str, int]) -> list[str]:
    """The line under a report's title: the run, its date, the sources, the records' provenance."""
    out = ['<div class="meta">']
    if run_id:
        out.append(f"<span>run <b>{escape(run_id)}</b></span>")
    if generated_at:
        out.append(f"<span>{escape(generated_at.strftime('%Y-%m-%d %H:%M UTC'))}</span>")
    out += sources
    if provenance:
        out.append(f'<span id="provenance">registry records: <b>{provenance.get("captured", 0)}</b> captured, '
                   f'<b>{provenance.get("reconstructed", 0)}</b> reconstructed</span>')
    return [*out, "</div>"]


def _html_counts(counts: Counter[str], findings: int, unaccepted: int | None) -> list[str]:
    """The findings (and how many no baseline accepts, when checked) and the comparisons by verdict."""
    out = ['<div class="counts" id="summary">',
           f'<div class="count findings" data-count="findings"><b>{findings}</b>findings'
           + (f" · {unaccepted} unaccepted" if unaccepted is not None else "") + "</div>"]
    out += [f'<div class="count v-{verdict}" data-verdict="{verdict}"><b>{counts.get(verdict, 0)}</b>{verdict}</div>'
            for verdict in VERDICT_ORDER]
    out.append(f'<div class="count v-total" style="background:#424a53" data-verdict="total">'
               f"<b>{sum(counts.values())}</b>comparisons</div></div>")
    return out


def _registry_name(registry: str | None) -> str:
    return REGISTRY_NAMES.get(registry or "", registry or "registry")


def _evidence(row: ReconciliationRow, *, full: bool = True) -> str:
    """Where the registry value was read; ``full`` adds the sha256, the provenance and the link's
    own evidence (the detail tables keep to the record, the snapshot and the field)."""
    ev = row.evidence
    url = registry_page_url(row.registry, ev.registry_trial_id)
    parts = []
    if ev.registry_trial_id:
        parts.append(_link(url, f"{_registry_name(row.registry)} {ev.registry_trial_id}"))
    parts += [escape(x) for x in (ev.snapshot_path, ev.field_path) if x]
    if full:
        parts += [escape(x) for x in (ev.provenance,) if x]
        if ev.snapshot_sha256:
            parts.append(f"sha256 {escape(ev.snapshot_sha256[:12])}")
        if ev.link:
            parts.append(f"via {escape(ev.link)}")
    elif ev.link:
        parts.append("via " + escape(ev.link.split(" link ", 1)[0] + " link" if " link " in ev.link else ev.link))
    return " · ".join(parts)


def _acceptance(row: ReconciliationRow, ctx: ReportContext) -> str:
    check = ctx.checks.get(row.document_id)
    if check is None:
        return ""
    reason = check.reason_for(row)
    if reason is None:
        return '<div class="unaccepted">Not accepted by the baseline.</div>'
    return f'<div class="accepted small">Accepted by the baseline: {escape(reason)}</div>'


_SCOPE_WORDS = {"eea": "EEA only", "member_state": "one member state", "rest_of_world": "outside the EEA"}


def _finding(row: ReconciliationRow, ctx: ReportContext, part: str | None = None) -> str:
    words = ctx.statements.get((row.document_id, row.claim_id))
    detail_id = anchor("d", row.trial_id or PAGE_WIDE, row.field)
    if row.comparison == "registry_vs_registry":
        first = _registry_name(row.compared_registry)
        quote_html = ""
    else:
        first = "page"
        quote_html = f"<blockquote>{escape(words)}</blockquote>" if words else ""
    return (
        f'<div class="finding {row.verdict}" data-verdict="{row.verdict}">'
        f'<div class="head">{_badge(row.verdict)} <span class="what">'
        f'<a href="#{detail_id}">{escape(row.trial_id or PAGE_WIDE)}</a> · {escape(row.field)}</span>'
        f'<span class="muted small">{escape(row.claim_id)} · {escape(row.rule)}</span></div>'
        f"{quote_html}"
        f'<div class="values"><span>{first}: <b>{escape(_show(_stated(row)))}</b></span>'
        f"<span>{escape(_registry_name(row.registry))}"
        + (f" ({escape(_SCOPE_WORDS.get(part, part))})" if part else "")
        + f": <b>{escape(_show(row.registry_value))}</b></span></div>"
        f'<div class="small">{escape(row.detail or "")}</div>'
        f'<div class="small muted">evidence: {_evidence(row)}</div>'
        f"{_acceptance(row, ctx)}</div>"
    )


_CELL_W, _CELL_H, _LABEL_W, _HEAD_H = 80, 22, 160, 26


def _matrix(rows: Sequence[ReconciliationRow], ctx: ReportContext) -> list[str]:
    trials = _trial_ids(rows, ctx.trials)
    cells: dict[tuple[str, str], list[ReconciliationRow]] = defaultdict(list)
    for row in rows:
        if row.trial_id:
            cells[(row.trial_id, row.field)].append(row)
    fields = sorted({f for _, f in cells}, key=lambda f: (_field_rank(f), f))
    width = _LABEL_W + _CELL_W * len(fields)
    height = _HEAD_H + _CELL_H * len(trials)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="trial by field matrix, coloured by verdict" '
           'font-family="system-ui,sans-serif" font-size="11">']
    for i, name in enumerate(fields):
        x = _LABEL_W + i * _CELL_W + _CELL_W / 2
        svg.append(f'<text x="{x:.0f}" y="{_HEAD_H - 8}" text-anchor="middle" font-weight="600">'
                   f"{escape(FIELD_LABELS.get(name, name))}</text>")
    for j, trial in enumerate(trials):
        y = _HEAD_H + j * _CELL_H
        svg.append(f'<g class="mrow" data-trial="{escape(trial)}">'
                   f'<a href="#{anchor("trial", trial)}"><text x="4" y="{y + 15}" fill="#0969da">{escape(trial)}</text></a>')
        for i, name in enumerate(fields):
            here = cells.get((trial, name))
            if not here:
                continue
            verdict = _cell_verdict(here)
            x = _LABEL_W + i * _CELL_W
            tip = f"{trial} {name}: {verdict} ({len(here)} comparison{'s' if len(here) > 1 else ''})"
            svg.append(f'<a class="cell" data-verdict="{verdict}" href="#{anchor("d", trial, name)}">'
                       f'<rect x="{x + 2}" y="{y + 2}" width="{_CELL_W - 4}" height="{_CELL_H - 4}" rx="3" '
                       f'fill="{VERDICT_COLORS[verdict]}"><title>{escape(tip)}</title></rect></a>')
        svg.append("</g>")
    svg.append("</svg>")
    legend = "".join(f'<span><i style="background:{VERDICT_COLORS[v]}"></i>{v}</span>' for v in _CELL_PRIORITY)
    return ['<section id="matrix" class="matrix"><h2>Every comparison at a glance</h2>',
            '<p class="muted small">One row per trial the page speaks of, one column per field; a cell shows '
            "the weightiest verdict among its comparisons (mismatch, then partial, match, unverifiable) "
            "and links to them.</p>",
            f'<div class="legend">{legend}</div>', *svg, "</section>"]


def _details(rows: Sequence[ReconciliationRow], ctx: ReportContext, titles: dict[str, str]) -> list[str]:
    by_trial: dict[str, list[ReconciliationRow]] = defaultdict(list)
    for row in rows:
        by_trial[row.trial_id or PAGE_WIDE].append(row)
    trials = {t.trial_id: t for t in ctx.trials}
    order = [t for t in _trial_ids(rows, ctx.trials) if t in by_trial or t in trials]
    if PAGE_WIDE in by_trial:
        order.append(PAGE_WIDE)
    out = ['<section id="details"><h2>Detail per trial</h2>']
    for trial_id in order:
        trial = trials.get(trial_id)
        title = (trial.title if trial else None) or titles.get(trial_id)
        out.append(f'<section class="trial" id="{anchor("trial", trial_id)}"><h3>{escape(trial_id)}'
                   + (f' <span class="muted">{escape(title)}</span>' if title else "") + "</h3>")
        if trial is not None:
            out.append(_trial_facts(trial))
        here = by_trial.get(trial_id, [])
        if not here:
            out.append('<p class="muted small">No comparison.</p></section>')
            continue
        out.append('<table><colgroup><col style="width:10%"><col style="width:25%"><col style="width:12%">'
                   '<col style="width:22%"><col style="width:9%"><col style="width:22%"></colgroup>'
                   "<tr><th>field</th><th>the page says</th><th>stated</th><th>registry</th><th>verdict</th>"
                   "<th>why</th></tr>")
        seen: set[str] = set()
        previous = None  # a claim's words are not repeated on the rows just below
        for row in sorted(here, key=lambda r: (_field_rank(r.field), r.field, row_order(r))):
            row_id = anchor("d", trial_id, row.field)
            id_attr = f' id="{row_id}"' if row_id not in seen else ""
            seen.add(row_id)
            words = ctx.statements.get((row.document_id, row.claim_id)) or ""
            if row.claim_id == previous and words:
                words = "(same as above)"
            previous = row.claim_id
            out.append(
                f'<tr class="claim" data-verdict="{row.verdict}"{id_attr}><td>{escape(row.field)}'
                f'<div class="small muted">{escape(row.claim_id)}</div></td>'
                f'<td class="small">{escape(words)}</td><td>{escape(_show(_stated(row)))}</td>'
                f"<td>{escape(_show(row.registry_value))}<div class=\"small muted\">{_evidence(row, full=False)}</div></td>"
                f"<td>{_badge(row.verdict)}</td><td class=\"small\">{escape(row.detail or '')}"
                f'<div class="muted">{escape(row.rule)}</div>{_acceptance(row, ctx) if row.verdict in ("mismatch", "partial") else ""}</td></tr>'
            )
        out.append("</table></section>")
    out.append("</section>")
    return out


def _trial_facts(trial: PageTrial) -> str:
    ids = [f"{_registry_name(reg)} {_link(registry_page_url(reg, tid), tid)}"
           for reg, tid in (("ctgov", trial.ctgov_id), ("ctis", trial.ctis_id), ("euctr", trial.euctr_id)) if tid]
    status = {"record": "registry record", "candidate_only": "only a candidate (unconfirmed) record",
              "no_record": "no registry record"}.get(trial.record_status, trial.record_status)
    line = f"{escape(status)}" + (f" · numbers: {' · '.join(ids)}" if ids else "")
    line += f" · on the page: {escape(', '.join(trial.mentioned_in))}"
    if trial.missing_reason:
        line += (f'<br><span class="muted">why no record: <b>{escape(trial.missing_reason)}</b> '
                 f"{escape(trial.missing_detail or '')}</span>")
    return f'<p class="small">{line}</p>'


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _md(text: str | None) -> str:
    """Text as Markdown shows it, never as markup: most viewers render Markdown as HTML, so a
    page's or a registry's ``<script>`` is escaped, and so are ``[`` and ``]`` (a link) and ``|``
    (a table cell)."""
    escaped = escape(text or "", quote=False)
    return escaped.replace("[", "\\[").replace("]", "\\]").replace("|", "\\|").replace("\n", " ")


def render_markdown(
    docs: Sequence[ExtractedDocument], rows: Sequence[ReconciliationRow], records: Sequence[TrialRecord],
    context: ReportContext | None = None,
) -> str:
    """The same report in Markdown: run and counts, the findings, then each trial's comparisons."""
    ctx = context or ReportContext()
    titles = _titles(records)
    counts = Counter(r.verdict for r in rows)
    lines = [f"# Reconciliation report: {_md(', '.join(d.document.title for d in docs))}", ""]
    if ctx.site_report:
        lines += [f"Every page of the site: {_md(ctx.site_report)}", ""]
    sources = [f"Source: {_md(d.document.source_url)} (sha256 {d.document.sha256[:12]})" for d in docs]
    lines += _md_head(ctx.run_id, ctx.generated_at, sources, ctx.record_provenance, counts)
    findings = order_findings([r for r in rows if r.is_finding], ctx.checks, enrollment_scopes(records))
    lines += [f"## Findings: the page against the registries ({len(findings)})", ""]
    lines += ["| trial | field | the page says | stated | registry | verdict | evidence |", "|---|---|---|---|---|---|---|"]
    for row in findings:
        words = ctx.statements.get((row.document_id, row.claim_id))
        lines.append(f"| {_md(row.trial_id)} | {_md(row.field)} | {_md(words)} | {_md(row.stated_value)} "
                     f"| {_md(row.registry)} {_md(row.registry_value)} | **{row.verdict}** "
                     f"| {_md(' '.join(x for x in (row.evidence.snapshot_path, row.evidence.field_path) if x))} |")
    lines.append("")
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


def _md_head(run_id: str | None, generated_at: datetime | None, sources: Sequence[str],
             provenance: dict[str, int], counts: Counter[str]) -> list[str]:
    """A Markdown report's first lines: the run, the sources, the records' provenance, the counts by verdict."""
    lines: list[str] = []
    if run_id:
        when = f", {generated_at.strftime('%Y-%m-%d %H:%M UTC')}" if generated_at else ""
        lines += [f"Run {_md(run_id)}{when}.", ""]
    for source in sources:
        lines += [source, ""]
    if provenance:
        lines += [f"Registry records: {provenance.get('captured', 0)} captured, "
                  f"{provenance.get('reconstructed', 0)} reconstructed.", ""]
    lines += ["| verdict | comparisons |", "|---|---|"]
    lines += [f"| {v} | {counts.get(v, 0)} |" for v in VERDICT_ORDER]
    return [*lines, f"| total | {sum(counts.values())} |", ""]


def _by_trial(rows: Sequence[ReconciliationRow]) -> dict[str, list[ReconciliationRow]]:
    grouped: dict[str, list[ReconciliationRow]] = defaultdict(list)
    for row in rows:
        grouped[row.trial_id or PAGE_WIDE].append(row)
    return dict(sorted(grouped.items(), key=lambda kv: (kv[0] == PAGE_WIDE, kv[0])))


# ---------------------------------------------------------------------------------------------
# The site: every page of the output
# ---------------------------------------------------------------------------------------------

SITE_FINDINGS_SHOWN = 200
"""The site report lists at most this many unaccepted discrepancies (the rest are in the pages' reports)."""


@dataclass(frozen=True)
class PageSummary:
    """One page of the output as the site report shows it: its check against its baseline (the
    counts by verdict, the discrepancies accepted and not) and where its own report is."""

    document_id: str
    title: str
    source_url: str
    check: CheckResult
    report: str | None = None  # its report's address, relative to the site report

    @cached_property  # the site report asks for it several times per page (the summary, the table, both formats)
    def findings(self) -> int:
        return sum(1 for row in (*self.check.accepted, *self.check.unaccepted) if row.is_finding)

    @property
    def comparisons(self) -> int:
        return sum(self.check.counts.values())


@dataclass(frozen=True)
class SiteOverview:
    """What the site report tells: the run, where the records came from, and every page."""

    pages: Sequence[PageSummary]
    run_id: str | None = None
    generated_at: datetime | None = None
    record_provenance: dict[str, int] = field(default_factory=dict)

    def ranked(self) -> list[PageSummary]:
        """The pages with the most unaccepted discrepancies first, then the most findings, then by title."""
        return list(self._ranked)

    def unaccepted(self) -> list[tuple[PageSummary, ReconciliationRow]]:
        """Every discrepancy no baseline accepts, mismatches and the main fields first (:func:`order_findings`)."""
        return list(self._unaccepted)

    # Sorted once: the HTML and the Markdown report both ask (a site's thousands of pages and discrepancies).
    @cached_property
    def _ranked(self) -> tuple[PageSummary, ...]:
        return tuple(sorted(self.pages, key=lambda p: (-len(p.check.unaccepted), -p.findings, p.title, p.document_id)))

    @cached_property
    def _unaccepted(self) -> tuple[tuple[PageSummary, ReconciliationRow], ...]:
        by_doc = {page.document_id: page for page in self.pages}
        rows = order_findings([row for page in self.pages for row in page.check.unaccepted],
                              {p.document_id: p.check for p in self.pages})
        return tuple((by_doc[row.document_id], row) for row in rows)


def _site_counts(site: SiteOverview) -> Counter[str]:
    counts: Counter[str] = Counter()
    for page in site.pages:
        counts.update(page.check.counts)
    return counts


def _page_link(page: PageSummary, text: str | None = None, fragment: str = "") -> str:
    """A link to the page's report (to ``fragment`` in it), or the text alone when it has none."""
    target = safe_page_address(page.report)
    shown = escape(text if text is not None else (page.title or page.document_id))
    return f'<a href="{escape(target + fragment)}">{shown}</a>' if target else shown


def safe_page_address(address: str | None) -> str | None:
    """A page report's relative address (``pages/<id>.html``), None for anything else: only a
    plain relative path of letters, digits, '-', '_', '.' and '/' becomes a link."""
    if not address or not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", address) or ".." in address.split("/"):
        return None
    return address


def render_site_html(site: SiteOverview, shown: int = SITE_FINDINGS_SHOWN) -> str:
    """The site report: the discrepancies no baseline accepts across every page first (at most
    ``shown``), then every page with its counts and a link to its own report."""
    counts = _site_counts(site)
    unaccepted = site.unaccepted()
    findings = sum(p.findings for p in site.pages)
    title = f"{len(site.pages)} pages"
    out = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>trialrecon report: {escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}: what they say, against the registries</h1>",
    ]
    out += _html_meta(site.run_id, site.generated_at, [], site.record_provenance)
    out += _html_counts(counts, findings, len(unaccepted))
    out.append(f'<section id="unaccepted"><h2>Discrepancies no baseline accepts ({len(unaccepted)})</h2>')
    if not unaccepted:
        out.append("<p>Every discrepancy of every page is accepted by its baseline.</p>")
    for page, row in unaccepted[:shown]:
        where = "#" + anchor("d", row.trial_id or PAGE_WIDE, row.field)
        first = _registry_name(row.compared_registry) if row.compared_registry is not None else "page"
        out.append(
            f'<div class="finding {row.verdict}" data-verdict="{row.verdict}" data-document="{escape(page.document_id)}">'
            f'<div class="head">{_badge(row.verdict)} <span class="what">{_page_link(page)} · '
            f"{_page_link(page, row.trial_id or PAGE_WIDE, where)} · {escape(row.field)}"
            f'</span><span class="muted small">{escape(row.claim_id)} · {escape(row.rule)}</span></div>'
            f'<div class="values"><span>{first}: <b>{escape(_show(_stated(row)))}</b></span>'
            f"<span>{escape(_registry_name(row.registry))}: <b>{escape(_show(row.registry_value))}</b></span></div>"
            f'<div class="small">{escape(row.detail or "")}</div></div>'
        )
    if len(unaccepted) > shown:
        out.append(f'<p class="note">and {len(unaccepted) - shown} more: see each page\'s report below.</p>')
    out.append(f'</section><section id="pages"><h2>Every page ({len(site.pages)})</h2>')
    out.append('<table><tr><th style="width:34%">page</th><th>unaccepted</th><th>findings</th>'
               + "".join(f"<th>{v}</th>" for v in VERDICT_ORDER) + "<th>comparisons</th></tr>")
    for page in site.ranked():
        out.append(f'<tr data-document="{escape(page.document_id)}"><td>{_page_link(page)}'
                   f'<div class="small muted">{_link(page.source_url, page.source_url)}</div></td>'
                   f"<td>{len(page.check.unaccepted)}</td><td>{page.findings}</td>"
                   + "".join(f"<td>{page.check.counts.get(v, 0)}</td>" for v in VERDICT_ORDER)
                   + f"<td>{page.comparisons}</td></tr>")
    out.append("</table></section></body></html>")
    return "\n".join(out) + "\n"


def render_site_markdown(site: SiteOverview, shown: int = SITE_FINDINGS_SHOWN) -> str:
    """The site report in Markdown (see :func:`render_site_html`)."""
    counts = _site_counts(site)
    unaccepted = site.unaccepted()
    lines = [f"# Reconciliation report: {len(site.pages)} pages", ""]
    lines += _md_head(site.run_id, site.generated_at, [], site.record_provenance, counts)
    lines += [f"## Discrepancies no baseline accepts ({len(unaccepted)})", ""]
    lines += ["| page | trial | field | stated | registry | verdict | rule |", "|---|---|---|---|---|---|---|"]
    for page, row in unaccepted[:shown]:
        lines.append(f"| {_md(page.title or page.document_id)} | {_md(row.trial_id)} | {_md(row.field)} "
                     f"| {_md(_stated(row))} | {_md(_registry_name(row.registry))}: {_md(row.registry_value)} "
                     f"| **{row.verdict}** | {_md(row.rule)} |")
    if len(unaccepted) > shown:
        lines += ["", f"and {len(unaccepted) - shown} more: see each page's report."]
    lines += ["", f"## Every page ({len(site.pages)})", ""]
    lines += ["| page | report | unaccepted | findings | " + " | ".join(VERDICT_ORDER) + " | comparisons |",
              "|---|---|---|---|" + "---|" * len(VERDICT_ORDER) + "---|"]
    for page in site.ranked():
        lines.append(f"| {_md(page.title or page.document_id)} | {_md(safe_page_address(page.report))} "
                     f"| {len(page.check.unaccepted)} | {page.findings} | "
                     + " | ".join(str(page.check.counts.get(v, 0)) for v in VERDICT_ORDER)
                     + f" | {page.comparisons} |")
    lines.append("")
    return "\n".join(lines)
