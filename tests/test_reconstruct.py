"""Reconstructed snapshots: recipes cite the facts exactly, rebuild reproduces what is committed."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from pipeline.errors import ParseError
from pipeline.models import TrialLink
from pipeline.store.reconstruct import (
    CTGOV_KEY_ORDER,
    EUCTR_LINES,
    LINKS_NAME,
    build_native,
    load_recipes,
    main,
    rebuild,
    source_registries,
)
from pipeline.registries import parse_snapshot
from pipeline.store.snapshots import SnapshotStore

from conftest import REPO, SHARED

SNAPSHOTS = REPO / "snapshots"
RECIPES_DIR = SNAPSHOTS / "reconstruction"
SAMPLES = SHARED / "samples"
BUILT_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
NO_FACTS_TRIALS = ["NCT05607420", "2023-504632-17-00", "2023-506400-99-00", "2024-515357-16-00"]

RECIPES = load_recipes(RECIPES_DIR)
RECIPE_IDS = [f"{r['registry']}/{r['trial_id']}" for r in RECIPES]
COMMITTED = SnapshotStore(SNAPSHOTS)


def _recipe(registry: str, trial_id: str, values: list[tuple[str, Any]]) -> dict[str, Any]:
    source = {"ctgov": "https://meddatax.com/x", "ctis": "https://www.ctis.eu/x",
              "euctr": "https://www.clinicaltrialsregister.eu/x"}[registry]
    return {
        "registry": registry, "trial_id": trial_id, "url": "https://example.org/api", "facts_file": "f.json",
        "values": [{"path": p, "value": v, "source_url": source, "quote": "q", "fact": "/q"} for p, v in values],
    }


def _cited(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of a recipe that quotes the facts: values, alternatives, links."""
    return [*recipe["values"], *recipe.get("alternatives", []), *recipe.get("links", [])]


def _leaf(recipe: dict[str, Any], item: dict[str, Any]) -> str:
    """The text of the facts-file value an item's ``fact`` pointer names."""
    node: Any = json.loads((SHARED / item.get("facts_file", recipe["facts_file"])).read_text())
    for part in item["fact"].lstrip("/").split("/"):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node if isinstance(node, str) else json.dumps(node)


@pytest.fixture
def rebuilt(tmp_path: Path) -> SnapshotStore:
    store = SnapshotStore(tmp_path / "snapshots")
    rebuild(store, RECIPES_DIR, BUILT_AT)
    return store


# -- the committed snapshots ------------------------------------------------------------------


def test_rebuilding_from_the_recipes_gives_the_committed_files_byte_for_byte(rebuilt):
    entries = rebuilt.entries()
    assert len(entries) == len(RECIPES) == 20
    for entry in entries:
        assert (rebuilt.root / entry.path).read_bytes() == (SNAPSHOTS / entry.path).read_bytes(), entry.path
    assert (rebuilt.root / LINKS_NAME).read_bytes() == (SNAPSHOTS / LINKS_NAME).read_bytes()


def test_rebuilt_sha256s_and_sources_equal_the_committed_manifest(rebuilt):
    committed = {e.path: e for e in COMMITTED.entries() if e.provenance == "reconstructed"}
    rebuilt_entries = {e.path: e for e in rebuilt.entries()}
    assert sorted(committed) == sorted(rebuilt_entries)
    for path, entry in rebuilt_entries.items():
        assert entry.sha256 == committed[path].sha256, path
        assert entry.source_urls == committed[path].source_urls, path
        assert entry.url == committed[path].url, path


def test_every_reconstructed_manifest_entry_says_so_and_lists_its_sources():
    built_paths = {f"{r['registry']}/{r['trial_id']}.{'txt' if r['registry'] == 'euctr' else 'json'}" for r in RECIPES}
    entries = [e for e in COMMITTED.entries() if e.path in built_paths]
    assert len(entries) == 20
    for entry in entries:
        assert entry.provenance == "reconstructed", entry.path
        assert len(entry.source_urls) >= 1, entry.path
        assert entry.http_status is None, entry.path


