"""Lifts the outbox refused (disk full), held in memory in order until it takes them again.

A full disk must neither stop the agent nor drop what it judged at once: the broker may be
unreachable at the same moment, so the outbox cannot drain, and the disk may be freed or
the outbox drained a minute later. Refused lifts wait here, oldest first, and go into the
outbox ahead of any new one as soon as it accepts again, so seq order holds. Memory is
bounded (``limit``): beyond it the oldest held lift is dropped and counted in ``lost``, and
whatever is still held when the agent stops is lost too; both are logged.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from edge.outbox import Entry, Outbox, OutboxError

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 10_000
"""At a few lifts a minute, more than a day of one camera's lifts."""


class Backlog:
    """Adds to the outbox through a memory queue that only fills while the outbox refuses."""

    def __init__(self, outbox: Outbox, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.outbox = outbox
        self.limit = limit
        self.lost = 0
        self._held: deque[tuple[str, Callable[[int], bytes]]] = deque()
        self._refusing: str | None = None
        self._dropping = False

    @property
    def held(self) -> int:
        return len(self._held)

    def add(self, topic: str, make_payload: Callable[[int], bytes]) -> list[Entry]:
        """Queue one event behind any held ones and store what the outbox takes now."""
        self._held.append((topic, make_payload))
        if len(self._held) > self.limit:
            self._held.popleft()
            self.lost += 1
            if not self._dropping:
                log.error(
                    "%d lift events held in memory (the limit): dropping the oldest until the "
                    "outbox takes events again", self.limit,
                )  # fmt: skip
            self._dropping = True
        return self.flush()

    def flush(self) -> list[Entry]:
        """Move held events into the outbox, oldest first, until it refuses one."""
        stored: list[Entry] = []
        while self._held:
            topic, make_payload = self._held[0]
            try:
                stored.append(self.outbox.add(topic, make_payload))
            except OutboxError as exc:
                if self._refusing is None:
                    log.error(
                        "outbox refuses lift events (%s); holding them in memory (up to %d) "
                        "until it takes them", exc, self.limit,
                    )  # fmt: skip
                self._refusing = str(exc)
                return stored
            self._held.popleft()
        if self._refusing is not None:
            log.info(
                "outbox takes lift events again: %d held in memory stored, %d lost meanwhile",
                len(stored), self.lost,
            )  # fmt: skip
            self._refusing = None
            self._dropping = False
        return stored

    def close(self) -> None:
        """Last try to store what is held; what the outbox still refuses is lost (logged)."""
        self.flush()
        if self._held:
            self.lost += len(self._held)
            log.error(
                "%d lift events held in memory are lost at exit: the outbox still refuses "
                "them (%s)", len(self._held), self._refusing,
            )  # fmt: skip
            self._held.clear()
