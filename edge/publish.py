"""Drain the outbox to the MQTT broker, in order, QoS 1, deleting each event only on PUBACK.

The outbox is the source of truth, not paho's memory: an entry leaves it only when the
broker acknowledged it, so a broker outage, a refused login or a killed agent loses nothing
and the next connection (or the next process) sends what is left, oldest first. On every
(re)connect paho's unacknowledged messages are dropped and the sender starts again from the
oldest pending entry, so order holds across reconnects; what was in flight may arrive twice
and receivers dedup it by ``event_id``.

Connection faults never raise: paho's network thread reconnects with back-off, and each
change of state (connected, refused, unreachable, lost) is logged once, not per retry.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge import __version__
from edge.config import AgentConfig
from edge.events import AgentStats, AgentStatus, stats_topic, status_topic
from edge.outbox import Outbox, OutboxError

log = logging.getLogger(__name__)

_AUTH_HINT = "check broker.username and its password (LIFTWATCH_MQTT_PASSWORD or password_file)"


class Publisher:
    """Drains the Outbox to the broker in order, QoS 1; acks outbox entries on PUBACK."""

    def __init__(
        self,
        cfg: AgentConfig,
        outbox: Outbox,
        *,
        max_inflight: int = 100,
        model: str | None = None,
    ) -> None:
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be at least 1, got {max_inflight}")
        self.cfg = cfg
        self.model = model or cfg.model  # what the status says produced the events
        self.outbox = outbox
        self.max_inflight = max_inflight
        self.status_topic = status_topic(cfg.site, cfg.camera)
        self.stats_topic = stats_topic(cfg.site, cfg.camera)
        self.reconnects = 0
        self.publish_failures = 0
        self.published = 0
        self.last_error: str | None = None
        self._connects = 0
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # one connection generation's sends at a time
        self._inflight: dict[int, int | None] = {}  # mid → outbox entry id (None: status/stats)
        self._early_acks: dict[int, bool] = {}  # mid → failed, acked before publish() returned
        self._dropped_mids: set[int] = set()  # left over from the previous connection
        self._last_sent = 0
        self._retry_at = 0.0
        self._state = ""
        self._ack_failing = False
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._client = self._make_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background; never raises on network faults (logs and retries)."""
        b = self.cfg.broker
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = b.session_expiry_s
        self._client.connect_async(
            b.host, b.port, keepalive=b.keepalive_s, clean_start=False, properties=props
        )
        self._set_state("connecting", logging.INFO, f"MQTT connecting to {b.host}:{b.port}")
        self._client.loop_start()
        self._sender.start()

    def notify(self) -> None:
        """New entries are in the outbox: wake the sender."""
        self._wake.set()

    def publish_stats(self, stats: AgentStats) -> None:
        """QoS 0 telemetry; dropped silently when offline (the next one will do)."""
        if self.connected:
            self._publish(self.stats_topic, stats.to_payload(), qos=0, retain=False, entry_id=None)

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Send what the broker takes within the timeout, publish ``offline``, disconnect.

        A clean DISCONNECT means the broker does not send the Last Will, so ``offline`` is
        published here, retained. What is not acknowledged stays in the outbox for next time.
        """
        deadline = time.monotonic() + flush_timeout_s
        self._wake.set()
        while time.monotonic() < deadline and (self.outbox.depth() > 0 or self._entries_inflight()):
            time.sleep(0.01)
        self._stopping.set()
        self._wake.set()
        if self._sender.is_alive():
            self._sender.join(1.0)
        if self.connected:
            info = self._publish(
                self.status_topic, self._status("offline"), qos=1, retain=True, entry_id=None
            )
            if info is not None:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(max(0.5, deadline - time.monotonic()))
        self._client.disconnect()
        self._client.loop_stop()
        left = self.outbox.depth()
        log.info(
            "MQTT publisher stopped: %d published, %d left in the outbox", self.published, left
        )

    def _make_client(self) -> mqtt.Client:
        b = self.cfg.broker
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=b.client_id or f"liftwatch-edge-{self.cfg.site}-{self.cfg.camera}",
            protocol=mqtt.MQTTv5,
        )
        if b.username is not None:
            password = b.password.get_secret_value() if b.password is not None else None
            client.username_pw_set(b.username, password)
        if b.tls is not None:
            client.tls_set(
                ca_certs=str(b.tls.ca_file),
                certfile=str(b.tls.cert_file) if b.tls.cert_file else None,
                keyfile=str(b.tls.key_file) if b.tls.key_file else None,
            )
            client.tls_insecure_set(b.tls.insecure)
        client.will_set(self.status_topic, self._status("offline"), qos=1, retain=True)
        # paho types the delays as int but computes with them as seconds; sub-second is fine.
        client.reconnect_delay_set(b.backoff_initial_s, b.backoff_max_s)  # type: ignore[arg-type]
        client.max_inflight_messages_set(self.max_inflight + 2)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _status(self, state: Literal["online", "offline"]) -> bytes:
        return AgentStatus(
            site=self.cfg.site,
            camera=self.cfg.camera,
            state=state,
            since=datetime.now(timezone.utc),
            agent_version=__version__,
            model=self.model,
        ).to_payload()

    def _set_state(self, state: str, level: int, message: str) -> None:
        """Log ``message`` only when the state differs from the last one logged."""
        if state != self._state:
            self._state = state
            log.log(level, message)

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        b = self.cfg.broker
        if reason.is_failure:
            self.last_error = f"refused: {reason}"
            hint = f"; {_AUTH_HINT}" if reason.value in (0x86, 0x87) else ""
            self._set_state(
                f"refused:{reason}",
                logging.ERROR,
                f"MQTT broker {b.host}:{b.port} refused the connection: {reason}{hint}; "
                "retrying with back-off",
            )
            return
        with self._send_lock:
            stale = client.drop_out_messages()
            with self._lock:
                self._inflight.clear()
                self._early_acks.clear()
                self._dropped_mids = {m.mid for m in stale}
                self._last_sent = 0
            self._connected.set()
        self._connects += 1
        self.reconnects = self._connects - 1
        session = "resumed" if flags.session_present else "new"
        self._set_state(
            "connected",
            logging.INFO,
            f"MQTT connected to {b.host}:{b.port} as {b.client_id} "
            f"({session} session, {self.outbox.depth()} events pending)",
        )
        self._publish(self.status_topic, self._status("online"), qos=1, retain=True, entry_id=None)
        self._wake.set()

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        exc = sys.exc_info()[1]  # paho calls this inside its `except OSError`
        b = self.cfg.broker
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            what = f"TLS handshake failed: {exc} (check broker.tls and the broker's certificate)"
        else:
            what = f"unreachable: {exc or 'connection failed'}"
        self.last_error = what
        kind = "tls" if isinstance(exc, ssl.SSLError | ssl.CertificateError) else "unreachable"
        self._set_state(
            f"{kind}:{type(exc).__name__}",
            logging.ERROR,
            f"MQTT broker {b.host}:{b.port} {what}; retrying with back-off",
        )

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._stopping.is_set() or not was_connected:
            return
        b = self.cfg.broker
        self.last_error = f"connection lost: {reason}"
        self._set_state(
            "lost",
            logging.WARNING,
            f"MQTT connection to {b.host}:{b.port} lost ({reason}); reconnecting "
            f"({self.outbox.depth()} events kept in the outbox)",
        )

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        failed = bool(getattr(reason, "is_failure", False))
        with self._lock:
            if mid in self._dropped_mids:
                self._dropped_mids.discard(mid)
                return
            if mid not in self._inflight:
                self._early_acks[mid] = failed
                return
            entry_id = self._inflight.pop(mid)
        self._settle(entry_id, failed, reason)

    def _settle(self, entry_id: int | None, failed: bool, reason: Any = None) -> None:
        if entry_id is None:
            return
        if failed:
            self.publish_failures += 1
            self.last_error = f"publish refused: {reason}"
            log.error("MQTT broker refused event entry %d: %s; will resend", entry_id, reason)
            with self._lock:
                self._last_sent = min(self._last_sent, entry_id - 1)
            self._retry_at = time.monotonic() + self.cfg.broker.backoff_initial_s
        else:
            self.published += 1
            try:
                self.outbox.ack(entry_id)
            except OutboxError as exc:
                # A full disk refuses even deletes (the WAL needs room). The event reached the
                # broker; it stays in the outbox and may be sent again, which receivers
                # tolerate (dedup by event_id). Said once per outage, not per event.
                if not self._ack_failing:
                    log.error(
                        "outbox: cannot remove delivered events (first %d): %s; they stay "
                        "and are sent again later", entry_id, exc,
                    )  # fmt: skip
                self._ack_failing = True
                self.last_error = str(exc)
            else:
                if self._ack_failing:
                    log.info("outbox: delivered events are removed again")
                self._ack_failing = False
        self._wake.set()

    def _publish(
        self, topic: str, payload: bytes, *, qos: int, retain: bool, entry_id: int | None
    ) -> mqtt.MQTTMessageInfo | None:
        """Hand one message to paho and remember its mid; the PUBACK may beat the return."""
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as e:  # e.g. payload over the broker's maximum packet size
            self.publish_failures += 1
            self.last_error = f"publish rejected: {e}"
            log.error("MQTT publish on %s rejected: %s", topic, e)
            return None
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # NO_CONN: paho queued it and sends it on reconnect; anything else is lost here.
            if entry_id is not None:
                self.publish_failures += 1
            return None
        with self._lock:
            if info.mid in self._early_acks:
                failed = self._early_acks.pop(info.mid)
            else:
                self._inflight[info.mid] = entry_id
                return info
        self._settle(entry_id, failed)
        return info

    def _entries_inflight(self) -> int:
        with self._lock:
            return sum(1 for e in self._inflight.values() if e is not None)

    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            pause = self._retry_at - time.monotonic()
            if pause > 0:
                self._stopping.wait(pause)
            while self._send_batch():
                pass

    def _send_batch(self) -> bool:
        """Publish the next pending entries that fit in the window; False when none did."""
        with self._send_lock:
            room = self.max_inflight - self._entries_inflight()
            if room <= 0 or not self.connected or self._stopping.is_set():
                return False
            with self._lock:
                after = self._last_sent
            try:
                batch = self.outbox.pending(limit=room, after_id=after)
            except Exception as e:  # a broken outbox must not kill the sender thread
                self.last_error = str(e)
                log.error("MQTT sender cannot read the outbox: %s", e)
                self._stopping.wait(1.0)
                return False
            for entry in batch:
                with self._lock:
                    self._last_sent = max(self._last_sent, entry.id)
                self._publish(entry.topic, entry.payload, qos=1, retain=False, entry_id=entry.id)
            return bool(batch)