@pytest.mark.parametrize("trial_id", NO_FACTS_TRIALS)
def test_a_trial_without_facts_has_no_snapshot_recipe_or_link(trial_id):
    assert [e.path for e in COMMITTED.entries() if e.trial_id == trial_id] == []
    assert list(SNAPSHOTS.glob(f"*/{trial_id}.*")) == []
    assert trial_id not in [r["trial_id"] for r in RECIPES]
    links = TypeAdapter(list[TrialLink]).validate_json((SNAPSHOTS / LINKS_NAME).read_bytes())
    assert [link for link in links if trial_id in (link.trial_id, link.other_id)] == []


def test_links_json_is_a_sorted_list_of_trial_links_to_built_snapshots():
    links = TypeAdapter(list[TrialLink]).validate_json((SNAPSHOTS / LINKS_NAME).read_bytes())
    keys = [(link.trial_id, link.other_registry, link.other_id) for link in links]
    assert keys == sorted(keys)
    assert [(link.trial_id, link.other_id, link.strength) for link in links] == [
        ("2023-506979-10-00", "NCT05810792", "candidate"),
        ("2024-519532-16-00", "NCT06255028", "candidate"),
        ("2025-522054-40-00", "NCT07288203", "candidate"),
        ("2025-522841-23-00", "NCT07589842", "candidate"),
        ("NCT02919644", "2015-000894-11", "confirmed"),
        ("NCT03108495", "2016-003447-11", "confirmed"),
        ("NCT03645928", "2018-001608-12", "confirmed"),
        ("NCT04243499", "2019-003847-31", "candidate"),
        ("NCT04614103", "2020-003629-45", "confirmed"),
        ("NCT05153070", "2024-514043-29-00", "confirmed"),
        ("NCT05468073", "2024-516565-36-00", "confirmed"),
        ("NCT05727904", "2022-503140-41-00", "confirmed"),
    ]
    for link in links:
        assert COMMITTED.entry_for(link.other_registry, link.other_id) is not None, link


@pytest.mark.parametrize("entry", [e for e in COMMITTED.entries() if e.provenance == "reconstructed"],
                         ids=lambda e: e.path)
def test_every_reconstructed_snapshot_parses_with_its_registry_parser(entry):
    records = parse_snapshot(COMMITTED.read(entry), path=entry.path, registry=entry.registry)
    assert [r.trial_id for r in records] == [entry.trial_id]
    assert records[0].registry == entry.registry


# -- the recipes: the guard against invented values --------------------------------------------


@pytest.mark.parametrize("recipe", RECIPES, ids=RECIPE_IDS)
def test_every_quote_occurs_verbatim_in_the_fact_it_points_at(recipe):
    for item in _cited(recipe):
        assert item["quote"], item
        assert item["quote"] in _leaf(recipe, item), item


@pytest.mark.parametrize("recipe", RECIPES, ids=RECIPE_IDS)
def test_every_text_value_not_marked_normalized_is_part_of_its_quote(recipe):
    for item in [*recipe["values"], *recipe.get("alternatives", [])]:
        if isinstance(item["value"], str) and not item.get("normalized"):
            assert item["value"] in item["quote"], item


@pytest.mark.parametrize("recipe", RECIPES, ids=RECIPE_IDS)
def test_every_source_url_is_named_in_the_facts_file_and_is_of_the_recipes_registry(recipe):
    for item in [*recipe["values"], *recipe.get("alternatives", [])]:
        facts_text = (SHARED / item.get("facts_file", recipe["facts_file"])).read_text()
        urls = item["source_url"] if isinstance(item["source_url"], list) else [item["source_url"]]
        for url in urls:
            assert url in facts_text, (item["path"], url)
            assert recipe["registry"] in source_registries(url), (item["path"], url)


