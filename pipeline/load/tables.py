"""The output tables: names, columns, types, keys and descriptions — the analysts' contract.

Every table here is created in ``output/trialrecon.duckdb`` and exported to
``output/parquet/<table>.parquet``. ``schemas/data-dictionary.md`` is generated from these
definitions (``python -m pipeline schemas``), so the documentation cannot drift from the code.

``replace_by`` names the columns that identify one unit of loading: a run deletes every row
whose key it is about to write, then inserts. That is why running twice gives the same rows and a
second document's rows stand beside the first's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type
    description: str
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    replace_by: tuple[str, ...]
    primary_key: tuple[str, ...] = field(default=())

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

RUN_ID = Column("run_id", "VARCHAR", "Id of the pipeline run that wrote the row (see pipeline_runs).", False)
DOC_ID = Column("document_id", "VARCHAR", "Id of the source document (see documents).", False)
TRIAL_ID = Column("trial_id", "VARCHAR", "The registry's id of the record (NCT, EU CT or EudraCT number).", False)
REGISTRY = Column("registry", "VARCHAR", "ctgov, ctis, euctr or cteu.", False)


def _t(name: str, description: str, columns: list[Column], replace_by: tuple[str, ...], pk: tuple[str, ...] = ()) -> Table:
    return Table(name, description, (*columns, RUN_ID), replace_by, pk)


DOCUMENT_TABLES = (
    _t("documents", "One row per source document.", [
        DOC_ID,
        Column("source_url", "VARCHAR", "Where the page lives (file:// for a local file)."),
        Column("title", "VARCHAR", "The page's heading, usually the drug's name."),
        Column("sha256", "VARCHAR", "sha256 of the document's bytes."),
        Column("extracted_at", "TIMESTAMPTZ", "When its facts were extracted."),
    ], ("document_id",), ("document_id",)),
    _t("document_trials", "The page's summary table, one row per table row, every cell as stated.", [
        DOC_ID,
        Column("row_number", "INTEGER", "1-based position of the row in the table."),
        Column("trial_id", "VARCHAR", "Trial id cell."),
        Column("phase", "VARCHAR", "Phase cell as stated, e.g. 'Phase 1/2'."),
        Column("condition", "VARCHAR", "Condition cell as stated."),
        Column("status", "VARCHAR", "Status cell as stated."),
        Column("enrollment", "INTEGER", "Enrollment cell as an integer."),
    ], ("document_id",), ("document_id", "row_number")),
    _t("document_claims", "Narrative sentences that name a trial or cite a reference.", [
        DOC_ID,
        Column("claim_id", "VARCHAR", "Stable id within the document ('c001', ...)."),
        Column("section", "VARCHAR", "Heading of the section the sentence stands in."),
        Column("sentence", "VARCHAR", "The sentence, citation markers included."),
        Column("trial_ids", "VARCHAR[]", "Trial ids named by the sentence."),
        Column("ref_numbers", "INTEGER[]", "Reference numbers cited by the sentence."),
        Column("field", "VARCHAR", "Main field the sentence speaks about, where told."),
        Column("fields", "VARCHAR[]", "Every field the sentence speaks about."),
    ], ("document_id",), ("document_id", "claim_id")),
    _t("document_ongoing", "The page's 'ongoing trials' list.", [
        DOC_ID,
        Column("position", "INTEGER", "1-based position in the list."),
        Column("title", "VARCHAR", "Title as shown."),
        Column("status", "VARCHAR", "Status as shown."),
        Column("countries", "VARCHAR[]", "Countries shown, as written."),
        Column("country_codes", "VARCHAR[]", "The countries shown, as ISO 3166-1 alpha-2 codes."),
        Column("more_countries", "INTEGER", "The '+N' count of countries not shown."),
        Column("trial_id", "VARCHAR", "The trial the entry is about: named by the page, or resolved by its "
               "title (see trial_id_source); NULL when it did not resolve (see unresolved_reason). "
               "Joins page_trials and v_trial_records."),
        Column("trial_id_source", "VARCHAR", "page (the page names the trial), title (the entry's title "
               "matched a record's title or a reference's) or product (a product only that trial's titles name, "
               "where the titles were not enough)."),
        Column("resolve_score", "DOUBLE", "Title similarity (0-100) of the best candidate trial; a trial is "
               "resolved at 85 or more and 5 ahead of the runner-up."),
        Column("unresolved_reason", "VARCHAR", "Why the entry did not resolve, with the best candidates and scores."),
    ], ("document_id",), ("document_id", "position")),
    _t("document_references", "The page's numbered references.", [
        DOC_ID,
        Column("ref_number", "INTEGER", "Reference number."),
        Column("url", "VARCHAR", "Reference URL."),
        Column("trial_id", "VARCHAR", "Trial the reference points at, where told."),
        Column("trial_id_source", "VARCHAR", "'url' or 'citing_sentence': how trial_id was told."),
    ], ("document_id",), ("document_id", "ref_number")),
    _t("document_glossary", "The page's glossary.", [
        DOC_ID,
        Column("term", "VARCHAR", "Term."),
        Column("definition", "VARCHAR", "Definition as stated."),
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
        Column("provenance", "VARCHAR", "captured or reconstructed."),
        Column("missing_reason", "VARCHAR", "Why there is no record (as page_trials.missing_reason)."),
        Column("missing_detail", "VARCHAR", "In words."),
    ], ("document_id",)),
)

_REC_KEY = ("registry", "trial_id")

TRIAL_TABLES = (
    _t("trials", "One row per registry record (a trial in several registries has several rows).", [
        TRIAL_ID, REGISTRY,
        Column("title", "VARCHAR", "Brief or public title."),
        Column("official_title", "VARCHAR", "Official or scientific title."),
        Column("sponsor", "VARCHAR", "Lead sponsor."),
        Column("phases", "VARCHAR[]", "Phases on CT.gov's vocabulary (PHASE1, PHASE2, ..., NA)."),
        Column("phase_raw", "VARCHAR", "The registry's phase value, as given."),
        Column("status", "VARCHAR", "The registry's status label or code, as given."),
        Column("status_normalized", "VARCHAR", "Status on one vocabulary across registries (see the status mapping)."),
        Column("enrollment", "INTEGER", "Enrollment figure."),
        Column("enrollment_type", "VARCHAR", "actual or estimated."),
        Column("enrollment_scope", "VARCHAR", "whole_trial, eea or member_state."),
        Column("start_date", "VARCHAR", "Start date, as precise as given (YYYY, YYYY-MM or YYYY-MM-DD)."),
        Column("start_date_precision", "VARCHAR", "year, month or day."),
        Column("completion_date", "VARCHAR", "Completion date, as precise as given."),
        Column("completion_date_precision", "VARCHAR", "year, month or day."),
        Column("last_updated", "VARCHAR", "Last update of the record, as precise as given."),
        Column("study_type", "VARCHAR", "INTERVENTIONAL, OBSERVATIONAL, ..."),
        Column("allocation", "VARCHAR", "RANDOMIZED, NON_RANDOMIZED, NA."),
        Column("masking", "VARCHAR", "NONE (open label), SINGLE, DOUBLE, ..."),
        Column("age_groups", "VARCHAR[]", "CHILD, ADULT, OLDER_ADULT."),
        Column("snapshot_path", "VARCHAR", "Snapshot the record was parsed from."),
        Column("snapshot_sha256", "VARCHAR", "sha256 of that snapshot."),
        Column("provenance", "VARCHAR", "captured or reconstructed."),
    ], _REC_KEY, _REC_KEY),
    _t("trial_conditions", "Conditions of each registry record.", [
        TRIAL_ID, REGISTRY, Column("condition", "VARCHAR", "Condition as the registry names it."),
    ], _REC_KEY),
    _t("trial_interventions", "Interventions of each registry record.", [
        TRIAL_ID, REGISTRY,
        Column("type", "VARCHAR", "DRUG, BIOLOGICAL, ... where given."),
        Column("name", "VARCHAR", "Intervention name."),
        Column("other_names", "VARCHAR[]", "Other names given by the registry."),
    ], _REC_KEY),
    _t("trial_outcomes", "Primary and secondary outcomes of each registry record.", [
        TRIAL_ID, REGISTRY,
        Column("kind", "VARCHAR", "primary or secondary."),
        Column("measure", "VARCHAR", "Outcome measure."),
        Column("time_frame", "VARCHAR", "Time frame, where given."),
    ], _REC_KEY),
    _t("trial_countries", "Countries of each registry record, by ISO 3166-1 alpha-2 code and name.", [
        TRIAL_ID, REGISTRY, Column("country", "VARCHAR", "ISO 3166-1 alpha-2 code."),
        Column("country_name", "VARCHAR", "The country's common English name ('Germany', 'South Korea')."),
    ], _REC_KEY),
    _t("trial_enrollments", "Every enrollment figure of each registry record, one row per scope it counts "
       "(the headline figure in trials.enrollment is one of them).", [
        TRIAL_ID, REGISTRY,
        Column("scope", "VARCHAR", "whole_trial, eea, member_state or rest_of_world (outside the EEA)."),
        Column("country", "VARCHAR", "ISO 3166-1 alpha-2 code of the member state, for scope member_state."),
        Column("country_name", "VARCHAR", "That country's name."),
        Column("enrollment", "INTEGER", "The figure."),
        Column("enrollment_type", "VARCHAR", "actual or estimated (planned)."),
        Column("headline", "BOOLEAN", "This is the figure in trials.enrollment."),
        Column("field_path", "VARCHAR", "Where the figure is in the native record."),
    ], _REC_KEY),
    _t("trial_identifiers", "Every other identifier a registry record gives.", [
        TRIAL_ID, REGISTRY,
        Column("other_id", "VARCHAR", "The other identifier."),
        Column("id_type", "VARCHAR", "NCT, EU_CT, EUDRACT, SPONSOR_PROTOCOL, or the registry's own type."),
    ], _REC_KEY),
)

SNAPSHOTS_TABLE = _t("snapshots", "The snapshot manifest: every stored registry response or reconstruction.", [
    Column("path", "VARCHAR", "Path relative to the snapshots folder.", False),
    Column("registry", "VARCHAR", "ctgov, ctis, euctr, cteu or document."),
    Column("trial_id", "VARCHAR", "Trial the snapshot is about."),
    Column("url", "VARCHAR", "URL the bytes were (or would be) fetched from."),
    Column("fetched_at", "TIMESTAMPTZ", "When fetched (captured) or built (reconstructed)."),
    Column("sha256", "VARCHAR", "sha256 of the file."),
    Column("http_status", "INTEGER", "HTTP status of the response, when fetched."),
    Column("etag", "VARCHAR", "ETag header, where given."),
    Column("last_modified", "VARCHAR", "Last-Modified header, where given."),
    Column("provenance", "VARCHAR", "captured, captured text or reconstructed."),
    Column("source_urls", "VARCHAR[]", "Public pages a reconstruction was built from."),
    Column("stale", "BOOLEAN", "The last refresh failed; this is older data."),
    Column("file_size", "BIGINT", "Size in bytes of the file the run verified against sha256 (NULL: not verified)."),
    Column("file_mtime_ns", "BIGINT",
           "Its modification time (ns since the epoch): a later run that finds the same size and time "
           "trusts the file without hashing it again; any difference has it hashed."),
], ("path",), ("path",))

LINKS_TABLE = _t("trial_links", "Registry numbers of one trial in several registries, with the evidence.", [
    TRIAL_ID,
    Column("other_id", "VARCHAR", "The other registry's number."),
    Column("other_registry", "VARCHAR", "Where other_id's record lives."),
    Column("strength", "VARCHAR", "confirmed (a source states it) or candidate (plausible only)."),
    Column("evidence", "VARCHAR", "Source URL or field path giving the link."),
    Column("note", "VARCHAR", "Remarks."),
], ("trial_id", "other_id"))

RECONCILIATION_TABLE = _t("reconciliation", "Each stated fact compared with a registry value.", [
    DOC_ID,
    Column("claim_id", "VARCHAR", "Claim id, or table:<row>:<field>, ongoing:<n>, ref:<n>, cross:<trial>."),
    Column("comparison", "VARCHAR", "page_vs_registry (a stated fact against a registry record), page_vs_page "
           "(the page against itself: registry 'document') or registry_vs_registry (cross:<trial> rows: one "
           "registry's record against another's; stated_value is then the first registry's value)."),
    Column("statement", "VARCHAR", "The page's words the fact comes from: the sentence, the summary-table row, "
           "the ongoing entry or the reference; NULL for registry_vs_registry rows."),
    Column("trial_id", "VARCHAR", "Trial the fact is about."),
    Column("field", "VARCHAR", "Field compared."),
    Column("stated_value", "VARCHAR", "What the document states; null in registry-vs-registry rows "
                                      "(claim_id cross:<trial>), where the page states nothing."),
    Column("registry_value", "VARCHAR", "What the registry records."),
    Column("registry", "VARCHAR", "Registry compared against ('document': the page against itself)."),
    Column("compared_registry", "VARCHAR", "Registry-vs-registry rows only: the registry whose record "
                                           "registry_value is compared with; null otherwise."),
    Column("compared_value", "VARCHAR", "Registry-vs-registry rows only: that record's value; null otherwise."),
    Column("verdict", "VARCHAR", "match, partial, mismatch or unverifiable."),
    Column("rule", "VARCHAR", "Name of the comparison."),
    Column("detail", "VARCHAR", "Why, in words."),
    Column("score", "DOUBLE", "Similarity score, where a fuzzy rule was used."),
    Column("evidence_snapshot", "VARCHAR", "Snapshot path of the registry value."),
    Column("evidence_sha256", "VARCHAR", "sha256 of that snapshot."),
    Column("evidence_provenance", "VARCHAR", "captured or reconstructed."),
    Column("evidence_record", "VARCHAR", "Id of the registry record used."),
    Column("evidence_field_path", "VARCHAR", "Path of the value in the native record."),
    Column("evidence_link", "VARCHAR", "How the record was reached (link), if not by the same id."),
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
), ("run_id",), ("run_id",))

RECORD_CACHE_TABLE = _t("record_cache", "Parsed records by snapshot sha256, so unchanged snapshots are not parsed again.", [
    Column("snapshot_path", "VARCHAR", "Snapshot path.", False),
    Column("sha256", "VARCHAR", "sha256 of the snapshot the records were parsed from.", False),
    Column("records_json", "VARCHAR", "The parsed TrialRecords, as JSON (see TrialRecord.schema.json)."),
    Column("parser_version", "VARCHAR", "sha256 of the parsers' code that made them: another version parses again."),
], ("snapshot_path",), ("snapshot_path",))

PAGE_BASIS_TABLE = _t("document_basis", "What each document's reconciliation rested on, so a run re-reconciles a page only when it changes.", [
    DOC_ID,
    Column("document_sha256", "VARCHAR", "sha256 of the document's bytes when it was reconciled."),
    Column("basis", "VARCHAR", "sha256 of the links and the code it was reconciled with."),
    Column("trial_id", "VARCHAR", "A trial number the page uses (its records coming or going re-reconcile it)."),
    Column("snapshot_path", "VARCHAR", "A snapshot the page's rows cite as evidence."),
    Column("snapshot_sha256", "VARCHAR", "That snapshot's sha256 when it was used."),
], ("document_id",))

RUN_COUNTS_TABLE = _t("run_registry_counts", "Per run and registry, what happened to its snapshots.", [
    Column("registry", "VARCHAR", "ctgov, ctis, euctr, cteu or document."),
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
    Column("claim_id", "VARCHAR", "As in reconciliation."),
    Column("trial_id", "VARCHAR", "As in reconciliation."),
    Column("field", "VARCHAR", "As in reconciliation."),
    Column("registry", "VARCHAR", "As in reconciliation."),
    Column("rule", "VARCHAR", "As in reconciliation."),
    Column("verdict", "VARCHAR", "The verdict while it held."),
    Column("stated_value", "VARCHAR", "The stated value while it held."),
    Column("registry_value", "VARCHAR", "The registry value while it held."),
    Column("compared_value", "VARCHAR", "The compared registry's value while it held (registry-vs-registry rows)."),
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
    RECORD_CACHE_TABLE, PAGE_BASIS_TABLE,
)
TABLES_BY_NAME = {t.name: t for t in ALL_TABLES}

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
