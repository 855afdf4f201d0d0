"""The output tables: names, columns, types, keys and descriptions — the analysts' contract.

Every table here is created in ``output/trialrecon.duckdb`` and exported to
``output/parquet/<table>.parquet``. ``schemas/ddl.sql`` and ``schemas/data-dictionary.md`` are
generated from these definitions (``python -m pipeline schemas``), so the documentation cannot
drift from the code.

Each column is declared once. A column that holds a field of a domain record
(:mod:`pipeline.models`) is named here by the field's path (``columns(TrialRecord,
"status=status_raw")``): its type comes from the field's annotation and its description from the
field itself, and :meth:`Table.row` reads its value there. Only the columns no record holds (run
ids, resolved values, file statistics, ...) are declared here with a type and description.

``replace_by`` names the columns that identify one unit of loading: a run deletes every row
whose key it is about to write, then inserts. That is why running twice gives the same rows and a
second document's rows stand beside the first's.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from operator import attrgetter
from typing import Literal, Union, get_args, get_origin

import pyarrow as pa
from pydantic import BaseModel

from pipeline.models import (
    Claim,
    EnrollmentFigure,
    GlossaryEntry,
    Identifier,
    Intervention,
    OngoingTrial,
    Outcome,
    ReconciliationRow,
    Reference,
    SnapshotEntry,
    SourceDocument,
    StatedTrial,
    TrialLink,
    TrialRecord,
)

Row = dict[str, object]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type
    description: str
    nullable: bool = True
    source: str | None = None
    """Dotted path of the record field the column holds (``Table.row`` reads it there); None for a
    value the row's builder gives."""
    enum: bool = field(default=False, repr=False)
    """The field holds enum members (or a list of them): the column holds their values."""


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    replace_by: tuple[str, ...]
    primary_key: tuple[str, ...] = field(default=())
    parquet: bool = True
    """Exported to ``parquet/<name>.parquet``; False for the run's own caches, which stay in DuckDB."""
    _readers: tuple[tuple[str, Callable[[object], object]], ...] = field(
        init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        readers = tuple((c.name, _reader(c.source, c)) for c in self.columns if c.source)
        object.__setattr__(self, "_readers", readers)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type], nullable=c.nullable) for c in self.columns])

    def ddl(self) -> str:
        cols = ",\n  ".join(
            f'"{c.name}" {c.type}' + ("" if c.nullable else " NOT NULL") for c in self.columns
        )
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n  {cols}\n)'

    def row(self, record: object, /, **values: object) -> Row:
        """The table's row of one record: ``values`` for the columns they name (those the record
        does not hold, or holds otherwise), every other column that holds a field read from
        ``record`` (enums as their values)."""
        row: Row = {name: read(record) for name, read in self._readers if name not in values}
        row.update(values)
        return row


_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "VARCHAR[]": pa.list_(pa.string()),
    "INTEGER[]": pa.list_(pa.int32()),
}

# Python types of record fields -> DuckDB types, most specific first (bool is an int, a StrEnum a str).
_SQL_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "BOOLEAN"), (int, "INTEGER"), (float, "DOUBLE"), (datetime, "TIMESTAMPTZ"), (str, "VARCHAR"),
)


def _leaf_reader(name: str, column: Column) -> Callable[[object], object]:
    """Reads one field as ``column`` holds it: enums as their values, lists copied."""
    get = attrgetter(name)
    if column.type.endswith("[]"):
        if column.enum:
            return lambda record: None if (v := get(record)) is None else [e.value for e in v]
        return lambda record: None if (v := get(record)) is None else list(v)
    if column.enum:
        return lambda record: None if (v := get(record)) is None else v.value
    return get


def _reader(path: str, column: Column) -> Callable[[object], object]:
    """Reads the value at a dotted path of a record; None where a part of the path is None."""
    head, _, rest = path.partition(".")
    if not rest:
        return _leaf_reader(head, column)
    inner = _reader(rest, column)

    def read(record: object) -> object:
        part = getattr(record, head)
        return None if part is None else inner(part)

    return read


