"""Golden output: chosen samples parse to exactly the records checked by eye and kept in
tests/fixtures/golden/. After a deliberate parser change, rewrite them with

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_registries_golden.py

and read the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.registries import parse_snapshot

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"

GOLDEN_SAMPLES = [
    "ctgov_v2/NCT00973089.json",
    "ctgov_v2/studies-wrapper_NCT06388018.json",
    "ctis/2024-510663-34-00.json",
    "ctis/2023-508143-51-01.json",
    "euctr/euctr_fulltext_download_2022-002568-62_2021-002179-21.txt",
    "euctr/euctr_trial_2015-000590-12_DE.html",
    "euctr/euctr_search_query_2015-000590-12.html",
]


def golden_text(sample: str) -> str:
    """The records of one sample as golden JSON: sorted keys, indent 1, one trailing newline."""
    records = parse_snapshot((SAMPLES / sample).read_bytes(), path=sample)
    dumped = [record.model_dump(mode="json") for record in records]
    return json.dumps(dumped, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def golden_path(sample: str) -> Path:
    return GOLDEN / (Path(sample).name + ".golden.json")


@pytest.mark.parametrize("sample", GOLDEN_SAMPLES)
def test_sample_parses_to_its_golden_records(sample: str) -> None:
    actual = golden_text(sample)
    path = golden_path(sample)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")
