"""Bulk ingest, DuckDB-native: CT.gov API v2 records decoded and turned into rows by DuckDB's JSON reader.

    chunk of records as Arrow (pipeline.store.chunks: an NDJSON file memory-mapped, read one chunk ahead)
        --worker thread, in-memory DuckDB--> from_json + SQL reads: one row per record
        --mapping tables from pipeline.registries.vocab, CASEs from pipeline.registries.ctgov's mappings-->
          the chunk's trial_* rows and trial_history values
        --this thread, staging database--> deletes, inserts, history folded in (a commit every
          COMMIT_EVERY studies)

The Python path (:mod:`pipeline.store.ingest`) decodes with orjson and parses with
:func:`pipeline.registries.ctgov.parse_study`; decoding and parsing there cost more CPU than the
bare decode. Here DuckDB does both, on two cores, and Python only normalizes the few *distinct*
raw values (statuses, dates, phase lists, country names, identifier forms) with the very
functions of :mod:`pipeline.registries.vocab`, registered as small mapping tables joined in SQL; the
CT.gov values the parser renames (enrollment types, secondary id types, ...) come from the very
dicts of :mod:`pipeline.registries.ctgov`, written into the SQL as CASE expressions. The rows
are the Python path's rows, chunk for chunk (the same chunks, so even ``trial_history`` agrees).

A record the SQL cannot read exactly as ``parse_study`` would goes to the Python path instead
(parsed there, or a ``load_errors`` row there): one that DuckDB cannot decode, one without an NCT
number, one whose text is not valid UTF-8 or holds ``\\uD800``-``\\uDFFF`` escapes, and one where any
field ``parse_study`` reads has another JSON type than it expects (a number for a string, an
object for a list, ...). Routing is conservative: sending a good record to Python costs time,
never a different row.

Known differences, for input that is not strict JSON: DuckDB's reader accepts ``NaN``,
``Infinity`` and trailing commas, which orjson rejects (the record loads here, is a load error
there), and of duplicate keys in one object it keeps the first where orjson keeps the last.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.store.chunks import StudyChunk, read_ahead
from pipeline.load.rows import HISTORY_FIELDS, IngestCounts, LoadError, record_rows
from pipeline.load.writer import apply_history_from, arrow_table, registered
from pipeline.models import SnapshotEntry, TrialRecord
from pipeline.load.tables import TABLES_BY_NAME, TRIAL_TABLES
from pipeline.registries import ctgov
from pipeline.registries.vocab import (
    country_name, normalize_country, normalize_status, parse_partial_date, parse_phases,
)
from pipeline.ids import trial_id_type
from pipeline.store.study import parse_one

# Chunks decoded at once, each by one DuckDB query on a worker thread, ahead of the one applied.
DECODE_THREADS = 2
DECODE_MEMORY_LIMIT = "128MB"
COMMIT_EVERY = 10_000  # studies applied per transaction on the staging database  # each: the staging connection has its own, and 100,000 records stay under 1 GiB

# The SQL reads CT.gov's two outcome lists as pos and sos: unpacking fails at import if the mapping changes shape.
(_PRIMARY_KEY, _PRIMARY), (_SECONDARY_KEY, _SECONDARY) = ctgov.OUTCOME_KINDS.items()

# Every leaf is read as raw JSON text so that its JSON type can be checked ('"' starts a string)
# exactly as parse_study checks it; an object missing on the way gives NULL, as JsonReader.get.
_STUDY_SPEC = {"protocolSection": {
    "identificationModule": {
        "nctId": "JSON", "orgStudyIdInfo": {"id": "JSON"}, "organization": {"fullName": "JSON"},
        "briefTitle": "JSON", "officialTitle": "JSON", "acronym": "JSON",
        "secondaryIdInfos": "JSON", "nctIdAliases": "JSON",
    },
    "statusModule": {
        "overallStatus": "JSON", "startDateStruct": {"date": "JSON"},
        "completionDateStruct": {"date": "JSON"}, "lastUpdatePostDateStruct": {"date": "JSON"},
    },
    "sponsorCollaboratorsModule": {"leadSponsor": {"name": "JSON"}},
    "designModule": {
        "studyType": "JSON", "phases": "JSON", "enrollmentInfo": {"count": "JSON", "type": "JSON"},
        "designInfo": {
            "allocation": "JSON", "interventionModel": "JSON", "observationalModel": "JSON",
            "primaryPurpose": "JSON", "maskingInfo": {"masking": "JSON"},
        },
    },
    "conditionsModule": {"conditions": "JSON", "keywords": "JSON"},
    "armsInterventionsModule": {"interventions": "JSON", "armGroups": "JSON"},
    "outcomesModule": {key: "JSON" for key in ctgov.OUTCOME_KINDS},
    "contactsLocationsModule": {"locations": "JSON"},
    "eligibilityModule": {"stdAges": "JSON"},
    "descriptionModule": {"briefSummary": "JSON"},
}}
_INTERVENTION_SPEC = {"type": "JSON", "name": "JSON", "otherNames": "JSON", "description": "JSON"}
_ARM_SPEC = {"label": "JSON", "type": "JSON", "description": "JSON", "interventionNames": "JSON"}
_OUTCOME_SPEC = {"measure": "JSON", "timeFrame": "JSON", "description": "JSON"}
_SECONDARY_ID_SPEC = {"id": "JSON", "type": "JSON", "domain": "JSON"}
_LOCATION_SPEC = {"country": "JSON"}


def _whitespace() -> str:
    """Exactly the characters Python's str.strip() removes (DuckDB's trim takes them as a set)."""
    return "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_case(expression: str, mapping: dict[str, str], otherwise: str = "NULL") -> str:
    """SQL: ``mapping[expression]``, ``otherwise`` (SQL) for a value it does not have or NULL."""
    whens = " ".join(f"WHEN {_sql_text(raw)} THEN {_sql_text(ours)}" for raw, ours in mapping.items())
    return f"(CASE {expression} {whens} ELSE {otherwise} END)" if mapping else f"({otherwise})"


def _sql_in(expression: str, values: Iterable[str]) -> str:
    """SQL: ``expression`` is one of ``values`` (false for none, NULL for a NULL expression)."""
    listed = ", ".join(map(_sql_text, values))
    return f"({expression} IN ({listed}))" if listed else f"({expression} IS NOT NULL AND false)"


_WS = _whitespace()

# _text: a JSON string's value, stripped as str.strip() does, None when blank. trim() with a set of
# characters costs ~1 us a value (ten times the rest), so it runs only where an edge of the raw
# text is not printable ASCII or the text has an escape; slices counted from the end are as costly.
_MACROS = f"""
CREATE OR REPLACE TEMP MACRO _absent(j) AS (j IS NULL OR j = 'null');
CREATE OR REPLACE TEMP MACRO _is_str(j) AS (_absent(j) OR starts_with(j, '"'));
CREATE OR REPLACE TEMP MACRO _text(j) AS (CASE
    WHEN _absent(j) THEN NULL
    WHEN NOT contains(j::VARCHAR, '\\') AND j::VARCHAR <> '""'
         AND ord((j::VARCHAR)[2]) BETWEEN 33 AND 126 AND ord((j::VARCHAR)[-2]) BETWEEN 33 AND 126 THEN j ->> '$'
    ELSE nullif(trim(j ->> '$', {_sql_text(_WS)}), '') END);