def _optional_of(annotation: object) -> object:
    """``X`` of ``X | None``; the annotation itself otherwise."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _one_type(annotation: object, kinds: set[str]) -> str:
    if len(kinds) != 1:
        raise TypeError(f"no column type for {annotation!r}: its parts have types {sorted(kinds)}")
    return kinds.pop()


def _holds_enum(annotation: object) -> bool:
    annotation = _optional_of(annotation)
    if get_origin(annotation) is list:
        annotation = _optional_of(get_args(annotation)[0])
    return isinstance(annotation, type) and issubclass(annotation, Enum)


def sql_type(annotation: object) -> str:
    """The DuckDB type of a record field's annotation (``list[Phase] | None`` -> ``VARCHAR[]``)."""
    annotation = _optional_of(annotation)
    origin = get_origin(annotation)
    if origin is list:
        return f"{sql_type(get_args(annotation)[0])}[]"
    if origin in (Union, types.UnionType):  # e.g. Registry | Literal["document"]
        return _one_type(annotation, {sql_type(a) for a in get_args(annotation) if a is not type(None)})
    if origin is Literal:
        return _one_type(annotation, {sql_type(type(a)) for a in get_args(annotation)})
    if isinstance(annotation, type):
        for python, sql in _SQL_TYPES:
            if issubclass(annotation, python):
                return sql
    raise TypeError(f"no column type for {annotation!r}")


def column(model: type[BaseModel], spec: str, *, nullable: bool = True) -> Column:
    """The column that holds ``model``'s field at a dotted path.

    ``spec`` is the path (``"sponsor"``, the column named after it) or ``"name=path"``
    (``"study_type=design.study_type"``). The type comes from the field's annotation, the
    description from the innermost field on the path that has one (``start_date.precision`` is
    described by ``PartialDate.precision``, ``start_date.value`` by ``TrialRecord.start_date``).
    """
    name, _, path = spec.rpartition("=")
    name = name or path
    owner: type[BaseModel] = model
    description: str | None = None
    annotation: object = None
    for part in path.split("."):
        if not (isinstance(owner, type) and issubclass(owner, BaseModel)) or part not in owner.model_fields:
            raise ValueError(f"column {name}: {model.__name__} has no field {path!r}")
        info = owner.model_fields[part]
        description = info.description or description
        annotation = info.annotation
        owner = _optional_of(annotation)  # type: ignore[assignment]
    if not description:
        raise ValueError(f"column {name}: {model.__name__}.{path} has no description")
    try:
        type_ = sql_type(annotation)
    except TypeError as e:
        raise TypeError(f"column {name}: {model.__name__}.{path}: {e}") from None
    return Column(name, type_, description, nullable, source=path, enum=_holds_enum(annotation))


def columns(model: type[BaseModel], *specs: str) -> list[Column]:
    """The columns that hold these fields of ``model`` (each spec as in :func:`column`)."""
    return [column(model, spec) for spec in specs]


def _as_in(table: Table, *names: str) -> list[Column]:
    """Columns that hold the same values as ``table``'s (read from the same record fields)."""
    by_name = {c.name: c for c in table.columns}
    return [Column(n, by_name[n].type, f"As in {table.name}.", source=by_name[n].source or n) for n in names]


RUN_ID = Column("run_id", "VARCHAR", "Id of the pipeline run that wrote the row (see pipeline_runs).", False)
DOC_ID = Column("document_id", "VARCHAR", "Id of the source document (see documents).", False, source="document_id")
TRIAL_ID = column(TrialRecord, "trial_id", nullable=False)
REGISTRY = column(TrialRecord, "registry", nullable=False)
PROVENANCE = Column("provenance", "VARCHAR", "captured or reconstructed.")


def _t(name: str, description: str, columns: list[Column], replace_by: tuple[str, ...], pk: tuple[str, ...] = (),
       *, parquet: bool = True) -> Table:
    return Table(name, description, (*columns, RUN_ID), replace_by, pk, parquet)


