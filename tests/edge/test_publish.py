"""Publisher against a real mosquitto: delivery, order, status, Last Will, outages, bad logins."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import pytest

from edge.config import AgentConfig, BrokerConfig, OutboxConfig, TLSConfig
from edge.events import AgentStatus, LiftEvent, LiftMetrics, lift_topic, status_topic
from edge.outbox import Outbox
from edge.publish import Publisher
from tests.support.mqtt import Broker, Message, Subscriber, make_tls

SITE, CAMERA = "depot", "dock-3"
LIFT = lift_topic(SITE, CAMERA)
STATUS = status_topic(SITE, CAMERA)


def agent_config(port: int, outbox: Path, **broker: object) -> AgentConfig:
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "backoff_initial_s": 0.1,
        "backoff_max_s": 0.4,
        **broker,
    }
    return AgentConfig(
        site=SITE,
        camera=CAMERA,
        source="synthetic:1",
        broker=BrokerConfig.model_validate(settings),
        outbox=OutboxConfig(path=outbox),
    )


def event_payload(seq: int) -> bytes:
    start = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc) + timedelta(seconds=10 * seq)
    return LiftEvent(
        event_id=uuid4(),
        seq=seq,
        site=SITE,
        camera=CAMERA,
        track_id="a1b2c3d4",
        start=start,
        bottom=start + timedelta(seconds=1),
        end=start + timedelta(seconds=2),
        posture="hinge",
        confidence=0.9,
        view="side",
        metrics=LiftMetrics(trunk_flexion_max_deg=70.0, reba_trunk=3),
        model="movenet_multipose",
        model_sha256="0" * 64,
        agent_version="0.1.0",
    ).to_payload()


def add_events(outbox: Outbox, n: int) -> list[bytes]:
    return [outbox.add(LIFT, event_payload).payload for _ in range(n)]


def eventually(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.02)


def first_arrivals(messages: list[Message]) -> list[LiftEvent]:
    """Lift events deduplicated by event_id, in order of first arrival."""
    seen: dict[str, LiftEvent] = {}
    for m in messages:
        if m.topic == LIFT:
            event = LiftEvent.from_payload(m.payload)
            seen.setdefault(str(event.event_id), event)
    return list(seen.values())


def last_status(broker: Broker) -> Message:
    """The retained status, as a client connecting now sees it."""
    with Subscriber(broker, STATUS) as late:
        return late.wait_for(1, 3.0)[0]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox(tmp_path / "outbox.sqlite") as box:
        yield box


def test_events_arrive_complete_and_in_order(
    broker: Broker, subscriber: Subscriber, outbox: Outbox, tmp_path: Path
) -> None:
    stored = add_events(outbox, 30)
    publisher = Publisher(agent_config(broker.port, tmp_path / "x"), outbox, max_inflight=8)
    publisher.start()
    stored += add_events(outbox, 30)
    publisher.notify()

    got = subscriber.wait_for(60, topic=LIFT)
    eventually(lambda: outbox.depth() == 0)
    publisher.stop()

    assert [m.payload for m in got] == stored
    assert [LiftEvent.from_payload(m.payload).seq for m in got] == list(range(60))
    assert all(m.qos == 1 for m in got)
    assert publisher.published == 60
    assert publisher.publish_failures == 0


def test_status_online_is_retained_after_connect(broker: Broker, outbox: Outbox) -> None:
    publisher = Publisher(agent_config(broker.port, outbox.path), outbox)
    publisher.start()
    eventually(lambda: publisher.connected)

    status = last_status(broker)
    publisher.stop()

    assert status.retain
    parsed = AgentStatus.from_payload(status.payload)
    assert (parsed.state, parsed.site, parsed.camera) == ("online", SITE, CAMERA)


def test_stop_flushes_then_publishes_offline_retained(
    broker: Broker, subscriber: Subscriber, outbox: Outbox
) -> None:
    stored = add_events(outbox, 200)
    publisher = Publisher(agent_config(broker.port, outbox.path), outbox, max_inflight=5)
    publisher.start()
    publisher.stop(flush_timeout_s=5.0)

    assert outbox.depth() == 0
    assert [m.payload for m in subscriber.wait_for(200, topic=LIFT)] == stored
    status = last_status(broker)
    assert status.retain
    assert AgentStatus.from_payload(status.payload).state == "offline"
    assert not publisher.connected


_CHILD = """
import sys, time
from pathlib import Path
from edge.config import AgentConfig, BrokerConfig, OutboxConfig
from edge.outbox import Outbox
from edge.publish import Publisher
port, outbox_path = int(sys.argv[1]), Path(sys.argv[2])
cfg = AgentConfig(site="depot", camera="dock-3", source="synthetic:1",
                  broker=BrokerConfig(host="127.0.0.1", port=port, keepalive_s=60),
                  outbox=OutboxConfig(path=outbox_path))