CREATE OR REPLACE TEMP MACRO _items(j) AS
    (CASE WHEN _absent(j) THEN []::JSON[] ELSE from_json(j, '["JSON"]') END);
CREATE OR REPLACE TEMP MACRO _is_list_of(j, first) AS (_absent(j) OR (starts_with(j, '[')
    AND coalesce(list_bool_and(list_transform(from_json(j, '["JSON"]'),
                                              lambda e: coalesce(starts_with(e, first), false))), true)));
CREATE OR REPLACE TEMP MACRO _texts(j) AS
    list_filter(list_transform(_items(j), lambda e: _text(e)), lambda v: v IS NOT NULL);
CREATE OR REPLACE TEMP MACRO _is_int(j) AS
    (_absent(j) OR (regexp_full_match(j, '-?[0-9]{{1,9}}')));
"""

# The chunk decoded: the JSON leaves parse_study reads, lists of objects decoded once more (only
# where they are lists of objects: anything else is for the Python path to name).
_OBJECTS_SQL = """
CREATE OR REPLACE TEMP TABLE _objects AS
WITH decoded AS (
    SELECT seq, doc IS NOT NULL AND NOT (contains(doc, '\\u') AND regexp_matches(doc, '\\\\u[dD][89abcdefABCDEF]'))
               AS clean,
           try(from_json(doc, {study_spec})) AS s
    FROM (SELECT seq, {text} AS doc FROM _docs)
), leaves AS (
    SELECT seq, clean, s IS NOT NULL AS decoded,
           s.protocolSection.identificationModule AS idm,
           s.protocolSection.statusModule AS stm,
           s.protocolSection.designModule AS dsm,
           s.protocolSection.armsInterventionsModule AS aim,
           s.protocolSection.outcomesModule AS ocm,
           s.protocolSection.sponsorCollaboratorsModule.leadSponsor.name AS j_sponsor,
           s.protocolSection.conditionsModule AS cnm,
           s.protocolSection.contactsLocationsModule.locations AS j_locations,
           s.protocolSection.eligibilityModule.stdAges AS j_ages,
           s.protocolSection.descriptionModule.briefSummary AS j_summary
    FROM decoded
), objects AS (
    SELECT *,
           CASE WHEN starts_with(aim.interventions, '[') THEN from_json(aim.interventions, {iv_spec}) END AS ivs,
           CASE WHEN starts_with(aim.armGroups, '[') THEN from_json(aim.armGroups, {arm_spec}) END AS arms,
           CASE WHEN starts_with({pos_raw}, '[') THEN from_json({pos_raw}, {oc_spec}) END AS pos,
           CASE WHEN starts_with({sos_raw}, '[') THEN from_json({sos_raw}, {oc_spec}) END AS sos,
           CASE WHEN starts_with(idm.secondaryIdInfos, '[') THEN from_json(idm.secondaryIdInfos, {sid_spec}) END AS sids,
           CASE WHEN starts_with(j_locations, '[') THEN from_json(j_locations, {loc_spec}) END AS locs
    FROM leaves
)
SELECT seq, clean, decoded, idm, stm, dsm, j_sponsor, cnm, j_ages, j_summary, ivs, arms, pos, sos, sids, locs,
       {ivs_ok} AND {arms_ok} AND {pos_ok} AND {sos_ok} AND {sids_ok} AND {locs_ok} AS lists_ok
