"""`liftwatch-dashboard demo`: the whole system on one machine, in one command.

A broker (Mosquitto, or the embedded one), the dashboard on SQLite with MQTT ingest and
alerts, one `liftwatch-edge run` agent per simulated camera (three teams, two cameras each),
thirty days of past lifts published through the broker, and an agent per video named in
``DEMO_VIDEOS``. Everything lives in one folder (``--data``, default ``./demo-data``), kept
between runs. Ctrl-C or SIGTERM stops the agents first (they flush their outboxes), then the
dashboard, then the broker.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from dashboard.demo.broker import DemoBroker, DemoError, start_broker
from dashboard.demo.fleet import (
    RunningAgent,
    missing_models,
    parse_videos,
    start_agents,
    stop_agents,
)
from dashboard.demo.history import HistoryPublisher, history
from dashboard.demo.processes import HOST, port_free
from dashboard.demo.site import (
    ADMIN,
    SITE,
    DemoCamera,
    reset_admin,
    synthetic_fleet,
    video_fleet,
    write_config,
)

log = logging.getLogger("liftwatch.demo")

VIDEOS_ENV = "DEMO_VIDEOS"
DEFAULT_PORT = 8080
HISTORY_MARKER = "history-published"
SERVER_START_TIMEOUT_S = 30.0


def add_command(sub: Any) -> None:
    """Register ``demo`` on the `liftwatch-dashboard` sub-command parser."""
    p = sub.add_parser(
        "demo",
        help="run broker, dashboard and simulated camera agents on this machine",
        description=(
            "Start a broker, the dashboard on SQLite and a fleet of simulated camera agents "
            f"(plus one agent per video in ${VIDEOS_ENV}); print the URL and the admin "
            "login; Ctrl-C stops everything."
        ),
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="dashboard port (8080)")
    p.add_argument(
        "--data",
        type=Path,
        default=Path("demo-data"),
        help="folder for the database, configs, outboxes and logs (./demo-data), kept",
    )
    p.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "embedded"),
        default="auto",
        help="auto: the system's mosquitto if installed, else the embedded MQTT v5 broker",
    )
    p.set_defaults(fn=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        return Demo(args.data.resolve(), args.port, args.broker).run()
    except DemoError as exc:
        print(f"liftwatch-dashboard demo: {exc}", file=sys.stderr)
        return 2


class Demo:
    def __init__(self, folder: Path, port: int, broker: Any = "auto") -> None:
        self.folder = folder
        self.port = port
        self.broker_choice = broker
        self.stop_event = threading.Event()
        self.stopped_by: str | None = None
        self.broker: DemoBroker | None = None
        self.server: Any = None
        self.server_thread: threading.Thread | None = None
        self.agents: list[RunningAgent] = []
        self.history: HistoryPublisher | None = None

    def run(self) -> int:
        if not port_free(self.port):
            raise DemoError(f"port {self.port} on {HOST} is in use; choose another with --port")
        self.folder.mkdir(parents=True, exist_ok=True)
        _log_to_file(self.folder / "demo.log")
        restore = self._install_signals()
        try:
            self._start()
            self._watch()
        finally:
            self._stop()
            restore()
        return 0

    def _start(self) -> None:
        cameras = synthetic_fleet()
        videos = self._videos()
        self.broker = start_broker(self.folder / "broker", self.broker_choice)
        cfg = write_config(self.folder, cameras + videos, self.broker.port, self.port)
        password = reset_admin(cfg)
        services = self._start_dashboard(cfg)
        if services.ingest is not None and not services.ingest.wait_subscribed(15.0):
            raise DemoError(f"the dashboard did not subscribe on the broker; see {self._log}")
        backfill = not (self.folder / HISTORY_MARKER).exists()
        if backfill:
            tz = services.org.directory().tz(SITE)
            self.history = HistoryPublisher(
                self.broker.port, history(cameras, datetime.now(timezone.utc), tz)
            )
            self.history.start()
        self.agents = start_agents(cameras + videos, self.broker.port, self.folder / "agents")
        self._banner(password, cameras, videos, backfill)

    @property
    def _log(self) -> Path:
        return self.folder / "demo.log"

    def _videos(self) -> list[DemoCamera]:
        paths = parse_videos(os.environ.get(VIDEOS_ENV))
        if not paths:
            return []
        missing = [p for p in paths if not p.is_file()]
        for p in missing:
            print(f"{VIDEOS_ENV}: {p}: no such file; skipped", flush=True)
        paths = [p.resolve() for p in paths if p.is_file()]
        problems = missing_models() if paths else []
        if problems:
            print(
                f"{VIDEOS_ENV}: {len(paths)} video(s) skipped, the pose models are missing "
                "(the simulated cameras need none):",
                flush=True,
            )
            for problem in problems:
                print(f"  {problem}", flush=True)
            return []
        return video_fleet(paths)

    def _start_dashboard(self, cfg: Any) -> Any:
        import uvicorn

        from dashboard.app import create_app

        app = create_app(cfg)
        config = uvicorn.Config(
            app, host=HOST, port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.server_thread = threading.Thread(
            target=self.server.run, name="demo-dashboard", daemon=True
        )
        self.server_thread.start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self.server.started:
            if not self.server_thread.is_alive():
                raise DemoError(f"the dashboard did not start; see {self._log}")
            if time.monotonic() > deadline or self.stop_event.is_set():
                raise DemoError(f"the dashboard did not start in {SERVER_START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        return app.state.services

    def _banner(
        self, password: str, cameras: list[DemoCamera], videos: list[DemoCamera], backfill: bool
    ) -> None:
        assert self.broker is not None
        url = f"http://{HOST}:{self.port}/"
        lines = [
            "",
            "liftwatch demo is running",
            f"  dashboard  {url}",
            f"  login      {ADMIN} / {password}   (new password at each start)",
            f"  broker     {self.broker.kind} on {HOST}:{self.broker.port}",
            f"  agents     {len(cameras)} simulated cameras in 3 teams"
            + (f", {len(videos)} on videos" if videos else ""),
            "  history    30 days of past lifts "
            + ("being published" if backfill else "already in the database"),
            f"  data       {self.folder} (logs: demo.log, agents/*/agent.log)",
            "Press Ctrl-C to stop.",
            "",
        ]
        print("\n".join(lines), flush=True)

    def _watch(self) -> None:
        """Wait for a signal; report the history's end and agents that stop by themselves."""
        reported: set[str] = set()
        history_reported = False
        while not self.stop_event.wait(0.5):
            h = self.history
            if h is not None and h.done.is_set() and not history_reported:
                history_reported = True
                if h.error is None and h.acked >= h.sent:
                    (self.folder / HISTORY_MARKER).write_text(f"{h.sent}\n")
                    print(f"history: {h.sent} past lifts published", flush=True)
                else:
                    print(f"history: stopped after {h.acked} lifts: {h.error}", flush=True)
            for agent in self.agents:
                code = agent.process.poll()
                if code is None or agent.camera.id in reported:
                    continue
                reported.add(agent.camera.id)
                how = "finished its video" if code == 0 else f"exited with code {code}"
                print(f"agent {agent.camera.id} {how}; see {agent.log}", flush=True)
            if self.server_thread is not None and not self.server_thread.is_alive():
                print(f"the dashboard stopped; see {self._log}", flush=True)
                return

    def _stop(self) -> None:
        why = f" ({self.stopped_by})" if self.stopped_by else ""
        print(f"stopping the demo{why}: agents, dashboard, broker...", flush=True)
        if self.agents:
            killed = stop_agents(self.agents)
            for agent in killed:
                print(f"agent {agent.camera.id} did not stop in time; killed", flush=True)
        if self.history is not None:
            self.history.stop()
        if self.server is not None and self.server_thread is not None:
            self.server.should_exit = True
            self.server_thread.join(15.0)
        if self.broker is not None:
            self.broker.stop()
        print(f"demo stopped; its data stays in {self.folder}", flush=True)

    def _install_signals(self) -> Any:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if self.stopped_by is None:
                self.stopped_by = signal.Signals(signum).name
            self.stop_event.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, handler in previous.items():
                signal.signal(s, handler)

        return restore


def _log_to_file(path: Path) -> None:
    """Full logs to the demo folder; only warnings on the terminal, beside the banner."""
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setLevel(logging.WARNING)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    root.setLevel(logging.INFO)
