"""The per-record hot paths keep their results when made cheaper: cached vocabularies, the
trials row built once for history, the unknown-column check of Arrow loading."""

from datetime import UTC, datetime

import pytest

from pipeline.load.rows import history_rows, record_rows, trial_row
from pipeline.load.writer import arrow_table
from pipeline.models import PartialDate, Phase, SnapshotEntry, TrialRecord, TrialStatus
from pipeline.load.tables import TABLES_BY_NAME
from pipeline.registries.vocab import normalize_country, normalize_status, parse_partial_date, parse_phases

OBSERVED = datetime(2026, 1, 1, tzinfo=UTC)


def _entry() -> SnapshotEntry:
    return SnapshotEntry(
        registry="ctgov", trial_id="NCT00000001", url="https://clinicaltrials.gov/api/v2/studies/NCT00000001",
        path="ctgov/NCT00000001.json", sha256="0" * 64, provenance="captured",
    )


def _record() -> TrialRecord:
    return TrialRecord(
        trial_id="NCT00000001", registry="ctgov", title="A trial", phases=[Phase.PHASE2], status=TrialStatus.RECRUITING,
        status_raw="RECRUITING", enrollment=40, start_date=PartialDate(value="2024-03", precision="month"),
        conditions=["Melanoma"], countries=["NL", "FR"],
    )


def test_status_true_is_not_read_as_ctis_code_1_after_code_1_was_cached() -> None:
    assert normalize_status("1") is TrialStatus.NOT_YET_RECRUITING
    assert normalize_status(True) is None


def test_status_of_a_repeated_label_depends_on_the_registry_named() -> None:
    assert normalize_status("4", "ctis") is TrialStatus.RECRUITING
    assert normalize_status("4", "ctgov") is TrialStatus.UNKNOWN


def test_phases_of_a_repeated_value_are_the_same_list_each_time() -> None:
    first = parse_phases(["PHASE1", "PHASE2"])
    first.append(Phase.PHASE4)  # a caller changing its list must not change the next answer
    assert parse_phases(["PHASE1", "PHASE2"]) == [Phase.PHASE1, Phase.PHASE2]


def test_country_asked_twice_gives_the_same_code() -> None:
    assert [normalize_country("Korea, Republic of"), normalize_country("Korea, Republic of")] == ["KR", "KR"]


def test_partial_date_asked_twice_keeps_its_raw_text() -> None:
    assert parse_partial_date("March 2023") == PartialDate(value="2023-03", precision="month", raw="March 2023")
    assert parse_partial_date("March 2023") == PartialDate(value="2023-03", precision="month", raw="March 2023")


def test_history_from_a_given_trials_row_equals_history_built_from_the_record() -> None:
    record, entry = _record(), _entry()
    [trial] = record_rows(record, entry)["trials"]
    assert history_rows(record, entry, OBSERVED, trial) == history_rows(record, entry, OBSERVED)


def test_trial_row_is_the_trials_row_of_record_rows() -> None:
    record, entry = _record(), _entry()
    assert record_rows(record, entry)["trials"] == [trial_row(record, entry)]


def test_history_rows_read_tracked_fields_from_the_trials_row() -> None:
    rows = history_rows(_record(), _entry(), OBSERVED)
    values = {r["field"]: r["value"] for r in rows}
    assert values == {
        "title": "A trial", "sponsor": None, "phases": '["PHASE2"]', "status": "RECRUITING",
        "status_normalized": "RECRUITING", "enrollment": "40", "enrollment_type": None, "enrollment_scope": None,
        "start_date": "2024-03", "completion_date": None, "last_updated": None,
        "conditions": '["Melanoma"]', "countries": '["FR", "NL"]',
    }


def test_arrow_table_rejects_a_row_with_a_column_the_table_lacks_after_good_rows() -> None:
    good = {"document_id": "a", "title": "A", "run_id": "r1"}
    with pytest.raises(ValueError, match=r"table documents: unknown columns \['colour'\]"):
        arrow_table(TABLES_BY_NAME["documents"], [good, good, {**good, "colour": "red"}])


