"""Work that ends: what one record, one file and one zip member may hold, and the error past it.

Each limit is stated once in the code and named in its error, so an operator knows what was
refused and why. Without them a record listing a million conditions kept reconciliation busy
for hours, ``inspect /dev/zero`` read until memory ran out, a FIFO hung ``check``, and a 1 MB
zip holding a 1 GiB member ran ``ingest`` out of memory.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

import duckdb
import pytest

from pipeline.store.ingest import MAX_MEMBER_BYTES, ingest_ctgov
from pipeline.cli import main
from pipeline.errors import ParseError, SnapshotError
from pipeline.files import MAX_DOCUMENT_BYTES, MAX_SNAPSHOT_BYTES, MiB, read_regular_file
from pipeline.reconcile.terms import registry_condition_terms
from pipeline.registries import MAX_CONDITIONS, parse_snapshot

from conftest import REPO

CTGOV_SNAPSHOT = REPO / "snapshots" / "ctgov" / "NCT03645928.json"


def _ctgov_with_conditions(conditions: list[str]) -> bytes:
    study = json.loads(CTGOV_SNAPSHOT.read_bytes())
    study["protocolSection"]["conditionsModule"]["conditions"] = conditions
    return json.dumps(study).encode()


# -- conditions per record (reconciliation compares them pairwise) ------------------------------

def test_registry_conditions_that_come_to_the_same_words_are_one_term_the_first():
    terms = registry_condition_terms(["Melanoma", "Lupus", "melanomas", "MELANOMA", "Lupus"])
    assert [t.text for t in terms] == ["Melanoma", "Lupus"]


def test_registry_conditions_far_past_the_cap_are_deduplicated_in_one_pass():
    # 20,000 conditions took 120 s when each was compared with every term kept before it.
    conditions = [f"disease number {i}" for i in range(20_000)] * 2
    terms = registry_condition_terms(conditions)
    assert [t.text for t in terms] == conditions[:20_000]


def test_record_at_the_condition_cap_is_parsed():
    conditions = [f"disease number {i}" for i in range(MAX_CONDITIONS)]
    [record] = parse_snapshot(_ctgov_with_conditions(conditions), path="big.json")
    assert record.conditions == conditions


def test_record_over_the_condition_cap_is_a_parse_error_naming_the_count_and_the_cap():
    conditions = [f"disease number {i}" for i in range(MAX_CONDITIONS + 1)]
    with pytest.raises(ParseError) as exc:
        parse_snapshot(_ctgov_with_conditions(conditions), path="big.json")
    assert str(exc.value) == (f"big.json: NCT03645928 lists {MAX_CONDITIONS + 1:,} conditions; "
                              f"a record may hold at most {MAX_CONDITIONS:,}")


# -- files we are given: regular files only, and a limit the error names ------------------------

@pytest.mark.parametrize("command", [["inspect"], ["run", "--document"], ["check", "--document"]])
def test_dev_zero_is_refused_as_a_character_device_without_reading_it(tmp_path, capsys, command):
    out = tmp_path / "out"
    args = [*command, "/dev/zero"] + (["--output", str(out)] if command[0] == "run" else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == "error: /dev/zero: is a character device, not a regular file\n"
    assert not out.exists()


@pytest.mark.parametrize("command", [["inspect"], ["check", "--document"], ["run", "--document"]])
def test_fifo_is_refused_at_once_instead_of_waiting_for_a_writer(tmp_path, capsys, command):
    fifo = tmp_path / "page.txt"
    os.mkfifo(fifo)
    assert main([*command, str(fifo)] + (["--output", str(tmp_path / "out")] if command[0] == "run" else [])) == 2
    assert capsys.readouterr().err == f"error: {fifo}: is a FIFO (named pipe), not a regular file\n"


def test_document_over_the_size_limit_is_refused_naming_the_limit(tmp_path, capsys):
    page = tmp_path / "page.txt"
    with page.open("wb") as fh:  # sparse: the size is what counts, not the bytes on disk
        fh.truncate(MAX_DOCUMENT_BYTES + 1)
    assert main(["run", "--document", str(page), "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"error: {page}: is {MAX_DOCUMENT_BYTES + 1:,} bytes, "
                                       "over the 16 MiB limit for a document\n")


def test_inspect_of_a_file_over_the_snapshot_limit_is_refused_naming_the_limit(tmp_path, capsys):
    big = tmp_path / "NCT00000001.json"
    with big.open("wb") as fh:
        fh.truncate(MAX_SNAPSHOT_BYTES + 1)
    assert main(["inspect", str(big)]) == 2
    assert capsys.readouterr().err == (f"error: {big}: is {MAX_SNAPSHOT_BYTES + 1:,} bytes, "
                                       "over the 64 MiB limit for a snapshot\n")


def test_read_regular_file_reads_a_file_at_its_limit_whole(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_regular_file(path, limit=100, what="a test file", fail=SnapshotError) == b"x" * 100
    with pytest.raises(SnapshotError, match=r"is 100 bytes, over the 99-byte limit for a test file$"):
        read_regular_file(path, limit=99, what="a test file", fail=SnapshotError)


# -- zip members: read within a budget; a member that cannot be read is skipped, named --------

def _zip_of_studies(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("NCT03645928.json", CTGOV_SNAPSHOT.read_bytes())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        zf.writestr("NCT05810792.json", (REPO / "snapshots" / "ctgov" / "NCT05810792.json").read_bytes())
    return path


def _patch_member_headers(archive: Path, name: str, *, flag_bits: int | None = None, method: int | None = None,
                          crc_flip: bool = False, size: int | None = None) -> None:
    """Rewrite one member's local and central headers in place (what a damaged or hostile zip holds)."""
    data = bytearray(archive.read_bytes())
    encoded = name.encode()
    for signature, flags_at, method_at, crc_at, size_at, name_at in ((b"PK\x03\x04", 6, 8, 14, 22, 30),
                                                                      (b"PK\x01\x02", 8, 10, 16, 24, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at:start + name_at + len(encoded)] == encoded:
                if flag_bits is not None:
                    struct.pack_into("<H", data, start + flags_at, flag_bits)
                if method is not None:
                    struct.pack_into("<H", data, start + method_at, method)
                if crc_flip:
                    data[start + crc_at] ^= 0xFF
                if size is not None:
                    struct.pack_into("<I", data, start + size_at, size)
            start += 4
    archive.write_bytes(bytes(data))


def _ingest_errors(archive: Path, out: Path) -> tuple[int, list[tuple[str, str]], list[str]]:
    report = ingest_ctgov(archive, out)
    trials = [r[0] for r in duckdb.connect(str(report.database), read_only=True).execute(
        "SELECT trial_id FROM trials ORDER BY trial_id").fetchall()]
    return report.exit_code, [(e.snapshot, e.error) for e in report.load_errors], trials


def test_zip_member_of_a_gibibyte_is_a_load_error_naming_it_unread_and_the_rest_loads(tmp_path):
    # A 1 MB member whose headers say 1 GiB: a real one (1 GiB of spaces, 1 MB deflated) ran
    # ingest out of memory; writing one here would cost seconds of CPU, and the header is what
    # the budget is checked against before a byte is read.
    archive = _zip_of_studies(tmp_path / "bulk.zip", {"NCT09999999.json": b" " * MiB})
    _patch_member_headers(archive, "NCT09999999.json", size=1024 * MiB)
    code, errors, trials = _ingest_errors(archive, tmp_path / "out")
    assert errors == [(f"{archive}!NCT09999999.json",
                       f"is {1024 * MiB:,} bytes, over the {MAX_MEMBER_BYTES // MiB} MiB limit for a zip member")]
    assert trials == ["NCT03645928", "NCT05810792"] and code == 3


def test_zip_member_larger_than_its_header_says_is_read_no_further_than_the_header(tmp_path):
    archive = _zip_of_studies(tmp_path / "bulk.zip", {"NCT09999999.json": b" " * MiB})
    _patch_member_headers(archive, "NCT09999999.json", size=1000)
    code, errors, trials = _ingest_errors(archive, tmp_path / "out")
    assert errors == [(f"{archive}!NCT09999999.json",
                       "cannot be read from the zip (Bad CRC-32 for file 'NCT09999999.json')")]
    assert trials == ["NCT03645928", "NCT05810792"] and code == 3


@pytest.mark.parametrize(("patch", "problem"), [
    ({"crc_flip": True}, "cannot be read from the zip (Bad CRC-32 for file 'NCT05727904.json')"),
    ({"flag_bits": 0x1}, "encrypted (a password is needed), not read"),
    ({"method": 99}, "compressed by method 99, which cannot be read"),
])
def test_zip_member_that_cannot_be_read_is_a_load_error_naming_it_and_the_rest_loads(tmp_path, patch, problem):
    archive = _zip_of_studies(tmp_path / "bulk.zip", {"NCT05727904.json": (REPO / "snapshots" / "ctgov" / "NCT05727904.json").read_bytes()})
    _patch_member_headers(archive, "NCT05727904.json", **patch)
    code, errors, trials = _ingest_errors(archive, tmp_path / "out")
    assert errors == [(f"{archive}!NCT05727904.json", problem)]
    assert trials == ["NCT03645928", "NCT05810792"] and code == 3


def test_zip_whose_every_member_is_unreadable_is_refused_before_writing(tmp_path, capsys):
    archive = tmp_path / "bulk.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("NCT05727904.json", b"{}")
    _patch_member_headers(archive, "NCT05727904.json", flag_bits=0x1)
    assert main(["ingest", str(archive), "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"error: {archive}: holds no readable studies ({archive}!NCT05727904.json: "
                                       "encrypted (a password is needed), not read)\n")
    assert not (tmp_path / "out").exists()
