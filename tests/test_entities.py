"""The page's trials as entities: why a number has no record, the page's words of a claim id,
and a record's enrollment figures at each scope."""

import pytest

from conftest import REPO, SHARED
from pipeline import stages
from pipeline.load.rows import enrollment_rows
from pipeline.reconcile import LoadedRecord
from pipeline.reconcile.entities import Unusable, page_trials, statement
from pipeline.registries import parse_snapshot
from pipeline.store.snapshots import SnapshotStore


@pytest.fixture(scope="module")
def page():
    store = SnapshotStore(REPO / "snapshots")
    [doc] = stages.extract_documents(stages.default_documents(store))
    records = stages.load_records(store)
    return doc, records


def _trials(page, missing=None, unusable=()):
    doc, records = page
    loaded = [LoadedRecord(r, e) for r, e in records.records]
    found = page_trials(doc, loaded, records.links, records.missing if missing is None else missing, unusable)
    return {t.trial_id: t for t in found.trials}


def test_reasons_for_missing_records_come_from_the_store(page):
    trials = _trials(page)
    assert trials["2025-521227-70-00"].missing_reason == "press_only"
    assert "atmpsweden.se" in trials["2025-521227-70-00"].missing_detail


def test_a_number_with_no_snapshot_and_no_known_reason_is_not_fetched(page):
    trials = _trials(page, missing=[])
    assert trials["NCT05607420"].missing_reason == "not_fetched"
    assert trials["NCT05607420"].missing_detail == "no ctgov snapshot of NCT05607420 in the store"


def test_a_snapshot_that_could_not_be_used_makes_its_trial_fetch_failed(page):
    unusable = [Unusable("NCT05607420", "ctgov/NCT05607420.json", "truncated JSON at byte 12")]
    trial = _trials(page, unusable=unusable)["NCT05607420"]
    assert (trial.record_status, trial.missing_reason) == ("no_record", "fetch_failed")
    assert trial.missing_detail == "ctgov/NCT05607420.json: truncated JSON at byte 12"


def test_a_trial_with_a_record_has_no_missing_reason(page):
    trial = _trials(page)["NCT05727904"]
    assert (trial.record_status, trial.missing_reason, trial.ctis_id) == ("record", None, "2022-503140-41-00")
    assert trial.record_registries == ["ctgov", "ctis"]


@pytest.mark.parametrize(("claim_id", "words"), [
    ("table:5:enrollment", "Summary table, row 5: NCT05727904 | Phase 3 | "),
    ("ongoing:9", "Ongoing trials, entry 9: Study on the Effects of Histamine D"),
    ("ref:6", "Reference [6]: https://clinicaltrials.gov/study/2025-521227-70-00"),
    ("c008", "NCT03645928 studied tumor-infiltrating lymphocytes"),
])
def test_statement_gives_the_page_words_of_a_claim_id(page, claim_id, words):
    assert statement(page[0], claim_id).startswith(words)


@pytest.mark.parametrize("claim_id", ["cross:NCT03108495", "table:99:phase", "c999"])
def test_statement_of_no_page_words_is_none(page, claim_id):
    assert statement(page[0], claim_id) is None


def test_ctis_record_gives_a_row_per_member_state_and_the_rest_of_the_world_beside_the_eea_headline():
    path = SHARED / "samples" / "ctis" / "2024-510663-34-00.json"
    [record] = parse_snapshot(path.read_bytes(), path=str(path))
    rows = [(r["scope"], r["country"], r["country_name"], r["enrollment"], r["headline"]) for r in enrollment_rows(record)]
    assert rows == [("eea", None, None, 11, True), ("member_state", "ES", "Spain", 7, False),
                    ("member_state", "IT", "Italy", 4, False), ("rest_of_world", None, None, 0, False)]


def test_eu_ctr_records_give_each_member_state_figure_once_and_one_headline():
    path = SHARED / "samples" / "euctr" / "euctr_fulltext_download_2022-002568-62_2021-002179-21.txt"
    records = parse_snapshot(path.read_bytes(), path=str(path))
    for record in records:
        rows = enrollment_rows(record)
        states = [r["country"] for r in rows if r["scope"] == "member_state"]
        assert states and len(states) == len(set(states))
        assert sum(r["headline"] for r in rows) == 1
    assert {r["scope"] for rec in records for r in enrollment_rows(rec)} >= {"member_state", "eea"}


def test_a_missing_records_file_that_is_not_a_list_of_reasons_is_refused_naming_it(tmp_path):
    from pipeline.errors import SnapshotError

    (tmp_path / "missing_records.json").write_text('[{"trial_id": "NCT1", "registry": "ctgov", "reason": "lost"}]')
    with pytest.raises(SnapshotError, match="missing_records.json.*not a valid list of missing records"):
        stages.load_missing(SnapshotStore(tmp_path))


def test_every_number_of_the_page_without_a_record_has_a_known_reason_resting_on_a_facts_file(page):
    trials = _trials(page)
    lacking = [t for t in trials.values() if t.record_status != "record"]
    assert lacking and all(t.missing_reason not in (None, "not_fetched") for t in lacking)
    for missing in page[1].missing:
        assert (SHARED / missing.facts_file).is_file(), missing.facts_file


def test_an_ongoing_entry_no_title_resolves_carries_why(page):
    doc, records = page
    entry = doc.ongoing[0].model_copy(update={"title": "Quantum gardening for migratory geese", "trial_id": None})
    odd = doc.model_copy(update={"ongoing": [entry]})
    [resolution] = page_trials(odd, [LoadedRecord(r, e) for r, e in records.records], records.links).ongoing
    assert (resolution.trial_id, resolution.trial_id_source) == (None, None)
    assert resolution.unresolved_reason.startswith("best score ") and "below 85" in resolution.unresolved_reason


@pytest.mark.parametrize("name", ["aldesleukin.txt", "aldesleukin-shuffled.txt", "ravoleukin-tabs.txt", "zelvotamab.txt"])
def test_a_pages_trials_from_its_own_records_are_those_from_the_whole_store(name):
    from capture_rows import PAGES

    store = SnapshotStore(REPO / "snapshots")
    records = stages.load_records(store)
    [path] = [p for p in PAGES if p.name == name]
    [doc] = stages.extract_documents([stages.document_source(path, store)])
    whole = page_trials(doc, [LoadedRecord(r, e) for r, e in records.records], records.links, records.missing)
    assert stages.describe_trials([doc], records) == [whole]


def test_a_pages_ongoing_entries_are_resolved_once_for_its_rows_and_its_trials(page, monkeypatch):
    import pipeline.reconcile as reconcile

    doc, records = page
    calls = []
    resolve = reconcile.resolve_ongoing
    monkeypatch.setattr(reconcile, "resolve_ongoing", lambda *args: calls.append(args[0]) or resolve(*args))
    inputs = stages.page_inputs([doc], records)
    rows = stages.reconcile_pages([doc], inputs)
    [described] = stages.describe_trials([doc], records, inputs)
    assert calls == [doc]
    # and the trials are those described from a resolution of their own
    alone = page_trials(doc, inputs[0].records, inputs[0].links, records.missing)
    assert described == alone and rows
