"""The HTML pages: team overview, team detail, camera health and the lift list.

Server-rendered with Jinja2 and inline SVG charts, so a phone on the warehouse Wi-Fi needs
nothing but this server. Every page needs a login (any role). Periods are the last 7 or 30
site-local days including today, compared with the 7 or 30 days before, one site at a time.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from dashboard import charts, metrics
from dashboard.app import Services
from dashboard.auth import Principal, require
from dashboard.bounds import EARLIEST, LATEST, check_day
from dashboard.deps import ServicesDep
from dashboard.metrics import Days, Filters, GroupMetrics, Posture, View
from dashboard.org import UNASSIGNED, Directory

HERE = Path(__file__).parent
STATIC = HERE / "static"
PAGE_SIZE = 50

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(require("viewer"))]
PeriodDays = Annotated[int, Query(ge=1, le=92, description="Days, today included")]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _points(delta: float | None) -> str:
    return "" if delta is None else f"{delta * 100:+.0f} pts"


def _trend(delta: float | None) -> str:
    """Arrow class for a change in risky ratio: up is worse, so red."""
    if delta is None:
        return "none"
    if delta > 0.005:
        return "up"
    if delta < -0.005:
        return "down"
    return "flat"


def _local(at: datetime | None, tz: ZoneInfo) -> str:
    return "–" if at is None else at.astimezone(tz).strftime("%a %d %b %H:%M")


def _ago(at: datetime | None, now: datetime) -> str:
    """How long ago, coarsely: enough to see a camera that went quiet."""
    if at is None:
        return "never"
    seconds = max(0, int((now - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


templates.env.filters["percent"] = _percent
templates.env.filters["local"] = _local
templates.env.filters["ago"] = _ago
templates.env.filters["points"] = _points
templates.env.globals["trend"] = _trend


@router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    """The stylesheet (and any other file shipped in ``dashboard/static``)."""
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or not path.is_file():
        raise HTTPException(404, "not found")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=3600"})


# Shared page context


@dataclass(frozen=True)
class SiteView:
    """The site a page shows, its local clock and the organisation's names."""

    id: str
    name: str
    tz: ZoneInfo
    today: date
    all_sites: list[str]


def _site(services: Services, requested: str | None) -> SiteView:
    directory = services.org.directory()
    with services.store.engine.connect() as conn:
        known = metrics.sites(conn)
    if requested is not None and requested not in known:
        raise HTTPException(404, f"no site {requested!r}")
    site_id = requested or (known[0] if known else "")
    tz = directory.tz(site_id)
    site = directory.site(site_id)
    name = (site.name if site else None) or site_id
    return SiteView(site_id, name, tz, datetime.now(tz).date(), known)


def _team_names(directory: Directory, site: str) -> dict[str, str]:
    s = directory.site(site)
    names = {t.id: t.name or t.id for t in s.teams} if s else {}
    names.setdefault(UNASSIGNED, "Unassigned cameras")
    return names


def _render(request: Request, name: str, user: Principal, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"user": user, **context})


@dataclass(frozen=True)
class Card:
    team: str
    name: str
    m: GroupMetrics | None


# Pages


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request,
    services: ServicesDep,
    user: Viewer,
    site: str | None = None,
    days: PeriodDays = 7,
) -> HTMLResponse:
    """A card per team (risky ratio, trend, coverage, lifts) and the daily risky ratio."""
    view = _site(services, site)
    directory = services.org.directory()
    period = Days.ending(view.today, days)
    min_lifts = services.config.privacy.min_group_lifts
    with services.store.engine.connect() as conn:
        summary = metrics.summarise(
            conn, ("team",), period, Filters(site=view.id), min_group_lifts=min_lifts
        )
        series = metrics.daily(conn, period, Filters(site=view.id), min_group_lifts=min_lifts)
    names = _team_names(directory, view.id)
    by_team = {m.team: m for m in summary}
    listed = directory.site(view.id)
    order = [t.id for t in listed.teams] if listed else []
    order += sorted(t for t in by_team if t is not None and t not in order)
    cards = [Card(t, names.get(t, t), by_team.get(t)) for t in order]
    chart = charts.ratio_chart(
        f"Risky ratio per day, last {days} days",
        period.dates(),
        [
            charts.RatioSeries(
                names.get(s.team or "", s.team or ""),
                [p.risky_ratio for p in s.points],
                [p.lifts for p in s.points],
            )
            for s in series
        ],
    )
    return _render(
        request,
        "overview.html",
        user,
        nav="overview",
        site=view,
        days=days,
        period=period,
        cards=cards,
        chart=chart,
        min_lifts=min_lifts,
    )


