"""The DuckDB-native bulk ingest writes exactly the rows of the Python path (pipeline.store.ingest_sql)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, SHARED
from pipeline.store import ingest_sql as bulk_sql
from pipeline.store.ingest import ingest_ctgov
from pipeline.load.writer import DB_NAME
from pipeline.load.tables import TRIAL_TABLES
from pipeline.registries import ctgov, parse_snapshot

BULK = FIXTURES / "bulk"
SHAPES = FIXTURES / "bulk_sql" / "shapes.ndjson"
SAMPLES = SHARED / "samples" / "ctgov_v2"

# Every table an ingest writes rows of, as compared: run ids and the run's own times differ.
COMPARED = {
    **{t.name: "* EXCLUDE (run_id)" for t in TRIAL_TABLES},
    "trial_history": "* EXCLUDE (run_id, valid_from, valid_to), valid_to IS NULL AS open",
    "load_errors": "* EXCLUDE (run_id)",
}


def _varied_corpus(folder: Path) -> Path:
    """The real CT.gov samples (single studies and /studies pages) and the bulk fixtures, in one folder."""
    folder.mkdir()
    for path in [*SAMPLES.glob("*.json"), *BULK.glob("*.json"), *BULK.glob("*.ndjson"), SHAPES]:
        shutil.copy(path, folder / path.name)
    return folder


def _differences(python_db: Path, duckdb_db: Path) -> dict[str, tuple[int, int, int]]:
    """Per table: (rows, rows only the Python path wrote, rows only the DuckDB path wrote)."""
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{python_db}' AS p (READ_ONLY)")
        con.execute(f"ATTACH '{duckdb_db}' AS d (READ_ONLY)")
        out = {}
        for table, cols in COMPARED.items():
            count = con.execute(f"SELECT count(*) FROM p.{table}").fetchall()[0][0]
            only_p = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM p.{table} "
                                 f"EXCEPT ALL SELECT {cols} FROM d.{table})").fetchall()[0][0]
            only_d = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM d.{table} "
                                 f"EXCEPT ALL SELECT {cols} FROM p.{table})").fetchall()[0][0]
            out[table] = (count, only_p, only_d)
    return out


def _ingest_both(source: Path, tmp_path: Path, **options: object) -> dict[str, tuple[int, int, int]]:
    python = ingest_ctgov(source, tmp_path / "out-python", engine="python", **options)  # type: ignore[arg-type]
    fast = ingest_ctgov(source, tmp_path / "out-duckdb", engine="duckdb", **options)  # type: ignore[arg-type]
    assert (fast.studies, fast.records, fast.bytes_read) == (python.studies, python.records, python.bytes_read)
    assert fast.load_errors == python.load_errors
    return _differences(python.database, fast.database)


def _rows(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_varied_corpus_gives_identical_tables_with_both_engines(tmp_path):
    differences = _ingest_both(_varied_corpus(tmp_path / "corpus"), tmp_path)
    assert {t: (only_p, only_d) for t, (_, only_p, only_d) in differences.items()} == {t: (0, 0) for t in COMPARED}
    assert differences["trials"][0] == 45
    assert differences["load_errors"][0] == 11


def test_trial_given_in_several_chunks_keeps_the_same_history_with_both_engines(tmp_path):
    differences = _ingest_both(_varied_corpus(tmp_path / "corpus"), tmp_path, chunk_size=10)
    assert {t: (only_p, only_d) for t, (_, only_p, only_d) in differences.items()} == {t: (0, 0) for t in COMPARED}
    assert _rows(tmp_path / "out-duckdb" / DB_NAME,
                 "SELECT count(*) FROM trial_history WHERE valid_to IS NOT NULL")[0][0] > 0


def test_unusual_shapes_are_read_as_parse_study_reads_them(tmp_path):
    differences = _ingest_both(SHAPES, tmp_path)
    assert {t: (only_p, only_d) for t, (_, only_p, only_d) in differences.items()} == {t: (0, 0) for t in COMPARED}


def test_ndjson_with_blank_lines_and_crlf_ends_loads_as_the_python_path_loads_it(tmp_path):
    lines = SHAPES.read_bytes().splitlines()
    awkward = tmp_path / "awkward.ndjson"
    awkward.write_bytes(b"\n" + b"".join(line + (b"\r\n\n  \n" if i % 3 == 0 else b"\n")
                                          for i, line in enumerate(lines)).rstrip(b"\n"))
    differences = _ingest_both(awkward, tmp_path, chunk_size=3)
    assert {t: (only_p, only_d) for t, (_, only_p, only_d) in differences.items()} == {t: (0, 0) for t in COMPARED}
    assert differences["trials"][0] > 0


def test_strings_are_stripped_of_unicode_spaces_and_blank_ones_dropped(tmp_path):
    report = ingest_ctgov(SHAPES, tmp_path / "out", engine="duckdb")
    assert _rows(report.database, "SELECT title, official_title, status, status_normalized, phases, phase_raw "
                                  "FROM trials WHERE trial_id = 'NCT02000001'") == [
        ("Padded\u00a0title", None, "Active, not recruiting", "ACTIVE_NOT_RECRUITING", ["PHASE1", "PHASE2"],
         "PHASE1, PHASE2")]


def test_dates_keep_the_precision_they_are_given_in(tmp_path):
    report = ingest_ctgov(SHAPES, tmp_path / "out", engine="duckdb")
    assert _rows(report.database, "SELECT start_date, start_date_precision, completion_date, "
                                  "completion_date_precision, last_updated FROM trials "
                                  "WHERE trial_id = 'NCT02000001'") == [("2023-03", "month", None, None, "2025-01")]


def test_countries_are_iso_codes_once_each_and_unknown_names_dropped(tmp_path):
    report = ingest_ctgov(SHAPES, tmp_path / "out", engine="duckdb")
    assert _rows(report.database, "SELECT country FROM trial_countries WHERE trial_id = 'NCT02000001' "
                                  "ORDER BY country") == [("KR",), ("NL",)]


def test_secondary_ids_are_typed_by_registry_type_then_by_their_form(tmp_path):
    report = ingest_ctgov(SHAPES, tmp_path / "out", engine="duckdb")
    assert _rows(report.database, "SELECT other_id, id_type FROM trial_identifiers "
                                  "WHERE trial_id = 'NCT02000001' ORDER BY other_id, id_type") == [
        ("2015-000590-12", "EUDRACT"), ("2023-506979-10-00", "EU_CT"), ("NCT00000009", "NCT"),
        ("NCT01111111", "NCT"), ("ORG-1", "SPONSOR_PROTOCOL"), ("R01 CA12345", "NIH"), ("X-9", "OTHER")]


def test_conditions_history_is_json_of_the_sorted_list_with_python_escapes(tmp_path):
    report = ingest_ctgov(SHAPES, tmp_path / "out", engine="duckdb")
    assert _rows(report.database, "SELECT value FROM trial_history WHERE trial_id = 'NCT02000001' "
                                  "AND field = 'conditions'") == [
        ('["Back\\\\slash", "Melanoma", "Melanoma", "Sj\\u00f6gren\'s \\"Syndrome\\""]',)]


def _study(nct_id: str, *, enrollment_type: str | None = None, secondary_ids: list[dict] | None = None) -> dict:
    identification = {"nctId": nct_id, "orgStudyIdInfo": {"id": f"ORG-{nct_id}"},
                      "nctIdAliases": ["NCT09999998"], "secondaryIdInfos": secondary_ids or []}
    enrollment = {"count": 10, **({"type": enrollment_type} if enrollment_type is not None else {})}
    return {"protocolSection": {"identificationModule": identification,
                                "designModule": {"enrollmentInfo": enrollment}}}


def test_every_ctgov_value_mapping_gives_the_same_rows_with_both_engines(tmp_path):
    # Every value the CT.gov mapping names, and values it does not: both engines must map each alike.
    enrollment_types = [*ctgov.ENROLLMENT_TYPES, "ANTICIPATED", "actual", None]
    id_types = [*ctgov.SECONDARY_ID_TYPES, "NIH", "REGISTRY", "OTHER_GRANT", None]
    studies = [_study(f"NCT0400{i:04d}", enrollment_type=t) for i, t in enumerate(enrollment_types)]
    studies += [_study(f"NCT0410{i:04d}", secondary_ids=[
        {"id": f"X-{i}", **({"type": t} if t else {})},  # no trial-number form: the type decides
        {"id": "NCT01234567", **({"type": t} if t else {})},  # an NCT number's form
        {"id": "2015-000590-12", **({"type": t} if t else {}), "domain": "EudraCT"},
    ]) for i, t in enumerate(id_types)]
    source = tmp_path / "mapped.ndjson"
    source.write_text("".join(json.dumps(study) + "\n" for study in studies))
    differences = _ingest_both(source, tmp_path)
    assert {t: (only_p, only_d) for t, (_, only_p, only_d) in differences.items()} == {t: (0, 0) for t in COMPARED}
    database = tmp_path / "out-duckdb" / DB_NAME
    assert _rows(database, "SELECT enrollment_type, enrollment_scope FROM trials "
                           "WHERE trial_id LIKE 'NCT0400%' ORDER BY trial_id") == [
        (ctgov.ENROLLMENT_TYPES.get(t or ""), ctgov.ENROLLMENT_SCOPE) for t in enrollment_types]
    typed = _rows(database, "SELECT trial_id, other_id, id_type FROM trial_identifiers "
                            "WHERE trial_id LIKE 'NCT0410%' ORDER BY trial_id, other_id")
    for i, native in enumerate(id_types):
        mapped = ctgov.SECONDARY_ID_TYPES.get(native or "")
        assert [(other_id, id_type) for trial_id, other_id, id_type in typed if trial_id == f"NCT0410{i:04d}"] == [
            ("2015-000590-12", mapped or "EUDRACT"), ("NCT01234567", mapped or "NCT"),
            ("NCT09999998", ctgov.ALIAS_ID_TYPE), (f"ORG-NCT0410{i:04d}", ctgov.SPONSOR_ID_TYPE),
            (f"X-{i}", mapped or native or ctgov.UNTYPED_ID_TYPE)]


def test_list_history_is_the_json_of_the_list_for_any_characters_with_both_engines(tmp_path):
    conditions = ["Zeta", "\u00e9t\u00e9 \U0001f600", "tab\tand\x01control", "line\u2028separator", 'say "hi"',
                  "back\\slash/slash", "Alpha"]
    study = {"protocolSection": {"identificationModule": {"nctId": "NCT04200001"},
                                 "designModule": {"phases": ["PHASE2", "PHASE1"]},
                                 "conditionsModule": {"conditions": conditions},
                                 "contactsLocationsModule": {"locations": [{"country": "Netherlands"},
                                                                           {"country": "Korea, Republic of"}]}}}
    source = tmp_path / "characters.ndjson"
    source.write_text(json.dumps(study) + "\n")
    differences = _ingest_both(source, tmp_path)
    assert {t: (only_p, only_d) for t, (_, only_p, only_d) in differences.items()} == {t: (0, 0) for t in COMPARED}
    assert dict(_rows(tmp_path / "out-duckdb" / DB_NAME, "SELECT field, value FROM trial_history "
                                                          "WHERE field IN ('phases', 'conditions', 'countries')")) == {
        "phases": json.dumps(["PHASE1", "PHASE2"]), "conditions": json.dumps(sorted(conditions)),
        "countries": json.dumps(["KR", "NL"])}


def _read_by_sql(path: str) -> bool:
    """Whether the DuckDB engine's JSON spec reads the field at ``path`` (a ``[]`` list is read whole)."""
    node: object = bulk_sql._STUDY_SPEC
    for part in path.split("[]")[0].split("."):
        if node == "JSON":
            return True
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_field_parse_study_reads_is_read_by_the_sql_engine():
    records = [record for sample in sorted(SAMPLES.glob("*.json"))
               for record in parse_snapshot(sample.read_bytes(), path=sample.name)]
    read = {path for record in records for paths in record.field_paths.values() for path in paths.split(", ")}
    assert len(read) >= 20  # the samples exercise most of the parser's fields
    assert sorted(path for path in read if not _read_by_sql(path)) == []


