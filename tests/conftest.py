"""Shared fixtures: paths to the repo and ../shared, and one Prefect test harness per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = REPO / "tests" / "fixtures"
EMBEDDED_PAGE = REPO / "snapshots" / "documents" / "aldesleukin.txt"


def pytest_configure(config: pytest.Config) -> None:
    """Point `run` and `serve` at a local-server port where nothing listens, so that no test
    reports to a Prefect server a developer has running on the default port (tests that want a
    local server start one and say so)."""
    from pipeline.orchestrate.server import PORT_ENV, free_port

    os.environ[PORT_ENV] = str(free_port())


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API for the whole session (flow tests only: it takes seconds to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
