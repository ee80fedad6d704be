"""The broker config in deploy/mosquitto/, started for real: who may publish and read what.

The config, the ACL file and the scripts are the ones site IT uses; the test only moves
paths and ports into a temporary folder, so a change in deploy/ that opens a hole fails here.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml

from edge.config import load_config
from edge.events import alerts_topic, lift_topic, stats_topic, status_topic
from tests.support.mqtt import HOST, Broker, Subscriber, mosquitto_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
DASHBOARD = ("liftwatch-dashboard", "dashboard-secret")
SITE = "dc-north"


@dataclass(frozen=True)
class Site:
    broker: Broker
    certs: Path
    passwords: dict[str, str]
    """Camera username ("site/camera") or dashboard username -> password."""
    snippets: dict[str, str]
    """Camera username -> the agent config add-camera printed."""


def add_camera(passwords: Path, site: str, camera: str, password: str) -> str:
    """Run the real add-camera script; returns the agent config snippet it prints."""
    env = {**os.environ, "LIFTWATCH_MQTT_PASSWORD": password}
    done = subprocess.run(
        [str(DEPLOY / "add-camera"), "--passwords", str(passwords), "--host", HOST, site, camera],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout


def render(conf: str, broker: Broker, passwords: Path, certs: Path) -> str:
    """deploy/mosquitto/mosquitto.conf with this test's paths and ports, everything else as is."""
    moves = {
        "password_file /mosquitto/config/passwords": f"password_file {passwords}",
        "acl_file /mosquitto/config/acl": f"acl_file {DEPLOY / 'acl'}",
        "persistence_location /mosquitto/data/": f"persistence_location {broker.workdir}/",
        "cafile /mosquitto/certs/ca.crt": f"cafile {certs / 'ca.crt'}",
        "certfile /mosquitto/certs/server.crt": f"certfile {certs / 'server.crt'}",
        "keyfile /mosquitto/certs/server.key": f"keyfile {certs / 'server.key'}",
        "listener 8883\n": f"listener {broker.tls_port} {HOST}\n",
        "listener 1883 127.0.0.1\n": f"listener {broker.port} {HOST}\n",
        "log_dest stdout": f"log_dest file {broker.log_file}",
    }
    for old, new in moves.items():
        assert conf.count(old) == 1, f"deploy/mosquitto/mosquitto.conf no longer has {old!r}"
        conf = conf.replace(old, new)
    settings = [line for line in conf.splitlines() if not line.startswith("#")]
    assert not [s for s in settings if " /mosquitto/" in s], "a path the test does not move"
    return f"user {getpass.getuser()}\n{conf}"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (.ci/run installs the Debian package)")
    certs = tmp_path / "certs"
    subprocess.run(
        [str(DEPLOY / "make-certs"), "--out", str(certs), "localhost", HOST],
        check=True,
        capture_output=True,
    )
    passwords = tmp_path / "passwords"
    secrets: dict[str, str] = {}
    snippets: dict[str, str] = {}
    for site_id, camera in ((SITE, "dock-1"), (SITE, "dock-2"), ("dc-south", "dock-1")):
        user, password = f"{site_id}/{camera}", f"pw-{site_id}-{camera}"
        snippets[user] = add_camera(passwords, site_id, camera, password)
        secrets[user] = password
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), *DASHBOARD], check=True)
    secrets[DASHBOARD[0]] = DASHBOARD[1]
    conf = (DEPLOY / "mosquitto.conf").read_text()
    broker = Broker(tmp_path / "broker", config=lambda b: render(conf, b, passwords, certs)).start()
    try:
        yield Site(broker, certs, secrets, snippets)
    finally:
        broker.stop()


