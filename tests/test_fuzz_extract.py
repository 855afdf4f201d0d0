"""Fuzzing the extractor: any page text gives an ExtractedDocument or a DocumentError naming the
page, never another exception and never a hang; any file gives text or a DocumentError.

Inputs are the embedded Aldesleukin page (``snapshots/documents/aldesleukin.txt``) and the
extractor's variant pages, with lines deleted, duplicated, swapped, cut, joined, made huge or
random, and as bytes truncated, re-encoded (latin-1, UTF-16, BOM...), with NUL bytes, or random.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import strategies as st

from pipeline.extract import extract_document, read_document
from pipeline.models import ExtractedDocument

from test_fuzz_support import FUZZ, REPO, Sample, check_outcome, fuzz, mutated_bytes, mutated_lines

PATH = "pages/fuzzed.txt"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
TRIAL_ID = re.compile(r"NCT[0-9]{8}|[0-9]{4}-[0-9]{6}-[0-9]{2}(?:-[0-9]{2})?")


def _pages() -> tuple[Sample, ...]:
    paths = [REPO / "snapshots" / "documents" / "aldesleukin.txt",
             *sorted((REPO / "tests" / "fixtures" / "documents").glob("*.txt"))]
    return tuple(Sample(p.name, p.read_bytes()) for p in paths)


@st.composite
def page_texts(draw: st.DrawFn) -> str:
    how = draw(st.sampled_from(["lines", "lines", "lines", "bytes", "random"]))
    if how == "random":
        return draw(st.text(max_size=2000))
    page = draw(st.sampled_from(_pages()))
    if how == "lines":
        return draw(mutated_lines(page.data.decode("utf-8")))
    # Bytes mangled the way a bad capture mangles them, then read as UTF-8 as best one can.
    return draw(mutated_bytes(page.data)).decode("utf-8", errors="replace")


def test_extract_document_gives_facts_or_a_document_error_for_any_text(capsys):
    def attempt(text: str) -> object:
        doc = check_outcome(
            lambda: extract_document(text, source_url="file:///fuzzed.txt", sha256="0" * 64, extracted_at=NOW,
                                     path=PATH),
            names=PATH, data=text)
        if doc is not None:
            assert isinstance(doc, ExtractedDocument)
            # Every stated trial id is an id, never a fragment of a mangled cell.
            assert all(TRIAL_ID.fullmatch(t.trial_id) for t in doc.trials), [t.trial_id for t in doc.trials]
        return doc

    counter = fuzz("extract.extract_document", capsys, attempt, text=page_texts())
    assert counter.examples >= FUZZ.max_examples


@st.composite
def page_files(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=512))
    return draw(mutated_bytes(draw(st.sampled_from(_pages())).data))


def test_read_document_gives_text_or_a_document_error_for_any_file(tmp_path, capsys):
    target: Path = tmp_path / "page.txt"

    def attempt(data: bytes) -> object:
        target.write_bytes(data)
        result = check_outcome(lambda: read_document(target), names=str(target), data=data)
        if result is not None:
            text, sha = result
            assert isinstance(text, str) and text.strip() and "\x00" not in text
            assert len(sha) == 64
        return result

    counter = fuzz("extract.read_document", capsys, attempt, data=page_files())
    assert counter.examples >= FUZZ.max_examples
