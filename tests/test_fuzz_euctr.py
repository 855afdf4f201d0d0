"""Fuzzing the EU Clinical Trials Register parsers (full-text download and HTML pages): any input
gives records or a typed error, never a crash or a hang (see ``test_fuzz_support``)."""

from __future__ import annotations

from hypothesis import given

from pipeline.registries.euctr import parse_euctr_html, parse_euctr_text

from test_fuzz_support import (
    FUZZ,
    REPO,
    Counter,
    Sample,
    check_outcome,
    check_records,
    html_inputs,
    samples,
    text_inputs,
)

PATH_TEXT = "euctr/2015-000000-00.txt"
PATH_HTML = "euctr/2015-000000-00.html"


def _text_pool() -> tuple[Sample, ...]:
    # The shared download (10 member-state records of 2 trials) and the reconstructed ones.
    committed = tuple(Sample(p.name, p.read_bytes()) for p in sorted((REPO / "snapshots" / "euctr").glob("*.txt")))
    return samples("euctr/*.txt") + committed


def test_parse_euctr_text_gives_records_or_a_typed_error_for_any_bytes(capsys):
    counter = Counter("euctr.parse_euctr_text")

    @FUZZ
    @given(data=text_inputs(_text_pool()))
    def run(data: bytes) -> None:
        records = check_outcome(lambda: parse_euctr_text(data, path=PATH_TEXT), names=PATH_TEXT, data=data)
        counter.tick(records)
        if records is not None:
            check_records(records)

    run()
    counter.report(capsys)
    assert counter.examples >= FUZZ.max_examples


def test_parse_euctr_html_gives_records_or_a_typed_error_for_any_bytes(capsys):
    counter = Counter("euctr.parse_euctr_html")

    @FUZZ
    @given(data=html_inputs(samples("euctr/*.html")))
    def run(data: bytes) -> None:
        records = check_outcome(lambda: parse_euctr_html(data, path=PATH_HTML), names=PATH_HTML, data=data)
        counter.tick(records)
        if records is not None:
            check_records(records)

    run()
    counter.report(capsys)
    assert counter.examples >= FUZZ.max_examples
