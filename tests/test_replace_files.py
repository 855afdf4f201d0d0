"""Many files replaced together (a site's page reports): each replaced whole, all made durable
before the call returns, and a failure leaves no temporary file behind."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeline import stages
from pipeline.store.snapshots import replace_files


def test_files_replaced_together_hold_their_bytes_and_nothing_else_is_left(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "a.html").write_bytes(b"old")
    written = replace_files([(tmp_path / "pages" / "a.html", b"new a"), (tmp_path / "pages" / "b.md", b"new b")])
    assert written == [tmp_path / "pages" / "a.html", tmp_path / "pages" / "b.md"]
    assert [(p.name, p.read_bytes()) for p in sorted((tmp_path / "pages").iterdir())] == [
        ("a.html", b"new a"), ("b.md", b"new b")]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in written)


def test_every_file_and_its_folder_is_synced_before_the_call_returns(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    paths = [tmp_path / "out" / f"page-{n}.html" for n in range(5)]
    replace_files((path, b"<p>report</p>") for path in paths)
    assert set(synced) == {str(p) for p in paths} | {str(tmp_path / "out")}


def test_a_failure_midway_keeps_the_files_written_and_leaves_no_temporary_file(tmp_path):
    def files():
        yield tmp_path / "one.md", b"one"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        replace_files(files())
    assert [p.name for p in tmp_path.iterdir()] == ["one.md"]


def test_a_write_that_fails_removes_its_temporary_file(tmp_path):
    with pytest.raises(TypeError):
        replace_files([(tmp_path / "bad.md", "text, not bytes")])  # type: ignore[list-item]
    assert list(tmp_path.iterdir()) == []


def test_page_reports_are_written_as_html_and_markdown_for_each_page(tmp_path):
    written = stages.write_page_reports([("drug-a", "<h1>A</h1>", "# A"), ("drug-b", "<h1>B</h1>", "# B")], tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "pages/drug-a.html", "pages/drug-a.md", "pages/drug-b.html", "pages/drug-b.md"]
    assert (tmp_path / "pages" / "drug-b.md").read_text(encoding="utf-8") == "# B"
