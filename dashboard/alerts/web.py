"""The alerts pages: the alert list with acknowledge / resolve, and the rules (admin edits)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from dashboard.alerts.api import AlertId
from dashboard.alerts.rules import KIND_LABELS, Rule
from dashboard.alerts.store import (
    STATUSES,
    AlertFilter,
    Status,
    acknowledge,
    delete_rule,
    list_alerts,
    load_rules,
    put_rule,
    resolve,
)
from dashboard.auth import Principal, require
from dashboard.deps import ServicesDep
from dashboard.web_auth import templates

router = APIRouter(include_in_schema=False)

Viewer = Annotated[Principal, Depends(require("viewer"))]
Manager = Annotated[Principal, Depends(require("manager"))]
Admin = Annotated[Principal, Depends(require("admin"))]
PAGE_SIZE = 50


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    services: ServicesDep,
    user: Viewer,
    status: Literal["open", "acknowledged", "resolved", "all"] = "open",
    page: Annotated[int, Query(le=(2**31 - 1) // PAGE_SIZE)] = 1,
) -> Response:
    page = max(page, 1)
    f = AlertFilter(
        status=None if status == "all" else status, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    with services.store.engine.connect() as conn:
        found, total = list_alerts(conn, f)
    return templates.TemplateResponse(
        request,
        "alerts.html",
        {
            "user": user,
            "nav": "alerts",
            "alerts": found,
            "total": total,
            "status": status,
            "statuses": [*STATUSES, "all"],
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "can_act": user.has_role("manager"),
        },
    )


def _back(status: str) -> RedirectResponse:
    target = status if status in (*STATUSES, "all") else "open"
    return RedirectResponse(f"/alerts?status={target}", status_code=303)


@router.post("/alerts/{alert_id}/acknowledge")
def alerts_acknowledge(
    alert_id: AlertId, services: ServicesDep, user: Manager, back: Annotated[str, Form()] = "open"
) -> Response:
    with services.store.engine.begin() as conn:
        if acknowledge(conn, alert_id, user.username) is None:
            raise HTTPException(404, f"no alert {alert_id}")
    return _back(back)


@router.post("/alerts/{alert_id}/resolve")
def alerts_resolve(
    alert_id: AlertId, services: ServicesDep, user: Manager, back: Annotated[str, Form()] = "open"
) -> Response:
    with services.store.engine.begin() as conn:
        if resolve(conn, alert_id, user.username) is None:
            raise HTTPException(404, f"no alert {alert_id}")
    return _back(back)


def _rules_page(
    request: Request,
    services: ServicesDep,
    user: Principal,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    with services.store.engine.connect() as conn:
        rules = load_rules(conn)
    return templates.TemplateResponse(
        request,
        "alert_rules.html",
        {
            "user": user,
            "nav": "alerts",
            "rules": rules,
            "kinds": KIND_LABELS,
            "errors": errors or [],
            "can_edit": user.has_role("admin"),
        },
        status_code=status_code,
    )


@router.get("/alert-rules", response_class=HTMLResponse)
def rules_page(request: Request, services: ServicesDep, user: Viewer) -> Response:
    return _rules_page(request, services, user)


def _number(value: str) -> str | None:
    return value.strip() or None


@router.post("/alert-rules", response_class=HTMLResponse)
def rules_save(
    request: Request,
    services: ServicesDep,
    user: Admin,
    id: Annotated[str, Form()],
    kind: Annotated[str, Form()],
    scope: Annotated[str, Form()] = "",
    count: Annotated[str, Form()] = "",
    window_min: Annotated[str, Form()] = "",
    ratio_pct: Annotated[str, Form()] = "",
    min_scored: Annotated[str, Form()] = "",
    cooldown_min: Annotated[str, Form()] = "10",
    enabled: Annotated[str, Form()] = "",
) -> Response:
    data = {
        "id": id.strip(),
        "kind": kind,
        "scope": (scope or None) if kind == "rate" else None,
        "count": _number(count) if kind != "team_ratio" else None,
        "window_min": _number(window_min) if kind != "team_ratio" else None,
        "ratio_pct": _number(ratio_pct) if kind == "team_ratio" else None,
        "min_scored": _number(min_scored) if kind == "team_ratio" else None,
        "cooldown_min": _number(cooldown_min) or "0",
        "enabled": bool(enabled),
    }
    try:
        rule = Rule.model_validate(data)
    except ValidationError as exc:
        errors = [
            f"{'.'.join(map(str, e['loc'])) or 'rule'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        return _rules_page(request, services, user, errors, 422)
    with services.store.engine.begin() as conn:
        put_rule(conn, rule, user.username)
    return RedirectResponse("/alert-rules", status_code=303)


@router.post("/alert-rules/{rule_id}/delete")
def rules_delete(rule_id: str, services: ServicesDep, user: Admin) -> Response:
    with services.store.engine.begin() as conn:
        delete_rule(conn, rule_id)
    return RedirectResponse("/alert-rules", status_code=303)


def status_label(status: Status) -> str:
    return {"open": "Open", "acknowledged": "Acknowledged", "resolved": "Resolved"}[status]


templates.env.globals.setdefault("alert_status_label", status_label)