FROM objects
"""

# One row per record of the chunk: every value parse_study reads, stripped, and whether each had
# the JSON type parse_study expects (``ok``; a record not ok goes to the Python path). Read from
# the table _OBJECTS_SQL wrote: two statements are several times faster than one with a CTE.
_READ_SQL = """
SELECT seq, label, sha256,
    coalesce(clean AND decoded AND _text(idm.nctId) IS NOT NULL
        AND _is_str(idm.nctId) AND _is_str(idm.orgStudyIdInfo.id) AND _is_str(idm.organization.fullName)
        AND _is_str(idm.briefTitle) AND _is_str(idm.officialTitle) AND _is_str(idm.acronym)
        AND _is_list_of(idm.nctIdAliases, '"')
        AND _is_str(stm.overallStatus) AND _is_str(stm.startDateStruct.date)
        AND _is_str(stm.completionDateStruct.date) AND _is_str(stm.lastUpdatePostDateStruct.date)
        AND _is_str(j_sponsor) AND _is_str(dsm.studyType) AND _is_list_of(dsm.phases, '"')
        AND _is_int(dsm.enrollmentInfo.count) AND _is_str(dsm.enrollmentInfo.type)
        AND _is_str(dsm.designInfo.allocation) AND _is_str(dsm.designInfo.interventionModel)
        AND _is_str(dsm.designInfo.observationalModel) AND _is_str(dsm.designInfo.primaryPurpose)
        AND _is_str(dsm.designInfo.maskingInfo.masking)
        AND _is_list_of(cnm.conditions, '"') AND _is_list_of(cnm.keywords, '"')
        AND _is_list_of(j_ages, '"') AND _is_str(j_summary)
        AND lists_ok
        AND list_bool_and(list_transform(coalesce(ivs, []), lambda i: _is_str(i.type) AND _is_str(i.name)
            AND _is_list_of(i.otherNames, '"') AND _is_str(i.description))) IS NOT false
        AND list_bool_and(list_transform(coalesce(arms, []), lambda a: _is_str(a.label) AND _is_str(a.type)
            AND _is_str(a.description) AND _is_list_of(a.interventionNames, '"'))) IS NOT false
        AND list_bool_and(list_transform(coalesce(pos, []) || coalesce(sos, []), lambda o: _is_str(o.measure)
            AND _is_str(o.timeFrame) AND _is_str(o.description))) IS NOT false
        AND list_bool_and(list_transform(coalesce(sids, []), lambda i: _is_str(i.id) AND _is_str(i.type)
            AND _is_str(i.domain))) IS NOT false
        AND list_bool_and(list_transform(coalesce(locs, []), lambda l: _is_str(l.country))) IS NOT false,
        false) AS ok,
    _text(idm.nctId) AS trial_id,
    _text(idm.briefTitle) AS title,
    _text(idm.officialTitle) AS official_title,
    _text(j_sponsor) AS sponsor,
    _texts(dsm.phases) AS phases_raw,
    _text(stm.overallStatus) AS status_raw,
    CASE WHEN NOT _absent(dsm.enrollmentInfo.count) THEN try_cast(dsm.enrollmentInfo.count AS INTEGER) END
        AS enrollment,
    _text(dsm.enrollmentInfo.type) AS enrollment_type_raw,
    _text(stm.startDateStruct.date) AS start_raw,
    _text(stm.completionDateStruct.date) AS completion_raw,
    _text(stm.lastUpdatePostDateStruct.date) AS updated_raw,
    _text(dsm.studyType) AS study_type,
    _text(dsm.designInfo.allocation) AS allocation,
    _text(dsm.designInfo.maskingInfo.masking) AS masking,
    _texts(j_ages) AS age_groups,
    _texts(cnm.conditions) AS conditions,
    list_filter(list_transform(coalesce(ivs, []), lambda i: {{'type': _text(i.type), 'name': _text(i.name),
                                                             'other_names': _texts(i.otherNames)}}),
                lambda i: i.name IS NOT NULL) AS interventions,
    list_filter(list_transform(coalesce(pos, []), lambda o: {{'kind': {primary}, 'measure': _text(o.measure),
                                                             'time_frame': _text(o.timeFrame)}})
                || list_transform(coalesce(sos, []), lambda o: {{'kind': {secondary}, 'measure': _text(o.measure),
                                                                'time_frame': _text(o.timeFrame)}}),
                lambda o: o.measure IS NOT NULL) AS outcomes,
    list_filter(list_transform(list_distinct(list_transform(coalesce(locs, []), lambda l: l.country)),
                               lambda c: _text(c)), lambda c: c IS NOT NULL) AS country_names,
    _text(idm.orgStudyIdInfo.id) AS org_id,
    list_filter(list_transform(coalesce(sids, []), lambda i: {{'other_id': _text(i.id),
                                                              'native_type': _text(i.type)}}),
                lambda i: i.other_id IS NOT NULL) AS secondary_ids,
    _texts(idm.nctIdAliases) AS aliases
