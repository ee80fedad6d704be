"""A small MQTT broker for the demo on machines without Mosquitto.

It covers what liftwatch's clients use and nothing more: MQTT v5 (and 3.1.1) on plain TCP,
QoS 0 and 1, retained messages, Last Will, ``+``/``#`` filters, persistent sessions that
queue QoS 1 messages while their client is away (in memory: they live as long as the demo),
and Receive Maximum, so the ingest's acknowledge-after-commit keeps its flow control. No
QoS 2 (refused), shared subscriptions, authentication or TLS: production runs Mosquitto
(deploy/). It runs an asyncio loop on its own thread; all state belongs to that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

log = logging.getLogger(__name__)

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

SESSION_EXPIRY, RECEIVE_MAXIMUM, MAXIMUM_QOS = 0x11, 0x21, 0x24
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A
DISCONNECT_WITH_WILL = 0x04
UNSUPPORTED_PROTOCOL_V5, UNSUPPORTED_PROTOCOL_V3 = 0x84, 0x01
SESSION_TAKEN_OVER, QOS_NOT_SUPPORTED = 0x8E, 0x9B
SHARED_NOT_SUPPORTED, TOPIC_FILTER_INVALID = 0x9E, 0x8F
MAX_PACKET = 1 << 20

_FIXED = {
    **dict.fromkeys((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), 1),
    **dict.fromkeys((0x13, 0x21, 0x22, 0x23), 2),
    **dict.fromkeys((0x02, 0x11, 0x18, 0x27), 4),
}
_STRINGS = {0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F}  # length-prefixed
_VARINT = {0x0B}
_PAIR = {0x26}


class ProtocolError(ValueError):
    """The client sent something this broker will not take; the connection is closed."""


class Message(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind: int, body: bytes, flags: int = 0) -> bytes:
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


def utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


class Reader:
    """Cursor over one packet's body."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ProtocolError("packet shorter than its fields")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("!H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("!I", self.take(4))[0])

    def binary(self) -> bytes:
        return self.take(self.u16())

    def text(self) -> str:
        try:
            return self.binary().decode()
        except UnicodeDecodeError:
            raise ProtocolError("malformed UTF-8 string") from None

    def varint(self) -> int:
        value, shift = 0, 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 21:
                raise ProtocolError("malformed variable byte integer")

    def properties(self) -> dict[int, int]:
        """The numeric properties (those the broker acts on); the others are skipped."""
        end = self.varint() + self.pos
        found: dict[int, int] = {}
        while self.pos < end:
            pid = self.varint()
            if pid in _FIXED:
                found[pid] = int.from_bytes(self.take(_FIXED[pid]), "big")
            elif pid in _STRINGS:
                self.binary()
            elif pid in _VARINT:
                self.varint()
            elif pid in _PAIR:
                self.binary()
                self.binary()
            else:
                raise ProtocolError(f"unknown property {pid:#x}")
        if self.pos != end:
            raise ProtocolError("properties overrun their length")
        return found


def matches(topic_filter: str, topic: str) -> bool:
    f, t = topic_filter.split("/"), topic.split("/")
    if topic.startswith("$") and f[0] in ("+", "#"):
        return False
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


def valid_filter(topic_filter: str) -> bool:
    levels = topic_filter.split("/")
    return bool(topic_filter) and all(
        ("#" not in lv or (lv == "#" and i == len(levels) - 1)) and ("+" not in lv or lv == "+")
        for i, lv in enumerate(levels)
    )


@dataclass
class Session:
    client_id: str
    persistent: bool
    subscriptions: dict[str, int] = field(default_factory=dict)
    pending: deque[Message] = field(default_factory=deque)
    inflight: dict[int, Message] = field(default_factory=dict)
    next_id: int = 1
    connection: Connection | None = None

    def packet_id(self) -> int:
        while self.next_id in self.inflight or self.next_id == 0:
            self.next_id = self.next_id % 65535 + 1
        pid = self.next_id
        self.next_id = pid % 65535 + 1
        return pid


