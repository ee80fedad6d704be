"""The alerts JSON API: list and read alerts, acknowledge and resolve them, edit the rules.

Viewers read; managers acknowledge and resolve (who and when is recorded); admins edit the
rules, which every ingest worker reads from the database on its next batch.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict

from dashboard.alerts.rules import Rule, check_unique
from dashboard.alerts.store import (
    AlertFilter,
    Status,
    acknowledge,
    delete_rule,
    get_alert,
    list_alerts,
    load_rules,
    put_rule,
    replace_rules,
    resolve,
)
from dashboard.auth import Principal, require
from dashboard.deps import ServicesDep

log = logging.getLogger("liftwatch.dashboard.alerts")

router = APIRouter(prefix="/api/v1", tags=["alerts"])

Viewer = Annotated[Principal, Depends(require("viewer"))]
Manager = Annotated[Principal, Depends(require("manager"))]
Admin = Annotated[Principal, Depends(require("admin"))]
AlertId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The alert's id")]
"""Bounded as the database column is: a larger number would fail in the query, not 404."""


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    status: str
    """``pending`` (retried with back-off), ``delivered`` or ``failed`` (given up)."""
    attempts: int
    next_at: datetime
    delivered_at: datetime | None
    last_error: str | None


class AlertOut(BaseModel):
    """One alert: where (camera, zone or team), the rule, how many rounded lifts, status."""

    model_config = ConfigDict(from_attributes=True)

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
    """Rounded lifts in scope from ``since`` until the last trigger of the window."""
    value: float | None
    """Same track: the lifts of the repeating track; team ratio: the percentage."""
    text: str
    status: Status
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    deliveries: list[DeliveryOut]


class AlertPage(BaseModel):
    total: int
    alerts: list[AlertOut]


@router.get("/alerts", response_model=AlertPage, summary="Alerts, newest first")
def alerts_list(
    services: ServicesDep,
    _user: Viewer,
    status: Status | None = None,
    site: str | None = None,
    rule: str | None = None,
    since: Annotated[datetime | None, Query(description="fired at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="fired before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> AlertPage:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"{name}: give a time zone (e.g. Z or +01:00)")
    f = AlertFilter(status, site, rule, since, until, limit, offset)
    with services.store.engine.connect() as conn:
        found, total = list_alerts(conn, f)
    return AlertPage(total=total, alerts=[AlertOut.model_validate(a) for a in found])


@router.get("/alerts/{alert_id}", response_model=AlertOut, summary="One alert with deliveries")
def alert_get(alert_id: AlertId, services: ServicesDep, _user: Viewer) -> AlertOut:
    with services.store.engine.connect() as conn:
        alert = get_alert(conn, alert_id)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return AlertOut.model_validate(alert)


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    summary="Acknowledge an open alert (manager); records who",
)
def alert_acknowledge(alert_id: AlertId, services: ServicesDep, user: Manager) -> AlertOut:
    with services.store.engine.begin() as conn:
        alert = acknowledge(conn, alert_id, user.username)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return AlertOut.model_validate(alert)


@router.post(
    "/alerts/{alert_id}/resolve", response_model=AlertOut, summary="Resolve an alert (manager)"
)
def alert_resolve(alert_id: AlertId, services: ServicesDep, user: Manager) -> AlertOut:
    with services.store.engine.begin() as conn:
        alert = resolve(conn, alert_id, user.username)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return AlertOut.model_validate(alert)


@router.get("/alert-rules", response_model=list[Rule], summary="The alert rules in use")
def rules_list(services: ServicesDep, _user: Viewer) -> list[Rule]:
    with services.store.engine.connect() as conn:
        return load_rules(conn)


@router.put(
    "/alert-rules",
    response_model=list[Rule],
    summary="Replace all alert rules (admin)",
    description="Every ingest worker uses the new rules from its next batch. Cooldowns "
    "already running keep their end time.",
)
def rules_replace(
    rules: Annotated[list[Rule], Body()], services: ServicesDep, user: Admin
) -> list[Rule]:
    try:
        check_unique(rules)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    with services.store.engine.begin() as conn:
        replace_rules(conn, rules, user.username)
        stored = load_rules(conn)
    log.info("alert rules replaced by %s: %s", user.username, ", ".join(r.id for r in rules))
    return stored


@router.put("/alert-rules/{rule_id}", response_model=Rule, summary="Create or replace a rule")
def rule_put(rule_id: str, rule: Rule, services: ServicesDep, user: Admin) -> Rule:
    if rule.id != rule_id:
        raise HTTPException(422, f"the rule's id {rule.id!r} is not {rule_id!r} of the URL")
    with services.store.engine.begin() as conn:
        put_rule(conn, rule, user.username)
    log.info("alert rule %s set by %s: %s", rule.id, user.username, rule.summary())
    return rule


@router.delete("/alert-rules/{rule_id}", status_code=204, summary="Delete a rule (admin)")
def rule_delete(rule_id: str, services: ServicesDep, user: Admin) -> None:
    with services.store.engine.begin() as conn:
        if not delete_rule(conn, rule_id):
            raise HTTPException(404, f"no rule {rule_id!r}")
    log.info("alert rule %s deleted by %s", rule_id, user.username)
