"""The embedded broker keeps the promises liftwatch's MQTT v5 clients rely on."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dashboard.demo.mqtt_server import EmbeddedBroker, matches, packet, utf8, varint
from dashboard.demo.processes import HOST, free_port


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker.start_thread(HOST, free_port())
    yield b
    b.stop()


class Client:
    """A paho v5 client that records what arrives; acks only when told (``manual_ack``)."""

    def __init__(
        self, broker: EmbeddedBroker, client_id: str, *, expiry: int = 0, receive_max: int = 100
    ) -> None:
        self.got: list[mqtt.MQTTMessage] = []
        self.lock = threading.Condition()
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
            manual_ack=True,
        )  # fmt: skip
        self.c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
        props.ReceiveMaximum = receive_max
        self.c.connect(HOST, broker.port, clean_start=False, properties=props)
        self.c.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append(msg)
            self.lock.notify_all()

    def subscribe(self, topic: str) -> None:
        self.c.subscribe(topic, qos=1)
        time.sleep(0.2)

    def wait(self, n: int, timeout_s: float = 5.0) -> list[mqtt.MQTTMessage]:
        with self.lock:
            self.lock.wait_for(lambda: len(self.got) >= n, timeout_s)
            return list(self.got)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def publish(broker: EmbeddedBroker, topic: str, payloads: list[bytes]) -> None:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect(HOST, broker.port)
    c.loop_start()
    for p in payloads:
        c.publish(topic, p, qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def test_topic_filters() -> None:
    assert matches("liftwatch/v1/+/+/lift", "liftwatch/v1/s/c/lift")
    assert not matches("liftwatch/v1/+/+/lift", "liftwatch/v1/s/c/stats")
    assert matches("liftwatch/#", "liftwatch/v1/s/c/lift")
    assert matches("a/#", "a")
    assert not matches("#", "$SYS/x")
    assert not matches("a/+", "a/b/c")


def test_persistent_session_keeps_qos1_messages_while_away(broker: EmbeddedBroker) -> None:
    sub = Client(broker, "ingest", expiry=3600)
    sub.subscribe("t/#")
    sub.close()
    publish(broker, "t/1", [b"a", b"b"])
    back = Client(broker, "ingest", expiry=3600)
    got = back.wait(2)
    assert [m.payload for m in got] == [b"a", b"b"]
    for m in got:
        back.c.ack(m.mid, m.qos)
    back.close()


def test_receive_maximum_holds_back_until_acked(broker: EmbeddedBroker) -> None:
    sub = Client(broker, "slow", receive_max=2)
    sub.subscribe("t/#")
    publish(broker, "t/x", [b"1", b"2", b"3", b"4"])
    time.sleep(0.3)
    first = sub.wait(2)
    assert len(first) == 2
    for m in first:
        sub.c.ack(m.mid, m.qos)
    assert [m.payload for m in sub.wait(4)] == [b"1", b"2", b"3", b"4"]
    sub.close()


def test_will_is_retained_and_sent_when_a_client_drops(broker: EmbeddedBroker) -> None:
    flags = 0x02 | 0x04 | (1 << 3) | 0x20  # clean start, Will QoS 1, retained
    body = utf8("MQTT") + bytes([5, flags]) + struct.pack("!H", 30) + varint(0)
    body += utf8("cam") + varint(0) + utf8("s/cam/status") + utf8("offline")
    with socket.create_connection((HOST, broker.port)) as raw:
        raw.sendall(packet(1, body))
        assert raw.recv(16)[0] == 0x20  # CONNACK
    time.sleep(0.2)
    late = Client(broker, "late")
    late.subscribe("s/+/status")
    got = late.wait(1)
    assert got[0].payload == b"offline" and got[0].retain
    late.close()


def test_mqtt_3_1_1_clients_are_served(broker: EmbeddedBroker) -> None:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    got: list[bytes] = []
    c.on_message = lambda _c, _u, m: got.append(m.payload)
    c.connect(HOST, broker.port)
    c.loop_start()
    c.subscribe("v3/#", qos=1)
    time.sleep(0.2)
    publish(broker, "v3/a", [b"hello"])
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    assert got == [b"hello"]
