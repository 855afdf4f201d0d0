"""`scripts/ensure-test-deps`: what `make test` installs before the suite, or the one line it stops with.

Each test runs the script with a PATH holding only fake commands, so it never touches the machine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import REPO

SCRIPT = REPO / "scripts" / "ensure-test-deps"
BASH = shutil.which("bash") or "/bin/bash"


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{BASH}\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def _run(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BASH, str(SCRIPT)], env={"PATH": str(bin_dir)}, capture_output=True, text=True,
                          timeout=30)


def test_present_chromium_installs_nothing(tmp_path):
    _fake(tmp_path, "chromium", "exit 0")
    _fake(tmp_path, "id", "echo 0")
    _fake(tmp_path, "apt-get", f"echo \"$@\" >> {tmp_path}/apt.log")
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "apt.log").exists()


def test_missing_chromium_as_root_is_installed_with_apt_and_said(tmp_path):
    _fake(tmp_path, "id", "echo 0")
    _fake(tmp_path, "apt-get", f"echo \"$@\" >> {tmp_path}/apt.log")
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0] == "update -qq"
    assert calls[1].split()[-1] == "chromium" and "install" in calls[1]
    assert "installing Debian's chromium" in result.stderr


def test_missing_chromium_without_root_stops_with_one_line_naming_the_command(tmp_path):
    _fake(tmp_path, "id", "echo 1000")
    _fake(tmp_path, "apt-get", f"echo \"$@\" >> {tmp_path}/apt.log")
    result = _run(tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "chromium is missing" in lines[0] and "apt-get install -y chromium" in lines[0]
    assert not (tmp_path / "apt.log").exists()


def test_missing_chromium_without_a_package_manager_stops_with_one_line(tmp_path):
    _fake(tmp_path, "id", "echo 0")
    result = _run(tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no apt-get" in lines[0]


def test_a_failed_install_stops_before_the_suite(tmp_path):
    _fake(tmp_path, "id", "echo 0")
    _fake(tmp_path, "apt-get", "echo 'E: Unable to locate package chromium' >&2; exit 100")
    result = _run(tmp_path)
    assert result.returncode != 0
    assert "installing chromium failed" in result.stderr


def test_make_test_runs_the_check_before_the_suite():
    dry = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, timeout=30).stdout
    lines = dry.splitlines()
    deps = next(i for i, line in enumerate(lines) if "scripts/ensure-test-deps" in line)
    suite = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    assert deps < suite
