"""Fuzzing the EU CTIS parser: any input gives records or a typed error, never a crash or a hang
(see ``test_fuzz_support`` for the inputs and the guard)."""

from __future__ import annotations

from hypothesis import given

from pipeline.registries.ctis import parse_ctis

from test_fuzz_support import FUZZ, Counter, check_outcome, check_records, json_inputs, samples

PATH = "ctis/2023-000000-00-00.json"
HOT = [
    ("authorizedApplication",),
    ("authorizedApplication", "authorizedPartI"),
    ("authorizedApplication", "authorizedPartI", "trialDetails"),
    ("authorizedPartI",),
    ("authorizedPartI", "trialDetails"),
]


def test_parse_ctis_gives_records_or_a_typed_error_for_any_bytes(capsys):
    counter = Counter("ctis.parse_ctis")

    @FUZZ
    @given(data=json_inputs(samples("ctis/*.json"), HOT))
    def run(data: bytes) -> None:
        records = check_outcome(lambda: parse_ctis(data, path=PATH), names=PATH, data=data)
        counter.tick(records)
        if records is not None:
            check_records(records)

    run()
    counter.report(capsys)
    assert counter.examples >= FUZZ.max_examples
