"""The analysts' questions, each one query of the README's "Querying the output", against the
embedded page; and the trial entity, kinds of comparison and reasons those queries rest on."""

import re
from datetime import UTC, datetime

import duckdb
import pytest

from conftest import REPO
from pipeline import stages
from pipeline.load.rows import RunInfo
from pipeline.load.incremental import PreviousState
from pipeline.load.writer import DB_NAME, write_outputs
from pipeline.store.snapshots import SnapshotStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# The trials of the embedded page that no record backs, and those only a candidate link reaches.
NO_RECORD = {"2023-504632-17-00", "2023-506400-99-00", "2023-510297-14-00", "2024-515357-16-00",
             "2025-521227-70-00", "NCT05607420"}
CANDIDATE_ONLY = {"2023-506979-10-00", "2024-519532-16-00", "2025-522054-40-00", "2025-522841-23-00", "NCT04243499"}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """The embedded page run through every stage into a fresh output folder (no Prefect)."""
    out = tmp_path_factory.mktemp("out")
    store = SnapshotStore(REPO / "snapshots")
    docs = stages.extract_documents(stages.default_documents(store), now=T0)
    records = stages.load_records(store)
    rows = stages.reconcile_documents(docs, records)
    plan = stages.plan_run(stages.read_pages(stages.default_documents(store)), store, PreviousState())
    batch = stages.run_batch(RunInfo("r1", T0, T0), docs, records, store, rows, PreviousState(), plan.fingerprint)
    write_outputs(batch, out, "r1")
    con = duckdb.connect(str(out / DB_NAME), read_only=True)
    yield con
    con.close()


def _readme_queries() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Querying the output", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def _readme_query(word: str) -> str:
    [query] = [q for q in _readme_queries() if word in q]
    return query


def _dicts(con, sql):
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_readme_answers_each_question_with_one_query():
    assert len(_readme_queries()) == 5
    assert all(q.count(";") == 1 for q in _readme_queries())


# -- the page's contradicted facts ------------------------------------------------------------


def test_readme_findings_query_gives_the_page_facts_a_registry_contradicts(db):
    found = _dicts(db, _readme_query("FROM v_findings"))
    assert {(f["trial_id"], f["field"], f["registry"], f["stated_value"], f["registry_value"]) for f in found} == {
        ("NCT03645928", "intervention", "ctgov", "Aldesleukin", "Lifileucel; LN-145; Pembrolizumab; LN-145-S1"),
        ("NCT03645928", "enrollment", "ctgov", "268", "245"),
        ("NCT03645928", "status", "ctgov", "Completed", "RECRUITING (RECRUITING)"),
        ("NCT03645928", "status", "euctr", "Completed", "ONGOING (ES: Ongoing)"),
        ("NCT04166006", "enrollment", "ctgov", "30", "51"),
        ("NCT05727904", "enrollment", "ctgov", "810", "670"),
        ("NCT05727904", "enrollment", "ctis", "810", "280"),
    }
    # the page's words beside each, and the snapshot the registry value was read from
    assert all(f["statement"] and f["evidence_snapshot"] for f in found)
    big = [f for f in found if f["stated_value"] == "810"]
    assert all(f["statement"].startswith("Summary table, row 5: NCT05727904 |") for f in big)


def test_every_finding_is_a_page_fact_with_a_registry_value_that_differs(db):
    rows = _dicts(db, "SELECT f.*, r.comparison FROM v_findings f JOIN reconciliation r "
                      "USING (document_id, claim_id, trial_id, field, registry, rule)")
    assert rows
    for row in rows:
        assert row["comparison"] == "page_vs_registry"
        assert row["verdict"] in ("mismatch", "partial")
        assert row["registry_value"] is not None and row["registry_value"] != row["stated_value"]


def test_findings_leave_out_the_page_against_itself_registry_vs_registry_and_reference_rows(db):
    def count(where):
        return db.execute(f"SELECT count(*) FROM reconciliation WHERE verdict IN ('mismatch', 'partial') AND {where}"
                          ).fetchone()[0]

    findings = db.execute("SELECT count(*) FROM v_findings").fetchone()[0]
    cross, itself = count("comparison = 'registry_vs_registry'"), count("comparison = 'page_vs_page'")
    no_value = count("comparison = 'page_vs_registry' AND registry_value IS NULL")
    assert cross > 0 and itself > 0 and no_value > 0
    assert findings == count("true") - cross - itself - no_value


def test_comparison_kind_follows_what_is_compared(db):
    kinds = dict(db.execute(
        "SELECT comparison, list(DISTINCT CASE WHEN claim_id LIKE 'cross:%' THEN 'cross' "
        "WHEN registry = 'document' THEN 'document' ELSE 'other' END) FROM reconciliation GROUP BY 1").fetchall())
    assert kinds == {"registry_vs_registry": ["cross"], "page_vs_page": ["document"], "page_vs_registry": ["other"]}


# -- ongoing entries per registry ---------------------------------------------------------------


