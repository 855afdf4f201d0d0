"""The command line's contract for bad input: one line naming the input, exit 2, nothing written."""

import subprocess
import sys

import pytest

from pipeline.cli import main

from conftest import REPO


@pytest.fixture
def junk(tmp_path):
    files = {
        "empty.txt": b"",
        "binary.txt": bytes(range(256)) * 4,
        "notable.txt": b"Aldesleukin\n\nSome text about trials but no summary table at all.\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("missing.txt", "not found"),
        ("empty.txt", "empty"),
        ("binary.txt", "binary"),
        ("notable.txt", "no summary table"),
    ],
)
def test_bad_document_is_one_line_error_with_exit_2_and_no_output(junk, capsys, name, problem):
    out = junk / "out"
    code = main(["run", "--document", str(junk / name), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert str(junk / name) in err and problem in err
    assert not out.exists()


def test_python_dash_m_pipeline_prints_help():
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0
    for command in ("run", "check", "inspect", "schemas"):
        assert command in proc.stdout


def test_a_temporary_server_logs_only_its_critical_errors_unless_the_operator_chose_a_level():
    # Its services print CancelledError tracebacks when a short run stops it (Prefect's shutdown noise).
    from pipeline.orchestrate.server import quiet_temporary_server_shutdown

    environ: dict[str, str] = {}
    quiet_temporary_server_shutdown(environ)
    assert environ == {"PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL"}
    chosen = {"PREFECT_SERVER_LOGGING_LEVEL": "DEBUG"}
    quiet_temporary_server_shutdown(chosen)
    assert chosen == {"PREFECT_SERVER_LOGGING_LEVEL": "DEBUG"}
