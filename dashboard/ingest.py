"""MQTT ingest: lift events, camera status and stats from the broker into the database.

Delivery is at least once and nothing is lost in between: the subscription is QoS 1 with a
fixed client id and a persistent session, and each lift is acknowledged to the broker only
after the transaction holding it committed (paho ``manual_ack``). A dashboard killed
mid-batch, a database that is down or a full disk therefore cost a redelivery, never an
event; ``add_lifts`` is idempotent on ``event_id``, so the redelivered copy is stored once.

paho's network thread only queues what arrives; one writer thread validates, places and
stores it in batches (one transaction each). A payload that does not validate is counted by
reason, logged without its content, acknowledged and dropped, so it can neither crash the
ingest nor hold up the messages behind it. Database errors are retried with back-off, with
the batch left unacknowledged, and logged once per outage.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import queue
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError

from dashboard.config import MQTTConfig
from dashboard.org import Placement
from dashboard.store import Store
from dashboard.store.cameras import record_stats, record_status
from dashboard.store.lifts import add_lifts
from dashboard.store.organisation import CurrentOrganisation
from edge.events import TOPIC_ROOT, AgentStats, AgentStatus, LiftEvent

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 16 * 1024
"""Far above any real message (a lift is under 1 KiB); larger ones are refused unparsed."""
MAX_DB_INT = 2**31 - 1
BATCH_MAX = 500
BATCH_WAIT_S = 0.05
LOG_EVERY_S = 10.0
"""At most one log line per invalid-payload reason in this time; the rest are counted."""

LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000)


class Histogram:
    """Cumulative-bucket histogram (Prometheus semantics) without a registry behind it."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs ending with ``+Inf``, as an exposition wants them."""
        out, total = [], 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


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
    lag_s: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS))
    """Committed time minus the lift's end time."""
    db_write_s: Histogram = field(default_factory=lambda: Histogram(DB_BUCKETS))
    batch_size: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))

    def stored(self) -> int:
        with self.lock:
            return sum(self.ingested.values())


class Invalid(ValueError):
    """A payload refused at the boundary; ``reason`` is the counter label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """One message as paho handed it over; ``generation`` names the connection it came on."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received: float  # time.time()


Message = LiftEvent | AgentStatus | AgentStats
_KINDS: dict[str, type[LiftEvent] | type[AgentStatus] | type[AgentStats]] = {
    "lift": LiftEvent,
    "status": AgentStatus,
    "stats": AgentStats,
}


def parse(topic: str, payload: bytes) -> Message:
    """The validated message on ``topic``; raises `Invalid` naming why it was refused."""
    parts = topic.split("/")
    root = "/".join(parts[:2])
    if len(parts) != 5 or root != TOPIC_ROOT or parts[4] not in _KINDS:
        raise Invalid("topic", f"not a liftwatch topic: {topic[:200]!r}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Invalid("oversized", f"{len(payload)} bytes (limit {MAX_PAYLOAD_BYTES})")
    model = _KINDS[parts[4]]
    try:
        message: Message = model.model_validate_json(payload)
    except ValidationError as exc:
        raise _refusal(exc) from None
    if (message.site, message.camera) != (parts[2], parts[3]):
        raise Invalid(
            "topic_mismatch",
            f"payload says {message.site}/{message.camera}, topic {parts[2]}/{parts[3]}",
        )
    if isinstance(message, LiftEvent) and message.seq > MAX_DB_INT:
        raise Invalid("schema", f"seq {message.seq} beyond {MAX_DB_INT}")
    return message


def _refusal(exc: ValidationError) -> Invalid:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"type": "", "loc": (), "msg": str(exc)}
    detail = f"{'.'.join(map(str, first['loc'])) or 'payload'}: {first['msg']}"[:200]
    if first["type"] in ("json_invalid", "json_type", "model_type"):
        return Invalid("json", detail)
    if any(e["loc"][:1] == ("schema_version",) for e in errors):
        return Invalid("version", detail)
    return Invalid("schema", detail)


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, timezone.utc)


