"""A one-line frame counter for `analyze` on a terminal.

Importing tqdm costs 20-50 ms (it pulls in importlib.metadata), a few percent of analysing
a short clip, and one redrawn line is all `analyze` shows. Nothing is drawn when the stream
is not a terminal, so logs and benchmarks get no carriage-return noise.
"""

from __future__ import annotations

import time
from typing import IO


class Progress:
    """``name: done/total frames (pct) fps, s left``, redrawn at most every ``interval`` s."""

    def __init__(
        self, total: int | None, name: str, stream: IO[str], interval: float = 0.2
    ) -> None:
        self.total = total
        self.name = name
        self.stream = stream
        self.interval = interval
        self.done = 0
        self._start = time.monotonic()
        self._drawn = 0.0
        self._width = 0
        self._live = stream.isatty()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self._live and now - self._drawn >= self.interval:
            self._drawn = now
            self._draw(self.line(now - self._start))

    def line(self, elapsed: float) -> str:
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if not self.total:
            return f"{self.name}: {self.done} frames, {rate:.1f} fps"
        share = min(1.0, self.done / self.total)
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        return (
            f"{self.name}: {self.done}/{self.total} frames ({share:.0%}), "
            f"{rate:.1f} fps, {max(0.0, left):.0f} s left"
        )

    def close(self) -> None:
        """Clear the line, so the summary that follows starts on a clean one."""
        if self._live and self._width:
            self._draw("")

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width) + ("\r" if not text else ""))
        self.stream.flush()
        self._width = len(text)
