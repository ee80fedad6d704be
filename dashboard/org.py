"""The organisation: which camera belongs to which site, zone and team, and each site's shifts.

A lift is placed when it is stored (camera → zone and team, bottom time → shift and shift
day in the site's time zone), so a camera moved to another team later does not rewrite
history. A night shift 22:00–06:00 belongs to the day it started: a lift at 02:00 on
Tuesday counts for Monday's night shift, as the people on that shift would say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Self

from edge.events import validate_name

UNASSIGNED = "unassigned"
"""Zone / team of a camera the organisation does not list yet: its lifts are kept, not lost."""

Id = Annotated[str, AfterValidator(validate_name)]
Label = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")]
"""Free text without control characters (PostgreSQL cannot store a NUL)."""


class _Item(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _clock(value: str) -> str:
    try:
        parsed = time.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a time of day HH:MM") from None
    return parsed.strftime("%H:%M")


class Shift(_Item):
    name: Id
    start: Annotated[str, AfterValidator(_clock)]
    end: Annotated[str, AfterValidator(_clock)]

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError(f"shift {self.name}: start and end are equal")
        return self

    def minutes(self) -> tuple[int, int]:
        (h0, m0), (h1, m1) = (map(int, t.split(":")) for t in (self.start, self.end))
        return h0 * 60 + m0, h1 * 60 + m1


class Zone(_Item):
    id: Id
    name: Label | None = None


class Team(_Item):
    id: Id
    name: Label | None = None


class Camera(_Item):
    id: Id
    zone: Id = UNASSIGNED
    team: Id = UNASSIGNED
    name: Label | None = None


class Site(_Item):
    id: Id
    name: Label | None = None
    timezone: str = "UTC"
    shifts: list[Shift] = Field(default_factory=list)
    zones: list[Zone] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    cameras: list[Camera] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for kind, items in (("shift", self.shifts), ("zone", self.zones), ("team", self.teams)):
            names = [getattr(i, "name" if kind == "shift" else "id") for i in items]
            _unique(kind, names)
        _unique("camera", [c.id for c in self.cameras])
        zones = {z.id for z in self.zones} | {UNASSIGNED}
        teams = {t.id for t in self.teams} | {UNASSIGNED}
        for cam in self.cameras:
            if cam.zone not in zones:
                raise ValueError(f"camera {cam.id}: zone {cam.zone!r} is not listed in zones")
            if cam.team not in teams:
                raise ValueError(f"camera {cam.id}: team {cam.team!r} is not listed in teams")
        _no_overlap(self.shifts)
        return self

    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{kind} {name!r} is listed twice")
        seen.add(name)


def _no_overlap(shifts: list[Shift]) -> None:
    """A minute of the day belongs to at most one shift, or a lift would count twice."""
    owner: dict[int, str] = {}
    for shift in shifts:
        start, end = shift.minutes()
        length = (end - start) % (24 * 60)
        for k in range(length):
            minute = (start + k) % (24 * 60)
            if minute in owner:
                raise ValueError(f"shifts {owner[minute]} and {shift.name} overlap")
            owner[minute] = shift.name


class Organisation(_Item):
    sites: list[Site] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_sites(self) -> Self:
        _unique("site", [s.id for s in self.sites])
        return self


@dataclass(frozen=True)
class Placement:
    """Where and when a lift happened, in the organisation's terms."""

    zone: str
    team: str
    shift: str | None
    day: date


class Directory:
    """Fast lookups over one `Organisation` snapshot (the ingest places every lift)."""

    def __init__(self, org: Organisation) -> None:
        self.org = org
        self._sites = {s.id: s for s in org.sites}
        self._cameras = {(s.id, c.id): c for s in org.sites for c in s.cameras}
        self._zones = {s.id: s.tz() for s in org.sites}
        self._shifts = {s.id: [(sh.name, *sh.minutes()) for sh in s.shifts] for s in org.sites}

    def site(self, site: str) -> Site | None:
        return self._sites.get(site)

    def tz(self, site: str) -> ZoneInfo:
        return self._zones.get(site) or ZoneInfo("UTC")

    def place(self, site: str, camera: str, at: datetime) -> Placement:
        cam = self._cameras.get((site, camera))
        shift, day = self.shift_at(site, at)
        zone = cam.zone if cam else UNASSIGNED
        team = cam.team if cam else UNASSIGNED
        return Placement(zone=zone, team=team, shift=shift, day=day)

    def shift_at(self, site: str, at: datetime) -> tuple[str | None, date]:
        """The shift running at ``at`` and the local day it started on."""
        local = at.astimezone(self.tz(site))
        minute = local.hour * 60 + local.minute
        for name, start, end in self._shifts.get(site, ()):
            if start < end and start <= minute < end:
                return name, local.date()
            if start > end and minute >= start:
                return name, local.date()
            if start > end and minute < end:
                return name, local.date() - timedelta(days=1)
        return None, local.date()
