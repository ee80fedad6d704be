"""Alert rules: what counts as repeated risky lifting, and how an alert is worded.

Pure: the engine counts lifts in the database and asks these functions whether a rule
fired. Every scope is a place or a group (camera, zone, team), never a person: the
same-track rule follows one anonymous track to see a repetition, but the alert names the
camera and zone where it happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from typing_extensions import Self

from edge.events import validate_name

Kind = Literal["same_track", "rate", "team_ratio"]
ScopeKind = Literal["camera", "zone", "team"]

KIND_LABELS: dict[str, str] = {
    "same_track": "repeated by one person",
    "rate": "rounded-lift rate",
    "team_ratio": "team risky ratio over the shift",
}


class Rule(BaseModel):
    """One rule, as the YAML defaults, the database and the API carry it.

    - ``same_track``: ``count`` rounded lifts of one anonymous track within ``window_min``;
      reported by camera (and its zone).
    - ``rate``: ``count`` rounded lifts within ``window_min`` at one camera or in one zone
      (``scope``).
    - ``team_ratio``: over the team's current shift, rounded / scored lifts above
      ``ratio_pct`` % with at least ``min_scored`` scored (hinge or rounded) lifts.

    After an alert, the same rule and scope stay quiet for ``cooldown_min``: further
    triggers in that window update the open alert's count instead of raising a new one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, AfterValidator(validate_name)]
    kind: Kind
    scope: ScopeKind | None = None
    """``camera`` or ``zone`` for ``rate``; fixed for the other kinds (camera, team)."""
    count: int | None = Field(default=None, ge=1, le=100_000)
    window_min: float | None = Field(default=None, gt=0, le=24 * 60)
    ratio_pct: float | None = Field(default=None, ge=0, lt=100)
    min_scored: int | None = Field(default=None, ge=1, le=1_000_000)
    cooldown_min: float = Field(default=10.0, ge=0, le=7 * 24 * 60)
    enabled: bool = True

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.kind == "team_ratio":
            missing = [n for n in ("ratio_pct", "min_scored") if getattr(self, n) is None]
            fixed: ScopeKind = "team"
        else:
            missing = [n for n in ("count", "window_min") if getattr(self, n) is None]
            fixed = "camera"
        if missing:
            raise ValueError(f"rule {self.id}: a {self.kind} rule needs {', '.join(missing)}")
        if self.kind == "rate":
            if self.scope not in ("camera", "zone"):
                raise ValueError(f"rule {self.id}: a rate rule needs scope camera or zone")
        elif self.scope not in (None, fixed):
            raise ValueError(f"rule {self.id}: a {self.kind} rule is scoped by {fixed}")
        else:
            object.__setattr__(self, "scope", fixed)
        return self

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_min or 0)

    @property
    def cooldown(self) -> timedelta:
        return timedelta(minutes=self.cooldown_min)

    def summary(self) -> str:
        if self.kind == "same_track":
            return f"≥ {self.count} rounded lifts by one person within {_num(self.window_min)} min"
        if self.kind == "rate":
            return (
                f"≥ {self.count} rounded lifts per {self.scope} within {_num(self.window_min)} min"
            )
        return f"rounded > {_num(self.ratio_pct)} % of ≥ {self.min_scored} scored lifts in a shift"


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(id="same-track", kind="same_track", count=3, window_min=10, cooldown_min=10),
    Rule(id="camera-rate", kind="rate", scope="camera", count=10, window_min=30, cooldown_min=30),
    Rule(id="zone-rate", kind="rate", scope="zone", count=20, window_min=30, cooldown_min=30),
    Rule(id="team-ratio", kind="team_ratio", ratio_pct=30, min_scored=20, cooldown_min=240),
)


def check_unique(rules: list[Rule]) -> list[Rule]:
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ValueError(f"rule {rule.id!r} is listed twice")
        seen.add(rule.id)
    return rules


def count_fires(rule: Rule, rounded_in_window: int) -> bool:
    """``same_track`` and ``rate``: enough rounded lifts in the window."""
    return rule.count is not None and rounded_in_window >= rule.count


def ratio_fires(rule: Rule, scored: int, rounded: int) -> bool:
    """``team_ratio``: enough scored lifts, and the rounded share strictly above the limit."""
    if rule.min_scored is None or rule.ratio_pct is None or scored < rule.min_scored:
        return False
    return rounded * 100 > rule.ratio_pct * scored


@dataclass(frozen=True)
class Scope:
    """Where a rule fired: a camera (with its zone), a zone, or a team in one shift."""

    site: str
    kind: ScopeKind
    camera: str | None = None
    zone: str | None = None
    team: str | None = None
    shift: str | None = None
    day: date | None = None

    @property
    def key(self) -> str:
        """The cooldown key within (rule, site); a team's key includes its shift."""
        if self.kind == "camera":
            return f"camera:{self.camera}"
        if self.kind == "zone":
            return f"zone:{self.zone}"
        return f"team:{self.team}:{self.day or ''}:{self.shift or ''}"

    def label(self) -> str:
        if self.kind == "camera":
            return f"camera {self.camera} (zone {self.zone})"
        if self.kind == "zone":
            return f"zone {self.zone}"
        shift = f" {self.shift} shift" if self.shift else ""
        return f"team {self.team},{shift} {self.day}"


def alert_text(
    rule: Rule, scope: Scope, count: int, value: float | None, at: datetime, tz_name: str
) -> str:
    """One line a supervisor reads on a phone: where, what, how many, when (site time)."""
    local = at.astimezone(ZoneInfo(tz_name)).strftime("%H:%M")
    where = f"{scope.site}: {scope.label()}"
    if rule.kind == "same_track":
        what = (
            f"one person made {_plural(int(value or count), 'rounded-back lift')} "
            f"within {_num(rule.window_min)} min"
        )
    elif rule.kind == "rate":
        what = f"{_plural(count, 'rounded-back lift')} within {_num(rule.window_min)} min"
    else:
        what = (
            f"{_num(round(value or 0.0, 1))} % of scored lifts rounded this shift "
            f"(limit {_num(rule.ratio_pct)} %, {_plural(count, 'rounded lift')})"
        )
    return f"Risky lifting at {where} — {what}, at {local}."


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
