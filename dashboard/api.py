"""The JSON API under ``/api/v1``: metrics (JSON and CSV), lifts and cameras, viewer and up.

Every route is typed with a response model so the OpenAPI document at ``/docs`` describes
what a client gets. Times are ISO 8601; one without an offset is taken as UTC. Metric
periods are widened to whole UTC hours (the roll-up's grain) and the response says which
period was used.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from dashboard import metrics
from dashboard.auth import require
from dashboard.bounds import Day, Moment
from dashboard.deps import ServicesDep
from dashboard.metrics import Dimension, Posture, View

MAX_PERIOD = timedelta(days=400)
MAX_DAYS = 400
DEFAULT_DAYS = 7

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require("viewer"))])


# Response models


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class GroupOut(_Out):
    """Metrics of one group. Only the fields of the grouping are set (e.g. ``team``)."""

    site: str
    team: str | None = None
    zone: str | None = None
    camera: str | None = None
    shift: str | None = Field(
        None, description="Shift name; empty string for lifts outside every shift."
    )
    day: date | None = Field(None, description="Site-local day the lift's shift started on.")
    lifts: int = Field(description="All lifts, scorable or not. Always shown.")
    hinge: int | None = Field(description="Hip-hinge lifts; null when hidden.")
    rounded: int | None = Field(description="Rounded-back lifts; null when hidden.")
    unscorable: int | None = Field(description="Lifts the agent could not judge; null when hidden.")
    hidden: bool = Field(
        description="True when the group has fewer lifts than privacy.min_group_lifts: "
        "posture counts and everything derived from them are null."
    )
    risky_ratio: float | None = Field(description="rounded / (hinge + rounded).")
    coverage: float | None = Field(description="(hinge + rounded) / lifts: the share judged.")
    active_hours: int = Field(description="Clock hours (UTC) with at least one lift.")
    lifts_per_active_hour: float | None = Field(description="lifts / active_hours.")
    median_trunk_flexion_deg: float | None = Field(
        description="Median maximum trunk flexion, interpolated from the 5° roll-up histogram."
    )
    previous_lifts: int | None = Field(
        None, description="Lifts in the period of the same length just before."
    )
    previous_risky_ratio: float | None = Field(
        None, description="Risky ratio in the previous period (null when hidden there)."
    )
    risky_ratio_delta: float | None = Field(
        None, description="risky_ratio - previous_risky_ratio: positive means worse."
    )


class MetricsOut(_Out):
    group_by: Dimension
    from_: datetime = Field(alias="from", description="Period start used (whole UTC hour).")
    to: datetime = Field(description="Period end used, exclusive (whole UTC hour).")
    previous_from: datetime = Field(description="Start of the period the trend compares with.")
    min_group_lifts: int = Field(description="Groups with fewer lifts are hidden.")
    groups: list[GroupOut]


class DayPoint(_Out):
    day: date
    lifts: int
    hidden: bool
    risky_ratio: float | None
    coverage: float | None
    rounded: int | None
    scored: int | None


class SeriesOut(_Out):
    site: str
    team: str | None = Field(description="Null for a whole-site series.")
    points: list[DayPoint]


class DailyOut(_Out):
    first: date
    last: date
    min_group_lifts: int
    series: list[SeriesOut]


class LiftOut(_Out):
    """One lift. There is no track or person id: lifts are never linked to a worker."""

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
    trunk_flexion_deg: float | None = Field(description="Maximum trunk flexion over the lift.")
    hip_angle_deg: float | None
    knee_angle_deg: float | None
    spine_flexion_deg: float | None
    duration_s: float | None
    reba_trunk: int | None
    model: str


class LiftPageOut(_Out):
    lifts: list[LiftOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next, older page; null on the last page."
    )


class CameraOut(_Out):
    site: str
    id: str
    name: str | None
    zone: str
    team: str
    listed: bool = Field(description="Listed in the organisation (else seen only).")
    state: str = Field(description="online, offline or unknown (no status received).")
    state_since: datetime | None
    last_seen: datetime | None = Field(description="Last message of any kind.")
    last_lift: datetime | None
    agent_version: str | None
    model: str | None
    possibly_lost: int = Field(description="Events missing from the agent's sequence numbers.")
    lifts_24h: int
    fps: float | None
    inference_ms: float | None
    outbox_depth: int | None
    outbox_dropped: int | None
    stats_at: datetime | None


# Parameters


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def _window(start: datetime | None, end: datetime | None) -> metrics.Window:
    end = _utc(end) or metrics.Window.last(1, datetime.now(timezone.utc)).end
    start = _utc(start) or end - timedelta(days=DEFAULT_DAYS)
    if end <= start:
        raise HTTPException(422, "`to` must be after `from`")
    if end - start > MAX_PERIOD:
        raise HTTPException(422, f"a period is at most {MAX_PERIOD.days} days")
    return metrics.Window.covering(start, end)


class MetricParams:
    """Query parameters shared by the JSON and CSV metrics routes."""

    def __init__(
        self,
        group_by: Annotated[Dimension, Query(description="What one row is.")] = "team",
        from_: Annotated[
            Moment | None,
            Query(alias="from", description="Start (default: `to` - 7 days); floored to hour."),
        ] = None,
        to: Annotated[
            Moment | None,
            Query(description="End, exclusive (default: end of this hour); raised to hour."),
        ] = None,
        site: str | None = None,
        team: str | None = None,
        zone: str | None = None,
        camera: str | None = None,
        shift: str | None = None,
    ) -> None:
        self.group_by = group_by
        self.window = _window(from_, to)
        self.filters = metrics.Filters(site=site, team=team, zone=zone, camera=camera, shift=shift)


def _summary(services: ServicesDep, p: MetricParams) -> MetricsOut:
    min_lifts = services.config.privacy.min_group_lifts
    with services.store.engine.connect() as conn:
        groups = metrics.summarise(
            conn, (p.group_by,), p.window, p.filters, min_group_lifts=min_lifts
        )
    return MetricsOut.model_validate(
        {
            "group_by": p.group_by,
            "from": p.window.start,
            "to": p.window.end,
            "previous_from": p.window.previous().start,
            "min_group_lifts": min_lifts,
            "groups": [GroupOut(**asdict(g)) for g in groups],
        }
    )


# Routes


@router.get(
    "/metrics",
    response_model=MetricsOut,
    tags=["metrics"],
    summary="Lift metrics per team, zone, camera, shift or day",
)
def get_metrics(services: ServicesDep, params: Annotated[MetricParams, Depends()]) -> MetricsOut:
    """Counts, risky ratio, coverage, lifts per active hour, median trunk flexion and the
    trend against the previous period of the same length, one row per group with lifts.

    The period ``[from, to)`` is widened to whole UTC hours. Groups are always within one
    site. ``day`` is the site-local day a lift's shift started on; a ``day`` row sums the
    hours of the period only (ask for whole local days to get whole days)."""
    return _summary(services, params)


@router.get(
    "/metrics.csv",
    tags=["metrics"],
    summary="The same metrics as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per group."}},
)
def get_metrics_csv(services: ServicesDep, params: Annotated[MetricParams, Depends()]) -> Response:
    """Columns: site, the grouping, then the metric fields of ``/metrics``; hidden values
    are empty cells."""
    summary = _summary(services, params)
    columns = ["site", params.group_by, *_METRIC_COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for g in summary.groups:
        row = g.model_dump()
        writer.writerow([_cell(row[c]) for c in columns])
    span = f"{params.window.start:%Y%m%dT%H}-{params.window.end:%Y%m%dT%H}"
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="liftwatch-{params.group_by}-{span}.csv"'
        },
    )


_METRIC_COLUMNS = [
    "lifts",
    "hinge",
    "rounded",
    "unscorable",
    "hidden",
    "risky_ratio",
    "coverage",
    "active_hours",
    "lifts_per_active_hour",
    "median_trunk_flexion_deg",
    "previous_lifts",
    "previous_risky_ratio",
    "risky_ratio_delta",
]


def _cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@"):
        return "'" + text
    return text


@router.get(
    "/metrics/daily",
    response_model=DailyOut,
    tags=["metrics"],
    summary="Per-day series for the 7/30-day charts",
)
def get_daily(
    services: ServicesDep,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="Number of days.")] = 7,
    last: Annotated[
        Day | None, Query(description="Last day, included (default: today at the site).")
    ] = None,
    site: str | None = None,
    team: str | None = None,
    per_team: Annotated[bool, Query(description="One series per team, else per site.")] = True,
) -> DailyOut:
    """Every day of the range, per team: lifts, risky ratio and coverage, hidden as in
    ``/metrics``. Days are site-local shift days (a night shift counts for its first day)."""
    min_lifts = services.config.privacy.min_group_lifts
    if last is None:
        tz = services.org.directory().tz(site) if site else timezone.utc
        last = datetime.now(tz).date()
    period = metrics.Days.ending(last, days)
    with services.store.engine.connect() as conn:
        series = metrics.daily(
            conn,
            period,
            metrics.Filters(site=site, team=team),
            min_group_lifts=min_lifts,
            per_team=per_team,
        )
    return DailyOut(
        first=period.first,
        last=period.last,
        min_group_lifts=min_lifts,
        series=[
            SeriesOut(
                site=s.site,
                team=s.team,
                points=[
                    DayPoint(
                        day=p.day or period.first,
                        lifts=p.lifts,
                        hidden=p.hidden,
                        risky_ratio=p.risky_ratio,
                        coverage=p.coverage,
                        rounded=p.rounded,
                        scored=None if p.hidden else (p.hinge or 0) + (p.rounded or 0),
                    )
                    for p in s.points
                ],
            )
            for s in series
        ],
    )


@router.get(
    "/lifts",
    response_model=LiftPageOut,
    tags=["lifts"],
    summary="Lifts, newest first, with filters and cursor pagination",
)
def get_lifts(
    services: ServicesDep,
    site: str | None = None,
    camera: str | None = None,
    zone: str | None = None,
    team: str | None = None,
    shift: str | None = None,
    posture: Posture | None = None,
    view: View | None = None,
    from_: Annotated[
        Moment | None, Query(alias="from", description="Bottom time at or after.")
    ] = None,
    to: Annotated[Moment | None, Query(description="Bottom time before.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> LiftPageOut:
    """Ordered by bottom time, then event id, newest first. Pages are keyset-based, so new
    lifts arriving between requests do not shift or repeat rows."""
    query = metrics.LiftQuery(
        site=site,
        camera=camera,
        zone=zone,
        team=team,
        shift=shift,
        posture=posture,
        view=view,
        start=_utc(from_),
        end=_utc(to),
    )
    with services.store.engine.connect() as conn:
        try:
            page = metrics.list_lifts(conn, query, limit=limit, cursor=cursor)
        except metrics.CursorError as exc:
            raise HTTPException(400, str(exc)) from None
    return LiftPageOut(
        lifts=[LiftOut(**asdict(x)) for x in page.lifts], next_cursor=page.next_cursor
    )


@router.get(
    "/cameras",
    response_model=list[CameraOut],
    tags=["cameras"],
    summary="Cameras with status, lost events and telemetry",
)
def get_cameras(services: ServicesDep, site: str | None = None) -> list[CameraOut]:
    """Every camera listed in the organisation or seen sending, by site and id."""
    with services.store.engine.connect() as conn:
        cams = metrics.camera_health(conn, datetime.now(timezone.utc), site)
    return [CameraOut(**asdict(c)) for c in cams]
