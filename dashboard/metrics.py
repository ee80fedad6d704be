"""Team, zone, camera, shift and day metrics: read-only queries over the store.

Summaries read the roll-ups (``lift_daily`` for whole UTC days, ``lift_hourly`` for the rest),
never the lifts themselves, so 30 days of a busy site is a few thousand rows whatever the
number of lifts. Two kinds of period:

- `Window`: UTC instants ``[start, end)`` aligned to whole hours (the roll-up's grain);
  `Window.covering` widens any range outward to whole hours.
- `Days`: site-local days ``first..last`` from the ``day`` column, the day a lift's shift
  started on (a 02:00 lift of a 22–06 night shift counts for the day before).

Privacy: a group with fewer than ``min_group_lifts`` lifts shows its lift count only; the
posture counts and everything derived from them are None and ``hidden`` is True, since a
ratio over three lifts can point at one person. Nothing here groups or filters by track.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal, get_args

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.sql import ColumnElement

from dashboard.store import schema
from dashboard.store.cameras import list_cameras, possibly_lost
from dashboard.store.lifts import trunk_flexion

Dimension = Literal["team", "zone", "camera", "shift", "day"]
DIMENSIONS: tuple[Dimension, ...] = get_args(Dimension)
Posture = Literal["hinge", "rounded", "unscorable"]
View = Literal["side", "oblique", "front"]

HOUR = timedelta(hours=1)
_DAY_MARGIN = timedelta(days=2)
"""How far a site-local shift day can reach outside the UTC day of the same date."""


# Periods


def floor_hour(at: datetime) -> datetime:
    return at.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def ceil_hour(at: datetime) -> datetime:
    floored = floor_hour(at)
    return floored if floored == at else floored + HOUR


@dataclass(frozen=True)
class Window:
    """UTC ``[start, end)`` on whole hours."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a window needs aware datetimes")
        if floor_hour(self.start) != self.start or floor_hour(self.end) != self.end:
            raise ValueError("a window starts and ends on whole hours (use Window.covering)")
        if self.end <= self.start:
            raise ValueError("a window ends after it starts")

    @classmethod
    def covering(cls, start: datetime, end: datetime) -> Window:
        """The smallest whole-hour window holding ``[start, end)``."""
        return cls(floor_hour(start), ceil_hour(end))

    @classmethod
    def last(cls, days: int, now: datetime) -> Window:
        """The ``days`` × 24 hours up to the end of the hour ``now`` is in."""
        end = floor_hour(now) + HOUR
        return cls(end - timedelta(days=days), end)

    def previous(self) -> Window:
        """The period of the same length just before this one (for the trend)."""
        return Window(self.start - (self.end - self.start), self.start)

    @property
    def hours(self) -> int:
        return int((self.end - self.start) / HOUR)


@dataclass(frozen=True)
class Days:
    """Site-local days ``first..last``, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError("the last day is before the first")

    @classmethod
    def ending(cls, last: date, count: int) -> Days:
        return cls(last - timedelta(days=count - 1), last)

    def previous(self) -> Days:
        length = (self.last - self.first).days + 1
        return Days(self.first - timedelta(days=length), self.first - timedelta(days=1))

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


Period = Window | Days


@dataclass(frozen=True)
class Filters:
    """Restrict a summary to one site, team, zone, camera or shift (None: all)."""

    site: str | None = None
    team: str | None = None
    zone: str | None = None
    camera: str | None = None
    shift: str | None = None


# Results


@dataclass(frozen=True)
class Totals:
    """Raw sums of one group from the roll-up."""

    lifts: int = 0
    hinge: int = 0
    rounded: int = 0
    unscorable: int = 0
    active_hours: int = 0
    flex: tuple[int, ...] = (0,) * schema.FLEX_BINS

    @property
    def scored(self) -> int:
        return self.hinge + self.rounded


@dataclass(frozen=True)
class GroupMetrics:
    """The metrics of one group; only the grouped-by fields of the key are set.

    ``lifts_per_active_hour`` is lifts divided by active hours: clock hours (UTC) in which
    the group recorded at least one lift, so idle nights and weekends do not dilute it.
    ``previous_risky_ratio`` / ``risky_ratio_delta`` compare with the period of the same
    length just before (positive delta: more rounded lifts than before)."""

    site: str
    team: str | None = None
    zone: str | None = None
    camera: str | None = None
    shift: str | None = None
    day: date | None = None
    lifts: int = 0
    hinge: int | None = None
    rounded: int | None = None
    unscorable: int | None = None
    hidden: bool = False
    risky_ratio: float | None = None
    coverage: float | None = None
    active_hours: int = 0
    lifts_per_active_hour: float | None = None
    median_trunk_flexion_deg: float | None = None
    previous_lifts: int | None = None
    previous_risky_ratio: float | None = None
    risky_ratio_delta: float | None = None

    def key(self, dims: Sequence[Dimension]) -> tuple[Any, ...]:
        return (self.site, *(getattr(self, d) for d in dims))


def median_from_histogram(bins: Sequence[int], width: float = schema.FLEX_BIN_DEG) -> float | None:
    """The median, interpolated linearly inside the bin where half the count is reached."""
    n = sum(bins)
    if n <= 0:
        return None
    half = n / 2
    below = 0
    for i, count in enumerate(bins):
        if count and below + count >= half:
            return i * width + (half - below) / count * width
        below += count
    return None


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def metrics_of(key: dict[str, Any], totals: Totals, min_group_lifts: int) -> GroupMetrics:
    """Metrics of one group's totals, hiding the posture-derived ones for a small group."""
    per_hour = round(totals.lifts / totals.active_hours, 2) if totals.active_hours else None
    base = GroupMetrics(
        **key,
        lifts=totals.lifts,
        active_hours=totals.active_hours,
        lifts_per_active_hour=per_hour,
    )
    if totals.lifts < min_group_lifts:
        return replace(base, hidden=True)
    median = median_from_histogram(totals.flex)
    return replace(
        base,
        hinge=totals.hinge,
        rounded=totals.rounded,
        unscorable=totals.unscorable,
        risky_ratio=_ratio(totals.rounded, totals.scored),
        coverage=_ratio(totals.scored, totals.lifts),
        median_trunk_flexion_deg=None if median is None else round(median, 1),
    )


