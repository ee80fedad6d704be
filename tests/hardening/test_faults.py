"""Faults during load, through the whole system: agents → mosquitto → dashboard → database.

Each test runs a small fleet of simulated agents (the edge's own Outbox and Publisher, see
`tests.support.fleet`) at a steady rate into ``liftwatch-dashboard serve`` as a child
process, breaks one part for a few seconds while the load goes on, and mends it. While it
is broken one camera makes three rounded lifts of one track, which fires the same-track
rule once. Afterwards:

- every event an outbox accepted is stored once: none lost, none twice, no seq gap;
- the rule fired exactly once, and the webhook and the MQTT alert topic each received that
  alert exactly once;
- the logs say what happened, in words an operator can act on.

The long versions (minutes of outage, 50 agents) are `bench/soak.py`'s business.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from edge.events import alerts_topic
from tests.support.alerting import WebhookServer
from tests.support.dashboard_proc import DashboardProcess, check_delivery
from tests.support.fleet import HINGE_ONLY, Load, SimAgent, sent_by_camera, wait_drained
from tests.support.mqtt import Broker, Subscriber, mosquitto_binary
from tests.support.pgcluster import PgCluster, postgres_bin
from tests.support.proxy import TcpProxy

SITE = "fault"
AGENTS = 4
RATE = 5.0  # lifts/s per agent: 20/s in all, a busy warehouse's minute in a few seconds
RULE = {
    "id": "same-track",
    "kind": "same_track",
    "count": 3,
    "window_min": 10,
    "cooldown_min": 60,
}

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed")


class System:
    """The running pieces of one test, and what it checks at the end."""

    def __init__(
        self, folder: Path, broker: Broker, dashboard: DashboardProcess, agents: list[SimAgent]
    ) -> None:
        self.folder = folder
        self.broker = broker
        self.dashboard = dashboard
        self.agents = agents
        self.webhook = WebhookServer()
        self.alerts: Subscriber | None = None

    def stored(self) -> int:
        return int(self.dashboard.health()["events_stored"])

    def wait_flowing(self, more: int = 20, timeout_s: float = 30.0) -> None:
        """Until ``more`` further events were stored (the load goes through)."""
        start = self.stored()
        deadline = time.monotonic() + timeout_s
        while self.stored() < start + more:
            assert time.monotonic() < deadline, f"no events stored for {timeout_s} s"
            time.sleep(0.1)

    def risky_lifts(self, agent: SimAgent, track: str = "trk-fault") -> None:
        """Three rounded lifts of one track: the same-track rule fires once for the camera."""
        for _ in range(3):
            assert agent.emit(posture="rounded", track_id=track)
            time.sleep(0.05)

    def risky_lifts_held(self, agent: SimAgent, track: str = "trk-fault") -> None:
        """The same, while the agent's outbox refuses: the lifts wait in its memory."""
        for _ in range(3):
            assert not agent.emit(posture="rounded", track_id=track)

    def check(self, alert_cameras: list[str], timeout_s: float = 60.0) -> dict[str, object]:
        """All delivered once, the alerts raised and sent once each; returns the figures."""
        wait_drained(self.agents, timeout_s)
        for agent in self.agents:
            assert (agent.backlog.lost, agent.backlog.held) == (0, 0), agent.camera
            assert len(agent.sent) == agent.emitted, f"{agent.camera}: judged but not stored"
        sent = sent_by_camera(self.agents)
        total = sum(len(s) for s in sent.values())
        deadline = time.monotonic() + timeout_s
        while self.stored() < total:
            assert time.monotonic() < deadline, f"{self.stored()} of {total} stored"
            time.sleep(0.1)
        result = check_delivery(sent, self.dashboard.database_url)
        assert result["sent"] == total > 0
        assert (result["lost"], result["duplicates"], result["seq_gaps"]) == (0, 0, 0), result
        assert result["unexpected"] == 0, result

        engine = create_engine(self.dashboard.database_url)
        try:
            while True:  # rules are evaluated after the commit, in the ingest's own time
                with engine.connect() as conn:
                    rows = conn.execute(text("SELECT id, camera, rule_id FROM alerts")).all()
                if len(rows) >= len(alert_cameras) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        finally:
            engine.dispose()
        assert sorted(r.camera for r in rows) == sorted(alert_cameras), rows
        ids = sorted(int(r.id) for r in rows)
        assert self.alerts is not None
        self.webhook.wait_for(len(ids), timeout_s)
        self.alerts.wait_for(len(ids), timeout_s)
        time.sleep(1.0)  # a doubled send would come now
        hooked = sorted(int(body["alert"]["id"]) for body in self.webhook.items)
        published = sorted(int(json.loads(m.payload)["id"]) for m in self.alerts.messages)
        assert hooked == ids, "webhook: each alert exactly once"
        assert published == ids, "MQTT: each alert exactly once"
        return result