def test_readme_ongoing_query_gives_each_entry_its_status_in_each_registry(db):
    rows = _dicts(db, _readme_query("FROM document_ongoing"))
    by_position = {}
    for row in rows:
        by_position.setdefault(row["position"], []).append(row)
    assert sorted(by_position) == list(range(1, 11))
    assert {p: [(r["trial_id"], r["registry"], r["status_normalized"]) for r in rs] for p, rs in by_position.items()} == {
        1: [("2025-521227-70-00", None, None)],  # no record: the page's status stands alone
        2: [("2024-519532-16-00", "ctgov", "ACTIVE_NOT_RECRUITING")],
        3: [("NCT04166006", "ctgov", "RECRUITING")],
        4: [("NCT05153070", "ctgov", "RECRUITING"), ("NCT05153070", "ctis", None)],
        5: [("2023-506400-99-00", None, None)],
        6: [("NCT02919644", "ctgov", "RECRUITING"), ("NCT02919644", "euctr", "ONGOING")],
        7: [("NCT04614103", "ctgov", "RECRUITING"), ("NCT04614103", "euctr", None)],
        8: [("2023-510297-14-00", None, None)],
        9: [("2023-506979-10-00", "ctgov", "NOT_YET_RECRUITING")],
        10: [("NCT05727904", "ctgov", "RECRUITING"), ("NCT05727904", "ctis", "RECRUITING")],
    }
    assert {r["link"] for r in by_position[9]} == {"candidate"}  # reached only through an unconfirmed link


def test_ongoing_entries_carry_their_resolved_trial_and_score(db):
    rows = _dicts(db, "SELECT * FROM document_ongoing ORDER BY position")
    assert [r["position"] for r in rows if r["trial_id"]] == list(range(1, 11))
    assert {r["position"]: r["trial_id_source"] for r in rows if r["trial_id_source"] != "title"} == {2: "product"}
    assert all(r["resolve_score"] >= 85 for r in rows if r["trial_id_source"] == "title")
    assert all(r["unresolved_reason"] is None for r in rows)


# -- enrollment -----------------------------------------------------------------------------------


def test_readme_enrollment_query_sets_the_page_figure_beside_each_registry(db):
    rows = _dicts(db, _readme_query("v_trial_enrollments"))
    assert {r["row_number"] for r in rows} == set(range(1, 16))
    row5 = [(r["registry"], r["scope"], r["registry_figure"]) for r in rows if r["row_number"] == 5]
    assert row5 == [("ctgov", "whole_trial", 670), ("ctis", "eea", 280)]  # CTIS counts the EEA only
    assert {r["page"] for r in rows if r["row_number"] == 5} == {810}
    # a trial with no record still has its row, with the page's figure alone
    assert [(r["page"], r["registry"]) for r in rows if r["trial_id"] == "NCT05607420"] == [(85, None)]


# -- trials with no record ------------------------------------------------------------------------


def test_readme_no_record_query_gives_each_trial_and_why(db):
    rows = _dicts(db, _readme_query("record_status <>"))
    assert {r["trial_id"] for r in rows} == NO_RECORD | CANDIDATE_ONLY
    assert {r["trial_id"] for r in rows if r["record_status"] == "no_record"} == NO_RECORD
    reasons = {r["trial_id"]: r["missing_reason"] for r in rows}
    assert reasons["2025-521227-70-00"] == "press_only"
    assert reasons["2023-510297-14-00"] == "unconfirmed_mirror_only"
    assert reasons["NCT05607420"] == "no_registry_entry_known"
    assert all(r["missing_detail"] for r in rows)


def test_page_trials_has_one_row_per_trial_the_page_speaks_of(db):
    ids = [r[0] for r in db.execute("SELECT trial_id FROM page_trials").fetchall()]
    assert len(ids) == len(set(ids)) == 19
    spoken = {r[0] for r in db.execute(
        "SELECT trial_id FROM document_trials UNION SELECT unnest(trial_ids) FROM document_claims "
        "UNION SELECT trial_id FROM document_ongoing WHERE trial_id IS NOT NULL "
        "UNION SELECT trial_id FROM document_references WHERE trial_id IS NOT NULL").fetchall()}
    assert set(ids) == spoken
    assert set(ids) == {r[0] for r in db.execute(
        "SELECT DISTINCT trial_id FROM reconciliation WHERE trial_id IS NOT NULL").fetchall()}


def test_page_trial_ids_say_how_each_number_is_known(db):
    rows = _dicts(db, "SELECT * FROM page_trial_ids WHERE trial_id IN ('NCT05727904', '2023-506979-10-00') "
                      "ORDER BY trial_id, registry")
    assert [(r["trial_id"], r["registry"], r["registry_id"], r["link"], r["used"]) for r in rows] == [
        ("2023-506979-10-00", "ctgov", "NCT05810792", "candidate", True),
        ("2023-506979-10-00", "ctis", "2023-506979-10-00", "same id", False),
        ("NCT05727904", "ctgov", "NCT05727904", "same id", True),
        ("NCT05727904", "ctis", "2022-503140-41-00", "confirmed", True),
    ]
    candidate = rows[0]
    assert candidate["link_source"] == "links" and "meddatax.com" in candidate["link_evidence"]
    assert rows[1]["missing_reason"] == "no_registry_entry_known"


# -- countries by name ----------------------------------------------------------------------------


def test_readme_country_query_finds_trials_by_country_name_with_their_titles(db):
    rows = _dicts(db, _readme_query("country_name = 'Germany'"))
    assert [(r["trial_id"], r["registry"], r["registry_id"]) for r in rows] == [
        ("NCT04243499", "euctr", "2019-003847-31"), ("NCT05727904", "ctis", "2022-503140-41-00")]
    assert rows[1]["trial_title"].startswith("Study to Investigate Lifileucel")


def test_every_country_code_has_its_name(db):
    assert db.execute("SELECT count(*) FROM trial_countries WHERE country_name IS NULL").fetchone()[0] == 0
    assert db.execute("SELECT DISTINCT country_name FROM trial_countries WHERE country = 'DE'").fetchall() == [
        ("Germany",)]