def test_last_record_of_a_trial_in_the_source_wins(tmp_path):
    report = ingest_ctgov(SHAPES, tmp_path / "out", engine="duckdb")
    assert _rows(report.database, "SELECT status, snapshot_path FROM trials WHERE trial_id = 'NCT02000002'") == [
        ("COMPLETED", f"{SHAPES}:13")]


def test_records_of_the_wrong_type_or_without_nct_id_are_load_errors_naming_their_line(tmp_path):
    report = ingest_ctgov(SHAPES, tmp_path / "out", engine="duckdb")
    assert [(e.snapshot, e.error) for e in report.load_errors] == [
        (f"{SHAPES}:3", "protocolSection.designModule.enrollmentInfo.count is float, expected an integer"),
        (f"{SHAPES}:4", "protocolSection.identificationModule.briefTitle is int, expected a string"),
        (f"{SHAPES}:5", "protocolSection.contactsLocationsModule.locations is str, expected a list of objects"),
        (f"{SHAPES}:6", "protocolSection.armsInterventionsModule.interventions is list, "
                        "expected a list of objects"),
        (f"{SHAPES}:7", "protocolSection.conditionsModule.conditions is list, expected a list of strings"),
        (f"{SHAPES}:9", "required field 'protocolSection.identificationModule.nctId' is missing"),
        (f"{SHAPES}:10", "the body is not a study object"),
        (f"{SHAPES}:11", "the body is not a study object"),
        (f"{SHAPES}:15", "malformed JSON at line 1 column 91 (char 90): no low surrogate in string"),
    ]
    assert report.records == 7
    assert report.exit_code == 3


