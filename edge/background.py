"""Run an iterator in a thread of its own, a few items ahead of the one consuming it.

Decoding the next frames is work the inference thread need not wait for: on a machine with
a spare core it overlaps with inference (`edge.source.Prefetch`). The queue is bounded, so
memory stays bounded and a slow consumer slows the producer down instead of piling items up.
An exception in the producer reaches the consumer at the point it happened, and closing
stops the producer: neither side is ever left blocked on the other.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_S = 0.1
"""How often a blocked side looks whether the other has stopped."""


@dataclass(frozen=True, slots=True)
class _Failure:
    exc: BaseException


_END = object()


class Background(Generic[T]):
    """Iterates ``items`` in a daemon thread named ``name``, at most ``depth`` items ahead.

    Iterate it once, from one thread; `close` stops the producer at its next item and
    waits up to ``timeout`` s for it to finish.
    """

    def __init__(self, items: Iterable[T], depth: int = 1, name: str = "background") -> None:
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._name = name
        self._thread: threading.Thread | None = None

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:
            self._put(_Failure(exc))

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        if self._thread is not None:
            raise RuntimeError(f"{self._name}: can be iterated once")
        self._thread = threading.Thread(target=self._produce, name=self._name, daemon=True)
        self._thread.start()
        while True:
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                stopped = self._stop.is_set() or not self._thread.is_alive()
                if stopped and self._queue.empty():
                    return  # closed under us (or the producer died without a word)
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]

    def close(self, timeout: float = 5.0) -> None:
        """Stop the producer and wait for it; items it had queued are dropped."""
        self._stop.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