DOCUMENT_TABLES = (
    _t("documents", "One row per source document.", [
        column(SourceDocument, "document_id", nullable=False),
        *columns(SourceDocument, "source_url", "title", "sha256", "extracted_at"),
    ], ("document_id",), ("document_id",)),
    _t("document_trials", "The page's summary table, one row per table row, every cell as stated.", [
        DOC_ID,
        *columns(StatedTrial, "row_number", "trial_id", "phase", "condition", "status", "enrollment"),
    ], ("document_id",), ("document_id", "row_number")),
    _t("document_claims", "Narrative sentences that name a trial or cite a reference.", [
        DOC_ID,
        *columns(Claim, "claim_id", "section", "sentence", "trial_ids", "ref_numbers", "field", "fields"),
    ], ("document_id",), ("document_id", "claim_id")),
    _t("document_ongoing", "The page's 'ongoing trials' list.", [
        DOC_ID,
        *columns(OngoingTrial, "position", "title", "status", "countries"),
        Column("country_codes", "VARCHAR[]", "The countries shown, as ISO 3166-1 alpha-2 codes."),
        *columns(OngoingTrial, "more_countries"),
        # Not OngoingTrial.trial_id (the trial the page names): the trial the entry resolved to.
        Column("trial_id", "VARCHAR", "The trial the entry is about: named by the page, or resolved by its "
               "title (see trial_id_source); NULL when it did not resolve (see unresolved_reason). "
               "Joins page_trials and v_trial_records.", source="trial_id"),
        Column("trial_id_source", "VARCHAR", "page (the page names the trial), title (the entry's title "
               "matched a record's title or a reference's) or product (a product only that trial's titles name, "
               "where the titles were not enough)."),
        Column("resolve_score", "DOUBLE", "Title similarity (0-100) of the best candidate trial; a trial is "
               "resolved at 85 or more and 5 ahead of the runner-up."),
        Column("unresolved_reason", "VARCHAR", "Why the entry did not resolve, with the best candidates and scores."),
    ], ("document_id",), ("document_id", "position")),
    _t("document_references", "The page's numbered references.", [
        DOC_ID,
        *columns(Reference, "ref_number", "url", "trial_id", "trial_id_source"),
    ], ("document_id",), ("document_id", "ref_number")),
    _t("document_glossary", "The page's glossary.", [
        DOC_ID,
        *columns(GlossaryEntry, "term", "definition"),
    ], ("document_id",), ("document_id", "term")),
)
PAGE_TRIAL_TABLES = (
    _t("page_trials", "One row per trial the page speaks of (by any of its numbers, or an ongoing entry "
       "resolved to it): its number in each registry and whether a registry record backs it, or why not.", [
        DOC_ID,
        Column("trial_id", "VARCHAR", "The number the page uses (the key of reconciliation.trial_id).", False),
        Column("registry", "VARCHAR", "The registry that number belongs to: ctgov (NCT), ctis (EU CT), euctr (EudraCT)."),
        Column("title", "VARCHAR", "The trial's title: from its first record (ctgov, ctis, euctr), else the "
               "page's ongoing-list title."),
        Column("title_source", "VARCHAR", "Where title comes from."),
        Column("mentioned_in", "VARCHAR[]", "Where the page speaks of it: table, narrative, ongoing, reference."),
        Column("ctgov_id", "VARCHAR", "Its NCT number (its own, a confirmed link, or a candidate one: see page_trial_ids)."),
        Column("ctis_id", "VARCHAR", "Its EU CT number."),
        Column("euctr_id", "VARCHAR", "Its EudraCT number."),
        Column("record_registries", "VARCHAR[]", "Registries whose record reconciliation compared with."),
        Column("record_status", "VARCHAR", "record (by its own number or a confirmed link), candidate_only "
               "(only an unconfirmed link reaches a record: its verdicts stay unverifiable) or no_record."),
        Column("missing_reason", "VARCHAR", "Why its own number has no record, when record_status is not record: "
               "no_registry_entry_known, press_only, unconfirmed_mirror_only, not_fetched or fetch_failed."),
        Column("missing_detail", "VARCHAR", "What the searches found, in words (snapshots/missing_records.json), "
               "or the snapshot error."),
    ], ("document_id",), ("document_id", "trial_id")),
    _t("page_trial_ids", "Every number a page trial has in a registry, how the link is known, and its "
       "record there (or why there is none).", [
        DOC_ID,
        Column("trial_id", "VARCHAR", "The page trial (page_trials.trial_id).", False),
        Column("registry", "VARCHAR", "ctgov, ctis or euctr."),
        Column("registry_id", "VARCHAR", "The trial's number in that registry."),
        Column("link", "VARCHAR", "same id (the page's own number), confirmed (a source states both numbers) "
               "or candidate (plausible, stated nowhere)."),
        Column("link_source", "VARCHAR", "page, links (snapshots/links.json) or registry record (a record lists "
               "the other number)."),
        Column("link_evidence", "VARCHAR", "The link's evidence: source URL and note, or the record's field."),
        Column("has_record", "BOOLEAN", "The store holds a record for registry_id."),
        Column("used", "BOOLEAN", "Reconciliation compares the page with this record (one per registry; a "
               "candidate only when nothing else reaches the trial)."),
        Column("snapshot_path", "VARCHAR", "The record's snapshot."),
        PROVENANCE,
        Column("missing_reason", "VARCHAR", "Why there is no record (as page_trials.missing_reason)."),
        Column("missing_detail", "VARCHAR", "In words."),
    ], ("document_id",)),
)