FROM _objects JOIN _docs USING (seq)
"""


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | None = None) -> None:
    """Execute a statement to its end (DuckDB refuses other work while a result is unread)."""
    con.execute(sql, params).fetchall()


def _objects_ok(raw: str, decoded: str, spec: dict[str, str]) -> str:
    """SQL: the raw JSON is absent or a list of objects, told from its one decoding where possible.

    Decoded with an object spec, an element that is no object reads as a struct of NULLs, as ``{}``
    does; only a list with such an element is decoded once more to tell the two apart.
    """
    some_field = " OR ".join(f'e."{name}" IS NOT NULL' for name in spec)
    return (f"(_absent({raw}) OR ({decoded} IS NOT NULL AND CASE WHEN list_bool_and(list_transform({decoded}, "
            f"lambda e: e IS NOT NULL AND ({some_field}))) IS NOT false THEN true "
            f"ELSE _is_list_of({raw}, '{{') END))")


def _spec(value: Any) -> str:
    return _sql_text(json.dumps(value, separators=(",", ":")))


_READ = _READ_SQL.format(primary=_sql_text(_PRIMARY), secondary=_sql_text(_SECONDARY))
_OBJECTS_PARAMS = dict(
    study_spec=_spec(_STUDY_SPEC), iv_spec=_spec([_INTERVENTION_SPEC]), arm_spec=_spec([_ARM_SPEC]),
    oc_spec=_spec([_OUTCOME_SPEC]), sid_spec=_spec([_SECONDARY_ID_SPEC]), loc_spec=_spec([_LOCATION_SPEC]),
    ivs_ok=_objects_ok("aim.interventions", "ivs", _INTERVENTION_SPEC),
    arms_ok=_objects_ok("aim.armGroups", "arms", _ARM_SPEC),
    pos_raw=f'ocm."{_PRIMARY_KEY}"', sos_raw=f'ocm."{_SECONDARY_KEY}"',
    pos_ok=_objects_ok(f'ocm."{_PRIMARY_KEY}"', "pos", _OUTCOME_SPEC),
    sos_ok=_objects_ok(f'ocm."{_SECONDARY_KEY}"', "sos", _OUTCOME_SPEC),
    sids_ok=_objects_ok("idm.secondaryIdInfos", "sids", _SECONDARY_ID_SPEC),
    locs_ok=_objects_ok("j_locations", "locs", _LOCATION_SPEC),
)
# The chunk's text as Arrow checked it (valid UTF-8), or its bytes checked record by record.
_OBJECTS = _OBJECTS_SQL.format(text="doc", **_OBJECTS_PARAMS)
_OBJECTS_FROM_BYTES = _OBJECTS_SQL.format(text="try(decode(doc))", **_OBJECTS_PARAMS)

# The chunk's rows per table, as the trial_* tables hold them, with the record's position.
_CHUNK_SQL = {
    "trials": f"""
        SELECT r.seq, r.trial_id, 'ctgov' AS registry, r.title, r.official_title, r.sponsor,
               coalesce(ph.phases, []::VARCHAR[]) AS phases,
               CASE WHEN len(r.phases_raw) > 0 THEN array_to_string(r.phases_raw, ', ') END AS phase_raw,
               r.status_raw AS status, st.status AS status_normalized,
               r.enrollment,
               CASE WHEN r.enrollment IS NOT NULL THEN {_sql_case("r.enrollment_type_raw", ctgov.ENROLLMENT_TYPES)}
                   END AS enrollment_type,
               CASE WHEN r.enrollment IS NOT NULL THEN {_sql_text(ctgov.ENROLLMENT_SCOPE)} END AS enrollment_scope,
               sd.value AS start_date, sd.precision AS start_date_precision,
               cd.value AS completion_date, cd.precision AS completion_date_precision,
               ud.value AS last_updated,
               r.study_type, r.allocation, r.masking, r.age_groups,
               r.label AS snapshot_path, r.sha256 AS snapshot_sha256, 'captured' AS provenance
        FROM _read r
        LEFT JOIN _map_phases ph ON ph.raw = r.phases_raw
        LEFT JOIN _map_status st ON st.raw = r.status_raw
        LEFT JOIN _map_dates sd ON sd.raw = r.start_raw
        LEFT JOIN _map_dates cd ON cd.raw = r.completion_raw
        LEFT JOIN _map_dates ud ON ud.raw = r.updated_raw
        WHERE r.ok""",
    "trial_conditions": """
        SELECT seq, trial_id, 'ctgov' AS registry, unnest(conditions) AS condition FROM _read WHERE ok""",
    "trial_interventions": """
        SELECT seq, trial_id, 'ctgov' AS registry, i.type, i.name, i.other_names
        FROM (SELECT seq, trial_id, unnest(interventions) AS i FROM _read WHERE ok)""",
    "trial_outcomes": """
        SELECT seq, trial_id, 'ctgov' AS registry, o.kind, o.measure, o.time_frame
        FROM (SELECT seq, trial_id, unnest(outcomes) AS o FROM _read WHERE ok)""",
    "trial_countries": """
        SELECT DISTINCT r.seq, r.trial_id, 'ctgov' AS registry, m.code AS country, m.name AS country_name
        FROM (SELECT seq, trial_id, unnest(country_names) AS name FROM _read WHERE ok) r
        JOIN _map_countries m ON m.raw = r.name
        WHERE m.code IS NOT NULL""",
    # A CT.gov record gives one figure, for the whole trial (_chunk_trials is made before this).
    "trial_enrollments": f"""
        SELECT seq, trial_id, registry, enrollment_scope AS scope, NULL::VARCHAR AS country,
               NULL::VARCHAR AS country_name, enrollment, enrollment_type, true AS headline,
               {_sql_text(ctgov.ENROLLMENT_PATH)} AS field_path
        FROM _chunk_trials WHERE enrollment IS NOT NULL""",
    "trial_identifiers": f"""
        SELECT DISTINCT seq, trial_id, 'ctgov' AS registry, other_id, id_type FROM (
            SELECT seq, trial_id, org_id AS other_id, {_sql_text(ctgov.SPONSOR_ID_TYPE)} AS id_type
            FROM _read WHERE ok AND org_id IS NOT NULL
            UNION ALL
            SELECT r.seq, r.trial_id, r.i.other_id,
                   {_sql_case("r.i.native_type", ctgov.SECONDARY_ID_TYPES,
                              otherwise=f"coalesce(f.form, r.i.native_type, {_sql_text(ctgov.UNTYPED_ID_TYPE)})")}
            FROM (SELECT seq, trial_id, unnest(secondary_ids) AS i FROM _read WHERE ok) r
            LEFT JOIN _map_id_forms f ON f.raw = r.i.other_id
            UNION ALL
            SELECT seq, trial_id, alias, {_sql_text(ctgov.ALIAS_ID_TYPE)}
            FROM (SELECT seq, trial_id, unnest(aliases) AS alias FROM _read WHERE ok)
            WHERE alias <> trial_id
        )""",
}


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Create the SQL macros :func:`load_chunk` uses (temporary: they leave no trace in the output)."""
    _run(con, _MACROS)


