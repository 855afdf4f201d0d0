"""Fuzzing the EU CTIS parser: any input gives records or a typed error, never a crash or a hang
(see ``test_fuzz_support`` for the inputs and the guard)."""

from __future__ import annotations

from pipeline.registries.ctis import parse_ctis

from test_fuzz_support import FUZZ, fuzz_parser, json_inputs, samples

PATH = "ctis/2023-000000-00-00.json"
HOT = [
    ("authorizedApplication",),
    ("authorizedApplication", "authorizedPartI"),
    ("authorizedApplication", "authorizedPartI", "trialDetails"),
    ("authorizedPartI",),
    ("authorizedPartI", "trialDetails"),
]


def test_parse_ctis_gives_records_or_a_typed_error_for_any_bytes(capsys):
    counter = fuzz_parser("ctis.parse_ctis", capsys, parse_ctis, json_inputs(samples("ctis/*.json"), HOT), path=PATH)
    assert counter.examples >= FUZZ.max_examples