@router.get("/teams/{site}/{team}", response_class=HTMLResponse)
def team_detail(
    request: Request,
    services: ServicesDep,
    user: Viewer,
    site: str,
    team: str,
    days: PeriodDays = 7,
) -> HTMLResponse:
    """One team: its numbers, lifts per day by posture, and its zones, shifts and cameras."""
    view = _site(services, site)
    names = _team_names(services.org.directory(), view.id)
    period = Days.ending(view.today, days)
    min_lifts = services.config.privacy.min_group_lifts
    only = Filters(site=view.id, team=team)
    with services.store.engine.connect() as conn:
        total = metrics.summarise(conn, (), period, only, min_group_lifts=min_lifts)
        series = metrics.daily(conn, period, only, min_group_lifts=min_lifts)
        breakdowns = {
            dim: metrics.summarise(conn, (dim,), period, only, min_group_lifts=min_lifts)
            for dim in ("zone", "shift", "camera")
        }
    if team not in names and not total:
        raise HTTPException(404, f"no team {team!r} at {view.id}")
    points = series[0].points if series else []
    bars = charts.posture_bars(
        f"Lifts per day by posture, last {days} days",
        [
            charts.DayCounts(p.day or view.today, p.lifts, p.hinge, p.rounded, p.unscorable)
            for p in points
        ]
        or [charts.DayCounts(d, 0, 0, 0, 0) for d in period.dates()],
    )
    ratio = charts.ratio_chart(
        f"Risky ratio per day, last {days} days",
        period.dates(),
        [
            charts.RatioSeries(
                names.get(team, team),
                [p.risky_ratio for p in points] or [None] * len(period.dates()),
                [p.lifts for p in points] or [0] * len(period.dates()),
            )
        ],
    )
    return _render(
        request,
        "team.html",
        user,
        nav="overview",
        site=view,
        days=days,
        period=period,
        team=team,
        team_name=names.get(team, team),
        m=total[0] if total else None,
        bars=bars,
        ratio=ratio,
        breakdowns=breakdowns,
        min_lifts=min_lifts,
        posture_colours=charts.POSTURE_COLOURS,
    )


@router.get("/cameras", response_class=HTMLResponse)
def cameras_page(
    request: Request, services: ServicesDep, user: Viewer, site: str | None = None
) -> HTMLResponse:
    """Each camera's state, last message and lift, events possibly lost, and telemetry."""
    now = datetime.now(timezone.utc)
    with services.store.engine.connect() as conn:
        cams = metrics.camera_health(conn, now, site)
    directory = services.org.directory()
    return _render(
        request,
        "cameras.html",
        user,
        nav="cameras",
        cameras=cams,
        now=now,
        tz_of=directory.tz,
        site_filter=site,
    )


@router.get("/lifts", response_class=HTMLResponse)
def lifts_page(
    request: Request,
    services: ServicesDep,
    user: Viewer,
    site: str | None = None,
    camera: str | None = None,
    zone: str | None = None,
    team: str | None = None,
    shift: str | None = None,
    posture: str | None = None,
    view: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: Annotated[str | None, Query()] = None,
    cursor: str | None = None,
) -> HTMLResponse:
    """Lifts newest first; ``from``/``to`` are whole days at the chosen site (UTC without one)."""
    directory = services.org.directory()
    tz = directory.tz(site) if site else ZoneInfo("UTC")
    first, last = _form_day(from_), _form_day(to)
    query = metrics.LiftQuery(
        site=site or None,
        camera=camera or None,
        zone=zone or None,
        team=team or None,
        shift=shift or None,
        posture=_choice(posture, get_args(Posture)),
        view=_choice(view, get_args(View)),
        start=_day_start(first, tz),
        end=_day_start(last + timedelta(days=1), tz) if last else None,
    )
    with services.store.engine.connect() as conn:
        try:
            page = metrics.list_lifts(conn, query, limit=PAGE_SIZE, cursor=cursor or None)
        except metrics.CursorError:
            raise HTTPException(400, "invalid page link; start again from the newest") from None
        known_sites = metrics.sites(conn)
    chosen = {
        "site": site,
        "camera": camera,
        "zone": zone,
        "team": team,
        "shift": shift,
        "posture": posture,
        "view": view,
        "from": first.isoformat() if first else None,
        "to": last.isoformat() if last else None,
    }
    kept = {k: v for k, v in chosen.items() if v}
    older = (
        "/lifts?" + urlencode({**kept, "cursor": page.next_cursor}) if page.next_cursor else None
    )
    return _render(
        request,
        "lifts.html",
        user,
        nav="lifts",
        lifts=page.lifts,
        chosen=chosen,
        options=_options(directory, known_sites),
        older=older,
        newest="/lifts?" + urlencode(kept) if cursor else None,
        tz_of=directory.tz,
    )


def _form_day(value: str | None) -> date | None:
    """A day from a date input; an empty field means no limit."""
    if not value:
        return None
    try:
        return check_day(date.fromisoformat(value))
    except ValueError:
        raise HTTPException(
            422, f"{value!r} is not a day (YYYY-MM-DD) between {EARLIEST} and {LATEST}"
        ) from None


def _choice(value: str | None, allowed: tuple[Any, ...]) -> Any:
    """A select's value; empty means all."""
    if not value:
        return None
    if value not in allowed:
        raise HTTPException(422, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _day_start(day: date | None, tz: ZoneInfo) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tz)


def _options(directory: Directory, sites: list[str]) -> dict[str, list[str]]:
    """Choices for the lift filters, from the organisation."""
    org = directory.org
    return {
        "site": sites,
        "team": sorted({t.id for s in org.sites for t in s.teams} | {UNASSIGNED}),
        "zone": sorted({z.id for s in org.sites for z in s.zones} | {UNASSIGNED}),
        "camera": sorted({c.id for s in org.sites for c in s.cameras}),
        "shift": sorted({sh.name for s in org.sites for sh in s.shifts}),
        "posture": ["hinge", "rounded", "unscorable"],
        "view": ["side", "oblique", "front"],
    }