class Connection:
    """One client's TCP connection: reads packets, writes deliveries, owns its Will."""

    def __init__(
        self, broker: EmbeddedBroker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.broker = broker
        self.reader = reader
        self.writer = writer
        self.v5 = True
        self.session: Session | None = None
        self.will: Message | None = None
        self.keepalive = 0
        self.receive_maximum = 65535
        self.keep_will = False

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def deliver(self, message: Message, packet_id: int | None, dup: bool = False) -> None:
        body = utf8(message.topic)
        if packet_id is not None:
            body += struct.pack("!H", packet_id)
        if self.v5:
            body += b"\x00"
        flags = (0x08 if dup else 0) | (message.qos << 1) | (1 if message.retain else 0)
        self.send(packet(PUBLISH, body + message.payload, flags))

    async def serve(self) -> None:
        try:
            kind, _flags, body = await self._read(timeout=10.0)
            if kind != CONNECT:
                return
            if not self._connect(Reader(body)):
                return
            while True:
                timeout = self.keepalive * 1.5 if self.keepalive else None
                kind, flags, body = await self._read(timeout)
                if not self._handle(kind, flags, Reader(body)):
                    break
            if not self.keep_will:
                self.will = None  # a clean DISCONNECT: no Will
        except (
            ProtocolError,
            asyncio.IncompleteReadError,
            asyncio.TimeoutError,
            ConnectionError,
            TimeoutError,
        ) as exc:
            log.debug("MQTT connection closed: %s", exc)
        finally:
            self.broker.disconnected(self)
            with contextlib.suppress(Exception):
                self.writer.close()

    async def _read(self, timeout: float | None) -> tuple[int, int, bytes]:
        first = await asyncio.wait_for(self.reader.readexactly(1), timeout)
        length, shift = 0, 0
        while True:
            b = (await self.reader.readexactly(1))[0]
            length |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("malformed remaining length")
        if length > MAX_PACKET:
            raise ProtocolError(f"packet of {length} bytes refused")
        body = await self.reader.readexactly(length)
        return first[0] >> 4, first[0] & 0x0F, body

    def _connect(self, r: Reader) -> bool:
        name, level = r.text(), r.byte()
        if name != "MQTT" or level not in (4, 5):
            code = UNSUPPORTED_PROTOCOL_V5 if level == 5 else UNSUPPORTED_PROTOCOL_V3
            self.send(packet(CONNACK, bytes([0, code])))
            return False
        self.v5 = level == 5
        flags = r.byte()
        self.keepalive = r.u16()
        props = r.properties() if self.v5 else {}
        client_id = r.text() or f"auto-{id(self):x}"
        if flags & 0x04:
            if self.v5:
                r.properties()
            topic, payload = r.text(), r.binary()
            will_qos = min((flags >> 3) & 0x03, 1)
            self.will = Message(topic, payload, will_qos, bool(flags & 0x20))
        if flags & 0x80:
            r.text()
        if flags & 0x40:
            r.binary()
        clean = bool(flags & 0x02)
        persistent = props.get(SESSION_EXPIRY, 0) > 0 if self.v5 else not clean
        self.receive_maximum = props.get(RECEIVE_MAXIMUM, 65535) or 65535
        session, present = self.broker.attach(self, client_id, clean, persistent)
        self.session = session
        ack_props = b""
        if self.v5:
            ack_props = bytes([MAXIMUM_QOS, 1, SHARED_SUBSCRIPTION_AVAILABLE, 0])
            ack_props = varint(len(ack_props)) + ack_props
        self.send(packet(CONNACK, bytes([1 if present else 0, 0]) + ack_props))
        for pid, message in session.inflight.items():
            self.deliver(message, pid, dup=True)
        self.broker.flush(session)
        return True

    def _handle(self, kind: int, flags: int, r: Reader) -> bool:
        session = self.session
        assert session is not None
        if kind == PUBLISH:
            qos = (flags >> 1) & 0x03
            if qos > 1:
                if self.v5:
                    self.send(packet(DISCONNECT, bytes([QOS_NOT_SUPPORTED, 0])))
                raise ProtocolError("QoS 2 is not supported")
            topic = r.text()
            pid = r.u16() if qos else None
            if self.v5:
                r.properties()
            if not topic or "+" in topic or "#" in topic:
                raise ProtocolError(f"invalid topic {topic!r}")
            self.broker.publish(Message(topic, r.take(r.left()), qos, bool(flags & 0x01)))
            if pid is not None:
                self.send(packet(PUBACK, struct.pack("!H", pid)))
        elif kind == PUBACK:
            session.inflight.pop(r.u16(), None)
            self.broker.flush(session)
        elif kind == SUBSCRIBE:
            pid = r.u16()
            if self.v5:
                r.properties()
            codes = []
            while r.left():
                topic_filter, options = r.text(), r.byte()
                codes.append(self.broker.subscribe(session, topic_filter, options & 0x03))
            self.send(packet(SUBACK, struct.pack("!H", pid) + (b"\x00" if self.v5 else b"")
                             + bytes(codes)))  # fmt: skip
            self.broker.flush(session)
        elif kind == UNSUBSCRIBE:
            pid = r.u16()
            if self.v5:
                r.properties()
            codes = []
            while r.left():
                found = session.subscriptions.pop(r.text(), None)
                codes.append(0x00 if found is not None else 0x11)
            body = struct.pack("!H", pid) + (b"\x00" + bytes(codes) if self.v5 else b"")
            self.send(packet(UNSUBACK, body))
        elif kind == PINGREQ:
            self.send(packet(PINGRESP, b""))
        elif kind == DISCONNECT:
            self.keep_will = self.v5 and r.left() > 0 and r.byte() == DISCONNECT_WITH_WILL
            return False
        else:
            raise ProtocolError(f"unexpected packet type {kind}")
        return True

    def close(self, reason: int | None = None) -> None:
        if reason is not None and self.v5:
            self.send(packet(DISCONNECT, bytes([reason, 0])))
        self.writer.close()


class EmbeddedBroker:
    """The broker's state and loop; `start_thread` runs it in the background."""

    kind = "embedded MQTT v5 broker"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sessions: dict[str, Session] = {}
        self.retained: dict[str, Message] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def start_thread(cls, host: str, port: int, timeout_s: float = 10.0) -> EmbeddedBroker:
        broker = cls(host, port)
        broker._thread = threading.Thread(target=broker._run, name="mqtt-broker", daemon=True)
        broker._thread.start()
        if not broker._ready.wait(timeout_s) or broker._error is not None:
            raise OSError(f"embedded MQTT broker did not start on {host}:{port}: {broker._error}")
        return broker

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._accept, self.host, self.port)
            )
        except OSError as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        log.info("embedded MQTT broker on %s:%d", self.host, self.port)
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        loop, thread = self.loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for session in self.sessions.values():
                if session.connection is not None:
                    session.connection.close()
            await asyncio.sleep(0.1)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(5.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await Connection(self, reader, writer).serve()

    # state, always on the loop's thread

    def attach(
        self, conn: Connection, client_id: str, clean: bool, persistent: bool
    ) -> tuple[Session, bool]:
        old = self.sessions.get(client_id)
        if old is not None and old.connection is not None:
            old.connection.will = None  # the client is back: no "offline" flap
            old.connection.close(SESSION_TAKEN_OVER)
            old.connection = None
        present = old is not None and not clean
        if present and old is not None:
            session = old
            session.persistent = persistent
        else:
            session = Session(client_id, persistent)
            self.sessions[client_id] = session
        session.connection = conn
        return session, present

    def disconnected(self, conn: Connection) -> None:
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            if not session.persistent:
                self.sessions.pop(session.client_id, None)
        if conn.will is not None:
            self.publish(conn.will)
            conn.will = None

    def subscribe(self, session: Session, topic_filter: str, qos: int) -> int:
        if topic_filter.startswith("$share/"):
            return SHARED_NOT_SUPPORTED
        if not valid_filter(topic_filter):
            return TOPIC_FILTER_INVALID
        granted = min(qos, 1)
        session.subscriptions[topic_filter] = granted
        for message in self.retained.values():
            if matches(topic_filter, message.topic):
                self._queue(session, message, granted)
        return granted

    def publish(self, message: Message) -> None:
        if message.retain:
            if message.payload:
                self.retained[message.topic] = message
            else:
                self.retained.pop(message.topic, None)
        for session in list(self.sessions.values()):
            qos = max(
                (q for f, q in session.subscriptions.items() if matches(f, message.topic)),
                default=None,
            )
            if qos is not None:
                self._queue(session, message._replace(retain=False), qos)
                self.flush(session)

    def _queue(self, session: Session, message: Message, qos: int) -> None:
        qos = min(qos, message.qos)
        if qos == 0:
            if session.connection is not None:
                session.connection.deliver(message._replace(qos=0), None)
        elif session.connection is not None or session.persistent:
            session.pending.append(message._replace(qos=1))

    def flush(self, session: Session) -> None:
        """Send queued QoS 1 messages while the client's Receive Maximum allows."""
        conn = session.connection
        if conn is None:
            return
        while session.pending and len(session.inflight) < conn.receive_maximum:
            message = session.pending.popleft()
            pid = session.packet_id()
            session.inflight[pid] = message
            conn.deliver(message, pid)
