"""The systemd notify protocol against a real datagram socket, alone and from a running agent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from edge.sdnotify import Watchdog, notify, watchdog_interval
from tests.support.mqtt import Broker

REPO = Path(__file__).resolve().parents[2]


class NotifySocket:
    """What systemd listens on: a datagram socket; ``received`` reads what came so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.seen: list[str] = []

    def wait_for(self, state: str, timeout_s: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while state not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {state} within {timeout_s} s; got {self.seen}")
            self.sock.settimeout(left)
            try:
                self.seen.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return self.seen

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def test_notify_sends_one_datagram_and_is_a_no_op_outside_systemd(systemd: NotifySocket) -> None:
    assert notify("READY=1", {"NOTIFY_SOCKET": str(systemd.path)})
    assert systemd.wait_for("READY=1") == ["READY=1"]
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(systemd.path.with_name("gone.sock"))})


def test_the_watchdog_interval_is_ours_only_when_the_pid_matches() -> None:
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": pid}) == 60.0
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 60.0
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({}) is None


def test_the_watchdog_pings_only_while_healthy(systemd: NotifySocket) -> None:
    healthy = True
    env = {"NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "100000"}
    dog = Watchdog(lambda: healthy, env)
    dog.start()
    try:
        systemd.wait_for("WATCHDOG=1")
        healthy = False
        time.sleep(0.1)  # a ping in flight when it turned unhealthy
        systemd.sock.settimeout(0.01)
        while True:
            try:
                systemd.sock.recv(4096)
            except TimeoutError:
                break
        systemd.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            systemd.sock.recv(4096)  # five ping intervals of silence
    finally:
        dog.stop()
    assert systemd.seen[0] == "READY=1"
    systemd.seen.clear()
    assert systemd.wait_for("STOPPING=1") == ["STOPPING=1"]


def test_a_running_agent_is_ready_pings_and_says_stopping(
    broker: Broker, systemd: NotifySocket, tmp_path: Path
) -> None:
    config = tmp_path / "camera.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site": "plant1",
                "camera": "dock-3",
                "source": "synthetic:1",
                "broker": {"host": "127.0.0.1", "port": broker.port},
                "outbox": {"path": "outbox.sqlite"},
            }
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NOTIFY_SOCKET": str(systemd.path),
        "WATCHDOG_USEC": "200000",
    }
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge.agent", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        systemd.wait_for("READY=1")
        systemd.wait_for("WATCHDOG=1")
        agent.send_signal(signal.SIGTERM)
        systemd.wait_for("STOPPING=1")
        assert agent.wait(15) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
        _, err = agent.communicate()
    assert systemd.seen.index("READY=1") < systemd.seen.index("STOPPING=1"), err
