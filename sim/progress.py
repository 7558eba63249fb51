"""Progress with an estimated time left, for long work on a terminal; silent elsewhere (CI, pipes)."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO


def wanted(stream: TextIO = sys.stderr) -> bool:
    """Show progress only on an interactive terminal and never under CI."""
    return stream.isatty() and not os.environ.get("CI")


class Progress:
    """Callable ``progress(done, total)`` that redraws one status line with rate and ETA."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, enabled: bool | None = None, min_interval: float = 0.2):
        self.label = label
        self.stream = stream
        self.enabled = wanted(stream) if enabled is None else enabled
        self.min_interval = min_interval
        self.started = time.monotonic()
        self._last = 0.0
        self._first_done: int | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < self.min_interval:
            return
        self._last = now
        self.stream.write("\r" + self.line(done, total, now - self.started) + "\033[K")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()

    def line(self, done: int, total: int, elapsed: float) -> str:
        pct = 100.0 * done / total if total else 100.0
        if done > 0 and done < total:
            eta = f"{format_seconds(elapsed / done * (total - done))} left"
        elif done >= total:
            eta = f"done in {format_seconds(elapsed)}"
        else:
            eta = "estimating time left"
        return f"{self.label}: {done}/{total} ({pct:.0f} %), {eta}"


def format_seconds(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"