@contextmanager
def running_system(
    tmp_path: Path,
    database_url: str,
    *,
    agent_port: Callable[[Broker, int], int] | None = None,
    outbox_path: Callable[[int], Path | None] | None = None,
    keepalive_s: int = 5,
) -> Iterator[System]:
    """Broker, dashboard (alerts to a webhook and MQTT) and ``AGENTS`` agents, started."""
    with Broker(tmp_path / "broker") as broker:
        webhook = WebhookServer().start()
        alerts = {
            "rules": [RULE],
            "webhook": {"url": webhook.url, "timeout_s": 2},
            "mqtt": True,
            "retry": {"first_s": 0.2, "max_s": 1},
        }
        dashboard = DashboardProcess(
            tmp_path / "dashboard", database_url, broker.port, alerts=alerts
        )
        dashboard.start()
        agents = [
            SimAgent(
                tmp_path / "agents",
                site=SITE,
                camera=f"cam-{i}",
                port=agent_port(broker, i) if agent_port else broker.port,
                seed=i,
                mix=HINGE_ONLY,
                outbox_path=outbox_path(i) if outbox_path else None,
                keepalive_s=keepalive_s,
            )
            for i in range(AGENTS)
        ]
        system = System(tmp_path, broker, dashboard, agents)
        system.webhook = webhook
        try:
            with Subscriber(
                broker, alerts_topic(SITE), client_id="fault-alerts", persistent=True
            ) as sub:
                system.alerts = sub
                for agent in agents:
                    agent.start()
                yield system
        finally:
            for agent in agents:
                agent.close(0.5)
            dashboard.stop()
            webhook.stop()