_REC_KEY = ("registry", "trial_id")


TRIAL_TABLES = (
    _t("trials", "One row per registry record (a trial in several registries has several rows).", [
        TRIAL_ID, REGISTRY,
        *columns(TrialRecord, "title", "official_title", "sponsor", "phases", "phase_raw", "status=status_raw",
                 "status_normalized=status", "enrollment", "enrollment_type", "enrollment_scope",
                 "start_date=start_date.value", "start_date_precision=start_date.precision",
                 "completion_date=completion_date.value", "completion_date_precision=completion_date.precision",
                 "last_updated=last_updated.value", "study_type=design.study_type",
                 "allocation=design.allocation", "masking=design.masking", "age_groups"),
        # The snapshot's, not the record's: given by the row's builder.
        Column("snapshot_path", "VARCHAR", "Snapshot the record was parsed from."),
        Column("snapshot_sha256", "VARCHAR", "The snapshot's sha256."),
        PROVENANCE,
    ], _REC_KEY, _REC_KEY),
    _t("trial_conditions", "Conditions of each registry record.", [
        TRIAL_ID, REGISTRY, Column("condition", "VARCHAR", "Condition as the registry names it."),
    ], _REC_KEY),
    _t("trial_interventions", "Interventions of each registry record.", [
        TRIAL_ID, REGISTRY, *columns(Intervention, "type", "name", "other_names"),
    ], _REC_KEY),
    _t("trial_outcomes", "Primary and secondary outcomes of each registry record.", [
        TRIAL_ID, REGISTRY, *columns(Outcome, "kind", "measure", "time_frame"),
    ], _REC_KEY),
    _t("trial_countries", "Countries of each registry record, by ISO 3166-1 alpha-2 code and name.", [
        TRIAL_ID, REGISTRY, Column("country", "VARCHAR", "ISO 3166-1 alpha-2 code."),
        Column("country_name", "VARCHAR", "The country's common English name ('Germany', 'South Korea')."),
    ], _REC_KEY),
    _t("trial_enrollments", "Every enrollment figure of each registry record, one row per scope it counts "
       "(the headline figure in trials.enrollment is one of them).", [
        TRIAL_ID, REGISTRY,
        *columns(EnrollmentFigure, "scope", "country"),
        Column("country_name", "VARCHAR", "That country's name."),
        *columns(EnrollmentFigure, "enrollment=figure", "enrollment_type"),
        Column("headline", "BOOLEAN", "This is the figure in trials.enrollment."),
        *columns(EnrollmentFigure, "field_path"),
    ], _REC_KEY),
    _t("trial_identifiers", "Every other identifier a registry record gives.", [
        TRIAL_ID, REGISTRY, *columns(Identifier, "other_id", "id_type"),
    ], _REC_KEY),
)

