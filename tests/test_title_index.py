"""The per-run title index: an ongoing entry's shortlist of store records, found without
scanning the store (pipeline.reconcile.ongoing.TitleIndex)."""

from __future__ import annotations

from pipeline.models import SnapshotEntry, TrialRecord
from pipeline.reconcile.ongoing import TitleIndex
from pipeline.reconcile.records import LoadedRecord, RecordLookup
from pipeline.reconcile.terms import drug_pattern


def _loaded(trial_id: str, title: str, *, other_ids: tuple[str, ...] = ()) -> LoadedRecord:
    record = TrialRecord(trial_id=trial_id, registry="ctgov", title=title,
                         identifiers=[{"other_id": o, "id_type": "EU_CT"} for o in other_ids])
    entry = SnapshotEntry(path=f"ctgov/{trial_id}.json", registry="ctgov", trial_id=trial_id,
                          url=f"https://clinicaltrials.gov/study/{trial_id}", sha256="0" * 64, provenance="captured")
    return LoadedRecord(record, entry)


STORE = [
    _loaded("NCT00000001", "Aldesleukin in metastatic melanoma"),
    _loaded("NCT00000002", "Aldesleukin and pembrolizumab in metastatic melanoma"),
    _loaded("NCT00000003", "Low-dose aldesleukin in lupus nephritis"),
    *(_loaded(f"NCT1{n:07d}", f"Metastatic melanoma cohort {n}") for n in range(40)),
]


def test_shortlist_puts_the_records_sharing_the_rarest_words_first():
    index = TitleIndex(STORE)
    ids = [r.record.trial_id for r in index.shortlist("Aldesleukin with pembrolizumab for melanoma", size=1)]
    assert ids == ["NCT00000002"]


def test_shortlist_ignores_the_pages_drug_and_lists_records_by_number():
    index = TitleIndex(STORE)
    shortlist = index.shortlist("Aldesleukin for lupus nephritis", drug_pattern("Aldesleukin"), size=3)
    assert [r.record.trial_id for r in shortlist][0] == "NCT00000003"
    assert [index_of(r) for r in shortlist] == sorted(index_of(r) for r in shortlist)


def test_records_tied_for_a_shortlist_are_the_same_whatever_the_stores_order():
    # 40 titles share the entry's words equally: which 5 are kept must not hang on how the
    # store listed them (a manifest by path, an ingest by its sources' labels).
    listed = [r.record.trial_id for r in TitleIndex(STORE).shortlist("Metastatic melanoma cohort", size=5)]
    reversed_ = [r.record.trial_id for r in TitleIndex(STORE[::-1]).shortlist("Metastatic melanoma cohort", size=5)]
    assert listed == reversed_ == sorted(listed)


def test_shortlist_is_every_record_when_no_title_shares_a_word():
    assert len(TitleIndex(STORE).shortlist("Healthy volunteers")) == len(STORE)


def test_records_reaching_a_trial_are_its_own_the_linked_and_those_listing_it():
    listing = _loaded("NCT00000009", "A record listing an EU CT number", other_ids=("2023-000001-01-00",))
    lookup = RecordLookup([*STORE, listing], [])
    assert lookup.reaching(["2023-000001-01-00"]) == [listing]
    assert lookup.reaching(["nct00000001 "]) == [STORE[0]]
    assert lookup.reaching(["NCT99999999"]) == []


def index_of(loaded: LoadedRecord) -> int:
    return STORE.index(loaded)
