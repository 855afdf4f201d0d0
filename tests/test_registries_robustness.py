"""Whatever bytes arrive, a parser gives records or a ParseError, never another exception."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import ParseError
from pipeline.registries import parse_snapshot

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)

# Shapes close to real records, so that the parsers get past their first checks.
ctgov_like = st.fixed_dictionaries({"protocolSection": st.fixed_dictionaries({
    "identificationModule": st.fixed_dictionaries({"nctId": st.text(min_size=1, max_size=12)}, optional={
        "secondaryIdInfos": json_values, "nctIdAliases": json_values, "orgStudyIdInfo": json_values}),
}, optional={"statusModule": json_values, "designModule": json_values, "contactsLocationsModule": json_values,
             "armsInterventionsModule": json_values, "outcomesModule": json_values})})
ctis_like = st.fixed_dictionaries({"ctNumber": st.text(min_size=1, max_size=20)}, optional={
    "ctStatus": json_values, "trialPhase": json_values, "trialCountries": json_values,
    "totalNumberEnrolled": json_values, "authorizedApplication": json_values, "authorizedPartI": json_values,
    "lastUpdated": json_values, "ageGroup": json_values})


def parses_or_raises_parse_error(data: bytes, path: str) -> None:
    try:
        parse_snapshot(data, path=path)
    except ParseError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctgov_like)
def test_ctgov_parser_gives_records_or_parse_error(study: dict) -> None:
    parses_or_raises_parse_error(orjson.dumps(study), "ctgov/x.json")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctis_like)
def test_ctis_parser_gives_records_or_parse_error(record: dict) -> None:
    parses_or_raises_parse_error(orjson.dumps(record), "ctis/x.json")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_records_or_parse_error(data: bytes) -> None:
    for path in ("ctgov/x.json", "ctis/x.json", "euctr/x.txt", "cteu/x.html", "x.bin"):
        parses_or_raises_parse_error(data, path)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    "Summary", "EudraCT Number: 2015-000590-12", "Trial Status: Ongoing", "A.1 Member State Concerned: Spain - AEMPS",
    "D.IMP: 1", "D.3.1 Product name: X", "E.7.2 Therapeutic exploratory (Phase II): Yes", "F.4.1 In the member state: 7",
    "F.4.2.2 In the whole clinical trial: x", "continued line", "", "P. End of Trial Status: Completed", "Sponsor 1",
]), max_size=30))
def test_euctr_text_of_any_line_order_gives_records_or_parse_error(lines: list[str]) -> None:
    parses_or_raises_parse_error("\n".join(lines).encode(), "euctr/x.txt")