SNAPSHOTS_TABLE = _t("snapshots", "The snapshot manifest: every stored registry response or reconstruction.", [
    column(SnapshotEntry, "path", nullable=False),
    *columns(SnapshotEntry, "registry", "trial_id", "url", "fetched_at", "sha256", "http_status", "etag",
             "last_modified", "provenance", "source_urls", "stale"),
    Column("file_size", "BIGINT", "Size in bytes of the file the run verified against sha256 (NULL: not verified)."),
    Column("file_mtime_ns", "BIGINT",
           "Its modification time (ns since the epoch): a later run that finds the same size and time "
           "trusts the file without hashing it again; any difference has it hashed."),
], ("path",), ("path",))

LINKS_TABLE = _t("trial_links", "Registry numbers of one trial in several registries, with the evidence.", [
    column(TrialLink, "trial_id", nullable=False),
    *columns(TrialLink, "other_id", "other_registry", "strength", "evidence", "note"),
], ("trial_id", "other_id"))

RECONCILIATION_TABLE = _t("reconciliation", "Each stated fact compared with a registry value.", [
    DOC_ID,
    column(ReconciliationRow, "claim_id"),
    Column("comparison", "VARCHAR", "page_vs_registry (a stated fact against a registry record), page_vs_page "
           "(the page against itself: registry 'document') or registry_vs_registry (cross:<trial> rows: one "
           "registry's record against another's; stated_value is then the first registry's value)."),
    Column("statement", "VARCHAR", "The page's words the fact comes from: the sentence, the summary-table row, "
           "the ongoing entry or the reference; NULL for registry_vs_registry rows."),
    *columns(ReconciliationRow, "trial_id", "field", "stated_value", "registry_value", "registry",
             "compared_registry", "compared_value", "verdict", "rule", "detail", "score",
             "evidence_snapshot=evidence.snapshot_path", "evidence_sha256=evidence.snapshot_sha256"),
    replace(PROVENANCE, name="evidence_provenance", source="evidence.provenance"),
    *columns(ReconciliationRow, "evidence_record=evidence.registry_trial_id", "evidence_field_path=evidence.field_path",
             "evidence_link=evidence.link"),
], ("document_id",))
LOAD_ERRORS_TABLE = _t("load_errors", "Snapshots or documents that could not be used in a run.", [
    Column("snapshot", "VARCHAR", "Snapshot path (or document path)."),
    Column("registry", "VARCHAR", "Registry of the snapshot."),
    Column("trial_id", "VARCHAR", "Trial of the snapshot."),
    Column("error", "VARCHAR", "What is wrong."),
], ("run_id",))

RUNS_TABLE = Table("pipeline_runs", "One row per pipeline run.", (
    RUN_ID,
    Column("started_at", "TIMESTAMPTZ", "When the run started."),
    Column("finished_at", "TIMESTAMPTZ", "When it finished."),
    Column("status", "VARCHAR", "complete or partial."),
    Column("documents", "INTEGER", "Documents extracted."),
    Column("records", "INTEGER", "Registry records loaded."),
    Column("load_errors", "INTEGER", "Snapshots that could not be used."),
    Column("reconciliation_rows", "INTEGER", "Comparisons made."),
    Column("mismatches", "INTEGER", "Rows with verdict mismatch or partial."),
    Column("parsed", "INTEGER", "Snapshots parsed in this run (new or changed)."),
    Column("reused", "INTEGER", "Snapshots unchanged since the last run, not parsed again."),
    Column("work_done", "BOOLEAN", "False when nothing had changed and the run only recorded itself."),
    Column("fingerprint", "VARCHAR", "sha256 of every input (documents, snapshots, links, code)."),
    Column("snapshots_fingerprint", "VARCHAR", "sha256 of what the snapshots and trial_links tables are made of "
           "(every manifest entry, its file's size and time, the links, the code): a run that finds it as the last "
           "run that did work left it keeps both tables as they are."),
), ("run_id",), ("run_id",))

CACHED_SNAPSHOT = (  # what record_cache and record_keys are kept by
    Column("snapshot_path", "VARCHAR", "Snapshot path.", False),
    Column("sha256", "VARCHAR", "sha256 of the snapshot the records were parsed from.", False),
)
RECORD_CACHE_TABLE = _t("record_cache", "Parsed records by snapshot sha256, so unchanged snapshots are not parsed again.", [
    *CACHED_SNAPSHOT,
    Column("records_json", "VARCHAR", "The parsed TrialRecords, as JSON (see TrialRecord.schema.json)."),
    Column("parser_version", "VARCHAR", "sha256 of the parsers' code that made them: another version parses again."),
], ("snapshot_path",), ("snapshot_path",), parquet=False)

