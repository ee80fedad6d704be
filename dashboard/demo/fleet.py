"""The demo's camera agents: real `liftwatch-edge run` processes, one per camera.

Each gets a camera YAML and an outbox of its own in the demo folder, so the whole edge path
runs as on a Pi beside a camera: lift detection and posture on the poses, the SQLite outbox,
the MQTT v5 publisher with its persistent session, status and stats messages. Simulated
cameras read ``synthetic:SEED`` (generated lifters, no camera and no model needed); videos
from ``DEMO_VIDEOS`` run the pose models and need their weights.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from dashboard.demo.processes import spawn, stop_all
from dashboard.demo.site import SITE, DemoCamera

VIDEO_MODELS = ("movenet_multipose", "movenet_lightning", "blazepose_full")
"""What an agent on a video needs with the default settings (pose, refine, silhouette)."""
STATS_INTERVAL_S = 10.0
STOP_TIMEOUT_S = 10.0
"""An agent flushes its outbox for up to 5 s, then says ``offline``."""


@dataclass
class RunningAgent:
    camera: DemoCamera
    process: subprocess.Popen[bytes]
    log: Path


def parse_videos(value: str | None) -> list[Path]:
    """``DEMO_VIDEOS``: paths separated by spaces or colons."""
    return [Path(p).expanduser() for p in re.split(r"[\s:]+", value or "") if p]


def missing_models() -> list[str]:
    """Problems with the models a video agent needs (empty when all are present and sound)."""
    from edge.models import check, load_manifest

    manifest = load_manifest()
    return [p for key in VIDEO_MODELS if (p := check(manifest[key]).problem)]


def agent_config(camera: DemoCamera, broker_port: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "site": SITE,
        "camera": camera.id,
        "source": camera.source,
        "broker": {"host": "127.0.0.1", "port": broker_port, "backoff_max_s": 2.0},
        "outbox": {"path": "outbox.sqlite"},
        "stats_interval_s": STATS_INTERVAL_S,
    }
    path = folder / "camera.yaml"
    path.write_text(
        "# written by `liftwatch-dashboard demo`; every setting: examples/camera.yaml\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    return path


def edge_command() -> list[str]:
    """The `liftwatch-edge` of this environment (beside this Python), else the module."""
    script = Path(sys.executable).parent / "liftwatch-edge"
    if os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "edge.cli"]


def start_agents(cameras: list[DemoCamera], broker_port: int, folder: Path) -> list[RunningAgent]:
    agents = []
    for camera in cameras:
        workdir = folder / camera.id
        config = agent_config(camera, broker_port, workdir)
        log = workdir / "agent.log"
        process = spawn([*edge_command(), "run", "--config", str(config)], log, cwd=workdir)
        agents.append(RunningAgent(camera, process, log))
    return agents


def stop_agents(agents: list[RunningAgent]) -> list[RunningAgent]:
    """SIGTERM, as systemd would: each agent flushes and says offline; returns those killed."""
    killed = stop_all([a.process for a in agents], STOP_TIMEOUT_S)
    return [a for a in agents if a.process in killed]