class Client:
    """One MQTT v5 client logged in as ``username``: connect result and PUBACK reason codes."""

    def __init__(
        self,
        site: Site,
        username: str | None,
        password: str | None = None,
        *,
        tls: bool = False,
    ) -> None:
        self._connack = threading.Event()
        self._acks: dict[int, Any] = {}
        self._acked = threading.Condition()
        self.reason: Any = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"test-{username or 'anonymous'}-{id(self):x}".replace("/", "."),
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        port = site.broker.port
        if tls:
            self.client.tls_set(ca_certs=str(site.certs / "ca.crt"))
            port = site.broker.tls_port or 0
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect(HOST, port, keepalive=10)
        self.client.loop_start()
        if not self._connack.wait(15):
            raise TimeoutError("no CONNACK within 15 s")

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.reason = reason
        self._connack.set()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._acked:
            self._acks[mid] = reason
            self._acked.notify_all()

    @property
    def accepted(self) -> bool:
        return self.reason is not None and not self.reason.is_failure

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> Any:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._acked:
            if not self._acked.wait_for(lambda: info.mid in self._acks, 15):
                raise TimeoutError(f"no PUBACK for {topic} within 15 s")
            return self._acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients(site: Site) -> Iterator[dict[str, Client]]:
    """The three cameras and the dashboard, connected on the localhost listener."""
    made = {user: Client(site, user, password) for user, password in site.passwords.items()}
    yield made
    for client in made.values():
        client.close()


def dashboard_subscriber(site: Site, topics: str = "liftwatch/v1/#") -> Subscriber:
    return Subscriber(site.broker, topics, username=DASHBOARD[0], password=DASHBOARD[1])


def delivered(sub: Subscriber, sentinel: str) -> set[str]:
    """Topics ``sub`` received, waiting for ``sentinel`` (published last) so nothing is late."""
    sub.wait_for(1, topic=sentinel)
    return {m.topic for m in sub.messages}


def test_anonymous_clients_and_wrong_passwords_are_refused(site: Site) -> None:
    for username, password in ((None, None), (f"{SITE}/dock-1", "wrong"), ("nobody", "x")):
        client = Client(site, username, password)
        try:
            assert not client.accepted, f"{username!r} was let in"
            assert client.reason.value in (0x86, 0x87), client.reason
        finally:
            client.close()


def test_a_camera_publishes_only_under_its_own_topics(
    site: Site, clients: dict[str, Client]
) -> None:
    dock1 = clients[f"{SITE}/dock-1"]
    own = lift_topic(SITE, "dock-1")
    forged = [
        lift_topic(SITE, "dock-2"),  # another camera at its site
        lift_topic("dc-south", "dock-1"),  # the same camera name at another site
        status_topic(SITE, "dock-2"),
        alerts_topic(SITE),
        f"liftwatch/v1/{SITE}/dock-1/other",
        "liftwatch/v2/anything",
    ]
    with dashboard_subscriber(site) as sub:
        for topic in forged:
            assert dock1.publish(topic, b"forged").is_failure, topic
        assert not dock1.publish(status_topic(SITE, "dock-1"), b"{}", retain=True).is_failure
        assert not dock1.publish(stats_topic(SITE, "dock-1"), b"{}").is_failure
        assert not dock1.publish(own, b"{}").is_failure
        got = delivered(sub, own)
    assert got == {own, status_topic(SITE, "dock-1"), stats_topic(SITE, "dock-1")}


def test_the_dashboard_reads_everything_and_publishes_only_alerts(
    site: Site, clients: dict[str, Client]
) -> None:
    dashboard = clients[DASHBOARD[0]]
    with dashboard_subscriber(site) as sub:
        for topic in (lift_topic(SITE, "dock-1"), status_topic(SITE, "dock-1"), "other/topic"):
            assert dashboard.publish(topic, b"forged").is_failure, topic
        assert not clients[f"{SITE}/dock-2"].publish(lift_topic(SITE, "dock-2"), b"{}").is_failure
        assert not dashboard.publish(alerts_topic(SITE), b"{}").is_failure
        got = delivered(sub, alerts_topic(SITE))
    assert got == {lift_topic(SITE, "dock-2"), alerts_topic(SITE)}


def test_the_dashboard_ingest_can_share_the_lift_stream(
    site: Site, clients: dict[str, Client]
) -> None:
    topic = lift_topic("dc-south", "dock-1")
    with dashboard_subscriber(site, "$share/liftwatch/liftwatch/v1/+/+/lift") as sub:
        assert not clients["dc-south/dock-1"].publish(topic, b"{}").is_failure
        assert [m.topic for m in sub.wait_for(1)] == [topic]


