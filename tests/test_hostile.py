"""Hostile content: names that try to leave snapshots/, HTML that tries to become data, SQL in ids.

The snapshot store, the registry parsers and the loader all take values that came from outside
(registry ids, URLs, page HTML, manifest lines). These tests feed them values built to do harm
and check that the harm does not happen: no file outside the store is read or written, script
text never becomes a value, and a quote in an id is stored as a character, not run as SQL.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.load.rows import RunInfo, build_batch
from pipeline.errors import IntegrityError, UnsafePathError
from pipeline.load.writer import write_outputs
from pipeline.models import SnapshotEntry, TrialRecord, TrialStatus
from pipeline.store.snapshots import SnapshotStore, sha256_bytes, snapshot_relpath

from conftest import FIXTURES, SHARED

SAMPLES = SHARED / "samples"

HOSTILE_ID = "NCT'; DROP TABLE trials; --"
JAN, FEB = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def _store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "snapshots")


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


# -- names built from ids and URLs ------------------------------------------------------------------

ESCAPING_NAMES = [
    "../../x",
    "NCT0000000/../../",
    "NCT00000001/../../../etc/passwd",
    "/etc/passwd",
    "/tmp/x",
    "..\\..\\x",
    "C:\\Windows\\x",
    "https://clinicaltrials.eu/trial/x",
    "clinicaltrials.eu/trial/../../x",
    "x?next=../../y",
    "x#/../../y",
    "%2e%2e%2fetc%2fpasswd",
    "~/x",
    "NCT00000001\n../x",
    "NCT00000001\x00.json",
    "NCT00000001 ",
    "nct\u202e00000001",
]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_snapshot_name_from_a_hostile_id_or_url_is_refused(name):
    with pytest.raises(UnsafePathError) as exc:
        snapshot_relpath("cteu", name, "html")
    assert exc.value.value == name


@pytest.mark.parametrize(("folder", "ext"), [("../ctgov", "json"), ("/tmp", "json"), ("ctgov/..", "json"),
                                             ("ctgov", "json/../../x"), ("ctgov", "sh"), ("", "json")])
def test_snapshot_folder_or_extension_outside_the_layout_is_refused(folder, ext):
    with pytest.raises(UnsafePathError):
        snapshot_relpath(folder, "NCT00000001", ext)


@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_writing_a_snapshot_under_a_hostile_name_writes_nothing_anywhere(tmp_path, name):
    store = _store(tmp_path)
    with pytest.raises(UnsafePathError):
        store.write("ctgov", name, "json", b"{}", registry="ctgov", url="u", provenance="captured")
    assert _files_under(tmp_path) == set()


@pytest.mark.parametrize("trial_id", ["NCT\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff11",
                                      "NCT0000000\u0661", "\u0662\u0660\u0662\u0663-000001-01-00"])
def test_trial_id_with_non_ascii_digits_is_not_a_registry_id(trial_id):
    from pipeline.fetch.client import validate_trial_id

    registry = "ctgov" if trial_id.startswith("NCT") else "ctis"
    with pytest.raises(UnsafePathError):
        validate_trial_id(registry, trial_id)


@pytest.mark.parametrize("canonical", ["https://clinicaltrials.eu/trial/..", "https://clinicaltrials.eu/trial/%2e%2e%2fx",
                                       "https://clinicaltrials.eu/trial/x%00y", "https://clinicaltrials.eu/trial/.hidden"])
def test_trial_id_taken_from_a_clinicaltrials_eu_url_cannot_name_a_file_outside_the_store(canonical):
    from pipeline.registries.cteu import parse_cteu

    page = (f'<html><head><title>A trial</title><link rel="canonical" href="{canonical}"></head>'
            f"<body><h1>A trial</h1></body></html>").encode()
    [record] = parse_cteu(page, path="cteu/x.html")
    with pytest.raises(UnsafePathError):
        snapshot_relpath("cteu", record.trial_id, "html")


@given(title=st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_document_id_from_any_title_is_a_plain_slug(title):
    from pipeline.extract import document_id_for

    # The id names files (baseline/<id>.json) and output rows: it must be one safe path segment.
    assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", document_id_for(title))


# -- manifest lines that point outside -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/etc/passwd", "ctgov/../../../etc/passwd", "../outside.json",
                                  "ctgov/sub/NCT00000001.json", "ctgov/.json", "ctgov\\..\\..\\x.json"])
def test_manifest_path_that_leaves_the_store_is_never_read(tmp_path, path):
    store = _store(tmp_path)
    entry = SnapshotEntry(path=path, registry="ctgov", url="u", sha256=sha256_bytes(b""), provenance="captured")
    with pytest.raises(UnsafePathError):
        store.read(entry)


def test_manifest_sha256_that_disagrees_with_the_file_is_refused_before_parsing(tmp_path):
    from pipeline import stages

    store = _store(tmp_path)
    entry = store.write("ctgov", "NCT00000001", "json", b'{"protocolSection": {}}', registry="ctgov",
                        url="u", provenance="captured", trial_id="NCT00000001")
    (store.root / entry.path).write_bytes(b"<html><script>alert(1)</script></html>")
    with pytest.raises(IntegrityError) as exc:
        stages.parse_entry(store, entry)
    assert exc.value.expected == entry.sha256
    assert exc.value.actual == sha256_bytes(b"<html><script>alert(1)</script></html>")


# -- symlinks inside the store -------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.json"
    secret.parent.mkdir()
    secret.write_bytes(b'{"secret": true}')
    return secret


def test_snapshot_file_symlinked_outside_the_store_is_not_read(tmp_path, outside):
    store = _store(tmp_path)
    (store.root / "ctgov").mkdir(parents=True)
    (store.root / "ctgov" / "NCT00000001.json").symlink_to(outside)
    entry = SnapshotEntry(path="ctgov/NCT00000001.json", registry="ctgov", url="u",
                          sha256=sha256_bytes(outside.read_bytes()), provenance="captured")
    with pytest.raises(UnsafePathError) as exc:
        store.read(entry)
    assert exc.value.value == "ctgov/NCT00000001.json"


def _folder_linked_outside(tmp_path: Path, outside: Path) -> tuple[SnapshotStore, SnapshotEntry]:
    """A store whose ``ctgov`` folder is a symlink to the folder of ``outside``, and an entry for a
    file there (``outside`` renamed to a snapshot's name, with its sha256)."""
    store = _store(tmp_path)
    store.root.mkdir()
    (store.root / "ctgov").symlink_to(outside.parent, target_is_directory=True)
    os.rename(outside, outside.with_name("NCT00000001.json"))
    entry = SnapshotEntry(path="ctgov/NCT00000001.json", registry="ctgov", url="u",
                          sha256=sha256_bytes(b'{"secret": true}'), provenance="captured")
    return store, entry


def test_snapshot_folder_symlinked_outside_the_store_is_not_read(tmp_path, outside):
    store, entry = _folder_linked_outside(tmp_path, outside)
    with pytest.raises(UnsafePathError):
        store.read(entry)


def test_writing_into_a_folder_symlinked_outside_the_store_is_refused(tmp_path, outside):
    store = _store(tmp_path)
    store.root.mkdir()
    (store.root / "ctgov").symlink_to(outside.parent, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        store.write("ctgov", "NCT00000002", "json", b"{}", registry="ctgov", url="u", provenance="captured")
    assert sorted(p.name for p in outside.parent.iterdir()) == ["secret.json"]
    assert not store.manifest_path.exists()


def test_symlink_that_stays_inside_the_store_is_read(tmp_path):
    store = _store(tmp_path)
    entry = store.write("ctgov", "NCT00000001", "json", b"{}", registry="ctgov", url="u", provenance="captured")
    alias = store.root / "ctgov" / "NCT00000002.json"
    alias.symlink_to(store.root / entry.path)
    assert store.read(entry.model_copy(update={"path": "ctgov/NCT00000002.json"})) == b"{}"


def test_store_whose_root_is_a_symlink_still_works(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "linked").symlink_to(real, target_is_directory=True)
    store = SnapshotStore(tmp_path / "linked")
    entry = store.write("ctgov", "NCT00000001", "json", b"{}", registry="ctgov", url="u", provenance="captured")
    assert store.read(entry) == b"{}"
    assert (real / "ctgov" / "NCT00000001.json").read_bytes() == b"{}"



def test_the_status_of_a_snapshot_symlinked_outside_the_store_is_refused(tmp_path, outside):
    store = _store(tmp_path)
    entry = store.write("ctgov", "NCT00000001", "json", b"{}", registry="ctgov", url="u", provenance="captured")
    (store.root / "ctgov" / "NCT00000002.json").symlink_to(outside)
    linked = entry.model_copy(update={"path": "ctgov/NCT00000002.json"})
    missing = entry.model_copy(update={"path": "ctgov/NCT00000003.json"})
    stats = store.stats_of([entry, linked, missing])
    assert stats[entry.path] == (store.root / entry.path).stat()
    assert isinstance(stats[linked.path], UnsafePathError)
    assert isinstance(stats[missing.path], FileNotFoundError)


def test_the_status_of_a_snapshot_in_a_folder_symlinked_outside_the_store_is_refused(tmp_path, outside):
    store, entry = _folder_linked_outside(tmp_path, outside)
    assert isinstance(store.stats_of([entry])[entry.path], UnsafePathError)


def test_the_status_of_a_snapshot_symlinked_inside_the_store_is_its_target(tmp_path):
    store = _store(tmp_path)
    entry = store.write("ctgov", "NCT00000001", "json", b"{}", registry="ctgov", url="u", provenance="captured")
    (store.root / "ctgov" / "NCT00000002.json").symlink_to(store.root / entry.path)
    alias = entry.model_copy(update={"path": "ctgov/NCT00000002.json"})
    assert store.stats_of([alias])[alias.path] == (store.root / entry.path).stat()

# -- SQL built from input --------------------------------------------------------------------------


def _hostile_record(status: TrialStatus, fetched: datetime) -> tuple[TrialRecord, SnapshotEntry]:
    record = TrialRecord(trial_id=HOSTILE_ID, registry="ctgov", title="x'); DELETE FROM trials; --",
                         status=status, status_raw=status.value, conditions=["'; DROP TABLE trial_conditions; --"])
    entry = SnapshotEntry(path="ctgov/x.json", registry="ctgov", trial_id=HOSTILE_ID, url="u",
                          sha256="a" * 64, provenance="captured", fetched_at=fetched)
    return record, entry


def _write(tmp_path: Path, run_id: str, records: list[tuple[TrialRecord, SnapshotEntry]], when: datetime):
    run = RunInfo(run_id=run_id, started_at=when, finished_at=when)
    return write_outputs(build_batch(run, [], records, [], [], [], []), tmp_path, run_id)


def test_trial_id_with_sql_in_it_is_stored_as_text_and_reloaded_in_place(tmp_path):
    safe = TrialRecord(trial_id="NCT00000001", registry="ctgov", title="safe")
    safe_entry = SnapshotEntry(path="ctgov/NCT00000001.json", registry="ctgov", url="u", sha256="b" * 64,
                               provenance="captured")
    _write(tmp_path, "r1", [(safe, safe_entry), _hostile_record(TrialStatus.RECRUITING, JAN)], JAN)
    # The second run deletes the hostile id's rows (DELETE ... USING keys) and updates its history.
    result = _write(tmp_path, "r2", [_hostile_record(TrialStatus.COMPLETED, FEB)], FEB)
    with duckdb.connect(str(result.database), read_only=True) as con:
        trials = con.execute("SELECT trial_id, title, status, run_id FROM trials ORDER BY trial_id").fetchall()
        conditions = con.execute("SELECT trial_id, condition FROM trial_conditions").fetchall()
        history = con.execute("SELECT value, valid_to IS NULL FROM trial_history WHERE trial_id = ? "
                              "AND field = 'status_normalized' ORDER BY valid_from", [HOSTILE_ID]).fetchall()
    assert trials == [
        (HOSTILE_ID, "x'); DELETE FROM trials; --", "COMPLETED", "r2"),
        ("NCT00000001", "safe", None, "r1"),
    ]
    assert conditions == [(HOSTILE_ID, "'; DROP TABLE trial_conditions; --")]
    assert history == [("RECRUITING", False), ("COMPLETED", True)]


def test_changes_lists_a_trial_id_with_sql_in_it_verbatim(tmp_path):
    from pipeline.outputs.changes import changes_since

    _write(tmp_path, "r1", [_hostile_record(TrialStatus.RECRUITING, JAN)], JAN)
    result = _write(tmp_path, "r2", [_hostile_record(TrialStatus.COMPLETED, FEB)], FEB)
    report = changes_since(result.database, datetime(2026, 1, 15, tzinfo=UTC))
    assert [(c.trial_id, c.field, c.old, c.new) for c in report.records] == [
        (HOSTILE_ID, "status", "RECRUITING", "COMPLETED"),
        (HOSTILE_ID, "status_normalized", "RECRUITING", "COMPLETED"),
    ]


@pytest.mark.parametrize("since", ["2026-01-01' OR '1'='1", "2026-01-01; DROP TABLE trials; --",
                                   "'; DELETE FROM trial_history; --"])
def test_changes_since_with_sql_in_the_date_is_refused_and_the_database_is_untouched(tmp_path, capsys, since):
    from pipeline.cli import main

    result = _write(tmp_path, "r1", [_hostile_record(TrialStatus.RECRUITING, JAN)], JAN)
    before = result.database.read_bytes()
    with pytest.raises(SystemExit) as exc:
        main(["changes", "--since", since, "--output", str(tmp_path)])
    assert exc.value.code == 2
    assert "is not a date" in capsys.readouterr().err
    assert result.database.read_bytes() == before


# -- HTML is data: scripts never become values, huge attributes do not blow up -----------------------

EUCTR_PROTOCOL_PAGE = (SAMPLES / "euctr" / "euctr_trial_2015-000590-12_DE.html").read_bytes()
EUCTR_SEARCH_PAGE = (SAMPLES / "euctr" / "euctr_search_query_2015-000590-12.html").read_bytes()
CTEU_PAGE = (FIXTURES / "registries" / "cteu_trial_page.html").read_bytes()
FIVE_MB = 5 * 1024 * 1024

# Script-like content a hostile page can carry; none of it is data. The ids and row markup in
# them would be picked up if script text were read as page text.
SCRIPTS = [
    b"<script>var evil = 'EVIL-SCRIPT NCT99999999 2099-999999-99';</script>",
    b'<script type="text/template"><tr class="tricell"><td class="first">A.2</td>'
    b'<td class="second">EudraCT number</td><td class="third">2099-999999-99</td></tr></script>',
    b"<style>td::after { content: 'EVIL-STYLE NCT99999999'; }</style>",
    b"<noscript>EVIL-NOSCRIPT NCT99999999</noscript>",
    b"<!-- EVIL-COMMENT NCT99999999 -->",
]
SCRIPT_IDS = ["script", "script-template", "style", "noscript", "comment"]


def _inject(page: bytes, after: bytes, payload: bytes) -> bytes:
    assert after in page, after
    return page.replace(after, after + payload)


def _strings(records) -> str:
    return "\n".join(r.model_dump_json() for r in records)


@pytest.mark.parametrize("script", SCRIPTS, ids=SCRIPT_IDS)
def test_script_inside_an_eu_ctr_value_cell_never_becomes_part_of_the_value(script):
    from pipeline.registries.euctr import parse_euctr_html

    hostile = _inject(EUCTR_PROTOCOL_PAGE, b'<td class="third">', script)  # into every value cell
    clean = parse_euctr_html(EUCTR_PROTOCOL_PAGE, path="euctr/2015-000590-12.html")
    assert parse_euctr_html(hostile, path="euctr/2015-000590-12.html") == clean


@pytest.mark.parametrize("script", SCRIPTS, ids=SCRIPT_IDS)
def test_script_in_an_eu_ctr_search_page_never_becomes_a_value(script):
    from pipeline.registries.euctr import parse_euctr_html

    hostile = _inject(EUCTR_SEARCH_PAGE, b'<span class="label">', script)
    clean = parse_euctr_html(EUCTR_SEARCH_PAGE, path="euctr/search.html")
    assert parse_euctr_html(hostile, path="euctr/search.html") == clean


@pytest.mark.parametrize("script", SCRIPTS, ids=SCRIPT_IDS)
def test_script_in_a_clinicaltrials_eu_page_never_becomes_its_title_or_a_trial_number(script):
    from pipeline.registries.cteu import parse_cteu

    hostile = _inject(_inject(CTEU_PAGE, b"<h1>", script), b"<body>", script)
    hostile = hostile.replace(b"</body>", script + b"</body>")
    clean = parse_cteu(CTEU_PAGE, path="cteu/x.html")
    assert parse_cteu(hostile, path="cteu/x.html") == clean


def test_clinicaltrials_eu_heading_holding_only_a_script_is_no_title():
    from pipeline.errors import ParseError
    from pipeline.registries.cteu import parse_cteu

    page = (b"<!DOCTYPE html><html><head></head><body><h1><script>document.write('EVIL NCT99999999')</script>"
            b"</h1><p>NCT05727904</p></body></html>")
    with pytest.raises(ParseError, match="no title found"):
        parse_cteu(page, path="cteu/x.html")


@pytest.mark.parametrize("where", [b'<tr class="tricell">', b'<td class="third">'], ids=["row", "cell"])
def test_five_megabyte_attribute_on_an_eu_ctr_page_parses_to_the_same_record(where):
    from pipeline.registries.euctr import parse_euctr_html
    from test_fuzz_support import hang_guard

    tag = where[:-1] + b' data-x="' + b"a" * FIVE_MB + b'">'
    hostile = EUCTR_PROTOCOL_PAGE.replace(where, tag, 1)
    with hang_guard(60):
        records = parse_euctr_html(hostile, path="euctr/2015-000590-12.html")
    assert records == parse_euctr_html(EUCTR_PROTOCOL_PAGE, path="euctr/2015-000590-12.html")


def test_five_megabyte_attribute_on_a_clinicaltrials_eu_page_parses_to_the_same_record():
    from pipeline.registries.cteu import parse_cteu
    from test_fuzz_support import hang_guard

    hostile = _inject(CTEU_PAGE, b"<body", b' data-x="' + b"a" * FIVE_MB + b'"')
    with hang_guard(60):
        records = parse_cteu(hostile, path="cteu/x.html")
    assert records == parse_cteu(CTEU_PAGE, path="cteu/x.html")


def test_five_megabyte_title_attribute_is_kept_whole_as_data():
    from pipeline.registries.cteu import parse_cteu
    from test_fuzz_support import hang_guard

    hostile = CTEU_PAGE.replace(b'content="Study of Lifileucel', b'content="' + b"T" * FIVE_MB + b" Study of Lifileucel")
    with hang_guard(60):
        [record] = parse_cteu(hostile, path="cteu/x.html")
    assert record.title == "T" * FIVE_MB + " Study of Lifileucel Plus Pembrolizumab in Untreated Advanced Melanoma"