def load_chunks(
    con: duckdb.DuckDBPyConnection, chunks: Iterator[StudyChunk], run_id: str, observed_at: datetime,
) -> Iterator[IngestCounts]:
    """Load chunk after chunk into the output tables, as ``pipeline.store.ingest``'s Python path would.

    DuckDB runs one query on one core when its input is a few thousand rows, so each chunk is
    turned into its rows ahead, by an in-memory DuckDB of its worker thread's own (DuckDB
    releases the GIL), while this thread applies the rows of the chunk before, in order: all
    that is left to do on the staging database is the deletes, inserts, history and commit.

    Args:
        con: the staging connection.
        chunks: the records, in the Python path's chunks (:mod:`pipeline.store.chunks`): a trial given
            twice in one chunk keeps only its last record, in two it gets history rows for both.
        run_id: the run the rows belong to.
        observed_at: ``valid_from`` of the history rows (bulk records carry no fetch time).

    Yields:
        Each chunk's counts and load errors, once it is applied.
    """
    local = threading.local()
    cursors: list[duckdb.DuckDBPyConnection] = []
    scratch_dir = tempfile.TemporaryDirectory(prefix="trialrecon-decode-")
    scratch = scratch_dir.name

    def read(chunk: StudyChunk) -> ChunkRows:
        if not hasattr(local, "cursor"):
            # An in-memory database of the worker's own: its temporary tables stay off the
            # staging file and out of the way of the connection that applies the chunks.
            # It spills to the run's scratch folder rather than fail on a chunk of huge records.
            local.cursor = duckdb.connect(config={"memory_limit": DECODE_MEMORY_LIMIT, "threads": 1,
                                                  "temp_directory": scratch})
            prepare(local.cursor)
            cursors.append(local.cursor)
        rows = read_chunk(local.cursor, chunk.docs, run_id, observed_at)
        chunk.release()  # its bytes are decoded: a mapped file's pages can go
        return rows

    # The staging database is published whole or not at all, so transactions only bound memory:
    # a commit per chunk cost a third of this thread's work, one for the whole source holds
    # every row in memory until the end.
    _run(con, "BEGIN")
    uncommitted = 0
    try:
        with ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="trialrecon-decode") as pool:
            pending: deque[Future[ChunkRows]] = deque()

            def apply_oldest() -> IngestCounts:
                return load_chunk(con, pending.popleft().result())

            try:
                for chunk in read_ahead(chunks):
                    pending.append(pool.submit(read, chunk))
                    del chunk  # the worker holds it until read, no longer
                    if uncommitted >= COMMIT_EVERY:  # once the workers have the next chunk
                        _run(con, "COMMIT")
                        _run(con, "BEGIN")
                        uncommitted = 0
                    if len(pending) >= DECODE_THREADS:
                        outcome = apply_oldest()
                        uncommitted += outcome.studies
                        yield outcome
                while pending:
                    yield apply_oldest()
            finally:
                for future in pending:
                    future.cancel()
        _run(con, "COMMIT")
    except BaseException:
        _run(con, "ROLLBACK")
        raise
    finally:
        for cursor in cursors:
            cursor.close()
        scratch_dir.cleanup()


