from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from dashboard.org import UNASSIGNED, Directory, Organisation

SHIFTS = [
    {"name": "early", "start": "06:00", "end": "14:00"},
    {"name": "late", "start": "14:00", "end": "22:00"},
    {"name": "night", "start": "22:00", "end": "06:00"},
]


def _org(**site: Any) -> Organisation:
    base: dict[str, Any] = {
        "id": "dc-north",
        "timezone": "Europe/Berlin",
        "shifts": SHIFTS,
        "zones": [{"id": "dock"}],
        "teams": [{"id": "pickers", "name": "Pickers"}],
        "cameras": [{"id": "cam-1", "zone": "dock", "team": "pickers"}],
    }
    return Organisation.model_validate({"sites": [base | site]})


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("at", "shift", "day"),
    [
        (_utc(2026, 3, 2, 5, 0), "early", date(2026, 3, 2)),  # 06:00 Berlin (UTC+1)
        (_utc(2026, 3, 2, 4, 59), "night", date(2026, 3, 1)),  # 05:59: the night of the 1st
        (_utc(2026, 3, 2, 23, 30), "night", date(2026, 3, 2)),  # 00:30 on the 3rd: began 2nd
        (_utc(2026, 7, 2, 12, 30), "late", date(2026, 7, 2)),  # summer time: 14:30 local
    ],
)
def test_shift_and_shift_day_follow_the_site_clock(at: datetime, shift: str, day: date) -> None:
    place = Directory(_org()).place("dc-north", "cam-1", at)
    assert (place.shift, place.day, place.zone, place.team) == (shift, day, "dock", "pickers")


def test_unknown_camera_and_site_are_kept_as_unassigned() -> None:
    d = Directory(_org())
    place = d.place("dc-north", "cam-9", _utc(2026, 3, 2, 10))
    assert (place.zone, place.team) == (UNASSIGNED, UNASSIGNED)
    other = d.place("elsewhere", "cam-1", _utc(2026, 3, 2, 10))
    assert other.shift is None and other.day == date(2026, 3, 2)


def test_gap_between_shifts_has_no_shift() -> None:
    org = _org(shifts=[{"name": "day", "start": "08:00", "end": "16:30"}])
    assert Directory(org).shift_at("dc-north", _utc(2026, 3, 2, 16))[0] is None  # 17:00 local
    assert Directory(org).shift_at("dc-north", _utc(2026, 3, 2, 15, 29))[0] == "day"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"shifts": [*SHIFTS, {"name": "extra", "start": "13:00", "end": "15:00"}]}, "overlap"),
        ({"shifts": [{"name": "x", "start": "25:00", "end": "03:00"}]}, "not a time of day"),
        ({"cameras": [{"id": "cam-1", "team": "ghosts"}]}, "team 'ghosts' is not listed"),
        ({"cameras": [{"id": "cam-1"}, {"id": "cam-1"}]}, "camera 'cam-1' is listed twice"),
        ({"id": "dc north"}, "not a valid id"),
    ],
)
def test_inconsistent_organisation_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _org(**change)
