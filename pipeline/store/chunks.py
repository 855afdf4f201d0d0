"""Chunks of study records as Arrow tables, for the DuckDB ingest engine (:mod:`pipeline.store.ingest_sql`).

A chunk is ``size`` records in source order (the Python path's chunks) as one Arrow table of
``seq`` (position in the chunk), ``label`` (where the record stands, as
:func:`pipeline.store.ingest.iter_study_bytes` names it) and ``doc`` (its bytes). Its bytes lie back to
back in one buffer, held once while the chunk is in flight:

* from any source, the records are joined into a new buffer (:func:`chunks_of`);
* from an NDJSON file, the buffer is the file itself, memory-mapped (:func:`mapped_ndjson_chunks`):
  nothing is copied, and the pages come from the page cache many at a fault, where a new buffer
  costs a page fault every 4 kB (a third of a large ingest's time went to those). Once a chunk
  is loaded, :meth:`StudyChunk.release` drops its pages from the process, so that memory stays
  flat however large the file. The file must not be truncated while it is read.
"""

from __future__ import annotations

import array
import itertools
import mmap
import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

# Rows per Arrow record batch DuckDB scans: decoded batch by batch, a chunk's JSON is never all in
# DuckDB's memory at once.
SCAN_BATCH_ROWS = 64

_NOT_BLANK = re.compile(rb"\S")  # bytes.strip()'s whitespace, as pipeline.store.ingest skips blank lines


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class StudyChunk:
    """One chunk's records (``docs``), and what to call once it is loaded (``release``)."""

    docs: pa.Table
    release: Callable[[], None] = _nothing


def chunks_of(studies: Iterator[tuple[str, bytes]], size: int) -> Iterator[StudyChunk]:
    """``studies`` (``(label, bytes)`` pairs) in chunks of ``size``, each joined into one buffer."""
    while True:
        labels: list[str] = []
        records: list[bytes] = []
        offsets = array.array("q", [0])
        for label, study in itertools.islice(studies, size):
            labels.append(label)
            records.append(study)
            offsets.append(offsets[-1] + len(study))
        if not labels:
            return
        # One join: growing a buffer record by record reallocates it (and copies it) again and again.
        data = b"".join(records)
        del records
        yield StudyChunk(_docs(labels, offsets, pa.py_buffer(data)))


def mapped_ndjson_chunks(path: Path, size: int) -> Iterator[StudyChunk]:
    """The records of an NDJSON file in chunks of ``size``, read through a memory map.

    Labels and blank lines are as :func:`pipeline.store.ingest.iter_study_bytes` gives them (``file:line``,
    the line with its end of line; blank lines skipped). A chunk with a blank line between two of
    its records is copied into a buffer of its own, as :func:`chunks_of` builds them.
    """
    with path.open("rb") as fh:
        if fh.seek(0, 2) == 0:
            return
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapped)
    try:
        yield from _mapped_chunks(str(path), mapped, view, size)
    finally:
        view.release()
        try:
            mapped.close()
        except BufferError:
            pass  # a chunk still in flight (the run failed): the map goes when its last view does


def _mapped_chunks(name: str, mapped: mmap.mmap, view: memoryview, size: int) -> Iterator[StudyChunk]:
    total = len(mapped)
    position = 0
    number = 0  # line number, blank lines counted
    while position < total:
        labels: list[str] = []
        spans: list[tuple[int, int]] = []
        while len(labels) < size and position < total:
            newline = mapped.find(b"\n", position)
            end = total if newline < 0 else newline + 1
            number += 1
            if mapped[position] == 0x7B or _NOT_BLANK.search(mapped, position, end):  # 0x7B: "{"
                labels.append(f"{name}:{number}")
                spans.append((position, end))
            position = end
        if not labels:
            return
        start, stop = spans[0][0], spans[-1][1]
        offsets = array.array("q", [0])
        for begin, end in spans:
            offsets.append(offsets[-1] + end - begin)
        if offsets[-1] == stop - start:  # no blank line between two records: the file itself
            data = pa.py_buffer(view[start:stop])
        else:
            data = pa.py_buffer(b"".join(mapped[begin:end] for begin, end in spans))
        release = _dropper(mapped, start, stop)
        release()  # scanned: the pages come back from the page cache when the chunk is decoded
        yield StudyChunk(_docs(labels, offsets, data), release)


def _dropper(mapped: mmap.mmap, start: int, stop: int) -> Callable[[], None]:
    """Drop the pages of ``[start, stop)`` from the process (a later read faults them in again)."""
    first = start - start % mmap.PAGESIZE
    length = stop - first
    length -= length % mmap.PAGESIZE

    def release() -> None:
        if length > 0 and not mapped.closed:
            mapped.madvise(mmap.MADV_DONTNEED, first, length)

    return release


def _docs(labels: list[str], offsets: array.array, data: pa.Buffer) -> pa.Table:
    table = pa.table({
        "seq": pa.array(range(len(labels)), pa.int64()),
        "label": pa.array(labels, pa.string()),
        "doc": pa.Array.from_buffers(pa.large_binary(), len(labels), [None, pa.py_buffer(offsets), data]),
    })
    return pa.Table.from_batches(table.to_batches(max_chunksize=SCAN_BATCH_ROWS))


_END = object()


def read_ahead(chunks: Iterator[StudyChunk]) -> Iterator[StudyChunk]:
    """``chunks``, each read on a thread of its own while the one before is used.

    Reading a chunk (scanning a file for its lines) is Python work; on the thread that applies
    the chunks it would wait behind every statement it runs. One chunk is read ahead, no more.
    An error raised while reading is raised here, at the chunk it stopped.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ready.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            ready.put(exc)

    reader = threading.Thread(target=read, name="trialrecon-read", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while reader.is_alive():
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
