"""Typed errors. Each carries the offending input and builds its message from it.

    TrialreconError
    ├── InputError                 bad input given to us: exit status 2
    │   ├── DocumentError          a source document that cannot be read or has no facts
    │   ├── SnapshotError          a snapshot file that cannot be used
    │   │   ├── IntegrityError     its sha256 disagrees with the manifest
    │   │   └── ParseError         its content is not the record we expect
    │   │       └── MissingFieldError   a required field is absent (carries the field path)
    │   ├── UnsafePathError        an id, URL or path that would leave the snapshots folder
    │   ├── BaselineError          a baseline file that cannot be used (pipeline.outputs.baseline)
    │   └── ServerError            a Prefect server that does not answer or cannot be started
    ├── FetchError                 a registry request failed: exit status 4
    │   └── TransientFetchError    ... in a way that retrying may mend (timeouts, 429, 5xx)
    ├── OutputLockedError          another run holds the output folder: exit status 5
    └── OutputError                the output folder or database cannot be written: exit status 6

Each error class carries the exit status the command line gives it (:class:`ExitStatus`, the one
place the codes are defined).
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class ExitStatus(IntEnum):
    """What a command's exit status says happened. README's exit-status table and ``--help`` show these."""

    OK = 0
    CHECK_FAILED = 1
    BAD_INPUT = 2
    PARTIAL = 3
    FETCH_FAILED = 4
    OUTPUT_LOCKED = 5
    OUTPUT_FAILED = 6

    @property
    def meaning(self) -> str:
        """The status in words, as README and ``--help`` give it."""
        return _MEANINGS[self]


_MEANINGS = {
    ExitStatus.OK: "complete",
    ExitStatus.CHECK_FAILED: "`check` found a discrepancy that the baseline does not accept",
    ExitStatus.BAD_INPUT: "bad input: one line on stderr names the input (a file, an option, a Prefect server) and "
                          "what is wrong; nothing was written",
    ExitStatus.PARTIAL: "partial: some snapshots could not be used (see `load_errors`) or could not be refreshed "
                        "(each is named); everything else loaded. `check` exits 3 when a snapshot could not be "
                        "used, whatever the verdicts",
    ExitStatus.FETCH_FAILED: "a registry could not be fetched from; nothing was written",
    ExitStatus.OUTPUT_LOCKED: "another run holds the output folder; nothing was written",
    ExitStatus.OUTPUT_FAILED: "the output folder or database cannot be written (read-only, full, not a DuckDB "
                              "database); the previous outputs are unchanged",
}


class TrialreconError(Exception):
    """Base of every error the pipeline raises on purpose."""

    exit_status = ExitStatus.BAD_INPUT


class InputError(TrialreconError):
    """Bad input: the run stops with exit status 2 and writes nothing."""

    exit_status = ExitStatus.BAD_INPUT


class DocumentError(InputError):
    """A source document cannot be read or holds no facts."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class SnapshotError(InputError):
    """A snapshot file cannot be used."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class IntegrityError(SnapshotError):
    """A snapshot's bytes no longer match the sha256 in the manifest."""

    def __init__(self, path: Path | str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(path, f"sha256 is {actual[:12]}…, manifest says {expected[:12]}…")


class ParseError(SnapshotError):
    """A snapshot's content is not the record its parser expects."""


class MissingFieldError(ParseError):
    """A field the parser needs is absent."""

    def __init__(self, path: Path | str, field_path: str) -> None:
        self.field_path = field_path
        super().__init__(path, f"required field {field_path!r} is missing")


class ServerError(InputError):
    """A Prefect server that does not answer, or a local one that cannot be started (pipeline.orchestrate.server)."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"{url}: {problem}")


class FetchError(TrialreconError):
    """A registry request failed."""

    exit_status = ExitStatus.FETCH_FAILED

    def __init__(self, url: str, problem: str, status: int | None = None) -> None:
        self.url = url
        self.problem = problem
        self.status = status
        super().__init__(f"{url}: {problem}")


class TransientFetchError(FetchError):
    """A registry request failed in a way that retrying may mend."""

    def __init__(
        self, url: str, problem: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(url, problem, status)


class UnsafePathError(InputError):
    """An id or URL would make a file name outside the snapshots folder."""

    def __init__(self, value: str, problem: str = "cannot be used as a snapshot name") -> None:
        self.value = value
        super().__init__(f"{value!r} {problem}")


class OutputLockedError(TrialreconError):
    """Another run holds the lock on the output folder."""

    exit_status = ExitStatus.OUTPUT_LOCKED

    def __init__(self, output_dir: Path | str) -> None:
        self.output_dir = str(output_dir)
        super().__init__(f"{self.output_dir}: another trialrecon run is writing here")


class OutputError(TrialreconError):
    """The output folder or its database cannot be written or read (read-only, full, not DuckDB)."""

    exit_status = ExitStatus.OUTPUT_FAILED

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def validation_problem(exc: ValidationError) -> str:
    """One line for a pydantic validation error: where its first problem is, and what it is."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"invalid {where}: {first['msg']}" if where else first["msg"]
