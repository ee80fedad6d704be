"""MQTT ingest: lift events, camera status and stats from the broker into the database.

Delivery is at least once and nothing is lost in between: the subscription is QoS 1 with a
fixed client id and a persistent session, and each lift is acknowledged to the broker only
after the transaction holding it committed (paho ``manual_ack``). A dashboard killed
mid-batch, a database that is down or a full disk therefore cost a redelivery, never an
event; ``add_lifts`` is idempotent on ``event_id``, so the redelivered copy is stored once.

paho's network thread only queues what arrives; batches of it are validated, placed and
stored (one transaction each) by a `BatchWriter`, by default in a writer process of its own
(``mqtt.writer: process``) so that it and paho each have a core and a GIL, or in a thread
of this process (``thread``). Acknowledging, counting, logging and the ``on_stored`` hooks
happen here, from the writer's `Outcome`. A writer process that dies is logged, restarted
with back-off and sent every batch not yet acknowledged again.

A payload that does not validate is counted by reason, logged without its content,
acknowledged and dropped, so it can neither crash the ingest nor hold up the messages
behind it. Database errors are retried with back-off, with the batch left unacknowledged,
and logged once per outage.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import ssl
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dashboard.config import MQTTConfig
from dashboard.ingest_process import WriterProcess
from dashboard.ingest_writer import (
    LAG_BUCKETS,
    MAX_DB_INT,
    MAX_PAYLOAD_BYTES,
    BatchWriter,
    Histogram,
    Invalid,
    Item,
    Message,
    Outcome,
    parse,
)
from dashboard.store import Store
from dashboard.store.organisation import CurrentOrganisation
from edge.events import TOPIC_ROOT, LiftEvent

__all__ = [
    "MAX_DB_INT",
    "MAX_PAYLOAD_BYTES",
    "Histogram",
    "Ingest",
    "IngestCounters",
    "Invalid",
    "Message",
    "parse",
]

log = logging.getLogger(__name__)

BATCH_MAX = 500
BATCH_WAIT_S = 0.05
WINDOW_BATCHES = 3
"""Batches sent to the writer process and not yet answered: one being written, the next
ones waiting in the pipe (the broker's Receive Maximum bounds it too)."""
RESTART_S = (0.5, 10.0)
"""Back-off between writer process restarts, doubling; reset once one ran a minute."""
LOG_EVERY_S = 10.0
"""At most one log line per invalid-payload reason in this time; the rest are counted."""

DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000)


@dataclass
class IngestCounters:
    """What the ingest did since it started; read by `dashboard.telemetry` under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    ingested: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Newly stored lifts by (site, camera, posture)."""
    invalid: Counter[str] = field(default_factory=Counter)
    received: int = 0
    duplicates: int = 0
    status_messages: int = 0
    stats_messages: int = 0
    db_errors: int = 0
    batches: int = 0
    connects: int = 0
    writer_restarts: int = 0
    """Writer processes that died and were replaced."""
    lag_s: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS))
    """Committed time minus the lift's end time."""
    db_write_s: Histogram = field(default_factory=lambda: Histogram(DB_BUCKETS))
    batch_size: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))

    def stored(self) -> int:
        with self.lock:
            return sum(self.ingested.values())


