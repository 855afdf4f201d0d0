"""Generate ``schemas/`` from the code: JSON Schemas of the models, the DuckDB DDL and the data
dictionary. ``python -m pipeline schemas`` writes them; a test fails when the committed copies
are stale, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from pipeline import models
from pipeline.load.tables import ALL_TABLES, VIEWS
from pipeline.outputs.baseline import AcceptedDiscrepancy
from pipeline.paths import SCHEMAS_DIR
from pipeline.reconcile import status_compatibility_rows
from pipeline.registries.vocab import status_mapping_rows


SCHEMA_MODELS: tuple[type[BaseModel], ...] = (
    models.ExtractedDocument,
    models.SnapshotEntry,
    models.TrialRecord,
    models.TrialLink,
    models.MissingRecord,
    models.ReconciliationRow,
    AcceptedDiscrepancy,
)

VERDICTS = {
    "match": "the registry value agrees with the stated value (possibly less specific; see detail).",
    "partial": "they agree in part (overlapping phases, a subset of countries or endpoints, ...).",
    "mismatch": "they disagree; detail says how (e.g. by how much for enrollment).",
    "unverifiable": "no registry record (or only a candidate record) holds the value.",
}


def _status_mapping_md() -> list[str]:
    lines = ["## Status vocabulary", "",
             "`trials.status_normalized` puts every registry's status on one vocabulary:", "",
             "| registry | registry label or code | status_normalized |", "|---|---|---|"]
    lines += [f"| {reg} | {raw} | {norm} |" for reg, raw, norm in status_mapping_rows()]
    return [*lines, ""]


def _status_comparison_md() -> list[str]:
    lines = ["## Status comparison", "",
             "How a stated status (normalized) is judged against a registry's (rule `status.vocabulary`):", "",
             "| stated | registry | verdict | why |", "|---|---|---|---|"]
    lines += [f"| {s} | {r} | {v} | {d} |" for s, r, v, d in status_compatibility_rows()]
    return [*lines, ""]


def data_dictionary() -> str:
    """The Markdown data dictionary: every table, column and view of the output."""
    lines = [
        "# Data dictionary",
        "",
        "Generated from `pipeline/load/tables.py` and `pipeline/models.py` by `python -m pipeline schemas`;",
        "do not edit by hand. Every table is in `output/trialrecon.duckdb` and, but for the run's own",
        "caches (`record_cache`, `record_keys`), in `output/parquet/<table>.parquet`. Every row carries",
        "the `run_id` of the run that wrote it.",
        "",
        "## Tables",
        "",
    ]
    lines += [f"- [`{t.name}`](#{t.name}): {t.description}" for t in ALL_TABLES]
    lines.append("")
    for table in ALL_TABLES:
        lines += [f"### {table.name}", "", table.description, ""]
        if table.primary_key:
            lines += [f"Key: {', '.join(f'`{c}`' for c in table.primary_key)}.", ""]
        lines += [f"A run replaces the rows of each {', '.join(f'`{c}`' for c in table.replace_by)} it writes.", ""]
        if not table.parquet:
            lines += ["In DuckDB only: the run's own cache, not exported to Parquet.", ""]
        lines += ["| column | type | description |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type} | {c.description} |" for c in table.columns]
        lines.append("")
    lines += ["## Views", ""]
    for name, (description, ddl) in VIEWS.items():
        lines += [f"### {name}", "", description, "", "```sql", ddl, "```", ""]
    lines += ["## Verdicts", "", "| verdict | meaning |", "|---|---|"]
    lines += [f"| {v} | {m} |" for v, m in VERDICTS.items()]
    lines.append("")
    lines += _status_mapping_md()
    lines += _status_comparison_md()
    return "\n".join(lines)


def ddl() -> str:
    """DuckDB DDL of every table and view."""
    parts = [f"{t.ddl()};" for t in ALL_TABLES] + [f"{sql};" for _, sql in VIEWS.values()]
    return "\n\n".join(parts) + "\n"


def render_schemas() -> dict[str, str]:
    """File name -> content of everything in ``schemas/``."""
    files = {"data-dictionary.md": data_dictionary(), "ddl.sql": ddl()}
    for model in SCHEMA_MODELS:
        files[f"{model.__name__}.schema.json"] = json.dumps(model.model_json_schema(), indent=2) + "\n"
    return files


def write_schemas(folder: Path = SCHEMAS_DIR) -> list[Path]:
    """Write every generated file; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render_schemas().items():
        path = folder / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def stale_files(folder: Path = SCHEMAS_DIR) -> list[str]:
    """Names of generated files that are missing or differ from what the code would write."""
    stale = []
    for name, content in render_schemas().items():
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            stale.append(name)
    return stale
