"""`liftwatch-dashboard serve` as a child process: started, SIGKILLed and restarted at will.

Faults such as a killed dashboard only mean something for the real process (uvicorn, the
ingest's paho session, the alert dispatcher), so soak and fault tests run the console
command with a config written here and read what it logged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.support.mqtt import HOST, free_port

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "soak-viewer", "soak viewer password 1"


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` from /proc, None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def tree_rss_kib(pid: int) -> int | None:
    """RSS of ``pid`` and all its descendants (the ingest's writer process, say)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo, seen = 0, [pid], False
    while todo:
        current = todo.pop()
        kib = rss_kib(current)
        if kib is not None:
            total += kib
            seen = True
        todo.extend(children.get(current, []))
    return total if seen else None


class DashboardProcess:
    """One dashboard on ``database_url`` reading from the broker on ``broker_port``."""

    def __init__(
        self,
        folder: Path,
        database_url: str,
        broker_port: int,
        *,
        alerts: dict[str, Any] | None = None,
        client_id: str = "liftwatch-dashboard-test",
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.port = free_port()
        self.log_file = folder / "dashboard.log"
        self.config_file = folder / "dashboard.yaml"
        config = {
            "database_url": database_url,
            "mqtt": {"host": HOST, "port": broker_port, "client_id": client_id, "keepalive_s": 5},
            "web": {"host": HOST, "port": self.port, "cookie_secure": False},
            "alerts": alerts if alerts is not None else {"enabled": False},
        }
        self.config_file.write_text(json.dumps(config, indent=2))  # JSON is YAML
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def cli(self, *args: str, stdin: str = "") -> str:
        """Run another ``liftwatch-dashboard`` command on the same config; its output."""
        done = subprocess.run(
            [sys.executable, "-m", "dashboard.cli", *args, "--config", str(self.config_file)],
            input=stdin.encode(),
            capture_output=True,
            cwd=ROOT,
            timeout=120,
        )
        out = done.stdout.decode() + done.stderr.decode()
        if done.returncode != 0:
            raise RuntimeError(f"liftwatch-dashboard {' '.join(args)} failed: {out}")
        return out

    def add_viewer(self) -> None:
        self.cli("create-user", USER, "--role", "viewer", "--password-stdin", stdin=PASSWORD)

    def start(self, timeout_s: float = 60.0) -> DashboardProcess:
        log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "dashboard.cli", "serve", "--config", str(self.config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while not self._healthy():
            if self._process.poll() is not None:
                code = self._process.returncode
                raise RuntimeError(f"dashboard exited with {code}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dashboard not healthy after {timeout_s} s:\n{self.log()}")
            time.sleep(0.1)
        return self

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/healthz", timeout=5).json())

    def _healthy(self) -> bool:
        try:
            body = self.health()
        except (httpx.HTTPError, ValueError):
            return False
        return bool(body.get("database_ok")) and bool(body.get("mqtt_connected"))

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, the ingest's session stays on the broker."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def __enter__(self) -> DashboardProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stored_lifts(database_url: str) -> list[tuple[str, str, int]]:
    """(event_id, camera, seq) of every stored lift, read directly from the database."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT event_id, camera, seq FROM lifts")).all()
    finally:
        engine.dispose()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def check_delivery(sent: dict[str, dict[str, int]], database_url: str) -> dict[str, Any]:
    """Compare what the agents' outboxes accepted with what the dashboard stored.

    ``duplicates`` counts rows beyond the first per event_id (the primary key makes that
    zero unless something bypasses it) plus seqs stored more than once per camera; ``gaps``
    are seqs missing inside each camera's stored range.
    """
    rows = stored_lifts(database_url)
    stored_ids = [r[0] for r in rows]
    expected = {eid for by_id in sent.values() for eid in by_id}
    seqs: dict[str, list[int]] = {}
    for _, camera, seq in rows:
        seqs.setdefault(camera, []).append(seq)
    seq_dups = sum(len(s) - len(set(s)) for s in seqs.values())
    gaps = 0
    for camera, by_id in sent.items():
        want = set(by_id.values())
        got = set(seqs.get(camera, []))
        gaps += len(want - got)
    return {
        "sent": len(expected),
        "stored": len(stored_ids),
        "lost": len(expected - set(stored_ids)),
        "unexpected": len(set(stored_ids) - expected),
        "duplicates": len(stored_ids) - len(set(stored_ids)) + seq_dups,
        "seq_gaps": gaps,
    }