Publisher(cfg, Outbox(outbox_path)).start()
print("started", flush=True)
time.sleep(60)
"""


def test_last_will_offline_when_the_agent_is_killed(
    broker: Broker, subscriber: Subscriber, tmp_path: Path
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(broker.port), str(tmp_path / "child.sqlite")],
        stdout=subprocess.PIPE,
    )
    try:
        online = subscriber.wait_for(1, 10.0, topic=STATUS)
        assert AgentStatus.from_payload(online[0].payload).state == "online"
        child.send_signal(signal.SIGKILL)
        child.wait(5)
        statuses = subscriber.wait_for(2, 5.0, topic=STATUS)
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()

    assert AgentStatus.from_payload(statuses[1].payload).state == "offline"
    status = last_status(broker)
    assert AgentStatus.from_payload(status.payload).state == "offline"


def test_broker_outage_mid_stream_loses_nothing(broker: Broker, outbox: Outbox) -> None:
    receiver = Subscriber(broker, LIFT, client_id="test-dashboard", persistent=True)
    publisher = Publisher(agent_config(broker.port, outbox.path), outbox, max_inflight=20)
    publisher.start()
    stored = add_events(outbox, 100)
    publisher.notify()
    receiver.wait_for(1, topic=LIFT)

    broker.stop()
    stored += add_events(outbox, 100)  # the agent keeps judging lifts while the broker is away
    publisher.notify()
    time.sleep(2.0)
    assert not publisher.connected
    broker.start()
    stored += add_events(outbox, 100)
    publisher.notify()

    receiver.wait_until(lambda ms: len(first_arrivals(ms)) >= 300, timeout_s=20.0)
    eventually(lambda: outbox.depth() == 0)
    publisher.stop()
    receiver.close()

    events = first_arrivals(receiver.messages)
    assert [e.to_payload() for e in events] == stored
    assert publisher.reconnects == 1


def test_wrong_password_logs_once_retries_and_delivers_once_fixed(
    tmp_path: Path, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    users = {"edge": "right", "reader": "r"}
    with Broker(tmp_path / "broker", users=users) as broker:
        receiver = Subscriber(broker, LIFT, username="reader", password="r")
        cfg = agent_config(broker.port, outbox.path, username="edge", password="wrong")
        publisher = Publisher(cfg, outbox)
        stored = add_events(outbox, 20)
        with caplog.at_level(logging.INFO, logger="edge.publish"):
            publisher.start()
            eventually(lambda: broker.log().count("not authorised") >= 3, timeout_s=20)
            assert not publisher.connected
            assert outbox.depth() == 20

            broker.set_users({"edge": "wrong", "reader": "r"})  # the operator fixes the broker
            got = receiver.wait_for(20, topic=LIFT)
            publisher.stop()
        receiver.close()

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "refused" in errors[0] and "password" in errors[0]
    assert [m.payload for m in got] == stored
    assert outbox.depth() == 0


def test_tls_delivers_and_a_wrong_ca_is_a_clear_retried_error(
    tmp_path: Path, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    tls = make_tls(tmp_path / "tls")
    stranger = make_tls(tmp_path / "other-ca")
    with Broker(tmp_path / "broker", tls=tls) as broker:
        assert broker.tls_port is not None
        receiver = Subscriber(broker, LIFT)
        stored = add_events(outbox, 10)
        bad = agent_config(broker.tls_port, outbox.path, tls=TLSConfig(ca_file=stranger.ca_file))
        with caplog.at_level(logging.INFO, logger="edge.publish"):
            refused = Publisher(bad, outbox)
            refused.start()
            eventually(lambda: broker.log().count("OpenSSL Error") >= 2, timeout_s=20)
            assert not refused.connected
            refused.stop(flush_timeout_s=0.1)
        good = agent_config(broker.tls_port, outbox.path, tls=TLSConfig(ca_file=tls.ca_file))
        publisher = Publisher(good, outbox)
        publisher.start()
        got = receiver.wait_for(10, topic=LIFT)
        publisher.stop()
        receiver.close()

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "TLS" in errors[0] and "certificate" in errors[0]
    assert [m.payload for m in got] == stored