def test_arrow_table_fills_missing_columns_with_null() -> None:
    table = arrow_table(TABLES_BY_NAME["documents"], [{"document_id": "a"}, {"document_id": "b", "title": "B"}])
    assert table.column("title").to_pylist() == [None, "B"]


# -- refresh: the manifest is read once and written once ------------------------------------------


def _study(nct: str) -> bytes:
    return b'{"protocolSection": {"identificationModule": {"nctId": "%s"}}}' % nct.encode()


def _refresh(handler, store, targets):
    import asyncio

    import httpx

    from pipeline.fetch.refresh import refresh
    from pipeline.fetch.client import FetchSettings, RegistryClient, make_http_client

    fast = FetchSettings(requests_per_second=1000.0, backoff_initial=0.0, backoff_max=0.0, backoff_jitter=0.0)

    async def main():
        async with make_http_client(fast, transport=httpx.MockTransport(handler)) as http:
            return await refresh(targets, store=store, client=RegistryClient(http, fast), now=OBSERVED)

    return asyncio.run(main())


def _targets(n: int):
    from pipeline.fetch.refresh import FetchTarget

    return [FetchTarget(registry="ctgov", trial_id=f"NCT{i:08d}") for i in range(1, n + 1)]


def _serve_studies(request):
    import httpx

    return httpx.Response(200, content=_study(request.url.path.rsplit("/", 1)[1]),
                          headers={"Content-Type": "application/json"})


def _counting_saves(store, monkeypatch) -> list[int]:
    saves: list[int] = []
    save = store.save_entries

    def counted(entries):
        entries = list(entries)
        saves.append(len(entries))
        save(entries)

    monkeypatch.setattr(store, "save_entries", counted)
    return saves


def test_refresh_of_many_new_targets_writes_the_manifest_once(tmp_path, monkeypatch):
    from pipeline.fetch import refresh as refresh_module
    from pipeline.store.snapshots import SnapshotStore

    monkeypatch.setattr(refresh_module, "MANIFEST_FLUSH_SECONDS", 3600.0)
    store = SnapshotStore(tmp_path / "snapshots")
    saves = _counting_saves(store, monkeypatch)
    report = _refresh(_serve_studies, store, _targets(12))
    assert [o.outcome for o in report.outcomes] == ["new"] * 12
    assert saves == [12]
    assert [e.path for e in store.entries()] == [f"ctgov/NCT{i:08d}.json" for i in range(1, 13)]
    assert store.verify() == []


def test_refresh_writes_the_manifest_as_targets_finish_once_the_flush_interval_passed(tmp_path, monkeypatch):
    from pipeline.fetch import refresh as refresh_module
    from pipeline.store.snapshots import SnapshotStore

    monkeypatch.setattr(refresh_module, "MANIFEST_FLUSH_SECONDS", 0.0)
    store = SnapshotStore(tmp_path / "snapshots")
    saves = _counting_saves(store, monkeypatch)
    _refresh(_serve_studies, store, _targets(3))
    assert sorted(saves) == [1, 2, 3]


def test_refresh_ended_by_an_unexpected_error_keeps_the_targets_already_fetched(tmp_path, monkeypatch):
    import asyncio

    from pipeline.fetch import refresh as refresh_module
    from pipeline.store.snapshots import SnapshotStore

    monkeypatch.setattr(refresh_module, "MANIFEST_FLUSH_SECONDS", 3600.0)
    store = SnapshotStore(tmp_path / "snapshots")

    async def handler(request):
        if request.url.path.endswith("NCT00000002"):
            await asyncio.sleep(0.2)  # the first target is stored by then
            raise RuntimeError("the transport broke")
        return _serve_studies(request)

    with pytest.raises(ExceptionGroup):
        _refresh(handler, store, _targets(2))
    assert [(e.path, e.provenance) for e in store.entries()] == [("ctgov/NCT00000001.json", "captured")]
    assert store.verify() == []