# Queries


def _hourly_where(period: Period, filters: Filters) -> list[ColumnElement[bool]]:
    h = schema.lift_hourly.c
    if isinstance(period, Window):
        where = [h.hour >= period.start, h.hour < period.end]
    else:
        start = datetime.combine(period.first, datetime.min.time(), timezone.utc)
        end = datetime.combine(period.last, datetime.min.time(), timezone.utc) + timedelta(days=1)
        where = [
            h.day >= period.first,
            h.day <= period.last,
            h.hour >= start - _DAY_MARGIN,
            h.hour < end + _DAY_MARGIN,
        ]
    return [*where, *_filter(schema.lift_hourly, filters)]


def _whole_days(window: Window) -> tuple[date, date, list[Window]] | None:
    """The whole UTC days inside ``window`` and the partial-day windows at its two ends."""
    first = window.start.date() + timedelta(days=0 if window.start.hour == 0 else 1)
    last = window.end.date() - timedelta(days=1)
    if last < first:
        return None
    day_start = datetime.combine(first, datetime.min.time(), timezone.utc)
    day_end = datetime.combine(last, datetime.min.time(), timezone.utc) + timedelta(days=1)
    edges = [Window(a, b) for a, b in ((window.start, day_start), (day_end, window.end)) if a < b]
    return first, last, edges


def _sums(
    conn: Connection,
    table: Any,
    dims: Sequence[Dimension],
    where: Sequence[ColumnElement[bool]],
    bins: Sequence[str],
) -> dict[tuple[Any, ...], list[int]]:
    t = table.c
    keys = [t.site, *(t[d] for d in dims)]
    q = (
        select(*keys, *(func.sum(t[c]) for c in ("lifts", "hinge", "rounded", "unscorable", *bins)))
        .where(*where)
        .group_by(*keys)
    )
    width = len(keys)
    return {tuple(row[:width]): [int(v or 0) for v in row[width:]] for row in conn.execute(q)}


def _filter(table: Any, filters: Filters) -> list[ColumnElement[bool]]:
    return [
        table.c[name] == value
        for name in ("site", "team", "zone", "camera", "shift")
        if (value := getattr(filters, name)) is not None
    ]