def test_whole_file_of_malformed_json_is_one_load_error_naming_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"protocolSection": {"identificationModule": ')
    report = ingest_ctgov(broken, tmp_path / "out", engine="duckdb")
    assert [e.snapshot for e in report.load_errors] == [str(broken)]
    assert report.load_errors[0].error.startswith("malformed JSON")
    assert report.records == 0


def test_record_that_is_not_utf8_is_a_load_error_and_the_rest_loads(tmp_path):
    source = tmp_path / "mixed.ndjson"
    source.write_bytes(b'{"protocolSection":{"identificationModule":{"nctId":"NCT03000001"}}}\n'
                       b'{"protocolSection":{"identificationModule":{"nctId":"NCT03000002","briefTitle":"\xff"}}}\n')
    report = ingest_ctgov(source, tmp_path / "out", engine="duckdb")
    assert [e.snapshot for e in report.load_errors] == [f"{source}:2"]
    assert _rows(report.database, "SELECT trial_id FROM trials") == [("NCT03000001",)]


def test_failed_chunk_leaves_the_previous_outputs_as_they_were(tmp_path, monkeypatch):
    output = tmp_path / "out"
    ingest_ctgov(BULK / "NCT01000001.json", output, engine="duckdb")
    loaded = bulk_sql.load_chunk
    calls = []

    def fail_on_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed mid-ingest")
        return loaded(*args, **kwargs)

    monkeypatch.setattr(bulk_sql, "load_chunk", fail_on_second_chunk)
    with pytest.raises(RuntimeError, match="killed mid-ingest"):
        ingest_ctgov(SHAPES, output, engine="duckdb", chunk_size=4)
    assert _rows(output / DB_NAME, "SELECT trial_id FROM trials") == [("NCT01000001",)]


def test_unknown_engine_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="engine must be one of duckdb, python"):
        ingest_ctgov(SHAPES, tmp_path / "out", engine="spark")
    assert not (tmp_path / "out").exists()


_EDGE_CHARS = st.sampled_from([" ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "\x1c", "\x85", '"', "\\", "é", "x", "1", "/"])


@pytest.fixture(scope="module")
def macros() -> Iterator[duckdb.DuckDBPyConnection]:
    """One in-memory DuckDB with the ingest's macros for every example (opening one per example
    was most of the property's time; the macros are pure, so examples cannot see each other)."""
    with duckdb.connect() as con:
        bulk_sql.prepare(con)
        yield con


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.text(), st.lists(_EDGE_CHARS, max_size=6).map("".join)),
       ascii_only=st.booleans())
def test_text_reads_a_json_string_as_python_strip_does(macros, value, ascii_only):
    read = macros.execute("SELECT _text(?::JSON)", [json.dumps(value, ensure_ascii=ascii_only)]).fetchall()[0][0]
    assert read == (value.strip() or None)
