"""Chunks of study records as Arrow (pipeline.store.chunks): the memory-mapped NDJSON reader gives the records,
labels and chunks that reading the file line by line gives."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.store.ingest import iter_study_bytes
from pipeline.store.chunks import StudyChunk, chunks_of, mapped_ndjson_chunks, read_ahead

STUDY = b'{"protocolSection":{"identificationModule":{"nctId":"NCT0300000%d"}}}'

# Blank and whitespace-only lines between records and at the start, CRLF ends, a record with
# leading spaces, and a last line without its end of line.
AWKWARD = (b"\n" + STUDY % 1 + b"\n" + STUDY % 2 + b"\r\n\n   \t\n" + b"  " + STUDY % 3 + b"\n"
           + STUDY % 4 + b"\n\n" + STUDY % 5)


def _flatten(chunks) -> list[list[tuple[str, bytes]]]:
    return [list(zip(chunk.docs["label"].to_pylist(), chunk.docs["doc"].to_pylist(), strict=True))
            for chunk in chunks]


def _line_by_line(path: Path, size: int) -> list[list[tuple[str, bytes]]]:
    return _flatten(chunks_of(iter_study_bytes(path), size))


@pytest.mark.parametrize("size", [1, 2, 3, 10])
def test_mapped_file_gives_the_chunks_of_reading_it_line_by_line(tmp_path, size):
    source = tmp_path / "awkward.ndjson"
    source.write_bytes(AWKWARD)
    assert _flatten(mapped_ndjson_chunks(source, size)) == _line_by_line(source, size)


def test_blank_lines_are_skipped_and_counted_in_labels(tmp_path):
    source = tmp_path / "awkward.ndjson"
    source.write_bytes(AWKWARD)
    labels = [label for chunk in _flatten(mapped_ndjson_chunks(source, 10)) for label, _ in chunk]
    assert labels == [f"{source}:{line}" for line in (2, 3, 6, 7, 9)]


def test_records_keep_their_end_of_line(tmp_path):
    source = tmp_path / "awkward.ndjson"
    source.write_bytes(AWKWARD)
    records = [doc for chunk in _flatten(mapped_ndjson_chunks(source, 10)) for _, doc in chunk]
    assert records[1] == STUDY % 2 + b"\r\n"
    assert records[-1] == STUDY % 5


def test_empty_or_blank_file_has_no_chunks(tmp_path):
    empty, blank = tmp_path / "empty.ndjson", tmp_path / "blank.ndjson"
    empty.write_bytes(b"")
    blank.write_bytes(b"\n \n\t\n")
    assert list(mapped_ndjson_chunks(empty, 5)) == []
    assert list(mapped_ndjson_chunks(blank, 5)) == []


def test_released_chunk_still_reads_the_same_bytes(tmp_path):
    source = tmp_path / "big.ndjson"
    source.write_bytes(b"".join(STUDY % (i % 10) + b" " * 5000 + b"\n" for i in range(40)))
    chunks = list(mapped_ndjson_chunks(source, 7))
    before = _flatten(chunks)
    for chunk in chunks:
        chunk.release()
    assert _flatten(chunks) == before


def _numbered(count: int, fail_at: int | None = None):
    for number in range(count):
        if number == fail_at:
            raise OSError(f"disk gone at chunk {number}")
        yield StudyChunk(docs=pa.table({"seq": [number]}))


def test_read_ahead_gives_every_chunk_in_order():
    assert [c.docs["seq"][0].as_py() for c in read_ahead(_numbered(25))] == list(range(25))


def test_error_while_reading_ahead_is_raised_after_the_chunks_before_it():
    seen = []
    with pytest.raises(OSError, match="disk gone at chunk 3"):
        for chunk in read_ahead(_numbered(10, fail_at=3)):
            seen.append(chunk.docs["seq"][0].as_py())
    assert seen == [0, 1, 2]


def test_stopping_early_closes_the_source_and_its_thread():
    closed = []

    def source():
        try:
            yield from _numbered(1000)
        finally:
            closed.append(True)

    chunks = read_ahead(source())
    assert next(chunks).docs["seq"][0].as_py() == 0
    chunks.close()
    assert closed == [True]
    assert not [t for t in threading.enumerate() if t.name == "trialrecon-read"]
