"""Rule evaluation as lifts are stored: counts from the database, one alert per window.

The ingest calls `AlertEngine.on_stored` after each committed batch. Several ingest
workers share the lift stream (MQTT shared subscriptions), so no worker sees all lifts:
every count is read from the ``lifts`` table (and the team ratio from ``lift_hourly``),
and zone, team and shift come from the stored rows. Which worker raises the alert of a
window is decided in the database: the first to claim the (rule, site, scope) row in
``alert_cooldowns`` whose cooldown has ended creates the alert and its deliveries; the
others (and later triggers in the window) only raise the open alert's count. Evaluation
reads what is committed, so a batch whose evaluation was lost (a crash) is still counted
by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from dashboard.alerts.rules import Rule, Scope, alert_text, count_fires, ratio_fires
from dashboard.alerts.store import load_rules, utcnow
from dashboard.store import schema
from dashboard.store.sql import greatest, upsert
from edge.events import LiftEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trigger:
    """A rule that holds for a scope right now, with what the alert reports."""

    rule: Rule
    scope: Scope
    since: datetime
    """Start of the counting window: the alert counts rounded lifts in scope from here."""
    count: int
    value: float | None


@dataclass(frozen=True)
class Fired:
    alert_id: int
    rule_id: str
    scope: Scope
    new: bool
    """True when this call raised the alert, False when it updated an open one."""


class AlertEngine:
    """Evaluates the stored rules against the database for each batch of new lifts."""

    def __init__(
        self,
        engine: Engine,
        channels: Sequence[str],
        *,
        max_lift_age: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = utcnow,
        on_fired: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.channels = tuple(channels)
        self.max_lift_age = max_lift_age
        self.clock = clock
        self.on_fired = on_fired

    def on_stored(self, events: Sequence[LiftEvent]) -> list[Fired]:
        """Evaluate after ``events`` committed: the batch's new lifts, and rounded ones
        stored before and delivered again (their first evaluation may have been cut short by
        a crash; a claim or a recount makes a second evaluation change nothing)."""
        now = self.clock()
        fresh = [
            str(e.event_id)
            for e in events
            if e.posture == "rounded" and now - e.bottom <= self.max_lift_age
        ]
        if not fresh:
            return []
        with self.engine.connect() as conn:
            rules = [r for r in load_rules(conn) if r.enabled]
            rows = _stored_rows(conn, fresh) if rules else []
            triggers = [t for rule in rules for t in evaluate(conn, rule, rows)]
        fired = [self._fire(t, now) for t in triggers]
        if any(f.new for f in fired) and self.on_fired is not None:
            self.on_fired()
        return fired

    def _fire(self, t: Trigger, now: datetime) -> Fired:
        s = t.scope
        with self.engine.begin() as conn:
            if _claim(conn, t.rule, s, now):
                alert_id = _insert_alert(conn, t, now, self.channels)
                return Fired(alert_id, t.rule.id, s, new=True)
            alert_id = _update_open(conn, t, now)
        return Fired(alert_id, t.rule.id, s, new=False)


_COLUMNS = ("site", "camera", "zone", "team", "shift", "day", "track_id", "bottom")


def _stored_rows(conn: Connection, event_ids: list[str]) -> list[dict[str, Any]]:
    lifts = schema.lifts
    cols = [lifts.c[name] for name in _COLUMNS]
    out: list[dict[str, Any]] = []
    for i in range(0, len(event_ids), 500):
        chunk = event_ids[i : i + 500]
        rows = conn.execute(select(*cols).where(lifts.c.event_id.in_(chunk))).mappings()
        out.extend(dict(r) for r in rows)
    return out


def _latest(
    rows: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """The newest row of each group."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        k = key(row)
        if k not in groups or row["bottom"] > groups[k]["bottom"]:
            groups[k] = row
    return [groups[k] for k in sorted(groups)]


def _rounded_since(
    conn: Connection, where: list[Any], since: datetime, until: datetime | None = None
) -> int:
    lifts = schema.lifts
    stmt = select(func.count()).where(*where, lifts.c.posture == "rounded", lifts.c.bottom >= since)
    if until is not None:
        stmt = stmt.where(lifts.c.bottom <= until)
    return int(conn.execute(stmt).scalar_one())


def _scope_where(scope: Scope) -> list[Any]:
    lifts = schema.lifts
    where = [lifts.c.site == scope.site]
    if scope.kind == "camera":
        where.append(lifts.c.camera == scope.camera)
    elif scope.kind == "zone":
        where.append(lifts.c.zone == scope.zone)
    return where


def _shift_counts(conn: Connection, scope: Scope) -> tuple[int, int]:
    """(scored, rounded) lifts of the team in its shift, from the hourly roll-up."""
    h = schema.lift_hourly
    row = conn.execute(
        select(func.coalesce(func.sum(h.c.hinge), 0), func.coalesce(func.sum(h.c.rounded), 0))
        .where(h.c.site == scope.site, h.c.team == scope.team, h.c.shift == (scope.shift or ""))
        .where(h.c.day == scope.day)
    ).one()
    hinge, rounded = int(row[0]), int(row[1])
    return hinge + rounded, rounded


