"""Equal parts of frozen records are held once (SharedParts), and nothing a record answers changes."""

from __future__ import annotations

from pipeline import stages
from pipeline.models import Evidence, Intervention, Outcome, ReconciliationRow, SharedParts, TrialRecord
from pipeline.store.snapshots import DEFAULT_SNAPSHOTS_DIR, SnapshotStore


def _row(claim: str, evidence: Evidence) -> ReconciliationRow:
    return ReconciliationRow(
        document_id="doc", claim_id=claim, trial_id="NCT00000001", field="phase", stated_value="2",
        registry_value="PHASE2", registry="ctgov", verdict="match", rule="phase.set_equal", evidence=evidence,
    )


def _distinct(objects: list[object]) -> int:
    return len({id(o) for o in objects})


def test_records_that_set_the_same_fields_share_one_fields_set():
    shared = SharedParts()
    a = shared.record(Evidence(snapshot_path="a.json", field_path="x"))
    b = shared.record(Evidence(snapshot_path="b.json", field_path="y"))
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    assert a.model_fields_set == {"snapshot_path", "field_path"}


def test_records_that_set_other_fields_keep_their_own_fields_set():
    shared = SharedParts()
    a = shared.record(Evidence(snapshot_path="a.json"))
    b = shared.record(Evidence(snapshot_path="a.json", provenance=None))
    assert a.model_fields_set == {"snapshot_path"}
    assert b.model_fields_set == {"snapshot_path", "provenance"}


def test_a_copy_of_a_shared_record_leaves_the_others_fields_set_alone():
    shared = SharedParts()
    a = shared.record(Evidence(snapshot_path="a.json"))
    b = shared.record(Evidence(snapshot_path="b.json"))
    changed = a.model_copy(update={"field_path": "x"})
    assert changed.model_fields_set == {"snapshot_path", "field_path"}
    assert b.model_fields_set == {"snapshot_path"}


def test_equal_nested_records_are_held_once():
    shared = SharedParts()
    first = shared.record(_row("c1", Evidence(snapshot_path="s.json", field_path="phases")))
    second = shared.record(_row("c2", Evidence(snapshot_path="s.json", field_path="phases")))
    assert first.evidence is second.evidence


def test_nested_records_equal_by_value_but_set_differently_are_not_merged():
    shared = SharedParts()
    first = shared.record(_row("c1", Evidence(snapshot_path="s.json")))
    second = shared.record(_row("c2", Evidence(snapshot_path="s.json", link=None)))
    assert first.evidence is not second.evidence
    assert second.evidence.model_fields_set == {"snapshot_path", "link"}


def test_a_shared_record_dumps_as_it_did_before():
    row = _row("c1", Evidence(snapshot_path="s.json", field_path="phases"))
    before = (row.model_dump(), row.model_dump(exclude_unset=True), row.model_dump_json())
    shared = SharedParts()
    shared.record(_row("c0", Evidence(snapshot_path="s.json", field_path="phases")))
    shared.record(row)
    assert (row.model_dump(), row.model_dump(exclude_unset=True), row.model_dump_json()) == before


def test_a_record_holding_lists_of_records_has_their_parts_shared():
    # An Intervention holds a list, so it has no hash: it is shared in its parts, never merged.
    shared = SharedParts()
    outcome = {"kind": "primary", "measure": "Response rate"}
    records = [
        shared.record(TrialRecord(
            trial_id=f"NCT0000000{n}", registry="ctgov", outcomes=[Outcome(**outcome)],
            interventions=[Intervention(name="Aldesleukin", other_names=["IL-2"])],
        ))
        for n in (1, 2)
    ]
    assert records[0].outcomes[0] is records[1].outcomes[0]
    assert records[0].interventions[0] is not records[1].interventions[0]
    assert records[0].interventions[0].__pydantic_fields_set__ is records[1].interventions[0].__pydantic_fields_set__
    assert records[1].interventions == [Intervention(name="Aldesleukin", other_names=["IL-2"])]


def test_a_pages_comparisons_hold_one_fields_set_for_each_distinct_one():
    store = SnapshotStore(DEFAULT_SNAPSHOTS_DIR).pinned()
    docs = stages.extract_documents(stages.default_documents(store))
    rows = stages.reconcile_documents(docs, stages.load_records(store))
    sets = [row.__pydantic_fields_set__ for row in rows] + [row.evidence.__pydantic_fields_set__ for row in rows]
    assert len(rows) > 100
    assert _distinct(sets) == len({frozenset(s) for s in sets})


def test_parsed_snapshots_hold_one_fields_set_for_each_distinct_one():
    store = SnapshotStore(DEFAULT_SNAPSHOTS_DIR).pinned()
    records = [loaded.held.record for loaded in stages.load_records(store).loaded]
    outcomes = [outcome for record in records for outcome in record.outcomes]
    sets = [r.__pydantic_fields_set__ for r in records] + [o.__pydantic_fields_set__ for o in outcomes]
    assert len(records) > 10 and outcomes
    assert _distinct(sets) == len({frozenset(s) for s in sets})
