"""The run's long-lived objects are kept out of the cyclic collector's walks, and only inside a run."""

from __future__ import annotations

import gc

from pipeline import stages


def test_a_nested_spared_block_leaves_the_outer_ones_objects_spared():
    with stages.records_spared():
        with stages.records_spared():
            pass
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_items_taken_inside_a_spared_block_are_spared_as_they_come():
    # Counts, not identities: the frozen count also falls as frozen objects elsewhere are freed,
    # so each item brings far more containers than that noise.
    held = []
    with stages.records_spared():
        before = gc.get_freeze_count()
        for n in stages.spared_as_they_come(range(4), every=2):
            held.append([[] for _ in range(10_000)])  # containers, as parsed records are
            if n == 1:  # the second item: its objects are spared once it has been taken
                grown = gc.get_freeze_count()
        assert grown - before < 5_000  # nothing of the first two items spared while the second was in hand
        assert gc.get_freeze_count() - before > 15_000  # both spared after the second was taken
    assert gc.get_freeze_count() == 0


def test_items_taken_outside_a_run_spare_nothing():
    held = [[object()] for _ in stages.spared_as_they_come(range(10), every=1)]
    assert held and gc.get_freeze_count() == 0
