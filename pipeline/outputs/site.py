"""The site report's facts, read back from the published output database: every page of the
output (those a run left alone included), its comparisons counted by verdict and its
discrepancies checked against today's baseline.

Only the discrepancies (mismatch and partial rows) are read, and the counts are counted in
DuckDB, so the cost follows the discrepancies, not the comparisons.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb

from pipeline.constants import VERDICT_ORDER
from pipeline.models import Evidence, ReconciliationRow
from pipeline.outputs.baseline import CheckResult, check, load_baseline
from pipeline.outputs.report import PageSummary, SiteOverview

_NOT_READ = Evidence()
"""The evidence of a stored discrepancy, which the site report does not show (frozen: one for all)."""

# What a baseline entry matches on (pipeline.outputs.baseline.row_key), the verdict and the detail.
_ROW_COLUMNS = ("document_id", "claim_id", "trial_id", "field", "stated_value", "registry_value", "registry",
                "compared_registry", "compared_value", "verdict", "rule", "detail")


def stored_checks(con: duckdb.DuckDBPyConnection, baseline_dir: Path) -> dict[str, CheckResult]:
    """Every page's comparisons in the output database against its baseline
    (``<baseline_dir>/<document_id>.json``), with its counts by verdict.

    Raises:
        BaselineError: a baseline file is not a valid list of accepted discrepancies.
    """
    cols = ", ".join(_ROW_COLUMNS)
    by_doc: dict[str, list[ReconciliationRow]] = {}
    for values in con.execute(f"SELECT {cols} FROM reconciliation WHERE verdict IN ('mismatch', 'partial') "
                              "ORDER BY document_id, claim_id").fetchall():
        # Rows this code validated before writing them, read back typed by the table's columns: a
        # site's thousands of discrepancies validated again were half of a warm run's report. Every
        # field is given: pydantic inspects a default factory's signature for each field left out.
        row = ReconciliationRow.model_construct(**dict(zip(_ROW_COLUMNS, values, strict=True)),
                                                score=None, evidence=_NOT_READ)
        by_doc.setdefault(row.document_id, []).append(row)
    counts: dict[str, Counter[str]] = {}
    for doc_id, verdict, n in con.execute(
            "SELECT document_id, verdict, count(*) FROM reconciliation GROUP BY ALL").fetchall():
        counts.setdefault(doc_id, Counter())[verdict] = n
    return {
        doc_id: replace(check(by_doc.get(doc_id, []), load_baseline(baseline_dir / f"{doc_id}.json")),
                        counts={v: counts[doc_id].get(v, 0) for v in VERDICT_ORDER})
        for doc_id in sorted(counts)
    }


def site_overview(
    database: Path, baseline_dir: Path, reports: Mapping[str, str], *, run_id: str | None = None,
    generated_at: datetime | None = None, record_provenance: Mapping[str, int] | None = None,
) -> SiteOverview:
    """Every page of the output database as the site report shows it.

    Args:
        database: the published output database.
        baseline_dir: the accepted discrepancies, ``<document_id>.json`` per page.
        reports: document_id -> its report's address relative to the site report.
        run_id, generated_at, record_provenance: the run that writes the report.

    Raises:
        BaselineError: a baseline file is not a valid list of accepted discrepancies.
    """
    with duckdb.connect(str(database), read_only=True) as con:
        checks = stored_checks(con, baseline_dir)
        documents = con.execute("SELECT document_id, title, source_url FROM documents ORDER BY document_id").fetchall()
    pages = [PageSummary(doc_id, title or "", source_url or "", checks.get(doc_id, CheckResult()), reports.get(doc_id))
             for doc_id, title, source_url in documents]
    return SiteOverview(pages, run_id=run_id, generated_at=generated_at, record_provenance=dict(record_provenance or {}))
