"""Work that ends: what one record, one file and one zip member may hold, and the error past it.

Each limit is stated once in the code and named in its error, so an operator knows what was
refused and why. Without them a record listing a million conditions kept reconciliation busy
for hours, ``inspect /dev/zero`` read until memory ran out, a FIFO hung ``check``, and a 1 MB
zip holding a 1 GiB member ran ``ingest`` out of memory.
"""

from __future__ import annotations

import json

import pytest

from pipeline.errors import ParseError
from pipeline.reconcile.terms import registry_condition_terms
from pipeline.registries import MAX_CONDITIONS, parse_snapshot

from conftest import REPO

CTGOV_SNAPSHOT = REPO / "snapshots" / "ctgov" / "NCT03645928.json"


def _ctgov_with_conditions(conditions: list[str]) -> bytes:
    study = json.loads(CTGOV_SNAPSHOT.read_bytes())
    study["protocolSection"]["conditionsModule"]["conditions"] = conditions
    return json.dumps(study).encode()


# -- conditions per record (reconciliation compares them pairwise) ------------------------------

def test_registry_conditions_that_come_to_the_same_words_are_one_term_the_first():
    terms = registry_condition_terms(["Melanoma", "Lupus", "melanomas", "MELANOMA", "Lupus"])
    assert [t.text for t in terms] == ["Melanoma", "Lupus"]


def test_registry_conditions_far_past_the_cap_are_deduplicated_in_one_pass():
    # 20,000 conditions took 120 s when each was compared with every term kept before it.
    conditions = [f"disease number {i}" for i in range(20_000)] * 2
    terms = registry_condition_terms(conditions)
    assert [t.text for t in terms] == conditions[:20_000]


def test_record_at_the_condition_cap_is_parsed():
    conditions = [f"disease number {i}" for i in range(MAX_CONDITIONS)]
    [record] = parse_snapshot(_ctgov_with_conditions(conditions), path="big.json")
    assert record.conditions == conditions


def test_record_over_the_condition_cap_is_a_parse_error_naming_the_count_and_the_cap():
    conditions = [f"disease number {i}" for i in range(MAX_CONDITIONS + 1)]
    with pytest.raises(ParseError) as exc:
        parse_snapshot(_ctgov_with_conditions(conditions), path="big.json")
    assert str(exc.value) == (f"big.json: NCT03645928 lists {MAX_CONDITIONS + 1:,} conditions; "
                              f"a record may hold at most {MAX_CONDITIONS:,}")
