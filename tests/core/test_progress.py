"""Progress output (core/progress.py): a tqdm bar on a terminal; in a file a line when a stage ends, with its time
and last numbers, and for long stages at most one line per interval and share of the stage."""

from __future__ import annotations

import io

import pytest
from tqdm import tqdm

from video2reward.core import progress
from video2reward.core.progress import LineProgress, progress_bar, stage, use_bars


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_short_stage_writes_one_line_with_its_time_and_numbers() -> None:
    out = io.StringIO()
    with LineProgress(range(50), desc="training progress", unit="step", file=out) as bar:
        for _ in bar:
            bar.set_postfix({"loss": "0.0123"})
            bar.set_postfix_str("pendulum/train")  # where it is: only in the lines written while it runs
    [line] = lines(out)
    assert line.startswith("training progress: 50 steps in ") and line.endswith(" s, loss 0.0123")
    assert "\r" not in out.getvalue()


def test_a_long_stage_writes_a_line_per_interval_and_share_at_most() -> None:
    out = io.StringIO()
    bar = LineProgress(desc="demo data", total=100, unit="video", file=out, interval=0.0, fraction=0.25)
    for _ in range(100):
        bar.set_postfix_str("pendulum/test_fail")
        bar.update(1)
    bar.close()
    bar.close()  # once only
    written = lines(out)
    assert len(written) == 4  # at 25, 50 and 75 %, then the end line
    assert written[0].startswith("demo data: 25/100 videos (25%) after ") and "[pendulum/test_fail]" in written[0]
    assert written[-1].startswith("demo data: 100 videos in ")


def test_no_line_before_the_interval() -> None:
    out = io.StringIO()
    bar = LineProgress(desc="scoring", total=1000, unit="video", file=out, interval=3600.0, fraction=0.0)
    bar.update(999)
    assert lines(out) == []
    bar.update(1)
    bar.close()
    assert len(lines(out)) == 1


def test_a_stage_that_stops_early_says_where() -> None:
    out = io.StringIO()
    with pytest.raises(RuntimeError), LineProgress(range(10, 100), desc="training rank", unit="step", total=100,
                                                    initial=10, file=out) as bar:
        for step in bar:
            if step == 40:
                raise RuntimeError("loss became nan")
    [line] = lines(out)
    assert line.startswith("training rank: stopped at 40/100 steps after ")


def test_a_resumed_stage_counts_the_steps_it_ran() -> None:
    out = io.StringIO()
    with LineProgress(range(30, 100), desc="training", unit="step", total=100, initial=30, file=out) as bar:
        for _ in bar:
            pass
    assert lines(out)[0].startswith("training: 70 steps (resumed at 30) in ")


def test_bar_or_lines_by_terminal_and_environment(monkeypatch) -> None:
    monkeypatch.delenv(progress.ENV, raising=False)
    assert use_bars(Tty()) and not use_bars(io.StringIO())
    monkeypatch.setenv(progress.ENV, "lines")
    assert not use_bars(Tty())
    monkeypatch.setenv(progress.ENV, "bar")
    assert use_bars(io.StringIO())
    assert isinstance(progress_bar(range(3), desc="x"), tqdm)
    monkeypatch.setenv(progress.ENV, "lines")
    assert isinstance(progress_bar(range(3), desc="x"), LineProgress)


def test_disabled_and_quiet_write_nothing(capsys, monkeypatch) -> None:
    monkeypatch.setenv(progress.ENV, "lines")
    for _ in progress_bar(range(5), desc="quiet", disable=True):
        pass
    with stage("fitting", enabled=False):
        pass
    assert capsys.readouterr() == ("", "")


def test_stage_marks_its_end_with_its_time(capsys) -> None:
    with stage("fitting pixel-ridge") as numbers:
        numbers["train RMSE"] = "0.0101"
    err = capsys.readouterr().err
    assert err.startswith("fitting pixel-ridge: done in ") and err.rstrip().endswith("s, train RMSE 0.0101")


def test_long_runs_read_as_whole_numbers_and_minutes() -> None:
    out = io.StringIO()
    bar = LineProgress(desc="rl dqn on mountaincar", total=2_000_000, unit="step", file=out)
    bar.update(2_000_000)
    bar.start -= 3725  # as if it had run 1 h 02 min
    bar.close()
    assert lines(out)[0].startswith("rl dqn on mountaincar: 2000000 steps in 1 h 02 min (")
    assert progress.format_seconds(61.24) == "61.2 s" and progress.format_seconds(725) == "12 min 05 s"
