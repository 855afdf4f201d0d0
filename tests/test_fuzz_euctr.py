"""Fuzzing the EU Clinical Trials Register parsers (full-text download and HTML pages): any input
gives records or a typed error, never a crash or a hang (see ``test_fuzz_support``)."""

from __future__ import annotations

from pipeline.registries.euctr import parse_euctr_html, parse_euctr_text

from test_fuzz_support import FUZZ, REPO, Sample, fuzz_parser, html_inputs, samples, text_inputs

PATH_TEXT = "euctr/2015-000000-00.txt"
PATH_HTML = "euctr/2015-000000-00.html"


def _text_pool() -> tuple[Sample, ...]:
    # The shared download (10 member-state records of 2 trials) and the reconstructed ones.
    committed = tuple(Sample(p.name, p.read_bytes()) for p in sorted((REPO / "snapshots" / "euctr").glob("*.txt")))
    return samples("euctr/*.txt") + committed


def test_parse_euctr_text_gives_records_or_a_typed_error_for_any_bytes(capsys):
    counter = fuzz_parser("euctr.parse_euctr_text", capsys, parse_euctr_text, text_inputs(_text_pool()),
                          path=PATH_TEXT)
    assert counter.examples >= FUZZ.max_examples


def test_parse_euctr_html_gives_records_or_a_typed_error_for_any_bytes(capsys):
    counter = fuzz_parser("euctr.parse_euctr_html", capsys, parse_euctr_html, html_inputs(samples("euctr/*.html")),
                          path=PATH_HTML)
    assert counter.examples >= FUZZ.max_examples