RECORD_KEYS_TABLE = _t("record_keys", "What a run's index reads of each cached record (numbers, title words), so "
                       "a warm run indexes the store without validating every cached record.", [
    *CACHED_SNAPSHOT,
    Column("keys_json", "VARCHAR", "One key per record of record_cache.records_json, in its order: registry, "
           "trial_id, the numbers it lists, the folded distinctive words of its titles."),
    Column("key_version", "VARCHAR", "sha256 of the pipeline's code that made them: another version computes them again."),
], ("snapshot_path",), ("snapshot_path",), parquet=False)

PAGE_BASIS_TABLE = _t("document_basis", "What each document's reconciliation rested on, so a run re-reconciles a page only when it changes.", [
    DOC_ID,
    Column("document_sha256", "VARCHAR", "sha256 of the document's bytes when it was reconciled."),
    Column("basis", "VARCHAR", "sha256 of the links and the code it was reconciled with."),
    Column("trial_id", "VARCHAR", "A trial number the page uses (its records coming or going re-reconcile it)."),
    Column("snapshot_path", "VARCHAR", "A snapshot the page's rows cite as evidence."),
    Column("snapshot_sha256", "VARCHAR", "That snapshot's sha256 when it was used."),
], ("document_id",))

RUN_COUNTS_TABLE = _t("run_registry_counts", "Per run and registry, what happened to its snapshots.", [
    column(SnapshotEntry, "registry"),
    Column("new", "INTEGER", "Snapshots seen for the first time (parsed and loaded)."),
    Column("changed", "INTEGER", "Snapshots whose sha256 changed since the last run (parsed and loaded)."),
    Column("unchanged", "INTEGER", "Snapshots with the same sha256 as last run (not parsed, not loaded)."),
    Column("failed", "INTEGER", "Snapshots that could not be used (see load_errors)."),
    Column("removed", "INTEGER", "Snapshots the last run had and this one does not."),
], ("run_id",), ("run_id", "registry"))

_VALID = [
    Column("valid_from", "TIMESTAMPTZ", "From when the value held (the snapshot's fetched_at, or the run's start; "
           "the time it was loaded when that is not after the previous value's start).", False),
    Column("valid_to", "TIMESTAMPTZ", "Until when it held; NULL while it still holds."),
]

TRIAL_HISTORY_TABLE = _t("trial_history", "Every value a registry record has had (slowly changing, type 2).", [
    TRIAL_ID, REGISTRY,
    Column("field", "VARCHAR", "title, status, status_normalized, phases, enrollment, ... (JSON for lists).", False),
    Column("value", "VARCHAR", "The value, as text."),
    *_VALID,
    Column("snapshot_sha256", "VARCHAR", "Snapshot the value was read from."),
], ())

RECONCILIATION_HISTORY_TABLE = _t("reconciliation_history", "Every verdict a comparison has had.", [
    DOC_ID,
    *_as_in(RECONCILIATION_TABLE, "claim_id", "trial_id", "field", "registry", "rule"),
    Column("verdict", "VARCHAR", "The verdict while it held.", source="verdict"),
    Column("stated_value", "VARCHAR", "The stated value while it held.", source="stated_value"),
    Column("registry_value", "VARCHAR", "The registry value while it held.", source="registry_value"),
    Column("compared_value", "VARCHAR", "The compared registry's value while it held (registry-vs-registry rows).",
           source="compared_value"),
    *_VALID,
], ())
# History tables are kept by comparing each new value with the open row of its key.
HISTORY_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # table: (key columns, tracked value columns)
    "trial_history": (("trial_id", "registry", "field"), ("value",)),
    "reconciliation_history": (
        ("document_id", "claim_id", "trial_id", "field", "registry", "rule"),
        ("verdict", "stated_value", "registry_value", "compared_value"),
    ),
}