@pytest.mark.parametrize("recipe", RECIPES, ids=RECIPE_IDS)
def test_no_recipe_value_is_a_not_found_fact(recipe):
    for item in recipe["values"]:
        assert "not found" not in str(item["value"]).lower(), item


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r["registry"] == "ctis"], ids=lambda r: r["trial_id"])
def test_every_ctis_path_exists_in_a_real_ctis_retrieve_record(recipe):
    known: set[str] = set()

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, f"{where}.{key}" if where else key)
        elif isinstance(node, list):
            for child in node:
                walk(child, f"{where}[]")
        else:
            known.add(where)

    for name in ("2024-510663-34-00.json", "2023-505613-24-00.json"):
        walk(json.loads((SAMPLES / "ctis" / name).read_text()), "")
    for item in recipe["values"]:
        assert re.sub(r"\[\d+\]", "[]", item["path"]) in known, item["path"]


# -- the native formats -------------------------------------------------------------------------


def test_ctgov_key_order_agrees_with_the_order_of_real_api_payloads():
    def check(node: Any, where: str, name: str) -> None:
        if isinstance(node, dict):
            order = CTGOV_KEY_ORDER.get(where)
            if order is not None:
                present = [key for key in node if key in order]
                assert present == sorted(present, key=order.index), (name, where)
            for key, child in node.items():
                check(child, f"{where}.{key}" if where else key, name)
        elif isinstance(node, list):
            for child in node:
                check(child, f"{where}[]", name)

    samples = sorted((SAMPLES / "ctgov_v2").glob("NCT*.json"))
    assert len(samples) == 17
    for sample in samples:
        check(json.loads(sample.read_text()), "", sample.name)