@dataclass(frozen=True)
class ChunkRows:
    """One chunk's rows, ready to apply: what replaces its trials' rows, their history values, its load errors.

    ``tables`` holds, per trial table, the rows of the last record of each trial in the chunk
    (``run_id`` set); ``keys`` those trials (registry, trial_id); ``current`` their
    ``trial_history`` values as :func:`pipeline.load.writer.apply_history_from` takes them; ``counts``
    the chunk's studies, records, bytes and load errors.
    """

    run_id: str
    tables: dict[str, pa.Table]
    keys: pa.Table
    current: pa.Table
    counts: IngestCounts


def read_chunk(
    cursor: duckdb.DuckDBPyConnection, docs: pa.Table, run_id: str, observed_at: datetime,
) -> ChunkRows:
    """Turn one chunk of records into its rows, with DuckDB (the Python path for the records it does not read).

    Args:
        cursor: a connection with :func:`prepare` called on it (its temporary tables are the chunk's).
        docs: the chunk's records, as :mod:`pipeline.store.chunks` gives them.
        run_id: the run the rows belong to.
        observed_at: ``valid_from`` of the history rows.

    Returns:
        The chunk's rows, history values, load errors and counts.
    """
    docs = _with_sha256(docs)
    raw = docs["doc"]  # the bytes, for the records the Python path parses
    try:
        # Valid UTF-8 throughout (nearly always): checked once by Arrow, read as text by DuckDB.
        docs = docs.set_column(docs.schema.get_field_index("doc"), "doc", docs["doc"].cast(pa.large_string()))
        objects = _OBJECTS
    except pa.ArrowInvalid:
        objects = _OBJECTS_FROM_BYTES
    with registered(cursor, "_docs", docs):
        try:
            _run(cursor, objects)
            _run(cursor, f"CREATE OR REPLACE TEMP TABLE _read AS {_READ}")
        finally:
            _run(cursor, "DROP TABLE IF EXISTS _objects")  # the chunk's decoded JSON: not kept between chunks
    routed = [seq for (seq,) in cursor.execute("SELECT seq FROM _read WHERE NOT ok ORDER BY seq").fetchall()]
    _register_mappings(cursor)
    for name, sql in _CHUNK_SQL.items():
        _run(cursor, f'CREATE OR REPLACE TEMP TABLE "_chunk_{name}" AS {sql}')
    _run(cursor, "DROP TABLE _read")
    records = cursor.execute("SELECT count(*) FROM _chunk_trials").fetchall()[0][0]
    python_records, errors = _parse_in_python(
        {seq: (docs["label"][seq].as_py(), raw[seq].as_py()) for seq in routed})
    _add_python_rows(cursor, python_records)
    # The last record of a trial in the chunk is the one loaded (as the Python path's dict does).
    _run(cursor, "CREATE OR REPLACE TEMP TABLE _latest AS "
                 "SELECT registry, trial_id, max(seq) AS seq FROM _chunk_trials GROUP BY registry, trial_id")
    tables = {}
    for table in TRIAL_TABLES:
        picked = ", ".join(f'c."{c}"' for c in table.column_names if c != "run_id")
        tables[table.name] = cursor.sql(
            f'SELECT {picked}, $run_id::VARCHAR AS run_id FROM "_chunk_{table.name}" c JOIN _latest k ON c.seq = k.seq',
            params={"run_id": run_id}).to_arrow_table()
    keys = cursor.sql("SELECT registry, trial_id FROM _latest").to_arrow_table()
    current = _history_values(cursor, run_id, observed_at)
    counts = IngestCounts(studies=len(docs), records=records + len(python_records),
                          bytes_read=pc.sum(pc.binary_length(raw)).as_py() or 0, errors=errors)
    return ChunkRows(run_id=run_id, tables=tables, keys=keys, current=current, counts=counts)