def evaluate(conn: Connection, rule: Rule, rows: Sequence[dict[str, Any]]) -> list[Trigger]:
    """The scopes where ``rule`` holds after the lifts in ``rows`` (new rounded lifts)."""
    lifts = schema.lifts
    out: dict[str, Trigger] = {}
    if rule.kind == "same_track":
        for r in _latest(rows, lambda r: (r["site"], r["camera"], r["track_id"])):
            since = r["bottom"] - rule.window
            where = [lifts.c.site == r["site"], lifts.c.camera == r["camera"]]
            n = _rounded_since(
                conn, [*where, lifts.c.track_id == r["track_id"]], since, r["bottom"]
            )
            if not count_fires(rule, n):
                continue
            scope = Scope(r["site"], "camera", camera=r["camera"], zone=r["zone"])
            best = out.get(scope.key)
            if best is None or n > (best.value or 0):
                count = _rounded_since(conn, where, since, r["bottom"])
                out[scope.key] = Trigger(rule, scope, since, count, float(n))
    elif rule.kind == "rate":
        field = "camera" if rule.scope == "camera" else "zone"
        for r in _latest(rows, lambda r: (r["site"], r[field])):
            scope = (
                Scope(r["site"], "camera", camera=r["camera"], zone=r["zone"])
                if field == "camera"
                else Scope(r["site"], "zone", zone=r["zone"])
            )
            since = r["bottom"] - rule.window
            n = _rounded_since(conn, _scope_where(scope), since, r["bottom"])
            if count_fires(rule, n):
                out[scope.key] = Trigger(rule, scope, since, n, None)
    else:
        for r in _latest(rows, lambda r: (r["site"], r["team"], r["shift"], r["day"])):
            scope = Scope(r["site"], "team", team=r["team"], shift=r["shift"] or None, day=r["day"])
            scored, rounded = _shift_counts(conn, scope)
            if ratio_fires(rule, scored, rounded):
                value = 100.0 * rounded / scored
                out[scope.key] = Trigger(rule, scope, r["bottom"], rounded, value)
    return list(out.values())


def _claim(conn: Connection, rule: Rule, scope: Scope, now: datetime) -> bool:
    """Take the (rule, scope) window if its cooldown has ended; atomic across workers."""
    c = schema.alert_cooldowns
    stmt = upsert(conn, c).values(
        rule_id=rule.id, site=scope.site, scope_key=scope.key, alert_id=None,
        until=now + rule.cooldown,
    )  # fmt: skip
    stmt = stmt.on_conflict_do_update(
        index_elements=["rule_id", "site", "scope_key"],
        set_={"alert_id": None, "until": stmt.excluded.until},
        where=c.c.until <= now,
    )
    return conn.execute(stmt.returning(c.c.rule_id)).first() is not None


def _site_timezone(conn: Connection, site: str) -> str:
    tz = conn.execute(select(schema.sites.c.timezone).where(schema.sites.c.id == site)).scalar()
    return tz or "UTC"


def _insert_alert(conn: Connection, t: Trigger, now: datetime, channels: Sequence[str]) -> int:
    s = t.scope
    text = alert_text(t.rule, s, t.count, t.value, now, _site_timezone(conn, s.site))
    inserted = conn.execute(
        schema.alerts.insert().values(
            rule_id=t.rule.id,
            kind=t.rule.kind,
            site=s.site,
            scope_kind=s.kind,
            scope_key=s.key,
            camera=s.camera,
            zone=s.zone,
            team=s.team,
            shift=s.shift,
            day=s.day,
            since=t.since,
            fired_at=now,
            last_at=now,
            count=t.count,
            value=t.value,
            text=text,
            status="open",
        )
    ).inserted_primary_key
    assert inserted is not None
    alert_id = int(inserted[0])
    c = schema.alert_cooldowns
    conn.execute(
        update(c)
        .where(c.c.rule_id == t.rule.id, c.c.site == s.site, c.c.scope_key == s.key)
        .values(alert_id=alert_id)
    )
    if channels:
        conn.execute(
            schema.alert_deliveries.insert(),
            [
                {
                    "alert_id": alert_id,
                    "channel": ch,
                    "status": "pending",
                    "attempts": 0,
                    "next_at": now,
                    "created_at": now,
                }
                for ch in channels
            ],
        )
    log.info("alert %d (%s): %s", alert_id, t.rule.id, text)
    return int(alert_id)


def _update_open(conn: Connection, t: Trigger, now: datetime) -> int:
    """Count further rounded lifts into the window's alert (monotonic: racing workers that
    counted at different moments leave the larger, later count)."""
    c, a = schema.alert_cooldowns, schema.alerts
    s = t.scope
    row = conn.execute(
        select(a.c.id, a.c.since, a.c.value)
        .join(c, c.c.alert_id == a.c.id)
        .where(c.c.rule_id == t.rule.id, c.c.site == s.site, c.c.scope_key == s.key)
    ).first()
    if row is None:
        return 0
    if t.rule.kind == "team_ratio":
        count, value = t.count, t.value
    else:
        count = _rounded_since(conn, _scope_where(s), row.since)
        value = t.value if t.value is None or row.value is None else max(t.value, row.value)
    conn.execute(
        update(a)
        .where(a.c.id == row.id)
        .values(count=greatest(conn, a.c.count, count), value=value, last_at=now)
    )
    return int(row.id)
