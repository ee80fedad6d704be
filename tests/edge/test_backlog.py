"""Backlog: lifts the outbox refuses wait in memory, in order, and are stored once it accepts."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.backlog import Backlog
from edge.outbox import Outbox

TOPIC = "liftwatch/v1/site/cam/lift"


def payload(seq: int) -> bytes:
    return b'{"seq":%d}' % seq


def refuse(outbox: Outbox, on: bool) -> None:
    """Make the outbox see a full disk (its reserve above the free space), or not."""
    free = shutil.disk_usage(outbox.path.parent).free
    outbox.reserve_bytes = free + 2**30 if on else 0


def test_refused_lifts_are_held_and_stored_in_order_when_the_outbox_accepts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.backlog")
    with Outbox(tmp_path / "o.sqlite") as outbox:
        backlog = Backlog(outbox)
        assert [e.seq for e in backlog.add(TOPIC, payload)] == [0]
        refuse(outbox, True)
        for _ in range(5):
            assert backlog.add(TOPIC, payload) == []
        assert (backlog.held, backlog.lost, outbox.depth()) == (5, 0, 1)
        refuse(outbox, False)
        stored = backlog.add(TOPIC, payload)
        assert [e.seq for e in stored] == [1, 2, 3, 4, 5, 6]
        assert [e.payload for e in outbox.pending()] == [payload(i) for i in range(7)]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("outbox refuses lift events" in m for m in messages) == 1, "said once"
    assert any("takes lift events again: 6 held in memory stored, 0 lost" in m for m in messages)


def test_beyond_the_limit_the_oldest_held_are_lost_and_counted(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        backlog = Backlog(outbox, limit=3)
        refuse(outbox, True)

        def numbered(n: int) -> Callable[[int], bytes]:
            def build(seq: int) -> bytes:
                return b"%d" % n

            return build

        for n in range(5):
            backlog.add(TOPIC, numbered(n))
        assert (backlog.held, backlog.lost) == (3, 2)
        refuse(outbox, False)
        backlog.flush()
        assert [e.payload for e in outbox.pending()] == [b"2", b"3", b"4"]


def test_what_is_still_held_at_close_is_lost_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        backlog = Backlog(outbox)
        refuse(outbox, True)
        backlog.add(TOPIC, payload)
        backlog.add(TOPIC, payload)
        backlog.close()
        assert (backlog.held, backlog.lost) == (0, 2)
    assert "2 lift events held in memory are lost at exit" in caplog.text
