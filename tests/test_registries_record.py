"""Every registry parser builds its record the same way: a field is set with the place it was read."""

from __future__ import annotations

from pipeline.registries.record import RecordFields


def test_a_field_read_is_set_with_the_place_it_was_read():
    read = RecordFields("ctgov", "NCT01234567", "protocolSection.identificationModule.nctId")
    read.put("acronym", "TRIAL", "protocolSection.identificationModule.acronym")
    record = read.record()
    assert record.acronym == "TRIAL"
    assert record.field_paths["acronym"] == "protocolSection.identificationModule.acronym"


def test_nothing_stated_or_read_from_nowhere_sets_no_field():
    read = RecordFields("euctr", "2016-003447-11", "Summary: EudraCT Number")
    read.put("acronym", "", "A.3.2 Name or abbreviated title")
    read.put("conditions", [], "E.1.1")
    read.put("sponsor", None, "B.1.1 Name of Sponsor")
    read.put("title", "A title", None)
    record = read.record()
    assert (record.acronym, record.conditions, record.sponsor, record.title) == (None, [], None, None)
    assert set(record.field_paths) == {"trial_id"}
