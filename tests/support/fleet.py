"""Simulated cameras that deliver through the edge's own Outbox and Publisher.

Soak and fault tests must exercise the delivery path the agents use, not a test publisher,
so each `SimAgent` owns a real outbox file and a real `edge.publish.Publisher`; only the
lifts are drawn by `edge.simulate` instead of coming from a camera. Every event the outbox
accepted is remembered (``sent``: event_id → seq) so a test can compare it with what the
dashboard stored. Each event ends at the moment it is added, so stored time minus ``end``
is the delivery lag.
"""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edge.backlog import Backlog
from edge.config import AgentConfig, BrokerConfig, OutboxConfig
from edge.events import PostureLabel, lift_topic
from edge.outbox import Entry, Outbox
from edge.publish import Publisher
from edge.simulate import Mix, simulated_event
from tests.support.mqtt import HOST

DEFAULT_MIX = Mix()
HINGE_ONLY = Mix(rounded=0.0, unscorable=0.0)
TRACK_RISE = timedelta(seconds=0.6)


class SimAgent:
    """One camera: lifts into its outbox (through the agent's `Backlog`, which holds them
    in memory while the outbox refuses), the publisher drains it to the broker."""

    def __init__(
        self,
        folder: Path,
        *,
        site: str,
        camera: str,
        port: int,
        seed: int = 0,
        mix: Mix = DEFAULT_MIX,
        outbox_path: Path | None = None,
        keepalive_s: int = 5,
    ) -> None:
        self.site, self.camera = site, camera
        self.mix = mix
        self.rng = random.Random(seed)
        self.cfg = AgentConfig(
            site=site,
            camera=camera,
            source="synthetic:0",
            broker=BrokerConfig(
                host=HOST,
                port=port,
                keepalive_s=keepalive_s,
                backoff_initial_s=0.2,
                backoff_max_s=2.0,
            ),
            outbox=OutboxConfig(path=outbox_path or folder / f"outbox-{camera}.sqlite"),
        )
        self.outbox = Outbox(self.cfg.outbox.path)
        self.backlog = Backlog(self.outbox)
        self.publisher = Publisher(self.cfg, self.outbox)
        self.topic = lift_topic(site, camera)
        self.sent: dict[str, int] = {}
        self.emitted = 0
        """Lifts handed to the backlog: each must end up in ``sent`` (stored) or be lost."""
        self._lock = threading.Lock()

    def start(self) -> SimAgent:
        self.publisher.start()
        return self

    def emit(self, posture: PostureLabel | None = None, track_id: str | None = None) -> bool:
        """Add one lift ending when it is stored; False when it is held in memory instead."""

        def payload(seq: int) -> bytes:
            now = datetime.now(timezone.utc)
            event = simulated_event(
                self.rng, site=self.site, camera=self.camera, seq=seq, bottom=now,
                posture=posture, mix=self.mix, track_id=track_id,
            )  # fmt: skip
            # Ends now; a named track's lifts also bottom out in the order they are made
            # (one person's lifts follow one another), which the same-track rule relies on.
            rise = TRACK_RISE if track_id is not None else event.end - event.bottom
            bottom, fall = now - rise, event.bottom - event.start
            event = event.model_copy(update={"start": bottom - fall, "bottom": bottom, "end": now})
            return event.to_payload()

        with self._lock:
            self.emitted += 1
            self._record(self.backlog.add(self.topic, payload))
            held = self.backlog.held
        return held == 0

    def flush(self) -> None:
        """Retry what the backlog holds (the agent does that every frame)."""
        with self._lock:
            if self.backlog.held:
                self._record(self.backlog.flush())

    def _record(self, entries: list[Entry]) -> None:
        for entry in entries:
            self.sent[json.loads(entry.payload)["event_id"]] = entry.seq
        if entries:
            self.publisher.notify()

    def pending(self) -> int:
        """Events not yet acknowledged by the broker: in the outbox or held in memory."""
        return self.outbox.depth() + self.backlog.held

    def close(self, flush_timeout_s: float = 2.0) -> None:
        self.publisher.stop(flush_timeout_s)
        self.backlog.close()
        self.outbox.close()


class Load:
    """Each agent emits ``rate`` lifts per second, evenly spaced, phases spread at random."""

    def __init__(self, agents: Iterable[SimAgent], rate: float, seed: int = 0) -> None:
        self.agents = list(agents)
        self.interval = 1.0 / rate
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-load", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        start = time.monotonic()
        due = [(start + self._rng.uniform(0, self.interval), i) for i in range(len(self.agents))]
        heapq.heapify(due)
        while not self._stop.is_set():
            at, i = due[0]
            wait = at - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            self.agents[i].emit()
            heapq.heapreplace(due, (max(at + self.interval, time.monotonic() - 1.0), i))

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sent_by_camera(agents: Iterable[SimAgent]) -> dict[str, dict[str, int]]:
    return {a.camera: dict(a.sent) for a in agents}


def wait_drained(agents: Iterable[SimAgent], timeout_s: float) -> None:
    """Until every outbox is empty (every event acknowledged by the broker)."""
    agents = list(agents)
    deadline = time.monotonic() + timeout_s
    while True:
        for agent in agents:
            agent.flush()
        left = sum(a.pending() for a in agents)
        if left == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} events still in the outboxes after {timeout_s} s")
        time.sleep(0.1)
