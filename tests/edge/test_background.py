import threading
import time
from collections.abc import Iterator

import pytest

from edge.background import Background


def test_items_arrive_in_order_from_another_thread() -> None:
    seen: list[str] = []

    def numbers() -> Iterator[int]:
        for i in range(50):
            seen.append(threading.current_thread().name)
            yield i

    assert list(Background(numbers(), depth=3, name="producer")) == list(range(50))
    assert set(seen) == {"producer"}


def test_the_producer_stays_at_most_depth_ahead() -> None:
    made: list[int] = []

    def numbers() -> Iterator[int]:
        for i in range(100):
            made.append(i)
            yield i

    it = iter(Background(numbers(), depth=2))
    assert next(it) == 0
    time.sleep(0.3)
    # one taken, two queued, one in the producer's hand waiting for room
    assert len(made) <= 4


def test_a_producer_error_reaches_the_consumer_after_its_items() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise ValueError("decoder broke")

    it = iter(Background(broken()))
    assert next(it) == 1
    with pytest.raises(ValueError, match="decoder broke"):
        next(it)


def test_close_stops_a_producer_blocked_on_a_full_queue() -> None:
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    bg = Background(endless(), depth=1)
    it = iter(bg)
    next(it)
    bg.close(timeout=2.0)
    assert not bg.running


def test_a_consumer_waiting_when_the_producer_is_closed_returns() -> None:
    release = threading.Event()

    def slow() -> Iterator[int]:
        release.wait(5.0)
        yield 1

    bg = Background(slow())
    it = iter(bg)
    closer = threading.Timer(0.2, lambda: (bg.close(timeout=0.1), release.set()))
    closer.start()
    assert list(it) == []
    closer.join()


def test_it_can_be_iterated_once() -> None:
    bg = Background(iter([1, 2]))
    assert list(bg) == [1, 2]
    with pytest.raises(RuntimeError, match="once"):
        list(bg)
