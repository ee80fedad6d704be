"""The analyze progress line: drawn on a terminal, silent in logs, cleared at the end."""

from __future__ import annotations

import io

from edge.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_counts_and_a_cleared_line_at_the_end() -> None:
    out = _Terminal()
    bar = Progress(total=4, name="clip.mp4", stream=out, interval=0.0)
    for _ in range(4):
        bar.update()
    bar.close()
    text = out.getvalue()
    assert "clip.mp4: 1/4 frames (25%)" in text
    assert "clip.mp4: 4/4 frames (100%)" in text
    last = text.rsplit("\r", 2)[-2]
    assert last.strip() == ""  # the final redraw blanks the line


def test_unknown_total_shows_the_count_only() -> None:
    bar = Progress(total=None, name="cam", stream=_Terminal())
    bar.done = 7
    assert bar.line(elapsed=2.0) == "cam: 7 frames, 3.5 fps"


def test_a_log_file_gets_nothing() -> None:
    out = io.StringIO()
    bar = Progress(total=3, name="clip.mp4", stream=out, interval=0.0)
    bar.update(3)
    bar.close()
    assert out.getvalue() == ""
