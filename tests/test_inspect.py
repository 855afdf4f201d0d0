"""`inspect PATH` prints the parsed record(s) of any snapshot file, the registry told from the content."""

import json

import pytest

from pipeline.cli import main

from conftest import REPO, SHARED

SAMPLES = sorted(p for p in (SHARED / "samples").rglob("*") if p.suffix in {".json", ".html", ".txt"})
RECONSTRUCTED = sorted((REPO / "snapshots").glob("c*/*.json")) + sorted((REPO / "snapshots" / "euctr").glob("*.txt"))


def _inspect(path, capsys):
    code = main(["inspect", str(path)])
    return code, capsys.readouterr()


def _records(out):
    parsed = json.loads(out.out)
    return parsed if isinstance(parsed, list) else [parsed]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_inspect_prints_a_full_record_for_every_real_sample(path, capsys):
    code, out = _inspect(path, capsys)
    assert code == 0, out.err
    records = _records(out)
    assert records and all(r["trial_id"] and r["registry"] in {"ctgov", "ctis", "euctr"} for r in records)
    assert all(r["title"] or r["official_title"] for r in records)
    assert all(r["field_paths"] for r in records)


@pytest.mark.parametrize("path", RECONSTRUCTED, ids=lambda p: p.name)
def test_inspect_prints_the_record_of_every_reconstructed_snapshot(path, capsys):
    # Reconstructions hold only what the public facts give: some have no title, none is invented.
    code, out = _inspect(path, capsys)
    assert code == 0, out.err
    [record] = _records(out)
    assert record["trial_id"] == path.stem


def test_inspect_tells_the_registry_from_the_content_not_the_name(tmp_path, capsys):
    disguised = tmp_path / "record.bin"
    disguised.write_bytes((SHARED / "samples" / "ctis" / "2024-510663-34-00.json").read_bytes())
    code, out = _inspect(disguised, capsys)
    assert code == 0
    assert json.loads(out.out)["registry"] == "ctis"


@pytest.mark.parametrize(("content", "problem"), [(b"", "empty"), (b"{\"studies\": [", "JSON"),
                                                  (b"<html><body>Service unavailable</body></html>", "")])
def test_inspect_of_bad_content_is_one_line_naming_the_file_with_exit_2(tmp_path, capsys, content, problem):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    code, out = _inspect(bad, capsys)
    assert code == 2
    assert out.err.count("\n") == 1 and str(bad) in out.err and problem in out.err


def test_inspect_of_a_missing_file_names_it(tmp_path, capsys):
    code, out = _inspect(tmp_path / "nope.json", capsys)
    assert code == 2 and "nope.json" in out.err
