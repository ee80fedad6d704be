"""Alert rules and alerts in the database: read, seed, edit, acknowledge, resolve.

Rules live in the database so an admin can change them without a restart and every worker
evaluates the same ones; the YAML ``alerts.rules`` only seed an empty installation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Literal

from sqlalchemy import Connection, delete, func, select, update

from dashboard.alerts.rules import Rule
from dashboard.store import schema

Status = Literal["open", "acknowledged", "resolved"]
STATUSES: tuple[Status, ...] = ("open", "acknowledged", "resolved")
SEEDED_KEY = "alert_rules_seeded"

_RULE_FIELDS = (
    "kind",
    "scope",
    "count",
    "window_min",
    "ratio_pct",
    "min_scored",
    "cooldown_min",
    "enabled",
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# Rules


def load_rules(conn: Connection) -> list[Rule]:
    rows = conn.execute(select(schema.alert_rules).order_by(schema.alert_rules.c.id)).mappings()
    return [Rule.model_validate({"id": r["id"], **{k: r[k] for k in _RULE_FIELDS}}) for r in rows]


def seed_rules(conn: Connection, rules: Sequence[Rule]) -> bool:
    """Store ``rules`` once per database; later starts keep what an admin made of them."""
    m = schema.meta
    if conn.execute(select(m.c.value).where(m.c.key == SEEDED_KEY)).first() is not None:
        return False
    replace_rules(conn, rules, None)
    conn.execute(m.insert().values(key=SEEDED_KEY, value=utcnow().isoformat()))
    return True


def replace_rules(conn: Connection, rules: Sequence[Rule], by: str | None) -> None:
    """Make the stored rules exactly ``rules`` (the API's PUT of the whole list)."""
    conn.execute(delete(schema.alert_rules))
    for rule in rules:
        _insert_rule(conn, rule, by)


def put_rule(conn: Connection, rule: Rule, by: str | None) -> bool:
    """Create or replace one rule; True when it was new."""
    t = schema.alert_rules
    existed = conn.execute(delete(t).where(t.c.id == rule.id)).rowcount > 0
    _insert_rule(conn, rule, by)
    return not existed


def delete_rule(conn: Connection, rule_id: str) -> bool:
    t = schema.alert_rules
    return conn.execute(delete(t).where(t.c.id == rule_id)).rowcount > 0


def _insert_rule(conn: Connection, rule: Rule, by: str | None) -> None:
    values = {k: getattr(rule, k) for k in _RULE_FIELDS}
    conn.execute(
        schema.alert_rules.insert().values(id=rule.id, **values, updated_at=utcnow(), updated_by=by)
    )


# Alerts


@dataclass(frozen=True)
class Delivery:
    channel: str
    status: str
    attempts: int
    next_at: datetime
    delivered_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class Alert:
    id: int
    rule_id: str
    kind: str
    site: str
    scope_kind: str
    camera: str | None
    zone: str | None
    team: str | None
    shift: str | None
    day: date | None
    since: datetime
    fired_at: datetime
    last_at: datetime
    count: int
    value: float | None
    text: str
    status: Status
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    deliveries: tuple[Delivery, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if isinstance(value, datetime):
                out[name] = value.isoformat().replace("+00:00", "Z")
            elif isinstance(value, date):
                out[name] = value.isoformat()
            elif name == "deliveries":
                out[name] = [
                    {
                        k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
                        for k, v in d.__dict__.items()
                    }
                    for d in value
                ]
            else:
                out[name] = value
        return out


_ALERT_FIELDS = [c.name for c in schema.alerts.columns if c.name != "scope_key"]


def _alert(row: Any, deliveries: Sequence[Delivery] = ()) -> Alert:
    return Alert(**{k: row[k] for k in _ALERT_FIELDS}, deliveries=tuple(deliveries))


@dataclass(frozen=True)
class AlertFilter:
    status: Status | None = None
    site: str | None = None
    rule_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0


def list_alerts(conn: Connection, f: AlertFilter) -> tuple[list[Alert], int]:
    """The matching alerts, newest first, with their deliveries; and how many match in all."""
    a = schema.alerts
    where = []
    if f.status is not None:
        where.append(a.c.status == f.status)
    if f.site is not None:
        where.append(a.c.site == f.site)
    if f.rule_id is not None:
        where.append(a.c.rule_id == f.rule_id)
    if f.since is not None:
        where.append(a.c.fired_at >= f.since)
    if f.until is not None:
        where.append(a.c.fired_at < f.until)
    total = conn.execute(select(func.count()).select_from(a).where(*where)).scalar_one()
    rows = (
        conn.execute(
            select(a)
            .where(*where)
            .order_by(a.c.fired_at.desc(), a.c.id.desc())
            .limit(f.limit)
            .offset(f.offset)
        )
        .mappings()
        .all()
    )
    per = _deliveries(conn, [r["id"] for r in rows])
    return [_alert(r, per.get(r["id"], ())) for r in rows], int(total)


def get_alert(conn: Connection, alert_id: int) -> Alert | None:
    row = conn.execute(select(schema.alerts).where(schema.alerts.c.id == alert_id)).mappings()
    first = row.first()
    if first is None:
        return None
    return _alert(first, _deliveries(conn, [alert_id]).get(alert_id, ()))


def count_open(conn: Connection) -> int:
    a = schema.alerts
    return int(conn.execute(select(func.count()).where(a.c.status == "open")).scalar_one())


def _deliveries(conn: Connection, ids: list[int]) -> dict[int, list[Delivery]]:
    if not ids:
        return {}
    d = schema.alert_deliveries
    rows = conn.execute(
        select(d).where(d.c.alert_id.in_(ids)).order_by(d.c.alert_id, d.c.channel)
    ).mappings()
    out: dict[int, list[Delivery]] = {}
    for r in rows:
        out.setdefault(r["alert_id"], []).append(
            Delivery(
                r["channel"],
                r["status"],
                r["attempts"],
                r["next_at"],
                r["delivered_at"],
                r["last_error"],
            )
        )
    return out


def acknowledge(conn: Connection, alert_id: int, by: str) -> Alert | None:
    """Mark an open alert acknowledged by ``by``; an acknowledged or resolved one is kept as
    it is (the first acknowledgement is the one on record)."""
    a = schema.alerts
    conn.execute(
        update(a)
        .where(a.c.id == alert_id, a.c.status == "open")
        .values(status="acknowledged", acknowledged_by=by, acknowledged_at=utcnow())
    )
    return get_alert(conn, alert_id)


def resolve(conn: Connection, alert_id: int, by: str) -> Alert | None:
    """Mark an alert resolved; resolving an open one also records the acknowledgement."""
    a = schema.alerts
    now = utcnow()
    conn.execute(
        update(a)
        .where(a.c.id == alert_id, a.c.status == "open")
        .values(acknowledged_by=by, acknowledged_at=now)
    )
    conn.execute(
        update(a)
        .where(a.c.id == alert_id, a.c.status != "resolved")
        .values(status="resolved", resolved_by=by, resolved_at=now)
    )
    return get_alert(conn, alert_id)
