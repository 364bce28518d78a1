"""Stopping a long run cleanly: the first Ctrl-C (SIGINT) or SIGTERM (what `kill`, schedulers and containers
send) asks the run to stop at its next step boundary, so what it writes then (a checkpoint, the agent, the log)
is whole; a second signal of either kind interrupts at once (KeyboardInterrupt)."""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """`with StopRequest() as stop: ... if stop.requested: ...`; the handlers are restored on exit. Off the
    main thread (where Python cannot install handlers) it never requests."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