def test_broker_restart_during_load(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.publish")
    with running_system(tmp_path, sqlite_url) as system:
        with Load(system.agents, RATE):
            system.wait_flowing()
            system.broker.stop()
            system.risky_lifts(system.agents[1])
            time.sleep(1.5)
            system.broker.start()
            system.wait_flowing()
        system.check(["cam-1"])
    assert "lost (" in caplog.text and "events kept in the outbox" in caplog.text
    assert "MQTT connected to" in caplog.text.split("lost (")[-1]
    log = system.dashboard.log()
    assert "MQTT connection lost" in log and "unacknowledged events will be redelivered" in log
    assert "MQTT ingest connected" in log.split("MQTT connection lost")[-1]
    assert "resumed session" in log.split("MQTT connection lost")[-1]


def test_dashboard_sigkill_and_restart_during_load(tmp_path: Path, sqlite_url: str) -> None:
    with running_system(tmp_path, sqlite_url) as system:
        with Load(system.agents, RATE):
            system.wait_flowing()
            system.dashboard.kill()
            system.risky_lifts(system.agents[2])
            time.sleep(1.5)
            system.dashboard.start()
            system.wait_flowing()
        system.check(["cam-2"])
    after_restart = system.dashboard.log().split("dashboard on http")[-1]
    assert "MQTT ingest connected" in after_restart and "resumed session" in after_restart
    assert "Client liftwatch-dashboard-test closed its connection" in system.broker.log()


@pytest.mark.skipif(postgres_bin() is None, reason="no PostgreSQL server binaries")
def test_postgresql_restart_during_load(tmp_path: Path) -> None:
    with PgCluster() as pg:
        url = pg.create_database("liftwatch_faults")
        with running_system(tmp_path, url) as system:
            with Load(system.agents, RATE):
                system.wait_flowing()
                pg.stop()
                system.risky_lifts(system.agents[0])
                time.sleep(2.0)
                assert system.dashboard.health()["database_ok"] is False
                pg.start()
                system.wait_flowing()
            system.check(["cam-0"])
    log = system.dashboard.log()
    assert "database write failed" in log and "kept unacknowledged, retrying" in log
    assert "database writes work again after" in log


@pytest.mark.parametrize("silent", [False, True], ids=["refused", "silent"])
def test_agent_network_cut_then_restored(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture, silent: bool
) -> None:
    """Agent 0 reaches the broker through a proxy that is cut: refused (port blocked,
    broker host down) or silent (cable pulled: only keepalives notice); the others go on."""
    caplog.set_level(logging.INFO, logger="edge.publish")
    proxy: TcpProxy | None = None

    def port(broker: Broker, i: int) -> int:
        nonlocal proxy
        if i != 0:
            return broker.port
        proxy = TcpProxy(broker.port).start()
        return proxy.port

    with running_system(tmp_path, sqlite_url, agent_port=port, keepalive_s=1) as system:
        assert proxy is not None
        cut_agent = system.agents[0]
        with Load(system.agents, RATE):
            system.wait_flowing()
            proxy.cut(silent=silent)
            system.risky_lifts(cut_agent)
            deadline = time.monotonic() + 15
            while cut_agent.publisher.connected or cut_agent.pending() < 10:
                assert time.monotonic() < deadline, "the cut agent never noticed"
                time.sleep(0.1)
            stored_during = system.stored()
            system.wait_flowing()  # the other agents are not held up
            assert system.stored() > stored_during
            proxy.restore()
            deadline = time.monotonic() + 20
            while not cut_agent.publisher.connected:
                assert time.monotonic() < deadline, "the cut agent never reconnected"
                time.sleep(0.1)
        system.check(["cam-0"])
        proxy.close()
    lost = [r.getMessage() for r in caplog.records if "lost (" in r.getMessage()]
    assert lost and f":{proxy.port} lost" in lost[0] and "kept in the outbox" in lost[0]


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A real 6 MiB file system (tmpfs) for one agent's outbox; needs mount rights (root)."""
    folder = Path(tempfile.mkdtemp(prefix="liftwatch-disk-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


def test_agent_disk_full_while_the_outbox_grows(
    tmp_path: Path, sqlite_url: str, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Agent 0's broker is unreachable, so its outbox grows until its disk is full; the
    outbox keeps its reserve, later lifts wait in memory; the network comes back, the outbox
    drains and takes the held lifts, in order."""
    caplog.set_level(logging.INFO, logger="edge")
    proxy: TcpProxy | None = None

    def port(broker: Broker, i: int) -> int:
        nonlocal proxy
        if i != 0:
            return broker.port
        proxy = TcpProxy(broker.port).start()
        return proxy.port

    with running_system(
        tmp_path,
        sqlite_url,
        agent_port=port,
        outbox_path=lambda i: small_disk / "outbox.sqlite" if i == 0 else None,
        keepalive_s=1,
    ) as system:
        assert proxy is not None
        agent = system.agents[0]
        with Load(system.agents, RATE):
            system.wait_flowing()
            proxy.cut()
            for _ in range(20_000):  # a long outage's lifts, quickly
                if not agent.emit():
                    break
            assert agent.backlog.held >= 1, "the disk never filled"
            system.risky_lifts_held(agent)
            assert agent.backlog.held > 3
            free = shutil.disk_usage(small_disk).free
            assert free < agent.outbox.reserve_bytes
            proxy.restore()
            wait_drained([agent], 60)
        system.check(["cam-0"])
        proxy.close()
    text_ = caplog.text
    assert "outbox refuses lift events" in text_ and "disk full" in text_
    assert "KiB kept in reserve" in text_
    assert "outbox takes lift events again" in text_ and "0 lost meanwhile" in text_