def load_chunk(con: duckdb.DuckDBPyConnection, rows: ChunkRows) -> IngestCounts:
    """Apply one chunk's rows to the output tables (in the transaction :func:`load_chunks` holds open).

    The chunk's trials lose their earlier rows and get the chunk's; their ``trial_history``
    values are folded in (a changed value closes the open row and opens a new one); the
    chunk's load errors are recorded.

    Args:
        con: the staging connection.
        rows: the chunk as :func:`read_chunk` turned it into rows.

    Returns:
        The chunk's counts and load errors.
    """
    with registered(con, "_keys", rows.keys):
        for table in TRIAL_TABLES:
            _run(con, f'DELETE FROM "{table.name}" t USING _keys k '
                      f"WHERE t.registry = k.registry AND t.trial_id = k.trial_id")
    for table in TRIAL_TABLES:
        with registered(con, "_rows", rows.tables[table.name]):
            _run(con, f'INSERT INTO "{table.name}" BY NAME SELECT * FROM _rows')
    with registered(con, "_current", rows.current):
        apply_history_from(con, "trial_history", "_current")
    if rows.counts.errors:
        errors = arrow_table(TABLES_BY_NAME["load_errors"],
                             [{**vars(e), "run_id": rows.run_id} for e in rows.counts.errors])
        with registered(con, "_errors", errors):
            _run(con, "INSERT INTO load_errors BY NAME SELECT * FROM _errors")
    return rows.counts


def _with_sha256(docs: pa.Table) -> pa.Table:
    """``docs`` with the ``sha256`` of each record, hashed in place in the Arrow buffers (no copies)."""
    digests: list[str] = []
    for column in docs.column("doc").chunks:
        offsets = memoryview(column.buffers()[1]).cast("q")[column.offset:column.offset + len(column) + 1]
        data = memoryview(column.buffers()[2] or b"")
        digests.extend(hashlib.sha256(data[start:end]).hexdigest() for start, end in itertools.pairwise(offsets))
    return docs.append_column("sha256", pa.array(digests, pa.string()))


# -- normalizations: distinct raw values, mapped by pipeline.registries.vocab --------------------------------


@lru_cache(maxsize=65536)
def _status(raw: str) -> str | None:
    status = normalize_status(raw, "ctgov")
    return status.value if status else None


@lru_cache(maxsize=65536)
def _date(raw: str) -> tuple[str | None, str | None]:
    parsed = parse_partial_date(raw)
    return (parsed.value, parsed.precision) if parsed else (None, None)


@lru_cache(maxsize=65536)
def _country(raw: str) -> str | None:
    return normalize_country(raw)


def _register_mappings(con: duckdb.DuckDBPyConnection) -> None:
    """Small tables raw value -> normalized value, for the distinct raw values of the chunk."""
    def distinct(sql: str) -> list[Any]:
        return [row[0] for row in con.execute(sql).fetchall()]

    statuses = distinct("SELECT DISTINCT status_raw FROM _read WHERE ok AND status_raw IS NOT NULL")
    _register(con, "_map_status", {"raw": pa.array(statuses, pa.string()),
                                   "status": pa.array([_status(s) for s in statuses], pa.string())})
    dates = distinct("SELECT DISTINCT d FROM (SELECT unnest([start_raw, completion_raw, updated_raw]) AS d "
                     "FROM _read WHERE ok) WHERE d IS NOT NULL")
    parsed = [_date(d) for d in dates]
    _register(con, "_map_dates", {"raw": pa.array(dates, pa.string()),
                                  "value": pa.array([p[0] for p in parsed], pa.string()),
                                  "precision": pa.array([p[1] for p in parsed], pa.string())})
    phase_lists = distinct("SELECT DISTINCT phases_raw FROM _read WHERE ok AND len(phases_raw) > 0")
    _register(con, "_map_phases", {
        "raw": pa.array(phase_lists, pa.list_(pa.string())),
        "phases": pa.array([[p.value for p in parse_phases(raw)] for raw in phase_lists], pa.list_(pa.string())),
    })
    names = distinct("SELECT DISTINCT unnest(country_names) FROM _read WHERE ok")
    _register(con, "_map_countries", {"raw": pa.array(names, pa.string()),
                                      "code": pa.array([_country(n) for n in names], pa.string()),
                                      "name": pa.array([country_name(_country(n)) for n in names], pa.string())})
    ids = distinct("SELECT DISTINCT i.other_id FROM (SELECT unnest(secondary_ids) AS i FROM _read WHERE ok) "
                   f"WHERE NOT coalesce({_sql_in('i.native_type', ctgov.SECONDARY_ID_TYPES)}, false)")
    _register(con, "_map_id_forms", {"raw": pa.array(ids, pa.string()),
                                     "form": pa.array([trial_id_type(i) for i in ids], pa.string())})


