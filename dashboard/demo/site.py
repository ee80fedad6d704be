"""The demo warehouse: one site, three teams with their zones and cameras, three shifts.

Written as the same YAML files a real installation uses (``dashboard.yaml`` and
``organisation.yaml`` in the demo folder), so the demo runs the real configuration path and
leaves files a newcomer can read and copy.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from dashboard import auth
from dashboard.config import DashboardConfig, load_config
from dashboard.store import open_store

SITE = "demo-dc"
ADMIN = "admin"
DATABASE_FILE = "liftwatch-demo.db"
DASHBOARD_CLIENT_ID = "liftwatch-demo-dashboard"


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    zone: str
    zone_name: str
    rounded_then: float
    """Share of rounded lifts in the history 30 days ago..."""
    rounded_now: float
    """...and today: one team improves after coaching, one slips, one stays good."""


@dataclass(frozen=True)
class DemoCamera:
    id: str
    team: Team
    source: str
    """``synthetic:SEED`` (the real lift analysis on generated poses) or a video file."""

    @property
    def zone(self) -> str:
        return self.team.zone


TEAMS = (
    Team("inbound", "Inbound", "dock", "Receiving dock", 0.14, 0.12),
    Team("picking", "Picking", "aisles", "Pick aisles", 0.38, 0.16),
    Team("returns", "Returns", "returns-bay", "Returns bay", 0.22, 0.36),
)
SYNTHETIC_PER_TEAM = 2


def synthetic_fleet() -> list[DemoCamera]:
    """Two simulated cameras per team, each with its own seed (its own stream of lifters)."""
    return [
        DemoCamera(f"{team.zone}-{n}", team, f"synthetic:{10 * i + n}")
        for i, team in enumerate(TEAMS, 1)
        for n in range(1, SYNTHETIC_PER_TEAM + 1)
    ]


def video_fleet(videos: list[Path]) -> list[DemoCamera]:
    """One camera per video, handed to the teams in turn."""
    return [
        DemoCamera(f"video-{i}", TEAMS[(i - 1) % len(TEAMS)], str(path))
        for i, path in enumerate(videos, 1)
    ]


def local_timezone() -> str:
    """The machine's IANA zone, so the shifts match the clock the viewer reads; UTC if unknown."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(IndexError):
        candidates.append(os.path.realpath("/etc/localtime").split("zoneinfo/", 1)[1])
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    for name in candidates:
        if not name:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return name
    return "UTC"


def organisation(cameras: list[DemoCamera], timezone: str) -> dict[str, object]:
    return {
        "sites": [
            {
                "id": SITE,
                "name": "Demo distribution centre",
                "timezone": timezone,
                "shifts": [
                    {"name": "early", "start": "06:00", "end": "14:00"},
                    {"name": "late", "start": "14:00", "end": "22:00"},
                    {"name": "night", "start": "22:00", "end": "06:00"},
                ],
                "zones": [{"id": t.zone, "name": t.zone_name} for t in TEAMS],
                "teams": [{"id": t.id, "name": t.name} for t in TEAMS],
                "cameras": [
                    {"id": c.id, "zone": c.zone, "team": c.team.id, "name": _camera_name(c)}
                    for c in cameras
                ],
            }
        ]
    }


def _camera_name(camera: DemoCamera) -> str:
    if camera.source.startswith("synthetic:"):
        return f"{camera.team.zone_name} {camera.id.rsplit('-', 1)[1]} (simulated)"
    return f"Video {Path(camera.source).name}"[:100]


def write_config(
    folder: Path, cameras: list[DemoCamera], broker_port: int, web_port: int
) -> DashboardConfig:
    """Write ``organisation.yaml`` and ``dashboard.yaml`` into ``folder`` and load them back."""
    org_file = folder / "organisation.yaml"
    org_file.write_text(
        "# The demo's organisation, rewritten by each `liftwatch-dashboard demo` start.\n"
        + yaml.safe_dump(organisation(cameras, local_timezone()), sort_keys=False)
    )
    config = {
        "database_url": f"sqlite:///{DATABASE_FILE}",
        "organisation": org_file.name,
        "mqtt": {
            "host": "127.0.0.1",
            "port": broker_port,
            "client_id": DASHBOARD_CLIENT_ID,
            "session_expiry_s": 3600,
        },
        "web": {"host": "127.0.0.1", "port": web_port, "cookie_secure": False},
    }
    config_file = folder / "dashboard.yaml"
    config_file.write_text(
        "# The demo dashboard: plain HTTP on 127.0.0.1, so the session cookie is not\n"
        "# HTTPS-only (cookie_secure: false). Never use that setting on a network.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    return load_config(config_file, env={})


def reset_admin(cfg: DashboardConfig) -> str:
    """Create the admin user, or give it a new password; returns the password."""
    password = secrets.token_urlsafe(12)
    while auth.password_problem(password, ADMIN) is not None:
        password = secrets.token_urlsafe(12)
    store = open_store(cfg.database_url)
    try:
        with store.engine.begin() as conn:
            if auth.find_user(conn, ADMIN) is None:
                auth.create_user(conn, ADMIN, password, "admin")
            else:
                auth.set_password(conn, ADMIN, password)
                auth.set_disabled(conn, ADMIN, False)
        return password
    finally:
        store.close()
