"""Fuzzing the clinicaltrials.eu page parser: any input gives records or a typed error, never a
crash or a hang (see ``test_fuzz_support``). No captured page of the site exists, so the pages
are the parser's own crafted fixtures plus the EU CTR pages (real HTML of another site)."""

from __future__ import annotations

from pipeline.registries.cteu import parse_cteu

from test_fuzz_support import FUZZ, REPO, Sample, fuzz_parser, html_inputs, samples

PATH = "cteu/some-trial.html"


def _pool() -> tuple[Sample, ...]:
    crafted = sorted((REPO / "tests" / "fixtures" / "registries").glob("cteu_*.html"))
    return tuple(Sample(p.name, p.read_bytes()) for p in crafted) + samples("euctr/*.html")


def test_parse_cteu_gives_records_or_a_typed_error_for_any_bytes(capsys):
    counter = fuzz_parser("cteu.parse_cteu", capsys, parse_cteu, html_inputs(_pool()), path=PATH)
    assert counter.examples >= FUZZ.max_examples