def _register(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, pa.Array]) -> None:
    with registered(con, "_mapping", pa.table(columns)):
        _run(con, f'CREATE OR REPLACE TEMP TABLE "{name}" AS SELECT * FROM _mapping')


# -- the records the SQL does not read: the Python path's own parsing -----------------------------


def _parse_in_python(
    routed: dict[int, tuple[str, bytes]],
) -> tuple[list[tuple[int, TrialRecord, SnapshotEntry]], list[LoadError]]:
    """``parse_study`` on the routed records: (position, record, entry) for the good, load errors for the bad."""
    records: list[tuple[int, TrialRecord, SnapshotEntry]] = []
    errors: list[LoadError] = []
    for seq, (label, data) in sorted(routed.items()):
        parsed = parse_one(label, data)
        if isinstance(parsed, LoadError):
            errors.append(parsed)
        else:
            records.append((seq, *parsed))
    return records, errors


def _add_python_rows(con: duckdb.DuckDBPyConnection, records: Sequence[tuple[int, TrialRecord, SnapshotEntry]]) -> None:
    """The Python-parsed records' rows into the chunk tables, beside the SQL's (history is built from them all)."""
    if not records:
        return
    for table in TRIAL_TABLES:
        rows: list[dict[str, object]] = []
        seqs: list[int] = []
        for seq, record, entry in records:
            table_rows = record_rows(record, entry)[table.name]
            rows.extend(table_rows)
            seqs.extend([seq] * len(table_rows))
        if not rows:
            continue
        arrow = arrow_table(table, rows).drop_columns(["run_id"]).append_column("seq", pa.array(seqs, pa.int64()))
        with registered(con, "_python_rows", arrow):
            _run(con, f'INSERT INTO "_chunk_{table.name}" BY NAME SELECT * FROM _python_rows')


# -- applying the chunk ---------------------------------------------------------------------------

# trial_history's fields held as rows of another table: field -> (table, column).
_HISTORY_ROW_LISTS = {"conditions": ("trial_conditions", "condition"), "countries": ("trial_countries", "country")}


def _history_values(cursor: duckdb.DuckDBPyConnection, run_id: str, observed_at: datetime) -> pa.Table:
    """The loaded records' ``trial_history`` values, as :func:`pipeline.load.rows.history_rows` gives them.

    A scalar is its text (DuckDB's cast to VARCHAR is ``str`` of the value); a list is serialized
    by ``json.dumps`` from the list itself (:func:`_history_lists`), never written out by SQL.
    """
    types = dict(cursor.execute("SELECT column_name, column_type FROM (DESCRIBE _chunk_trials)").fetchall())
    lists = [name for name in HISTORY_FIELDS if types[name].endswith("[]")]
    scalars = [
        f"SELECT t.seq, '{name}' AS field, t.\"{name}\"::VARCHAR AS value FROM _chunk_trials t JOIN _latest k USING (seq)"
        for name in HISTORY_FIELDS if name not in lists]
    with registered(cursor, "_history_lists", _history_lists(cursor, lists)):
        return cursor.sql(
            "SELECT t.trial_id, t.registry, v.field, v.value, $observed_at::TIMESTAMPTZ AS valid_from, "
            "NULL::TIMESTAMPTZ AS valid_to, t.snapshot_sha256, $run_id::VARCHAR AS run_id "
            f"FROM ({' UNION ALL '.join(scalars)} UNION ALL SELECT seq, field, value FROM _history_lists) v "
            "JOIN _chunk_trials t USING (seq)",
            params={"observed_at": observed_at, "run_id": run_id},
        ).to_arrow_table()


def _history_lists(cursor: duckdb.DuckDBPyConnection, lists: Sequence[str]) -> pa.Table:
    """(seq, field, value) of every list field of the loaded records: ``lists`` (columns of the
    trials table, in their order) and the lists held as rows of other tables (sorted, as
    :func:`pipeline.load.rows.history_rows` sorts conditions and countries), as JSON."""
    gathered = ", ".join([*(f't."{name}"' for name in lists),
                          *(f'"{name}".v AS "{name}"' for name in _HISTORY_ROW_LISTS)])
    joins = " ".join(f'LEFT JOIN (SELECT seq, list("{column}") AS v FROM "_chunk_{table}" GROUP BY seq) "{name}" '
                     f"USING (seq)" for name, (table, column) in _HISTORY_ROW_LISTS.items())
    found = cursor.sql(f"SELECT t.seq, {gathered} FROM _chunk_trials t JOIN _latest USING (seq) {joins}").to_arrow_table()
    values = {name: [None if v is None else json.dumps(v) for v in found[name].to_pylist()] for name in lists}
    values.update({name: [json.dumps(sorted(v or [])) for v in found[name].to_pylist()] for name in _HISTORY_ROW_LISTS})
    return pa.table({
        "seq": pa.concat_arrays([found["seq"].combine_chunks()] * len(values)),
        "field": pa.array([name for name, texts in values.items() for _ in texts], pa.string()),
        "value": pa.array([text for texts in values.values() for text in texts], pa.string()),
    })

