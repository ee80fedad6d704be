"""The one-command demo: started as a user starts it, it shows data and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dashboard.demo.broker import mosquitto_binary
from dashboard.demo.processes import free_port

STARTUP_S = 60.0


def _children(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue
    return {k: v.decode(errors="replace") for k, v in found.items()}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    "broker",
    [
        pytest.param(
            "mosquitto",
            marks=pytest.mark.skipif(mosquitto_binary() is None, reason="needs mosquitto"),
        ),
        "embedded",
    ],
)
def test_demo_shows_data_then_stops_cleanly(tmp_path: Path, broker: str) -> None:
    port = free_port()
    env = {**os.environ, "DEMO_VIDEOS": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard.cli", "demo", "--port", str(port),
         "--data", str(tmp_path / "demo"), "--broker", broker],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    output = ""
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + STARTUP_S
        while "Press Ctrl-C" not in output:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, f"demo exited early:\n{output}"
            output += line
            assert time.monotonic() < deadline, f"no banner within {STARTUP_S} s:\n{output}"
        login = re.search(r"login\s+(\S+) / (\S+)", output)
        assert login is not None, output
        assert f"dashboard  {base}/" in output

        children = _children(proc.pid)
        agents = [c for c in children.values() if "liftwatch-edge" in c or "edge.cli" in c]
        assert len(agents) == 6, children
        if broker == "mosquitto":
            assert any("mosquitto" in c for c in children.values()), children

        with httpx.Client(base_url=base, timeout=10) as client:
            live = 0
            while time.monotonic() < deadline:
                health = client.get("/healthz").json()
                if health["events_stored"] > 100 and health["mqtt_connected"]:
                    break
                time.sleep(0.5)
            assert health["events_stored"] > 100, health

            form = client.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert csrf is not None
            done = client.post(
                "/login",
                data={"username": login[1], "password": login[2], "csrf_token": csrf[1]},
            )
            assert done.status_code == 303, done.text
            teams: set[str] = set()
            while len(teams) < 3 and time.monotonic() < deadline:
                metrics = client.get("/api/v1/metrics", params={"group_by": "team"})
                assert metrics.status_code == 200, metrics.text
                teams = {g["team"] for g in metrics.json()["groups"] if g["lifts"] > 0}
                time.sleep(0.5)
            assert teams == {"inbound", "picking", "returns"}
            while live == 0 and time.monotonic() < deadline:
                cameras = client.get("/cameras")
                live = cameras.text.count("online")
                time.sleep(0.5)
            assert live > 0, "no camera reported online"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
            pytest.fail(f"the demo did not stop within 30 s after SIGINT:\n{output}")
        output += rest
    assert proc.returncode == 0, output
    assert "demo stopped" in output
    assert "killed" not in output, output
    assert not [pid for pid in children if _alive(pid)], "children left running"
    assert "Traceback" not in output, output
