"""The organisation in the database: loaded from YAML, edited by an admin, read by ingest.

The YAML file is applied at start only when its content changed since it was last applied
(its hash is kept in ``meta``), so an admin's edit in the UI survives restarts until someone
changes the file. Replacing the organisation never deletes a camera row: its status and
sequence counters stay; a camera no longer listed becomes unassigned.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from pathlib import Path

import yaml
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, delete, select, update

from dashboard.org import UNASSIGNED, Camera, Directory, Organisation, Shift, Site, Team, Zone
from dashboard.store import schema
from dashboard.store.sql import upsert
from edge.yamlfile import ConfigError, problems, read_mapping

ORG_HASH = "organisation_sha256"
ORG_VERSION = "organisation_version"


def read_organisation(path: Path) -> Organisation:
    data = read_mapping(path, "sites:")
    try:
        return Organisation.model_validate(data)
    except ValidationError as exc:
        lines = problems(exc, Organisation)
        raise ConfigError("\n".join(f"{path}: {p}" for p in lines)) from None


def load_organisation(conn: Connection) -> Organisation:
    s = schema
    by_site: dict[str, dict[str, list[object]]] = {}
    sites = conn.execute(select(s.sites).order_by(s.sites.c.id)).all()
    for row in sites:
        by_site[row.id] = {"shifts": [], "zones": [], "teams": [], "cameras": []}
    for row in conn.execute(select(s.shifts).order_by(s.shifts.c.site, s.shifts.c.start)):
        if row.site in by_site:
            by_site[row.site]["shifts"].append(Shift(name=row.name, start=row.start, end=row.end))
    for row in conn.execute(select(s.zones).order_by(s.zones.c.site, s.zones.c.id)):
        if row.site in by_site:
            by_site[row.site]["zones"].append(Zone(id=row.id, name=row.name))
    for row in conn.execute(select(s.teams).order_by(s.teams.c.site, s.teams.c.id)):
        if row.site in by_site:
            by_site[row.site]["teams"].append(Team(id=row.id, name=row.name))
    listed = (
        select(s.cameras)
        .where(s.cameras.c.listed.is_(True))
        .order_by(s.cameras.c.site, s.cameras.c.id)
    )
    for row in conn.execute(listed):
        if row.site in by_site:
            by_site[row.site]["cameras"].append(
                Camera(id=row.id, zone=row.zone, team=row.team, name=row.name)
            )
    return Organisation(
        sites=[
            Site(id=row.id, name=row.name, timezone=row.timezone, **by_site[row.id])  # type: ignore[arg-type]
            for row in sites
        ]
    )


def replace_organisation(conn: Connection, org: Organisation) -> None:
    """Make ``org`` the organisation, in the caller's transaction."""
    s = schema
    for table in (s.shifts, s.zones, s.teams, s.sites):
        conn.execute(delete(table))
    conn.execute(
        update(s.cameras).values(listed=False, zone=UNASSIGNED, team=UNASSIGNED, name=None)
    )
    for site in org.sites:
        conn.execute(s.sites.insert().values(id=site.id, name=site.name, timezone=site.timezone))
        for sh in site.shifts:
            conn.execute(
                s.shifts.insert().values(site=site.id, name=sh.name, start=sh.start, end=sh.end)
            )
        for z in site.zones:
            conn.execute(s.zones.insert().values(site=site.id, id=z.id, name=z.name))
        for t in site.teams:
            conn.execute(s.teams.insert().values(site=site.id, id=t.id, name=t.name))
        for cam in site.cameras:
            values = {"zone": cam.zone, "team": cam.team, "name": cam.name, "listed": True}
            stmt = upsert(conn, s.cameras).values(site=site.id, id=cam.id, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["site", "id"], set_=values))
    _bump_version(conn)


def organisation_version(conn: Connection) -> int:
    value = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == ORG_VERSION)
    ).scalar()
    return int(value) if value is not None else 0


def _set_meta(conn: Connection, key: str, value: str) -> None:
    stmt = upsert(conn, schema.meta).values(key=key, value=value)
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def _bump_version(conn: Connection) -> None:
    _set_meta(conn, ORG_VERSION, str(organisation_version(conn) + 1))


def apply_organisation_file(conn: Connection, path: Path) -> bool:
    """Apply the YAML file if it changed since last applied; True when it was applied."""
    org = read_organisation(path)
    digest = hashlib.sha256(
        yaml.safe_dump(org.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    current = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == ORG_HASH)
    ).scalar()
    if current == digest:
        return False
    replace_organisation(conn, org)
    _set_meta(conn, ORG_HASH, digest)
    return True


class CurrentOrganisation:
    """The organisation as ingest and pages see it: re-read when an admin changed it.

    Checks the version counter at most every ``check_s`` seconds, so several processes
    (ingest workers, the web app) pick up an edit within that time without a message bus.
    """

    def __init__(self, engine: Engine, check_s: float = 5.0) -> None:
        self._engine = engine
        self._check_s = check_s
        self._lock = threading.Lock()
        self._version = -1
        self._checked = -math.inf
        self._directory = Directory(Organisation())

    def directory(self) -> Directory:
        now = time.monotonic()
        if now - self._checked < self._check_s:
            return self._directory
        with self._lock:
            if now - self._checked >= self._check_s:
                with self._engine.connect() as conn:
                    version = organisation_version(conn)
                    if version != self._version:
                        self._directory = Directory(load_organisation(conn))
                        self._version = version
                self._checked = now
        return self._directory

    def invalidate(self) -> None:
        self._checked = -math.inf
