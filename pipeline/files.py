"""Reading an input file whole: regular files only, and never more than a stated limit.

A path we are given may name a device (``/dev/zero`` never ends), a FIFO (opening it waits for a
writer that may never come) or a file far larger than any page or record. Each of these is
refused with a problem the caller turns into its own typed error, naming the file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

MiB = 1024 * 1024

MAX_DOCUMENT_BYTES = 16 * MiB
"""The largest page a document may be (a drug page is tens of kB)."""
MAX_SNAPSHOT_BYTES = 64 * MiB
"""The largest snapshot file, or any file ``inspect`` reads (a fetched answer is capped at 20 MiB)."""
MAX_STORE_FILE_BYTES = 256 * MiB
"""The largest manifest, links file or baseline (a store of tens of thousands of records)."""

_KINDS = (
    (stat.S_ISDIR, "is a directory, not a file"),
    (stat.S_ISFIFO, "is a FIFO (named pipe), not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)


def size_problem(size: int, limit: int, what: str) -> str:
    """The words for a file or member over its limit, e.g. ``is 20,971,520 bytes, over the 16 MiB limit for a document``."""
    return f"is {size:,} bytes, over the {_amount(limit)} limit for {what}"


def read_regular_file(path: Path, *, limit: int, what: str, fail: Callable[[Path, str], Exception]) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes.

    Args:
        path: the file.
        limit: the most bytes it may hold; the error names it.
        what: what the file is, for the error ("a document", "a snapshot").
        fail: builds the caller's error from the path and the problem.

    Raises:
        FileNotFoundError: the file does not exist (callers word this case themselves).
        the error ``fail`` builds: the path is not a regular file, is over the limit, or
            cannot be read.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; a regular file ignores it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        _raise(fail, path, "is a directory, not a file")
    except OSError as exc:
        _raise(fail, path, f"cannot be read ({exc.strerror or type(exc).__name__})")
    info = os.fstat(fd)
    kind_problem = next((problem for is_kind, problem in _KINDS if is_kind(info.st_mode)), None)
    if kind_problem is not None:
        os.close(fd)
        _raise(fail, path, kind_problem)
    with os.fdopen(fd, "rb") as fh:
        if info.st_size > limit:
            _raise(fail, path, size_problem(info.st_size, limit, what))
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            _raise(fail, path, f"cannot be read ({exc.strerror or type(exc).__name__})")
    if len(data) > limit:  # the file grew while we read it
        _raise(fail, path, size_problem(len(data), limit, what))
    return data


def _raise(fail: Callable[[Path, str], Exception], path: Path, problem: str) -> NoReturn:
    raise fail(path, problem)


def _amount(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit:,}-byte"
