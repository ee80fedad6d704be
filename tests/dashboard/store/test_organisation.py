from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dashboard.org import Organisation
from dashboard.store import open_store
from dashboard.store.cameras import list_cameras
from dashboard.store.lifts import add_lifts
from dashboard.store.organisation import (
    CurrentOrganisation,
    apply_organisation_file,
    load_organisation,
    read_organisation,
    replace_organisation,
)
from edge.simulate import simulated_event
from edge.yamlfile import ConfigError

ORG_YAML = """
sites:
  - id: dc-north
    name: DC North
    timezone: Europe/Berlin
    shifts:
      - {name: early, start: "06:00", end: "14:00"}
      - {name: late, start: "14:00", end: "22:00"}
    zones: [{id: dock, name: Dock}]
    teams: [{id: pickers}, {id: packers}]
    cameras:
      - {id: cam-1, zone: dock, team: pickers, name: Door 3}
"""


def test_file_round_trips_and_is_applied_only_when_changed(
    tmp_path: Path, database_url: str
) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(ORG_YAML)
    store = open_store(database_url)
    with store.engine.begin() as conn:
        assert apply_organisation_file(conn, path) is True
        assert apply_organisation_file(conn, path) is False
        stored = load_organisation(conn).model_dump()
    expected = read_organisation(path).model_dump()
    expected["sites"][0]["teams"].sort(key=lambda t: t["id"])  # stored in id order
    assert stored == expected
    path.write_text(ORG_YAML.replace("team: pickers", "team: packers"))
    with store.engine.begin() as conn:
        assert apply_organisation_file(conn, path) is True
        (cam,) = list_cameras(conn)
    assert (cam.team, cam.zone, cam.name, cam.listed) == ("packers", "dock", "Door 3", True)


def test_replacing_keeps_camera_history_and_unlists_dropped_cameras(
    tmp_path: Path, database_url: str
) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(ORG_YAML)
    store = open_store(database_url)
    at = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    event = simulated_event(random.Random(1), site="dc-north", camera="cam-1", seq=5, bottom=at)
    current = CurrentOrganisation(store.engine, check_s=0.0)
    with store.engine.begin() as conn:
        apply_organisation_file(conn, path)
    with store.engine.begin() as conn:
        place = current.directory().place("dc-north", "cam-1", at)
        add_lifts(conn, [(event, place)], at)
    assert place.team == "pickers"
    with store.engine.begin() as conn:
        replace_organisation(conn, Organisation())
        (cam,) = list_cameras(conn)
    assert (cam.listed, cam.team, cam.seq_count) == (False, "unassigned", 1)
    assert current.directory().place("dc-north", "cam-1", at).team == "unassigned"


def test_bad_organisation_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(ORG_YAML.replace("Europe/Berlin", "Europe/Atlantis"))
    with pytest.raises(ConfigError, match=r"org.yaml: sites.0.timezone: .*unknown time zone"):
        read_organisation(path)
