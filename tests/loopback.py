"""The loopback HTTP server for tests (:mod:`devtools.loopback`) and its pytest fixture.

The server lives in the package because the bench serves its fetch corpus with it; the tests
keep importing it from here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.loopback import (  # noqa: F401 - re-exported for the tests
    DEFAULT_LAST_MODIFIED,
    Delay,
    Drip,
    Hit,
    LoopbackServer,
    Oversize,
    Redirect,
    Reset,
    Resource,
    Status,
    Step,
    TooManyRequests,
    fetch_settings,
    times,
)


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """A started :class:`LoopbackServer`, stopped after the test."""
    with LoopbackServer() as server:
        yield server