def test_a_camera_reads_nothing(site: Site, clients: dict[str, Client]) -> None:
    user = f"{SITE}/dock-1"
    spy = Subscriber(
        site.broker,
        ["liftwatch/v1/#", lift_topic(SITE, "dock-2"), alerts_topic(SITE), "#"],
        username=user,
        password=site.passwords[user],
    )
    with spy, dashboard_subscriber(site) as sub:
        clients[f"{SITE}/dock-2"].publish(lift_topic(SITE, "dock-2"), b"{}")
        clients[user].publish(lift_topic(SITE, "dock-1"), b"{}")
        clients[DASHBOARD[0]].publish(alerts_topic(SITE), b"{}")
        sub.wait_for(3)
        time.sleep(0.5)  # deliveries to both subscribers leave the broker together
    assert spy.messages == []


def test_a_camera_publishes_over_tls_with_the_site_ca(site: Site) -> None:
    user = "dc-south/dock-1"
    camera = Client(site, user, site.passwords[user], tls=True)
    try:
        assert camera.accepted, camera.reason
        assert not camera.publish(lift_topic("dc-south", "dock-1"), b"{}").is_failure
    finally:
        camera.close()


def test_add_camera_prints_a_config_the_agent_accepts(site: Site, tmp_path: Path) -> None:
    user = f"{SITE}/dock-2"
    snippet = yaml.safe_load(site.snippets[user])
    (tmp_path / "mqtt-password").write_text(site.passwords[user] + "\n")
    snippet["source"] = "synthetic:1"
    snippet["broker"]["password_file"] = str(tmp_path / "mqtt-password")
    config = tmp_path / "camera.yaml"
    config.write_text(yaml.safe_dump(snippet))
    cfg = load_config(config, env={})
    assert (cfg.site, cfg.camera, cfg.broker.username) == (SITE, "dock-2", user)
    assert cfg.broker.password is not None
    assert cfg.broker.password.get_secret_value() == site.passwords[user]
    assert cfg.broker.tls is not None and cfg.broker.port == 8883


