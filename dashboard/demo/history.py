"""Thirty days of past lifts for the demo, published through the broker like any agent's.

The live agents fill today; without a past the 7- and 30-day charts would be empty. These
events are `edge.simulate` draws (wire form, not the pose analysis) on the demo cameras'
topics, during the shifts, fewer at weekends, with each team's rounded share moving from
its value a month ago to today's. They end an hour before the demo starts, so they count in
today's figures but raise no alerts (alerts are for lifts that happen now).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt

from dashboard.demo.processes import HOST
from dashboard.demo.site import SITE, DemoCamera
from edge.events import LiftEvent, lift_topic
from edge.simulate import Mix, simulated_event

DAYS = 30
LIFTS_PER_WEEKDAY = 70
LIFTS_PER_WEEKEND_DAY = 20
WORK_HOURS = (6.0, 22.0)
QUIET_BEFORE_START = timedelta(minutes=65)
CLIENT_ID = "liftwatch-demo-history"
WINDOW = 1000
"""Events handed to paho and not yet acknowledged: bounds memory, keeps the pipe full."""


def history(
    cameras: list[DemoCamera], now: datetime, tz: ZoneInfo, seed: int = 7
) -> Iterator[LiftEvent]:
    """Events of the ``DAYS`` days before ``now`` (aware), oldest day first, per camera."""
    rng = random.Random(seed)
    end = now - QUIET_BEFORE_START
    today = now.astimezone(tz).date()
    seqs = dict.fromkeys((c.id for c in cameras), 0)
    for back in range(DAYS, -1, -1):
        day = today - timedelta(days=back)
        progress = (DAYS - back) / DAYS
        per_day = LIFTS_PER_WEEKEND_DAY if day.weekday() >= 5 else LIFTS_PER_WEEKDAY
        for camera in cameras:
            team = camera.team
            mix = Mix(rounded=team.rounded_then + (team.rounded_now - team.rounded_then) * progress)
            n = rng.randint(per_day // 2, per_day)
            hours = sorted(rng.uniform(*WORK_HOURS) for _ in range(n))
            for hour in hours:
                local = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(hours=hour)
                bottom = local.astimezone(timezone.utc)
                if bottom >= end:
                    break
                yield simulated_event(
                    rng, site=SITE, camera=camera.id, seq=seqs[camera.id], bottom=bottom, mix=mix
                )
                seqs[camera.id] += 1


class HistoryPublisher:
    """Publishes the history on its own thread (QoS 1) and counts what the broker took."""

    def __init__(self, port: int, events: Iterator[LiftEvent]) -> None:
        self.port = port
        self.events = events
        self.sent = 0
        self.acked = 0
        self.error: str | None = None
        self.done = threading.Event()
        self._stop = threading.Event()
        self._window = threading.Semaphore(WINDOW)
        self._thread = threading.Thread(target=self._run, name="demo-history", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=CLIENT_ID, protocol=mqtt.MQTTv5
        )
        client.max_inflight_messages_set(200)
        client.on_publish = self._on_publish
        try:
            client.connect(HOST, self.port, keepalive=30)
            client.loop_start()
            for event in self.events:
                while not self._window.acquire(timeout=0.2):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                topic = lift_topic(event.site, event.camera)
                client.publish(topic, event.to_payload(), qos=1)
                self.sent += 1
            while self.acked < self.sent and not self._stop.wait(0.05):
                pass
        except OSError as exc:
            self.error = str(exc)
        finally:
            client.disconnect()
            client.loop_stop()
            self.done.set()

    def _on_publish(self, *_args: object) -> None:
        self.acked += 1
        self._window.release()
