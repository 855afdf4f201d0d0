"""The reconciliation rows of the embedded page and of every test page, against the rows captured
before records were looked up through the per-run index (``fixtures/reconcile/rows-before.json``,
written by ``tests/capture_rows.py``): finding records faster must not change one verdict."""

from __future__ import annotations

import json

import pytest

from capture_rows import FIXTURE, PAGES, current_rows


@pytest.fixture(scope="module")
def rows():
    return current_rows()


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_reconciliation_rows_are_identical_to_the_captured_ones(rows, page):
    before = json.loads(FIXTURE.read_text())[page]
    assert rows[page] == before
