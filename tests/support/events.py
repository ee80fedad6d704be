"""Publishing simulated agent traffic to a test broker: fast QoS 1 with every PUBACK awaited.

The dashboard's ingest tests and `bench/ingest.py` need thousands of real messages on a real
broker; waiting for each PUBACK means the broker holds them (in the subscriber sessions)
before the test looks at the database.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone

import paho.mqtt.client as mqtt

from edge.events import LiftEvent, lift_topic
from edge.simulate import simulated_event
from tests.support.mqtt import HOST


def lift_events(
    n: int,
    *,
    seed: int = 0,
    site: str = "s1",
    cameras: Iterable[str] = ("c1",),
    start: datetime | None = None,
) -> list[LiftEvent]:
    """``n`` events spread over ``cameras``, one per second from ``start``, seq per camera."""
    rng = random.Random(seed)
    cams = list(cameras)
    begin = (start or datetime(2025, 3, 3, 8, 0, tzinfo=timezone.utc)).timestamp()
    return [
        simulated_event(
            rng,
            site=site,
            camera=cams[i % len(cams)],
            seq=i // len(cams),
            bottom=datetime.fromtimestamp(begin + i, timezone.utc),
        )
        for i in range(n)
    ]


def lift_messages(events: Iterable[LiftEvent]) -> Iterator[tuple[str, bytes]]:
    for event in events:
        yield lift_topic(event.site, event.camera), event.to_payload()


class Publisher:
    """A QoS 1 publisher with a wide in-flight window; ``wait`` blocks until all are PUBACKed."""

    def __init__(self, port: int, *, client_id: str = "", inflight: int = 1000) -> None:
        self._cond = threading.Condition()
        self._pending = 0
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.connect(HOST, port, keepalive=30)
        self.client.loop_start()

    def _on_publish(self, *_args: object) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        with self._cond:
            self._pending += 1
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise RuntimeError(f"publish on {topic} failed: {mqtt.error_string(info.rc)}")

    def publish_all(self, messages: Iterable[tuple[str, bytes]]) -> int:
        n = 0
        for topic, payload in messages:
            self.publish(topic, payload)
            n += 1
        return n

    def wait(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self._pending} messages unacknowledged after {timeout_s} s"
                    )
                self._cond.wait(left)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until(
    predicate: Callable[[], object], timeout_s: float = 30.0, what: str = "condition"
) -> None:
    """Poll ``predicate()`` every 20 ms until true; TimeoutError names ``what``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s} s")
        time.sleep(0.02)