def totals(
    conn: Connection,
    dims: Sequence[Dimension],
    period: Period,
    filters: Filters = Filters(),
    *,
    histogram: bool = True,
) -> dict[tuple[Any, ...], Totals]:
    """Sums per (site, *dims) over the period, from the roll-ups.

    A `Window` reads its whole UTC days from ``lift_daily`` and only the partial hours at its
    ends from ``lift_hourly`` (a 30-day window: ~30× fewer rows). Active hours need the
    distinct hours, so they always come from ``lift_hourly`` (without the 36 flexion bins,
    which are most of the cost; ``histogram=False`` leaves those out entirely)."""
    h = schema.lift_hourly
    bins = schema.FLEX_COLUMNS if histogram else []
    split = _whole_days(period) if isinstance(period, Window) else None
    parts: list[dict[tuple[Any, ...], list[int]]] = []
    if split is None:
        parts.append(_sums(conn, h, dims, _hourly_where(period, filters), bins))
    else:
        first, last, edges = split
        d = schema.lift_daily
        where = [d.c.utc_day >= first, d.c.utc_day <= last, *_filter(d, filters)]
        parts.append(_sums(conn, d, dims, where, bins))
        for edge in edges:
            parts.append(_sums(conn, h, dims, _hourly_where(edge, filters), bins))
    sums: dict[tuple[Any, ...], list[int]] = {}
    for part in parts:
        for key, values in part.items():
            acc = sums.setdefault(key, [0] * len(values))
            for i, v in enumerate(values):
                acc[i] += v
    keys = [h.c.site, *(h.c[d] for d in dims)]
    active_q = (
        select(*keys, func.count(h.c.hour.distinct()))
        .where(*_hourly_where(period, filters))
        .group_by(*keys)
    )
    active = {tuple(row[:-1]): int(row[-1]) for row in conn.execute(active_q)}
    return {
        key: Totals(
            lifts=v[0],
            hinge=v[1],
            rounded=v[2],
            unscorable=v[3],
            active_hours=active.get(key, 0),
            flex=tuple(v[4:]) if histogram else Totals.flex,
        )
        for key, v in sums.items()
    }


def summarise(
    conn: Connection,
    dims: Sequence[Dimension],
    period: Period,
    filters: Filters = Filters(),
    *,
    min_group_lifts: int,
    trend: bool = True,
) -> list[GroupMetrics]:
    """Metrics per (site, *dims) with lifts in the period, sorted by key.

    With ``trend``, each group also gets the previous period's risky ratio and the change
    (both None when either period is hidden or has no scored lift)."""
    for d in dims:
        if d not in DIMENSIONS:
            raise ValueError(f"cannot group by {d!r} (one of {', '.join(DIMENSIONS)})")
    current = totals(conn, dims, period, filters)
    before = totals(conn, dims, period.previous(), filters, histogram=False) if trend else {}
    out = []
    for key in sorted(current, key=_sort_key):
        named = dict(zip(("site", *dims), key, strict=True))
        m = metrics_of(named, current[key], min_group_lifts)
        if trend:
            prev = metrics_of(named, before.get(key, Totals()), min_group_lifts)
            delta = None
            if m.risky_ratio is not None and prev.risky_ratio is not None:
                delta = round(m.risky_ratio - prev.risky_ratio, 4)
            m = replace(
                m,
                previous_lifts=prev.lifts,
                previous_risky_ratio=prev.risky_ratio,
                risky_ratio_delta=delta,
            )
        out.append(m)
    return out


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(k) for k in key)


@dataclass(frozen=True)
class DailySeries:
    """One group's metrics for each day of a `Days` range (days without lifts: lifts 0)."""

    site: str
    team: str | None
    points: list[GroupMetrics] = field(default_factory=list)


def daily(
    conn: Connection,
    days: Days,
    filters: Filters = Filters(),
    *,
    min_group_lifts: int,
    per_team: bool = True,
) -> list[DailySeries]:
    """Per-day metrics of each team (or of each site, ``per_team=False``), every day filled."""
    dims: tuple[Dimension, ...] = ("team", "day") if per_team else ("day",)
    rows = summarise(conn, dims, days, filters, min_group_lifts=min_group_lifts, trend=False)
    groups: dict[tuple[str, str | None], dict[date, GroupMetrics]] = {}
    for m in rows:
        assert m.day is not None
        groups.setdefault((m.site, m.team), {})[m.day] = m
    out = []
    for (site, team), by_day in sorted(groups.items(), key=lambda kv: _sort_key(kv[0])):
        points = [
            by_day.get(d) or metrics_of({"site": site, "team": team, "day": d}, Totals(), 0)
            for d in days.dates()
        ]
        out.append(DailySeries(site=site, team=team, points=points))
    return out


# Lifts


@dataclass(frozen=True)
class LiftQuery:
    """Which lifts to list; a time range applies to the lift's bottom time."""

    site: str | None = None
    camera: str | None = None
    zone: str | None = None
    team: str | None = None
    shift: str | None = None
    posture: Posture | None = None
    view: View | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Lift:
    """One lift as the dashboard shows it: no track id (lifts are not linked to a person)."""

    event_id: str
    site: str
    camera: str
    zone: str
    team: str
    shift: str | None
    day: date
    start: datetime
    bottom: datetime
    end: datetime
    posture: str
    confidence: float
    reason: str | None
    view: str
    trunk_flexion_deg: float | None
    hip_angle_deg: float | None
    knee_angle_deg: float | None
    spine_flexion_deg: float | None
    duration_s: float | None
    reba_trunk: int | None
    model: str


