"""The bench's per-page figure: the same pages reconciled against a small store and the whole
store, in interleaved passes after one uncounted pass, the ratio judged pass by pass."""
from __future__ import annotations

import statistics
from pathlib import Path

from conftest import small_site
from devtools.bench import PAGE_TIME_PAGES, measure_page_time, page_time_passes
from pipeline import run


def test_the_per_page_ratio_is_the_median_of_the_passes_own_ratios(tmp_path, monkeypatch):
    site = small_site(tmp_path, 60, pages=3, seed=5)
    run.run_pipeline(run.read_inputs([site.pages], site.store), tmp_path / "site-output", Path("/nonexistent"))
    counted: list[list[float]] = []
    real_median = statistics.median

    def spy(values):
        counted.append(list(values))
        return real_median(values)

    monkeypatch.setattr(statistics, "median", spy)
    figures = measure_page_time(tmp_path, small=30, repeat=1)
    assert figures["passes"] == page_time_passes(1) == 7
    small, large, ratios = counted
    assert len(small) == len(large) == len(ratios) == 7
    assert ratios == [b / a for a, b in zip(small, large, strict=True)]
    assert figures["ratio"] == real_median(ratios)
    assert figures["ratio_range"] == (min(ratios), max(ratios))
    assert (figures["small_records"], figures["large_records"], figures["pages"]) == (30, 60, PAGE_TIME_PAGES)
