"""Progress output, the same for every stage of every command: a tqdm bar on a terminal, a few plain lines in
a log file.

Every progress bar of the library comes from `progress_bar`. When stderr is a terminal it is a tqdm bar, as
before. When stderr goes to a file or a pipe (`v2r train ... 2> train.log`, a batch job, CI), a redrawn bar would
write a new line several times a second, so the bar is a `LineProgress` instead: nothing while the stage runs,
except for long stages at most one line per `INTERVAL_S` seconds and `STEP_FRACTION` of the stage; and one line
when it ends, with its time and its last numbers:

    decoding videos: 20 videos in 1.4 s
    training progress: 500 steps in 61.2 s (8.2 steps/s), loss 0.0123

The environment variable V2R_PROGRESS=bar or =lines overrides the choice (e.g. lines on a terminal).
`stage` marks the end of a stage that has no bar (a closed-form fit, an evaluation made of several scorings)
with one such line, and `write` prints a message above a running bar.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

from tqdm import tqdm

INTERVAL_S = 30.0  # LineProgress: at most one line while a stage runs per this many seconds ...
STEP_FRACTION = 0.1  # ... and per this fraction of the stage (when its total is known)
ENV = "V2R_PROGRESS"  # "bar" or "lines": overrides the terminal check


def use_bars(stream: TextIO | None = None) -> bool:
    """Whether progress shows as redrawn tqdm bars (stderr is a terminal, or V2R_PROGRESS=bar) rather than lines."""
    choice = os.environ.get(ENV, "").strip().lower()
    if choice in ("bar", "bars"):
        return True
    if choice in ("line", "lines"):
        return False
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def format_seconds(seconds: float) -> str:
    """'61.2 s', '12 min 05 s', '2 h 03 min': a stage's time as the progress lines give it."""
    if seconds < 600:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min {rest:02d} s"


def _count(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _plural(unit: str, count: float) -> str:
    return unit if count == 1 or unit.endswith("s") else unit + "s"


class LineProgress:
    """What `progress_bar` gives when output goes to a file: tqdm's interface (iterate, `update`, `set_postfix`,
    `set_postfix_str`, `close`, a context manager), written as plain lines. `set_postfix`'s numbers (loss,
    frames/s) go into every line, the end line included; `set_postfix_str` (where the stage is: a task, a split)
    only into the lines written while it runs."""

    def __init__(self, iterable: Iterable | None = None, *, desc: str = "", total: float | None = None,
                 unit: str = "it", initial: int = 0, file: TextIO | None = None,
                 interval: float | None = None, fraction: float | None = None) -> None:
        self.iterable = iterable
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.desc, self.total, self.unit = desc, total, unit
        self.n = self.initial = initial
        self.file = file
        self.interval = INTERVAL_S if interval is None else interval
        self.fraction = STEP_FRACTION if fraction is None else fraction
        self.postfix: dict[str, Any] = {}
        self.where = ""
        self.start = self._last_time = time.perf_counter()
        self._last_n = initial
        self.closed = False

    # ---- tqdm's interface ---------------------------------------------------------------------------------
    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("LineProgress: nothing to iterate (made without an iterable)")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            if self.total is None or self.n >= self.total:  # a loop that ran out; a `break` leaves it open
                self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self._last_time < self.interval:
            return
        if self.total and ((self.n - self._last_n) < self.fraction * self.total or self.n >= self.total):
            return  # not far enough since the last line, or done: the end line follows
        self._last_time, self._last_n = now, self.n
        self._print(self._running_line(now))

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.where = str(s)

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._print(self._end_line(time.perf_counter()))

    # ---- the lines ----------------------------------------------------------------------------------------
    def _numbers(self) -> str:
        return "".join(f", {key} {value}" for key, value in self.postfix.items())

    def _running_line(self, now: float) -> str:
        done = f"{_count(self.n)}/{_count(self.total)} {_plural(self.unit, self.total)}" if self.total else \
            f"{_count(self.n)} {_plural(self.unit, self.n)}"
        share = f" ({self.n / self.total:.0%})" if self.total else ""
        where = f" [{self.where}]" if self.where else ""
        return f"{self.desc}: {done}{share} after {format_seconds(now - self.start)}{where}{self._numbers()}"

    def _end_line(self, now: float) -> str:
        seconds = now - self.start
        ran = self.n - self.initial
        if self.total is not None and self.n < self.total:  # an error, Ctrl-C or `break` ended it early
            return (f"{self.desc}: stopped at {_count(self.n)}/{_count(self.total)} {_plural(self.unit, self.total)} "
                    f"after {format_seconds(seconds)}{self._numbers()}")
        rate = f" ({ran / seconds:.1f} {_plural(self.unit, 2)}/s)" if ran and seconds >= 1 else ""
        resumed = f" (resumed at {_count(self.initial)})" if self.initial else ""
        return (f"{self.desc}: {_count(ran)} {_plural(self.unit, ran)}{resumed} in {format_seconds(seconds)}{rate}"
                f"{self._numbers()}")

    def _print(self, line: str) -> None:
        print(line, file=self.file if self.file is not None else sys.stderr, flush=True)


ProgressBar = tqdm | LineProgress  # what `progress_bar` returns


def progress_bar(iterable: Iterable | None = None, *, desc: str, unit: str = "it", total: float | None = None,
                 initial: int = 0, disable: bool = False, leave: bool = True) -> ProgressBar:
    """A progress bar over `iterable` (or one moved by `update`): tqdm on a terminal, `LineProgress` in a file
    (see the module's docstring); with `disable`, a silent one (tqdm's own no-op bar). `leave=False` bars vanish
    from a terminal when done; in a file they still end with their line."""
    if disable:
        return tqdm(iterable, total=total, disable=True)
    if use_bars():
        return tqdm(iterable, desc=desc, unit=unit, total=total, initial=initial, leave=leave, dynamic_ncols=True)
    return LineProgress(iterable, desc=desc, total=total, unit=unit, initial=initial)


@contextmanager
def stage(desc: str, enabled: bool = True) -> Iterator[dict[str, Any]]:
    """Marks the end of a stage without a bar with one line on stderr, `desc: done in T s` (and the numbers put in
    the dict it yields: `with stage("fitting pixel-ridge") as numbers: ...; numbers["train VOC"] = 0.93`), on a
    terminal and in a file alike. Nothing when not `enabled` (--quiet) or when the stage raised."""
    numbers: dict[str, Any] = {}
    t0 = time.perf_counter()
    yield numbers
    if enabled:
        extra = "".join(f", {key} {value}" for key, value in numbers.items())
        write(f"{desc}: done in {format_seconds(time.perf_counter() - t0)}{extra}", file=sys.stderr)


def write(message: str, file: TextIO | None = None) -> None:
    """Print a line above a running bar without breaking it (tqdm.write), flushed: stdout by default."""
    tqdm.write(message, file=file)
    stream = file if file is not None else sys.stdout
    try:
        stream.flush()
    except (AttributeError, ValueError):  # a closed stream
        pass