ALL_TABLES: tuple[Table, ...] = (
    *DOCUMENT_TABLES, *PAGE_TRIAL_TABLES, *TRIAL_TABLES, SNAPSHOTS_TABLE, LINKS_TABLE, RECONCILIATION_TABLE,
    LOAD_ERRORS_TABLE, RUNS_TABLE, RUN_COUNTS_TABLE, TRIAL_HISTORY_TABLE, RECONCILIATION_HISTORY_TABLE,
    RECORD_CACHE_TABLE, RECORD_KEYS_TABLE, PAGE_BASIS_TABLE,
)
TABLES_BY_NAME = {t.name: t for t in ALL_TABLES}

PARQUET_TABLES: tuple[Table, ...] = tuple(t for t in ALL_TABLES if t.parquet)
"""The tables exported to Parquet: every table but the run's caches of parsed records and their
keys (the JSON of every record, for the run to read back, not for analysts: at 20,000 records
they were 45 MB of a 75 MB export and 2.5 s of writing it)."""

VIEWS = {
    "v_reconciliation_summary": (
        "Per document and trial, the number of comparisons by verdict.",
        """CREATE OR REPLACE VIEW v_reconciliation_summary AS
SELECT document_id, trial_id,
       count(*) FILTER (WHERE verdict = 'match')        AS match,
       count(*) FILTER (WHERE verdict = 'partial')      AS partial,
       count(*) FILTER (WHERE verdict = 'mismatch')     AS mismatch,
       count(*) FILTER (WHERE verdict = 'unverifiable') AS unverifiable,
       count(*) AS total
FROM reconciliation
GROUP BY document_id, trial_id
ORDER BY document_id, trial_id""",
    ),
    "v_trial_records": (
        "Per page trial and registry, the record reconciliation compares with: how it was reached and its "
        "main values. Join it to document_trials or document_ongoing on (document_id, trial_id). Columns as in "
        "page_trial_ids and trials; trial_title is page_trials.title (the trial's), record_title is trials.title "
        "(this record's, NULL where the registry gives none).",
        """CREATE OR REPLACE VIEW v_trial_records AS
SELECT i.document_id, i.trial_id, p.title AS trial_title, i.registry, i.registry_id, i.link, i.link_evidence,
       t.title AS record_title, t.status, t.status_normalized, t.phases, t.enrollment, t.enrollment_type,
       t.enrollment_scope, t.start_date, t.completion_date, t.provenance, t.snapshot_path
FROM page_trial_ids i
JOIN page_trials p USING (document_id, trial_id)
JOIN trials t ON t.registry = i.registry AND t.trial_id = i.registry_id
WHERE i.used
ORDER BY i.document_id, i.trial_id, i.registry""",
    ),
    "v_trial_enrollments": (
        "Per page trial, every enrollment figure of the records reconciliation compares with, one row per "
        "scope (whole trial, EEA, member state, rest of world), so the page's figure can be set beside each; "
        "a record that gives no figure has one row with NULL scope and enrollment. Columns as in page_trial_ids "
        "and trial_enrollments.",
        """CREATE OR REPLACE VIEW v_trial_enrollments AS
SELECT i.document_id, i.trial_id, i.registry, i.registry_id, i.link, e.scope, e.country, e.country_name,
       e.enrollment, e.enrollment_type, e.headline, e.field_path
FROM page_trial_ids i
LEFT JOIN trial_enrollments e ON e.registry = i.registry AND e.trial_id = i.registry_id
WHERE i.used
ORDER BY i.document_id, i.trial_id, i.registry, e.headline DESC NULLS LAST, e.scope, e.country""",
    ),
    "v_findings": (
        "The page's facts that a registry record contradicts: page_vs_registry rows with verdict mismatch "
        "or partial and a registry value, with the page's words, both values and the evidence. Columns as in "
        "reconciliation.",
        """CREATE OR REPLACE VIEW v_findings AS
SELECT document_id, trial_id, field, verdict, statement, stated_value, registry, registry_value, detail,
       evidence_record, evidence_snapshot, evidence_provenance, evidence_field_path, evidence_link,
       claim_id, rule
FROM reconciliation
WHERE comparison = 'page_vs_registry' AND verdict IN ('mismatch', 'partial') AND registry_value IS NOT NULL
ORDER BY document_id, verdict, trial_id, claim_id, registry""",
    ),
}