@dataclass(frozen=True)
class LiftPage:
    lifts: list[Lift]
    next_cursor: str | None
    """Pass as ``cursor`` for the next (older) page; None on the last page."""


class CursorError(ValueError):
    """A pagination cursor that this server did not hand out."""


def encode_cursor(bottom: datetime, event_id: str) -> str:
    raw = f"{bottom.astimezone(timezone.utc).isoformat()}|{event_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, event_id = raw.split("|", 1)
        bottom = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError("invalid cursor") from None
    if bottom.tzinfo is None or not event_id or len(event_id) > 36:
        raise CursorError("invalid cursor")
    return bottom, event_id


def list_lifts(
    conn: Connection, query: LiftQuery, *, limit: int = 50, cursor: str | None = None
) -> LiftPage:
    """Newest first (by bottom time, then event id), ``limit`` per page, keyset-paginated:
    a page stays correct while new lifts arrive, and deep pages cost no more than the first."""
    c = schema.lifts.c
    where: list[ColumnElement[bool]] = []
    for name in ("site", "camera", "zone", "team", "shift", "posture", "view"):
        value = getattr(query, name)
        if value is not None:
            where.append(c[name] == value)
    if query.start is not None:
        where.append(c.bottom >= query.start)
    if query.end is not None:
        where.append(c.bottom < query.end)
    if cursor is not None:
        bottom, event_id = decode_cursor(cursor)
        where.append(or_(c.bottom < bottom, and_(c.bottom == bottom, c.event_id < event_id)))
    q = select(schema.lifts).where(*where).order_by(c.bottom.desc(), c.event_id.desc())
    rows = conn.execute(q.limit(limit + 1)).mappings().all()
    lifts = [_lift(r) for r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = encode_cursor(lifts[-1].bottom, lifts[-1].event_id) if more else None
    return LiftPage(lifts=lifts, next_cursor=next_cursor)


def _lift(row: Any) -> Lift:
    return Lift(
        event_id=row["event_id"],
        site=row["site"],
        camera=row["camera"],
        zone=row["zone"],
        team=row["team"],
        shift=row["shift"] or None,
        day=row["day"],
        start=row["start"],
        bottom=row["bottom"],
        end=row["end"],
        posture=row["posture"],
        confidence=row["confidence"],
        reason=row["reason"],
        view=row["view"],
        trunk_flexion_deg=trunk_flexion(row),
        hip_angle_deg=row["hip_angle_deg"],
        knee_angle_deg=row["knee_angle_deg"],
        spine_flexion_deg=row["spine_flexion_deg"],
        duration_s=row["duration_s"],
        reba_trunk=row["reba_trunk"],
        model=row["model"],
    )


# Cameras


@dataclass(frozen=True)
class CameraHealth:
    """A camera's state from its agent, its last lift, events possibly lost and telemetry."""

    site: str
    id: str
    name: str | None
    zone: str
    team: str
    listed: bool
    state: str
    state_since: datetime | None
    last_seen: datetime | None
    last_lift: datetime | None
    agent_version: str | None
    model: str | None
    possibly_lost: int
    lifts_24h: int
    fps: float | None
    inference_ms: float | None
    outbox_depth: int | None
    outbox_dropped: int | None
    stats_at: datetime | None


def camera_health(conn: Connection, now: datetime, site: str | None = None) -> list[CameraHealth]:
    """Every camera the dashboard knows (listed or seen), with its lifts over the last 24 h."""
    recent = totals(conn, ("camera",), Window.last(1, now), Filters(site=site), histogram=False)
    out = []
    for row in list_cameras(conn, site):
        stats: dict[str, Any] = json.loads(row.stats) if row.stats else {}
        out.append(
            CameraHealth(
                site=row.site,
                id=row.id,
                name=row.name,
                zone=row.zone,
                team=row.team,
                listed=bool(row.listed),
                state=row.state,
                state_since=row.state_since,
                last_seen=row.last_seen,
                last_lift=row.last_lift,
                agent_version=row.agent_version,
                model=row.model,
                possibly_lost=possibly_lost(row),
                lifts_24h=recent.get((row.site, row.id), Totals()).lifts,
                fps=stats.get("fps"),
                inference_ms=stats.get("inference_ms"),
                outbox_depth=stats.get("outbox_depth"),
                outbox_dropped=stats.get("outbox_dropped"),
                stats_at=row.stats_at,
            )
        )
    return out


def sites(conn: Connection) -> list[str]:
    """Sites with an organisation entry or a camera that reported."""
    listed = {r[0] for r in conn.execute(select(schema.sites.c.id))}
    seen = {r[0] for r in conn.execute(select(schema.cameras.c.site).distinct())}
    return sorted(listed | seen)