def test_every_ctgov_key_we_write_is_in_the_openapi_spec():
    spec = yaml.safe_load((SAMPLES / "ctgov_v2" / "ctg-oas-v2_2.0.5.yaml").read_text())
    schemas = spec["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema.get("items", schema) if schema.get("type") == "array" else schema

    for where, keys in CTGOV_KEY_ORDER.items():
        schema = resolve(schemas["Study"])
        for step in [s for s in where.replace("[]", "").split(".") if s]:
            schema = resolve(resolve(schema)["properties"][step])
            schema = resolve(schema)
        for key in keys:
            assert key in schema["properties"], (where, key)


def test_every_euctr_line_we_write_appears_in_the_registrys_own_download():
    text = (SAMPLES / "euctr" / "euctr_fulltext_download_2022-002568-62_2021-002179-21.txt").read_text()
    lines = set(text.split("\n"))
    for label, headings in EUCTR_LINES:
        for heading in headings:
            assert heading in lines, heading
        if label == "E.1.2":
            assert "E.1.2 Medical condition or disease under investigation:" in lines
        else:
            assert f"\n{label}: " in text or f"\n{label}:\n" in text, label


def test_ctgov_record_keeps_the_api_order_whatever_the_recipe_order():
    recipe = _recipe("ctgov", "NCT00000001", [
        ("protocolSection.designModule.enrollmentInfo.count", 5),
        ("protocolSection.statusModule.overallStatus", "RECRUITING"),
        ("protocolSection.identificationModule.acronym", "ACR"),
        ("protocolSection.identificationModule.nctId", "NCT00000001"),
    ])
    assert build_native(recipe) == (
        b'{\n  "protocolSection": {\n    "identificationModule": {\n      "nctId": "NCT00000001",\n'
        b'      "acronym": "ACR"\n    },\n    "statusModule": {\n      "overallStatus": "RECRUITING"\n    },\n'
        b'    "designModule": {\n      "enrollmentInfo": {\n        "count": 5\n      }\n    }\n  }\n}\n'
    )


def test_ctgov_record_refuses_a_field_the_api_does_not_write():
    recipe = _recipe("ctgov", "NCT00000001", [("protocolSection.statusModule.overallState", "RECRUITING")])
    with pytest.raises(ParseError) as exc:
        build_native(recipe)
    assert str(exc.value) == (
        "reconstruction/ctgov/NCT00000001.json: protocolSection.statusModule.overallState is not a field we write"
    )


def test_ctgov_record_refuses_a_status_outside_the_api_vocabulary():
    recipe = _recipe("ctgov", "NCT00000001", [("protocolSection.statusModule.overallStatus", "Recruiting")])
    with pytest.raises(ParseError) as exc:
        build_native(recipe)
    assert str(exc.value) == (
        "reconstruction/ctgov/NCT00000001.json: protocolSection.statusModule.overallStatus 'Recruiting' "
        "is not in the API's vocabulary"
    )


def test_a_list_path_that_skips_a_position_is_refused():
    recipe = _recipe("ctgov", "NCT00000001", [("protocolSection.conditionsModule.conditions[1]", "Melanoma")])
    with pytest.raises(ParseError) as exc:
        build_native(recipe)
    assert str(exc.value) == (
        "reconstruction/ctgov/NCT00000001.json: 'protocolSection.conditionsModule.conditions[1]' skips list positions"
    )


def test_a_value_from_a_context_source_is_refused():
    recipe = _recipe("ctgov", "NCT00000001", [("protocolSection.identificationModule.nctId", "NCT00000001")])
    recipe["values"][0]["source_url"] = "https://www.hra.nhs.uk/summary"
    with pytest.raises(ParseError) as exc:
        build_native(recipe)
    assert str(exc.value) == (
        "reconstruction/ctgov/NCT00000001.json: https://www.hra.nhs.uk/summary is not a source of ctgov data "
        "(see SOURCE_HOSTS)"
    )


def test_ctis_record_has_sorted_keys():
    recipe = _recipe("ctis", "2024-000001-01-00", [("trialPhase", "Therapeutic exploratory (Phase II)"),
                                                   ("ctNumber", "2024-000001-01-00"), ("ctStatus", 2)])
    assert build_native(recipe) == (
        b'{\n  "ctNumber": "2024-000001-01-00",\n  "ctStatus": 2,\n'
        b'  "trialPhase": "Therapeutic exploratory (Phase II)"\n}\n'
    )


def test_euctr_blocks_follow_the_registers_line_order_headings_and_quirks():
    recipe = _recipe("euctr", "2019-000001-01", [
        ("IT/E.7.2 Therapeutic exploratory (Phase II)", "Yes"),
        ("IT/E.1.2[0]/Term", "Melanoma"),
        ("IT/E.1.2[0]/Level", "LLT"),
        ("IT/Trial Status", "Ongoing"),
        ("IT/National Competent Authority", "Italy - AIFA"),
        ("DE/EudraCT Number", "2019-000001-01"),
        ("IT/EudraCT Number", "2019-000001-01"),
    ])
    assert build_native(recipe).decode() == "\n".join([
        "This file contains full details on each clinical trial selected for download. Where multi-state trials "
        "have been downloaded full information for each of the member states/countries involved in the trial are "
        "included separately.",
        "",
        "Summary",
        "EudraCT Number: 2019-000001-01",
        "",
        "Summary",
        "EudraCT Number: 2019-000001-01",
        "National Competent Authority: Italy - AIFA ",
        "Trial Status: Ongoing",
        "",
        "E. General Information on the Trial",
        "E.1 Medical condition or disease under investigation",
        "MedDRA Classification",
        "E.1.2 Medical condition or disease under investigation:",
        "E.1.2 Level: LLT",
        "E.1.2 Term: Melanoma",
        "E.6 and E.7 Scope of the trial",
        "E.7 Trial type and phase ",
        "E.7.2 Therapeutic exploratory (Phase II): Yes",
        "",
        "",
    ])


def test_euctr_refuses_a_line_the_register_does_not_have():
    recipe = _recipe("euctr", "2019-000001-01", [("IT/Z.9 Made up", "x")])
    with pytest.raises(ParseError) as exc:
        build_native(recipe)
    assert str(exc.value) == "reconstruction/euctr/2019-000001-01.json: 'Z.9 Made up' is not an EU CTR line we write"


# -- rebuild -------------------------------------------------------------------------------------


def test_rebuilding_again_changes_nothing_and_keeps_fetched_at(rebuilt):
    manifest = rebuilt.manifest_path.read_bytes()
    again = rebuild(rebuilt, RECIPES_DIR, LATER)
    assert {e.fetched_at for e in again} == {BUILT_AT}
    assert rebuilt.manifest_path.read_bytes() == manifest


def test_a_changed_recipe_gets_the_new_build_time_and_the_others_keep_theirs(tmp_path):
    recipes_dir = tmp_path / "reconstruction"
    shutil.copytree(RECIPES_DIR, recipes_dir)
    store = SnapshotStore(tmp_path / "snapshots")
    rebuild(store, recipes_dir, BUILT_AT)
    path = recipes_dir / "ctgov" / "NCT05727904.json"
    recipe = json.loads(path.read_text())
    recipe["values"] = [v for v in recipe["values"] if not v["path"].endswith("keywords[0]")]
    path.write_text(json.dumps(recipe))
    entries = {e.path: e.fetched_at for e in rebuild(store, recipes_dir, LATER)}
    assert entries.pop("ctgov/NCT05727904.json") == LATER
    assert set(entries.values()) == {BUILT_AT}


def test_rebuild_leaves_a_captured_snapshot_alone(tmp_path):
    store = SnapshotStore(tmp_path / "snapshots")
    captured = store.write("ctgov", "NCT03645928", "json", b'{"captured": true}', registry="ctgov",
                           url="https://clinicaltrials.gov/api/v2/studies/NCT03645928", provenance="captured",
                           trial_id="NCT03645928", http_status=200, fetched_at=BUILT_AT)
    built = rebuild(store, RECIPES_DIR, LATER)
    assert "ctgov/NCT03645928.json" not in [e.path for e in built]
    assert store.entry_for("ctgov", "NCT03645928") == captured
    assert store.read(captured) == b'{"captured": true}'


def test_rebuild_removes_a_reconstruction_that_no_recipe_builds(tmp_path):
    store = SnapshotStore(tmp_path / "snapshots")
    store.write("ctgov", "NCT00000001", "json", b"{}", registry="ctgov", url="u", provenance="reconstructed",
                trial_id="NCT00000001", source_urls=["https://meddatax.com/x"], fetched_at=BUILT_AT)
    rebuild(store, RECIPES_DIR, LATER)
    assert store.entry_for("ctgov", "NCT00000001") is None
    assert not (store.root / "ctgov" / "NCT00000001.json").exists()


def test_a_recipe_out_of_its_place_is_refused_with_its_path(tmp_path):
    folder = tmp_path / "reconstruction" / "ctgov"
    folder.mkdir(parents=True)
    (folder / "NCT00000002.json").write_text(json.dumps(_recipe("ctgov", "NCT00000001", [])))
    with pytest.raises(ParseError) as exc:
        load_recipes(tmp_path / "reconstruction")
    assert str(exc.value) == (
        f"{folder / 'NCT00000002.json'}: recipe says ctgov/NCT00000001, its place says ctgov/NCT00000002"
    )


def test_a_recipe_whose_url_is_not_the_registry_api_url_is_refused(tmp_path):
    folder = tmp_path / "reconstruction" / "ctgov"
    folder.mkdir(parents=True)
    (folder / "NCT00000001.json").write_text(json.dumps(_recipe("ctgov", "NCT00000001", [])))
    with pytest.raises(ParseError) as exc:
        load_recipes(tmp_path / "reconstruction")
    assert str(exc.value) == (
        f"{folder / 'NCT00000001.json'}: recipe url is 'https://example.org/api', "
        "the registry's is 'https://clinicaltrials.gov/api/v2/studies/NCT00000001'"
    )


def test_the_entry_point_rebuilds_the_snapshots_folder_it_is_given(tmp_path, capsys):
    shutil.copytree(RECIPES_DIR, tmp_path / "reconstruction")
    assert main(["--snapshots", str(tmp_path)]) == 0
    assert len(SnapshotStore(tmp_path).entries()) == 20
    assert capsys.readouterr().out.endswith(f"20 reconstructed snapshots, links in {tmp_path / LINKS_NAME}\n")
