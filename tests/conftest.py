"""Shared fixtures: paths to the repo and ../shared, and one Prefect test harness per session."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def small_site(folder: Path, records: int = 60, pages: int = 6, seed: int = 3):  # -> devtools.site.Site
    """A generated site in ``folder``: ``pages`` drug pages citing five trials each, over a store of
    ``records`` records varied from the real ClinicalTrials.gov samples (see devtools/site.py)."""
    from devtools.bench import build_corpus
    from devtools.site import build_site

    corpus = build_corpus(SHARED / "samples" / "ctgov_v2", records, folder / "corpus.ndjson")
    return build_site(corpus.path, records, pages, folder / "site", seed=seed, trials_per_page=5)
FIXTURES = REPO / "tests" / "fixtures"
EMBEDDED_PAGE = REPO / "snapshots" / "documents" / "aldesleukin.txt"


def pytest_configure(config: pytest.Config) -> None:
    """Point `run` and `serve` at a local-server port where nothing listens, so that no test
    reports to a Prefect server a developer has running on the default port (tests that want a
    local server start one and say so)."""
    from pipeline.orchestrate.server import PORT_ENV, free_port

    os.environ[PORT_ENV] = str(free_port())


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at the moment of writing (the running test's capture, if any)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(sys.stderr, name)


_STDERR = _CurrentStderr()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Prefect's console log handlers write to the current ``sys.stderr``, whichever test runs.

    Prefect makes them once per process, when it is first imported (``from prefect import flow``),
    and each keeps the stream of that moment. Made while a test captured output (``capsys``/
    ``capfd``), they keep that test's stream, closed once the test ends, and every later Prefect
    log line in the process prints a "Logging error" traceback into the stderr of whichever test
    runs then (tests that check stderr fail). Which test imports Prefect first depends on the
    order the tests run in, on each ``-n`` worker.
    """
    if "prefect.logging.handlers" not in sys.modules:
        return  # none made yet
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values()
                                      if isinstance(x, logging.Logger))]
    for handler in {h for lg in loggers for h in lg.handlers if isinstance(h, PrefectConsoleHandler)}:
        if handler.stream is not _STDERR:
            handler.stream = _STDERR  # not setStream: it flushes the old stream, maybe closed
            handler.console.file = _STDERR  # type: ignore[assignment]


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API for the whole session (flow tests only: it takes seconds to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