@dataclass(frozen=True)
class Delivery:
    """One message as paho handed it over; ``generation`` names the connection it came on."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received: float  # time.time()


def _items(batch: Sequence[Delivery]) -> list[Item]:
    return [(d.topic, d.payload, d.received) for d in batch]


def _in_memory(store: Store) -> bool:
    url = store.engine.url
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


class Ingest:
    """Subscribes to the lift, status and stats topics and stores what arrives.

    ``start`` returns at once; the connection is made (and remade, with back-off) in paho's
    thread. ``connected`` and ``counters`` are what telemetry reports. ``writer`` overrides
    ``cfg.writer``.
    """

    def __init__(
        self,
        cfg: MQTTConfig,
        store: Store,
        org: CurrentOrganisation,
        *,
        batch_max: int = BATCH_MAX,
        batch_wait_s: float = BATCH_WAIT_S,
        retry_max_s: float = 10.0,
        writer: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.org = org
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.retry_max_s = retry_max_s
        self.database_url = store.engine.url.render_as_string(hide_password=False)
        self.writer = writer or cfg.writer
        if self.writer == "process" and _in_memory(store):
            log.info("in-memory database: the ingest writes in a thread, not a process")
            self.writer = "thread"
        if self.writer not in ("process", "thread"):
            raise ValueError(f"writer must be 'process' or 'thread', not {self.writer!r}")
        self.counters = IngestCounters()
        self.on_stored: list[Callable[[list[LiftEvent]], None]] = []
        """Called in this process with each committed batch's new lifts, then any rounded
        lifts that were stored already (a redelivery after a crash that may have cut the
        alert rules short; the rules are idempotent). An exception is logged, never raised:
        the lifts are stored and acknowledged already."""
        self._queue: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._ack_lock = threading.Lock()
        self._generation = 0
        self._link_state = ""
        self._last_logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._outage_since: float | None = None
        # the writer process, its unanswered batches and those to send (again)
        self._state = threading.Condition()
        self._child: WriterProcess | None = None
        self._closing = False
        self._connecting = False
        self._pending: dict[int, list[Delivery]] = {}
        self._resend: deque[int] = deque()
        self._next_id = 0
        if self.writer == "process":
            self._threads = [
                threading.Thread(target=self._dispatch_loop, name="ingest-dispatch", daemon=True),
                threading.Thread(target=self._supervise, name="ingest-writer", daemon=True),
            ]
        else:
            self._threads = [
                threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
            ]
        self._client = self._make_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def writer_pid(self) -> int | None:
        """The writer process's pid while one runs (None with the thread writer)."""
        with self._state:
            return self._child.pid if self._child is not None else None

    def wait_subscribed(self, timeout_s: float) -> bool:
        """True once the broker confirmed the subscriptions of the current connection."""
        return self._subscribed.wait(timeout_s)

    def topics(self) -> list[str]:
        """Lift topics (shared when a group is set) followed by the status and stats ones."""
        sites = self.cfg.sites or ["+"]
        lifts = [f"{TOPIC_ROOT}/{site}/+/lift" for site in sites]
        if self.cfg.shared_group:
            lifts = [f"$share/{self.cfg.shared_group}/{t}" for t in lifts]
        health = [f"{TOPIC_ROOT}/{site}/+/{kind}" for site in sites for kind in ("status", "stats")]
        return lifts + health

    def start(self) -> None:
        """Start the writer, and the broker connection once the writer is ready: events
        are taken from the broker only when they can be written."""
        c = self.cfg
        for thread in self._threads:
            thread.start()
        if self.writer == "thread":
            self._connect()
        log.info(
            "MQTT ingest from %s:%d as %s%s, writing in a %s", c.host, c.port, c.client_id,
            f" in shared group {c.shared_group}" if c.shared_group else "", self.writer,
        )  # fmt: skip

    def _connect(self) -> None:
        with self._state:
            if self._connecting:
                return
            self._connecting = True
        c = self.cfg
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = c.session_expiry_s
        props.ReceiveMaximum = c.receive_maximum
        self._client.connect_async(
            c.host, c.port, keepalive=c.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batches being written, then leave; whatever is unacknowledged stays
        with the broker (the session persists) and comes again on the next start."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads[:1]:
            if thread.is_alive():
                thread.join(timeout_s)
        if self.writer == "process":
            with self._state:
                self._closing = True
                child = self._child
                self._state.notify_all()
            if child is not None:
                child.finish()
            supervisor = self._threads[1]
            if supervisor.is_alive():
                supervisor.join(max(0.1, deadline - time.monotonic()))
            with self._state:
                child = self._child
            if child is not None:  # it did not leave in time
                child.join(0)
                supervisor.join(5.0)
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        log.info("MQTT ingest stopped: %d lifts stored", self.counters.stored())

    def _make_client(self) -> mqtt.Client:
        c = self.cfg
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=c.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if c.username is not None:
            password = c.password.get_secret_value() if c.password is not None else None
            client.username_pw_set(c.username, password)
        if c.tls is not None:
            client.tls_set(
                ca_certs=str(c.tls.ca_file),
                certfile=str(c.tls.cert_file) if c.tls.cert_file else None,
                keyfile=str(c.tls.key_file) if c.tls.key_file else None,
            )
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # paho's thread

    def _link(self, state: str, level: int, message: str, *args: object) -> None:
        if state != self._link_state:
            self._link_state = state
            log.log(level, message, *args)

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        c = self.cfg
        if reason.is_failure:
            self._link(f"refused:{reason}", logging.ERROR,
                       "MQTT broker %s:%d refused the connection: %s; retrying",
                       c.host, c.port, reason)  # fmt: skip
            return
        with self._ack_lock:
            self._generation += 1
        with self.counters.lock:
            self.counters.connects += 1
        client.subscribe([(t, 1) for t in self.topics()])
        self._connected.set()
        session = "resumed" if flags.session_present else "new"
        self._link("connected", logging.INFO, "MQTT ingest connected to %s:%d (%s session)",
                   c.host, c.port, session)  # fmt: skip

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        exc = sys.exc_info()[1]
        what = "TLS handshake failed" if isinstance(exc, ssl.SSLError) else "unreachable"
        self._link(f"fail:{what}", logging.ERROR, "MQTT broker %s:%d %s: %s; retrying",
                   self.cfg.host, self.cfg.port, what, exc)  # fmt: skip

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        refused = [str(c) for c in codes if c.is_failure]
        if refused:
            log.error("MQTT broker refused subscriptions %s: %s", self.topics(), refused)
        self._subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        self._subscribed.clear()
        if not self._stopping.is_set():
            self._link("lost", logging.WARNING,
                       "MQTT connection lost (%s); reconnecting, unacknowledged events "
                       "will be redelivered", reason)  # fmt: skip

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.counters.lock:
            self.counters.received += 1
        self._queue.put(
            Delivery(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation, time.time())
        )

    # batches

    def _next_batch(self) -> list[Delivery]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_max:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=left))
            except queue.Empty:
                break
        return batch

    # the writer in a thread

    def _write_loop(self) -> None:
        writer = BatchWriter(
            self.store.engine,
            self.org,
            retry_max_s=self.retry_max_s,
            on_db_error=lambda exc, n: self._db_failed(
                type(exc).__name__, str(getattr(exc, "orig", None) or exc).strip()[:300], n
            ),
            wait=self._stopping.wait,
            keep_events=True,
        )
        while not self._stopping.is_set():
            batch = self._next_batch()
            if batch:
                outcome = writer.write(_items(batch))
                if outcome is not None:
                    self._apply(batch, outcome)

    # the writer in a process: one thread sends batches, another reads what it answers

    def _dispatch_loop(self) -> None:
        """Send batches to the writer process, at most `WINDOW_BATCHES` unanswered; batches
        a dead writer left unanswered go first to its successor."""
        while not self._stopping.is_set():
            with self._state:
                while not self._stopping.is_set() and (
                    self._child is None
                    or (not self._resend and len(self._pending) >= WINDOW_BATCHES)
                ):
                    self._state.wait(0.2)
                if self._stopping.is_set():
                    return
                child = self._child
                batch_id = self._resend.popleft() if self._resend else None
                batch = self._pending.get(batch_id) if batch_id is not None else None
            if batch_id is None:
                batch = self._next_batch()
                if not batch:
                    continue
                with self._state:
                    batch_id = self._next_id
                    self._next_id += 1
                    self._pending[batch_id] = batch
                    child = self._child
            if batch is not None and child is not None:
                child.send(batch_id, _items(batch))  # when it fails, the next child gets it

    def _supervise(self) -> None:
        """Run writer processes one after another until stopped: read each one's answers,
        and when one dies, say so, wait, start the next and resend what is unanswered."""
        delay = RESTART_S[0]
        while True:
            with self._state:
                if self._closing:
                    return
            try:
                child = WriterProcess(self.database_url, self.retry_max_s)
            except Exception:
                log.exception("could not start the ingest writer process; retrying")
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, RESTART_S[1])
                continue
            began = time.monotonic()
            with self._state:
                self._child = child
                self._resend = deque(sorted(self._pending))
                if self._closing:
                    child.finish()
                self._state.notify_all()
            self._read(child)
            with self._state:
                self._child = None
                closing = self._closing
                unanswered = sum(len(b) for b in self._pending.values())
            ended = child.how_it_ended()
            child.close()
            if closing or self._stopping.is_set():
                return
            if time.monotonic() - began > 60:
                delay = RESTART_S[0]
            with self.counters.lock:
                self.counters.writer_restarts += 1
            log.error(
                "ingest writer process %s ended (%s); restarting it in %.1f s, %d "
                "unacknowledged messages will be written again", child.pid, ended, delay,
                unanswered,
            )  # fmt: skip
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RESTART_S[1])

    def _read(self, child: WriterProcess) -> None:
        while True:
            try:
                message = child.recv()
            except EOFError:
                return
            if message[0] == "ready":
                if not self._stopping.is_set():
                    self._connect()
                continue
            if message[0] == "db_error":
                _, kind, text, n = message
                self._db_failed(kind, text, n)
                continue
            _, batch_id, outcome = message
            with self._state:
                batch = self._pending.pop(batch_id, None)
                self._state.notify_all()
            if batch is not None:  # else answered already by a writer that died since
                self._apply(batch, outcome)

    # what the writer did, applied here

    def _apply(self, batch: list[Delivery], outcome: Outcome) -> None:
        for i, reason, detail in outcome.refused:
            self._refuse(batch[i].topic, reason, detail)
        self._ack(batch)
        if self._outage_since is not None:
            log.info(
                "database writes work again after %.1f s", time.monotonic() - self._outage_since
            )
            self._outage_since = None
        with self.counters.lock:
            c = self.counters
            c.batches += len(outcome.sizes)
            for took in outcome.db_write_s:
                c.db_write_s.observe(took)
            for size in outcome.sizes:
                c.batch_size.observe(size)
            c.status_messages += outcome.status_messages
            c.stats_messages += outcome.stats_messages
            c.duplicates += outcome.duplicates
            c.ingested.update(outcome.ingested)
            c.lag_s.merge(outcome.lag_s)
        if (outcome.stored or outcome.redelivered) and self.on_stored:
            events = outcome.events
            if events is None:
                at = outcome.stored + outcome.redelivered
                events = [LiftEvent.model_validate_json(batch[i].payload) for i in at]
            self._notify_stored(events)

    def _ack(self, deliveries: Iterable[Delivery]) -> None:
        """Acknowledge on the connection each came on; after a reconnect the broker resends
        it anyway, and the resent copy is stored as a duplicate and acknowledged then."""
        with self._ack_lock:
            for d in deliveries:
                if d.qos > 0 and d.generation == self._generation:
                    self._client.ack(d.mid, d.qos)

    def _refuse(self, topic: str, reason: str, detail: str) -> None:
        with self.counters.lock:
            self.counters.invalid[reason] += 1
        now = time.monotonic()
        if now - self._last_logged.get(reason, -LOG_EVERY_S) < LOG_EVERY_S:
            self._suppressed[reason] += 1
            return
        self._last_logged[reason] = now
        more = self._suppressed.pop(reason, 0)
        log.warning(
            "invalid payload on %s (%s): %s; dropped%s", topic[:200], reason, detail,
            f" ({more} more {reason} since the last report)" if more else "",
        )  # fmt: skip

    def _db_failed(self, kind: str, text: str, messages: int) -> None:
        with self.counters.lock:
            self.counters.db_errors += 1
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.error(
                "database write failed (%s: %s); %d messages kept unacknowledged, "
                "retrying with back-off", kind, text, messages,
            )  # fmt: skip

    def _notify_stored(self, events: list[LiftEvent]) -> None:
        for hook in self.on_stored:
            try:
                hook(events)
            except Exception:
                log.exception("on_stored hook %s failed", getattr(hook, "__qualname__", hook))