class Ingest:
    """Subscribes to the lift, status and stats topics and stores what arrives.

    ``start`` returns at once; the connection is made (and remade, with back-off) in paho's
    thread. ``connected`` and ``counters`` are what telemetry reports.
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
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.org = org
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.retry_max_s = retry_max_s
        self.counters = IngestCounters()
        self.on_stored: list[Callable[[list[LiftEvent]], None]] = []
        """Called in the writer thread with each committed batch's new lifts (alerts); an
        exception is logged, never raised: the lifts are stored and acknowledged already."""
        self._queue: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._ack_lock = threading.Lock()
        self._generation = 0
        self._link_state = ""
        self._last_logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._client = self._make_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

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
        c = self.cfg
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = c.session_expiry_s
        props.ReceiveMaximum = c.receive_maximum
        self._writer.start()
        self._client.connect_async(
            c.host, c.port, keepalive=c.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()
        log.info(
            "MQTT ingest from %s:%d as %s%s", c.host, c.port, c.client_id,
            f" in shared group {c.shared_group}" if c.shared_group else "",
        )  # fmt: skip

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch being written, then leave; whatever is unacknowledged stays with
        the broker (the session persists) and comes again on the next start."""
        self._stopping.set()
        if self._writer.is_alive():
            self._writer.join(timeout_s)
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

    # the writer thread

    def _ack(self, deliveries: Iterable[Delivery]) -> None:
        """Acknowledge on the connection each came on; after a reconnect the broker resends
        it anyway, and the resent copy is stored as a duplicate and acknowledged then."""
        with self._ack_lock:
            for d in deliveries:
                if d.qos > 0 and d.generation == self._generation:
                    self._client.ack(d.mid, d.qos)

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

    def _write_loop(self) -> None:
        while not self._stopping.is_set():
            batch = self._next_batch()
            if batch:
                self._handle(batch)

    def _handle(self, batch: list[Delivery]) -> None:
        valid: list[tuple[Delivery, Message]] = []
        refused: list[Delivery] = []
        for d in batch:
            try:
                valid.append((d, parse(d.topic, d.payload)))
            except Invalid as exc:
                self._refuse(d, exc.reason, str(exc))
                refused.append(d)
        self._ack(refused)
        if valid:
            self._commit(valid)

    def _refuse(self, d: Delivery, reason: str, detail: str) -> None:
        with self.counters.lock:
            self.counters.invalid[reason] += 1
        now = time.monotonic()
        if now - self._last_logged.get(reason, -LOG_EVERY_S) < LOG_EVERY_S:
            self._suppressed[reason] += 1
            return
        self._last_logged[reason] = now
        more = self._suppressed.pop(reason, 0)
        log.warning(
            "invalid payload on %s (%s): %s; dropped%s", d.topic[:200], reason, detail,
            f" ({more} more {reason} since the last report)" if more else "",
        )  # fmt: skip

    def _commit(self, items: list[tuple[Delivery, Message]]) -> None:
        """Store ``items`` and acknowledge them, retrying while the database is unavailable.

        A value the database refuses (out of range, constraint) fails every retry, so such a
        batch is split and the one message it cannot take is dropped like an invalid one."""
        delay, outage_since = 0.1, None
        while True:
            try:
                self._write(items)
            except (DataError, IntegrityError, ValueError, OverflowError) as exc:
                if len(items) == 1:
                    self._refuse(items[0][0], "rejected", f"database refused it: {exc}"[:300])
                    self._ack([items[0][0]])
                else:
                    for item in items:
                        self._commit([item])
                return
            except Exception as exc:
                with self.counters.lock:
                    self.counters.db_errors += 1
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.error(
                        "database write failed (%s: %s); %d messages kept unacknowledged, "
                        "retrying with back-off", type(exc).__name__,
                        str(getattr(exc, "orig", None) or exc).strip()[:300], len(items),
                    )  # fmt: skip
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, self.retry_max_s)
                continue
            if outage_since is not None:
                log.info("database writes work again after %.1f s", time.monotonic() - outage_since)
            return

    def _write(self, items: list[tuple[Delivery, Message]]) -> None:
        directory = self.org.directory()
        lifts: list[tuple[LiftEvent, Placement]] = []
        health: list[tuple[Delivery, AgentStatus | AgentStats]] = []
        for d, m in items:
            if isinstance(m, LiftEvent):
                lifts.append((m, directory.place(m.site, m.camera, m.bottom)))
            else:
                health.append((d, m))
        received_at = _utc(max(d.received for d, _ in items))
        t0 = time.perf_counter()
        with self.store.engine.begin() as conn:
            result = add_lifts(conn, lifts, received_at) if lifts else None
            for d, m in health:
                at = _utc(d.received)
                if isinstance(m, AgentStatus):
                    record_status(conn, m, at)
                else:
                    record_stats(conn, m, at)
        took = time.perf_counter() - t0
        self._ack(d for d, _ in items)
        committed = time.time()
        with self.counters.lock:
            c = self.counters
            c.batches += 1
            c.db_write_s.observe(took)
            c.batch_size.observe(len(items))
            c.status_messages += sum(isinstance(m, AgentStatus) for _, m in health)
            c.stats_messages += sum(isinstance(m, AgentStats) for _, m in health)
            if result is not None:
                c.duplicates += result.duplicates
                for event in result.stored:
                    c.ingested[(event.site, event.camera, event.posture)] += 1
                    c.lag_s.observe(max(0.0, committed - event.end.timestamp()))
        if result is not None and result.stored:
            self._notify_stored(result.stored)

    def _notify_stored(self, events: list[LiftEvent]) -> None:
        for hook in self.on_stored:
            try:
                hook(events)
            except Exception:
                log.exception("on_stored hook %s failed", getattr(hook, "__qualname__", hook))
