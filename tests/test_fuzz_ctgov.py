"""Fuzzing the ClinicalTrials.gov parser: any input gives records or a typed error, never a crash
or a hang (see ``test_fuzz_support`` for the inputs and the guard)."""

from __future__ import annotations

from hypothesis import strategies as st

from pipeline.registries.ctgov import parse_ctgov, parse_study

from test_fuzz_support import (
    FUZZ,
    check_outcome,
    check_records,
    fuzz,
    fuzz_parser,
    json_inputs,
    mutated_trees,
    python_values,
    samples,
)

PATH = "ctgov/NCT00000000.json"
HOT = [("protocolSection",), ("studies", 0, "protocolSection"), ("studies",)]


def _pool():
    return samples("ctgov_v2/*.json")


def test_parse_ctgov_gives_records_or_a_typed_error_for_any_bytes(capsys):
    counter = fuzz_parser("ctgov.parse_ctgov", capsys, parse_ctgov, json_inputs(_pool(), HOT), path=PATH)
    assert counter.examples >= FUZZ.max_examples


def test_parse_study_gives_a_record_or_a_typed_error_for_any_mutated_study(capsys):
    studies = [s for s in _pool() if "protocolSection" in s.tree]

    def attempt(data: st.DataObject) -> object:
        sample = data.draw(st.sampled_from(studies))
        study = python_values(data.draw(mutated_trees(sample.tree, HOT)))
        record = check_outcome(lambda: parse_study(study, path=PATH), names=PATH, data=study)
        if record is not None:
            check_records([record])
        return record

    counter = fuzz("ctgov.parse_study", capsys, attempt, data=st.data())
    assert counter.examples >= FUZZ.max_examples