def test_add_camera_refuses_ids_that_are_not_one_topic_level(tmp_path: Path) -> None:
    for site_id, camera in (("dc/north", "dock-1"), (SITE, "dock+1"), (SITE, "#")):
        done = subprocess.run(
            [str(DEPLOY / "add-camera"), "--passwords", str(tmp_path / "pw"), site_id, camera],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2
        assert re.search("not a valid id", done.stderr)
    assert not (tmp_path / "pw").exists()


# Every topic a camera could try: generated, with the outcome the ACL intends for each.

OWN_KINDS = ("lift", "status", "stats")


def camera_topics(site: str, camera: str) -> list[str]:
    """Own and other site × own and other camera × every suffix, plus odd shapes."""
    other_site = "dc-south" if site != "dc-south" else SITE
    other_camera = "dock-2" if camera != "dock-2" else "dock-1"
    topics = []
    for s in (site, other_site):
        for c in (camera, other_camera):
            level = f"liftwatch/v1/{s}/{c}"
            topics += [level, *(f"{level}/{x}" for x in (*OWN_KINDS, "alerts", "video"))]
            topics += [f"{level}/lift/extra", f"{level}/lift/"]
        topics.append(alerts_topic(s))
    own = f"liftwatch/v1/{site}/{camera}"
    topics += [
        f"/{own}/lift", f"{own}//lift", f"{own}/Lift", f"Liftwatch/v1/{site}/{camera}/lift",
        f"liftwatch/v2/{site}/{camera}/lift", f"liftwatch/{site}/{camera}/lift",
        f"liftwatch/v1/{site}", "liftwatch/v1", "liftwatch", f"{own}/lift/deeper/still",
        f"{own}/status/x", "$SYS/broker/version", "$SYS/liftwatch",
        f"$share/liftwatch/{own}/lift", "$control/x", f"{site}/{camera}/lift",
        f"{site}/{camera}", "other/topic", "a" * 300,
    ]  # fmt: skip
    return list(dict.fromkeys(topics))


def may_publish(user: str, topic: str) -> bool:
    """The intended policy: a camera its own three topics, the dashboard alerts only."""
    if user == DASHBOARD[0]:
        parts = topic.split("/")
        return len(parts) == 4 and parts[:2] == ["liftwatch", "v1"] and parts[3] == "alerts"
    return topic in {f"liftwatch/v1/{user}/{kind}" for kind in OWN_KINDS}


def test_each_camera_publishes_exactly_its_own_three_topics(
    site: Site, clients: dict[str, Client]
) -> None:
    outcomes: dict[tuple[str, str], bool] = {}
    for user in (f"{SITE}/dock-1", "dc-south/dock-1"):
        site_id, camera = user.split("/")
        for topic in camera_topics(site_id, camera):
            outcomes[(user, topic)] = not clients[user].publish(topic, b"{}").is_failure
    wrong = {key: got for key, got in outcomes.items() if got != may_publish(*key)}
    assert not wrong, wrong
    assert sum(outcomes.values()) == 2 * len(OWN_KINDS)


def _raw_publish(site: Site, username: str, topic: str) -> bytes:
    """CONNECT and a QoS 1 PUBLISH as raw MQTT 3.1.1 bytes (paho refuses to send a
    wildcard topic); what the broker answers to the PUBLISH, b"" when it hangs up."""

    def text(value: str) -> bytes:
        data = value.encode()
        return len(data).to_bytes(2, "big") + data

    def packet(kind: int, body: bytes) -> bytes:
        n, length = len(body), b""
        while True:
            n, digit = divmod(n, 128)
            length += bytes([digit | (0x80 if n else 0)])
            if not n:
                return bytes([kind]) + length + body

    connect = text("MQTT") + bytes([4, 0xC2]) + (10).to_bytes(2, "big")
    connect += text(f"raw-{id(topic):x}") + text(username) + text(site.passwords[username])
    with socket.create_connection((HOST, site.broker.port), timeout=5) as sock:
        sock.sendall(packet(0x10, connect))
        assert sock.recv(4) == b"\x20\x02\x00\x00", "CONNACK accepted"
        sock.sendall(packet(0x32, text(topic) + b"\x00\x01" + b"{}"))
        try:
            return sock.recv(16)
        except ConnectionResetError:
            return b""


@pytest.mark.parametrize(
    "topic",
    [
        "liftwatch/v1/dc-north/+/lift",
        "liftwatch/v1/dc-north/dock-1/#",
        "liftwatch/v1/+/+/lift",
        "#",
        "+",
        "liftwatch/v1/dc-north/dock-1/lift/#",
    ],
)
def test_a_wildcard_publish_closes_the_connection_and_reaches_nobody(
    site: Site, topic: str
) -> None:
    user = f"{SITE}/dock-1"
    sentinel = lift_topic(SITE, "dock-1")
    with dashboard_subscriber(site, "liftwatch/v1/#") as sub:
        assert _raw_publish(site, user, topic) == b""
        assert _raw_publish(site, user, sentinel) == b"\x40\x02\x00\x01", "PUBACK"
        assert delivered(sub, sentinel) == {sentinel}
        assert len(sub.messages) == 1


def test_a_camera_reads_nothing_whatever_it_subscribes_to(
    site: Site, clients: dict[str, Client]
) -> None:
    user = f"{SITE}/dock-1"
    filters = [
        "#", "+/#", "liftwatch/#", "liftwatch/v1/#", "liftwatch/v1/+/+/+",
        f"liftwatch/v1/{SITE}/#", *(f"liftwatch/v1/{SITE}/dock-1/{k}" for k in OWN_KINDS),
        lift_topic(SITE, "dock-2"), alerts_topic(SITE), "$SYS/#", "$SYS/broker/version",
        "$share/liftwatch/liftwatch/v1/+/+/lift", "$share/g/#",
    ]  # fmt: skip
    spy = Subscriber(site.broker, filters, username=user, password=site.passwords[user])
    with spy, dashboard_subscriber(site) as sub:
        for camera in ("dock-1", "dock-2"):
            for topic in (lift_topic(SITE, camera), status_topic(SITE, camera)):
                clients[f"{SITE}/{camera}"].publish(topic, b"{}", retain=topic.endswith("status"))
        clients[DASHBOARD[0]].publish(alerts_topic(SITE), b"{}")
        sub.wait_for(5)
        time.sleep(0.5)
    assert spy.messages == []
