"""Every registry sample in ../shared/samples parses, with the values the file holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.models import TrialRecord
from pipeline.registries import detect_registry, parse_snapshot

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"

# sample -> [(trial id, status, phases, enrollment, number of countries)], read off the files.
EXPECTED: list[tuple[str, list[tuple[str, str | None, list[str], int | None, int]]]] = [
    ("ctgov_v2/NCT00184067.json", [("NCT00184067", "TERMINATED", ["PHASE2"], 23, 1)]),
    ("ctgov_v2/NCT00567567.json", [("NCT00567567", "COMPLETED", ["PHASE3"], 665, 6)]),
    ("ctgov_v2/NCT00716976.json", [("NCT00716976", "COMPLETED", ["PHASE3"], 131, 3)]),
    ("ctgov_v2/NCT00763412.json", [("NCT00763412", "COMPLETED", ["NA"], 31, 1)]),
    ("ctgov_v2/NCT00973089.json", [("NCT00973089", "WITHDRAWN", ["NA"], 0, 1)]),
    ("ctgov_v2/NCT01305200.json", [("NCT01305200", "COMPLETED", ["PHASE3"], 226, 3)]),
    ("ctgov_v2/NCT01987596.json", [("NCT01987596", "TERMINATED", ["PHASE3"], 23, 1)]),
    ("ctgov_v2/NCT02513394.json", [("NCT02513394", "ACTIVE_NOT_RECRUITING", ["PHASE3"], 5796, 21)]),
    ("ctgov_v2/NCT02552212.json", [("NCT02552212", "COMPLETED", ["PHASE3"], 317, 9)]),
    ("ctgov_v2/NCT03064438.json", [("NCT03064438", "COMPLETED", ["PHASE2"], 40, 1)]),
    ("ctgov_v2/NCT03275402.json", [("NCT03275402", "TERMINATED", ["PHASE2", "PHASE3"], 52, 4)]),
    ("ctgov_v2/NCT03418623.json", [("NCT03418623", "COMPLETED", ["PHASE2"], 24, 1)]),
    ("ctgov_v2/NCT03475563.json", [("NCT03475563", "UNKNOWN", [], 100, 1)]),
    ("ctgov_v2/NCT03630471.json", [("NCT03630471", "COMPLETED", ["NA"], 250, 1)]),
    ("ctgov_v2/NCT04431453.json", [("NCT04431453", "COMPLETED", ["PHASE2", "PHASE3"], 59, 4)]),
    ("ctgov_v2/NCT05594173.json", [("NCT05594173", "COMPLETED", [], 20, 1)]),
    ("ctgov_v2/NCT06171568.json", [("NCT06171568", "NOT_YET_RECRUITING", [], 400, 1)]),
    ("ctgov_v2/page_biomcp_search_keytruda_limit3_20260811.json", [
        ("NCT05431270", "RECRUITING", ["PHASE1", "PHASE2"], 40, 0),
        ("NCT03590054", "COMPLETED", ["PHASE1"], 35, 0),
        ("NCT04795661", "ACTIVE_NOT_RECRUITING", ["PHASE2"], 240, 0)]),
    ("ctgov_v2/page_biomcp_search_nsclc_egfr_l858r_20260811.json", [
        ("NCT06382129", "ACTIVE_NOT_RECRUITING", ["PHASE3"], 698, 0),
        ("NCT06604689", "RECRUITING", [], 800, 0)]),
    ("ctgov_v2/page_biomcp_search_phelan_limit5_20260811.json", [
        ("NCT02710084", "COMPLETED", ["PHASE2"], 18, 0),
        ("NCT05105685", "COMPLETED", ["PHASE1", "PHASE2"], 6, 0),
        ("NCT01525901", "COMPLETED", ["PHASE2"], 19, 0),
        ("NCT03493607", "COMPLETED", ["PHASE2"], 6, 0),
        ("NCT07119606", "NOT_YET_RECRUITING", ["NA"], 650, 0)]),
    ("ctgov_v2/page_biomcp_search_phelan_next_20260811.json", [
        ("NCT05187377", "COMPLETED", ["PHASE2"], 32, 0),
        ("NCT03836300", "ENROLLING_BY_INVITATION", ["NA"], 120, 0),
        ("NCT07014020", "ACTIVE_NOT_RECRUITING", ["PHASE1"], 8, 0),
        ("NCT05025241", "COMPLETED", ["PHASE2"], 18, 0),
        ("NCT07281079", "RECRUITING", ["PHASE3"], 160, 0)]),
    ("ctgov_v2/page_cyanheads_2025-06-17T11-15-33.json", [("NCT05147467", "RECRUITING", ["PHASE2"], 75, 1)]),
    ("ctgov_v2/page_cyanheads_2025-06-17T11-16-37.json", [
        ("NCT00184067", "TERMINATED", ["PHASE2"], 23, 1),
        ("NCT03934567", "ACTIVE_NOT_RECRUITING", ["PHASE2"], 87, 1)]),
    ("ctgov_v2/studies-wrapper_NCT03281889.json", [("NCT03281889", "RECRUITING", ["NA"], 20, 1)]),
    ("ctgov_v2/studies-wrapper_NCT06388018.json", [("NCT06388018", "RECRUITING", ["PHASE2"], 325, 1)]),
    ("ctis/2022-500244-37-00.json", [("2022-500244-37-00", "NOT_YET_RECRUITING", ["PHASE2"], 150, 2)]),
    ("ctis/2023-505613-24-00.json", [("2023-505613-24-00", "RECRUITING", ["PHASE2"], 13, 9)]),
    ("ctis/2023-508143-51-01.json", [("2023-508143-51-01", "NOT_YET_RECRUITING", ["PHASE4"], 11, 1)]),
    ("ctis/2024-510663-34-00.json", [("2024-510663-34-00", "RECRUITING", ["PHASE2"], 11, 2)]),
    ("euctr/euctr_fulltext_download_2022-002568-62_2021-002179-21.txt", [
        ("2022-002568-62", "ONGOING", ["PHASE1", "PHASE2"], 15, 9),
        ("2021-002179-21", "ONGOING", ["PHASE3"], 600, 32)]),
    ("euctr/euctr_search_query_2015-000590-12.html", [("2015-000590-12", "COMPLETED", [], None, 1)]),
    ("euctr/euctr_trial_2015-000590-12_DE.html", [("2015-000590-12", "COMPLETED", ["PHASE3"], 744, 1)]),
]


def _summary(record: TrialRecord) -> tuple[str, str | None, list[str], int | None, int]:
    status = record.status.value if record.status else None
    return record.trial_id, status, [p.value for p in record.phases], record.enrollment, len(record.countries)


def test_expected_table_covers_every_sample_file() -> None:
    on_disk = sorted(
        str(p.relative_to(SAMPLES)) for p in SAMPLES.glob("*/*")
        if p.suffix in {".json", ".txt", ".html"}
    )
    assert sorted(sample for sample, _ in EXPECTED) == on_disk


@pytest.mark.parametrize(("sample", "expected"), EXPECTED, ids=[s for s, _ in EXPECTED])
def test_sample_parses_to_its_trials(sample: str, expected: list[tuple]) -> None:
    records = parse_snapshot((SAMPLES / sample).read_bytes(), path=sample)
    assert [_summary(r) for r in records] == expected


@pytest.mark.parametrize(("sample", "expected"), EXPECTED, ids=[s for s, _ in EXPECTED])
def test_sample_registry_is_told_from_content_alone(sample: str, expected: list[tuple]) -> None:
    folder = sample.split("/")[0]
    assert detect_registry((SAMPLES / sample).read_bytes()) == {"ctgov_v2": "ctgov"}.get(folder, folder)


@pytest.mark.parametrize(("sample", "eudract"), [
    ("ctgov_v2/NCT02552212.json", "2015-001894-41"),
    ("ctgov_v2/NCT04431453.json", "2020-001803-17"),
    ("ctgov_v2/NCT02513394.json", "2014-005181-30"),
    ("ctis/2024-510663-34-00.json", "2019-001588-63"),
    ("ctis/2023-505613-24-00.json", "2019-003842-34"),
    ("ctis/2023-508143-51-01.json", "2021-004994-30"),
])
def test_sample_gives_the_eudract_number_as_identifier(sample: str, eudract: str) -> None:
    [record] = parse_snapshot((SAMPLES / sample).read_bytes(), path=sample)
    assert [i.other_id for i in record.identifiers if i.id_type == "EUDRACT"] == [eudract]


@pytest.mark.parametrize(("sample", "nct"), [
    ("ctis/2024-510663-34-00.json", "NCT04494412"),
    ("ctis/2023-505613-24-00.json", "NCT04665037"),
])
def test_ctis_sample_gives_the_nct_number_as_identifier(sample: str, nct: str) -> None:
    [record] = parse_snapshot((SAMPLES / sample).read_bytes(), path=sample)
    assert [i.other_id for i in record.identifiers if i.id_type == "NCT"] == [nct]


@pytest.mark.parametrize(("sample", "protocol"), [
    ("ctis/2024-510663-34-00.json", "200925"),
    ("ctis/2022-500244-37-00.json", "KIN001-204"),
    ("euctr/euctr_trial_2015-000590-12_DE.html", "CRAD001HDE53"),
    ("ctgov_v2/NCT02513394.json", "AFT-05"),
])
def test_sample_gives_the_sponsor_protocol_code(sample: str, protocol: str) -> None:
    [record] = parse_snapshot((SAMPLES / sample).read_bytes(), path=sample)
    assert [i.other_id for i in record.identifiers if i.id_type == "SPONSOR_PROTOCOL"] == [protocol]
