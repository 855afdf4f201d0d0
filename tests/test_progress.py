import io
import logging

from pipeline.orchestrate.progress import BarProgress, LogProgress, make_progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_plain_stream_gets_log_lines(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert isinstance(make_progress(io.StringIO()), LogProgress)


def test_terminal_gets_a_bar_unless_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert isinstance(make_progress(_Tty()), BarProgress)
    monkeypatch.setenv("CI", "true")
    assert isinstance(make_progress(_Tty()), LogProgress)


def test_log_progress_reports_start_tenths_and_end(caplog):
    progress = LogProgress(logging.getLogger("trialrecon.test"))
    with caplog.at_level(logging.INFO, logger="trialrecon.test"):
        progress.start("snapshots", 20)
        for i in range(20):
            progress.advance(f"s{i}")
        progress.finish()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "snapshots: 20 to do"
    assert messages[-1] == "snapshots: 20/20 done"
    assert len(messages) == 11  # start, 9 intermediate tenths, end
