"""The output schema is declared once: a column that holds a record's field takes its type and
description from the model (``pipeline.load.tables.column``) and its value from the record
(``Table.row``); no description is written out twice in the package."""

from __future__ import annotations

import ast
import dataclasses
import json
from collections import defaultdict
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from conftest import REPO
from pipeline.extract import extract_document, read_document
from pipeline.load.rows import LoadError, document_rows, record_rows, trial_row
from pipeline.load.tables import ALL_TABLES, TABLES_BY_NAME, column, sql_type
from pipeline.models import (
    Design,
    EnrollmentFigure,
    Identifier,
    Intervention,
    Outcome,
    PartialDate,
    Phase,
    SnapshotEntry,
    TrialRecord,
    TrialStatus,
)
from pipeline.outputs.dictionary import data_dictionary, render_schemas
from pipeline.reconcile.entities import PageTrial, TrialIdentity

PACKAGE = REPO / "pipeline"
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _description_literals() -> dict[str, list[str]]:
    """Every description written out in the package: ``description=`` of any call, the third
    argument of ``Column(...)`` and the second of ``Table(...)``/``_t(...)``; text -> where."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            texts = [k.value for k in node.keywords if k.arg == "description"]
            if name == "Column" and len(node.args) >= 3:
                texts.append(node.args[2])
            if name in ("Table", "_t") and len(node.args) >= 2:
                texts.append(node.args[1])
            for text in texts:
                if isinstance(text, ast.Constant) and isinstance(text.value, str):
                    found[text.value].append(f"{path.relative_to(REPO)}:{text.lineno}")
    return found


def test_the_scan_finds_the_descriptions_of_models_and_tables():
    found = _description_literals()
    where = {w.split(":")[0] for places in found.values() for w in places}
    assert {"pipeline/models.py", "pipeline/load/tables.py"} <= where
    assert "The registry's status label or code, as given." in found  # on TrialRecord.status_raw


def test_no_description_is_written_out_twice_in_the_package():
    twice = {text: places for text, places in _description_literals().items() if len(places) > 1}
    assert twice == {}


def test_the_trials_columns_take_type_and_description_from_the_record_fields_they_hold():
    trials = {c.name: c for c in TABLES_BY_NAME["trials"].columns}
    fields = TrialRecord.model_fields
    assert trials["status"].description == fields["status_raw"].description
    assert trials["status_normalized"].description == fields["status"].description
    assert trials["start_date"].description == fields["start_date"].description
    assert trials["start_date_precision"].description == PartialDate.model_fields["precision"].description
    assert trials["masking"].description == Design.model_fields["masking"].description
    assert (trials["phases"].type, trials["enrollment"].type, trials["status_normalized"].type) == (
        "VARCHAR[]", "INTEGER", "VARCHAR")


def test_the_data_dictionary_and_the_json_schema_show_the_same_description_of_a_field():
    schema = json.loads(render_schemas()["TrialRecord.schema.json"])
    text = schema["properties"]["status_raw"]["description"]
    assert f"| `status` | VARCHAR | {text} |" in data_dictionary()


class _Colour(StrEnum):
    RED = "red"


class _Part(BaseModel):
    when: datetime | None = Field(default=None, description="When it happened.")
    label: str | None = None


class _Thing(BaseModel):
    count: int | None = Field(default=None, description="How many.")
    share: float = Field(description="What share.")
    ok: bool = Field(description="Whether it is.")
    colour: _Colour | None = Field(default=None, description="Its colour.")
    colours: list[_Colour] = Field(default_factory=list, description="Its colours.")
    numbers: list[int] = Field(default_factory=list, description="Its numbers.")
    kind: Literal["a", "b"] | Literal["c"] = Field(description="Its kind.")
    part: _Part | None = Field(default=None, description="Its part.")
    extra: dict[str, str] = Field(default_factory=dict, description="Anything else.")
    bare: str = ""


def test_column_types_follow_the_field_annotations():
    types = {spec: column(_Thing, spec).type for spec in
             ("count", "share", "ok", "colour", "colours", "numbers", "kind", "part.when", "part.label")}
    assert types == {"count": "INTEGER", "share": "DOUBLE", "ok": "BOOLEAN", "colour": "VARCHAR",
                     "colours": "VARCHAR[]", "numbers": "INTEGER[]", "kind": "VARCHAR",
                     "part.when": "TIMESTAMPTZ", "part.label": "VARCHAR"}


def test_a_nested_column_is_described_by_the_innermost_field_on_its_path_that_has_a_description():
    assert column(_Thing, "part_when=part.when").description == "When it happened."
    assert column(_Thing, "part_label=part.label").description == "Its part."


def test_a_renamed_column_keeps_the_field_path_as_its_source():
    col = column(_Thing, "when=part.when", nullable=False)
    assert (col.name, col.source, col.nullable) == ("when", "part.when", False)


def test_a_field_without_a_description_cannot_be_a_column():
    with pytest.raises(ValueError, match=r"column bare: _Thing.bare has no description"):
        column(_Thing, "bare")


def test_a_field_the_model_lacks_cannot_be_a_column():
    with pytest.raises(ValueError, match=r"column nope: _Thing has no field 'part.nope'"):
        column(_Thing, "nope=part.nope")


def test_a_field_of_a_type_no_column_holds_is_refused_with_its_name():
    with pytest.raises(TypeError, match=r"column extra: _Thing.extra: no column type"):
        column(_Thing, "extra")
    with pytest.raises(TypeError, match="no column type"):
        sql_type(Literal["a", 1])


def test_table_row_reads_renamed_and_nested_fields_and_gives_enums_as_their_values():
    record = TrialRecord(
        trial_id="NCT00000001", registry="ctgov", phases=[Phase.PHASE1, Phase.PHASE2], status=TrialStatus.COMPLETED,
        status_raw="Completed", start_date=PartialDate(value="2020-05", precision="month"),
        design=Design(study_type="INTERVENTIONAL", masking="NONE"),
    )
    entry = SnapshotEntry(path="ctgov/NCT00000001.json", registry="ctgov", url="https://example.org/x",
                          sha256="0" * 64, provenance="reconstructed")
    row = trial_row(record, entry)
    assert {k: row[k] for k in ("status", "status_normalized", "phases", "start_date", "start_date_precision",
                                "completion_date", "completion_date_precision", "study_type", "masking",
                                "snapshot_path", "provenance")} == {
        "status": "Completed", "status_normalized": "COMPLETED", "phases": ["PHASE1", "PHASE2"],
        "start_date": "2020-05", "start_date_precision": "month", "completion_date": None,
        "completion_date_precision": None, "study_type": "INTERVENTIONAL", "masking": "NONE",
        "snapshot_path": "ctgov/NCT00000001.json", "provenance": "reconstructed",
    }
    assert type(row["status_normalized"]) is str and all(type(p) is str for p in row["phases"])


def test_table_row_takes_given_values_over_the_record_and_does_not_read_fields_it_is_given():
    table = TABLES_BY_NAME["trial_interventions"]
    row = table.row(Intervention(name="IL-2", other_names=["aldesleukin"]), trial_id="NCT1", registry="ctgov")
    assert row == {"trial_id": "NCT1", "registry": "ctgov", "type": None, "name": "IL-2",
                   "other_names": ["aldesleukin"]}


def _columns(name: str) -> set[str]:
    return {c.name for c in TABLES_BY_NAME[name].columns} - {"run_id"}


def test_every_record_row_fills_every_column_of_its_table():
    record = TrialRecord(
        trial_id="NCT00000001", registry="ctgov", conditions=["Melanoma"], countries=["NL"], enrollment=10,
        enrollment_scope="whole_trial", interventions=[Intervention(name="IL-2")],
        outcomes=[Outcome(kind="primary", measure="ORR")], identifiers=[Identifier(other_id="X", id_type="OTHER")],
        enrollment_figures=[EnrollmentFigure(scope="member_state", country="NL", figure=4)],
    )
    entry = SnapshotEntry(path="p", registry="ctgov", url="u", sha256="0" * 64, provenance="captured")
    tables = record_rows(record, entry)
    assert set(tables) == {t.name for t in ALL_TABLES if t.name.startswith("trial") and "_history" not in t.name
                           and t.name != "trial_links"}
    for name, rows in tables.items():
        assert rows, name
        assert [set(r) for r in rows] == [_columns(name)] * len(rows), name


def test_every_document_row_of_the_embedded_page_fills_every_column_of_its_table():
    path = REPO / "snapshots" / "documents" / "aldesleukin.txt"
    text, sha = read_document(path)
    doc = extract_document(text, source_url=path.as_uri(), sha256=sha, extracted_at=WHEN, path=str(path))
    for name, rows in document_rows(doc).items():
        assert rows, name
        assert all(set(r) <= _columns(name) for r in rows), name
        # The ongoing entries' resolution columns come with the trials they resolved to.
        unfilled = {"trial_id_source", "resolve_score", "unresolved_reason"} if name == "document_ongoing" else set()
        assert all(_columns(name) - set(r) <= unfilled for r in rows), name


def test_the_data_dictionary_always_documents_the_status_vocabulary_and_comparison():
    text = data_dictionary()
    assert "## Status vocabulary" in text
    assert "## Status comparison" in text


@pytest.mark.parametrize("table, kind", [("page_trials", PageTrial), ("page_trial_ids", TrialIdentity),
                                         ("load_errors", LoadError)])
def test_a_table_written_from_a_dataclass_has_exactly_its_fields_as_columns(table, kind):
    # These rows are the dataclasses' vars(): a column no field fills would be NULL in every row.
    assert [f.name for f in dataclasses.fields(kind)] == [c for c in TABLES_BY_NAME[table].column_names if c != "run_id"]
