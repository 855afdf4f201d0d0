"""Fuzzing the dispatcher: whatever the bytes and the file name, ``parse_snapshot`` (registry told
from the content) gives records or a typed error, never a crash or a hang."""

from __future__ import annotations

from hypothesis import strategies as st

from pipeline.registries import detect_registry, parse_snapshot

from test_fuzz_support import (
    FUZZ,
    check_outcome,
    fuzz,
    html_inputs,
    json_inputs,
    records_or_error,
    samples,
    text_inputs,
)

PATHS = ["ctgov/NCT00000000.json", "ctis/2023-500000-00-00.json", "euctr/2015-000000-00.txt",
         "euctr/2015-000000-00.html", "cteu/x.html", "x.bin", "", "NCT00000000"]

any_snapshot = st.one_of(
    json_inputs(samples("ctgov_v2/*.json")),
    json_inputs(samples("ctis/*.json")),
    text_inputs(samples("euctr/*.txt")),
    html_inputs(samples("euctr/*.html")),
    st.binary(max_size=1024),
)


def test_parse_snapshot_detects_and_parses_or_raises_a_typed_error_for_any_bytes(capsys):
    def attempt(data: bytes, path: str) -> object:
        return records_or_error(lambda: parse_snapshot(data, path=path), names=path or None, data=data)

    counter = fuzz("registries.parse_snapshot", capsys, attempt, data=any_snapshot, path=st.sampled_from(PATHS))
    assert counter.examples >= FUZZ.max_examples


def test_detect_registry_names_a_registry_or_raises_a_typed_error_for_any_bytes(capsys):
    def attempt(data: bytes, path: str) -> object:
        registry = check_outcome(lambda: detect_registry(data, path), names=path or None, data=data)
        assert registry in (None, "ctgov", "ctis", "euctr", "cteu")
        return registry

    counter = fuzz("registries.detect_registry", capsys, attempt, data=any_snapshot, path=st.sampled_from(PATHS))
    assert counter.examples >= FUZZ.max_examples
