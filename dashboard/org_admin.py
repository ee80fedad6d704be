"""Reading and editing the organisation: JSON under /api/v1, a YAML page for admins.

An edit replaces the whole organisation in one transaction and applies to lifts stored
after it; lifts already stored keep the team and zone they were placed in. Other processes
(ingest workers) see the edit within their organisation check interval.
"""

from __future__ import annotations

import logging
from typing import Annotated

import yaml
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from dashboard.app import Services
from dashboard.auth import Principal, require
from dashboard.deps import ServicesDep
from dashboard.org import Organisation
from dashboard.store.organisation import load_organisation, replace_organisation
from dashboard.web_auth import templates
from edge.yamlfile import ConfigError, parse_mapping, problems

log = logging.getLogger("liftwatch.dashboard.organisation")

router = APIRouter()

Viewer = Annotated[Principal, Depends(require("viewer"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def current(services: Services) -> Organisation:
    with services.store.engine.connect() as conn:
        return load_organisation(conn)


def save(services: Services, org: Organisation, by: Principal) -> None:
    with services.store.engine.begin() as conn:
        replace_organisation(conn, org)
    services.org.invalidate()
    log.info(
        "organisation replaced by %s: %d sites, %d cameras",
        by.username,
        len(org.sites),
        sum(len(s.cameras) for s in org.sites),
    )


def as_yaml(org: Organisation) -> str:
    data = org.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def parse_yaml(text: str) -> Organisation:
    """The organisation in ``text``; ConfigError with one ``field: problem`` line each."""
    data = parse_mapping(text, "organisation", "sites:")
    try:
        return Organisation.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(problems(exc, Organisation))) from None


@router.get(
    "/api/v1/organisation",
    response_model=Organisation,
    tags=["organisation"],
    summary="The organisation: sites, time zones, shifts, zones, teams and cameras",
)
def get_organisation(services: ServicesDep, _user: Viewer) -> Organisation:
    return current(services)


@router.put(
    "/api/v1/organisation",
    response_model=Organisation,
    tags=["organisation"],
    summary="Replace the organisation (admin)",
    description="Applies to lifts stored from now on; stored lifts keep their team and zone. "
    "An invalid organisation is refused with 422 and one error per field.",
)
def put_organisation(org: Organisation, services: ServicesDep, user: Admin) -> Organisation:
    save(services, org, user)
    return current(services)


def _page(
    request: Request, user: Principal, text: str, errors: list[str], saved: bool, status: int
) -> Response:
    return templates.TemplateResponse(
        request,
        "admin_organisation.html",
        {"user": user, "nav": "organisation", "text": text, "errors": errors, "saved": saved},
        status_code=status,
    )


@router.get("/admin/organisation", response_class=HTMLResponse, include_in_schema=False)
def organisation_page(
    request: Request, services: ServicesDep, user: Admin, saved: bool = False
) -> Response:
    return _page(request, user, as_yaml(current(services)), [], saved, 200)


@router.post("/admin/organisation", response_class=HTMLResponse, include_in_schema=False)
def organisation_edit(
    request: Request,
    services: ServicesDep,
    user: Admin,
    organisation: Annotated[str, Form()] = "",
) -> Response:
    try:
        org = parse_yaml(organisation)
    except ConfigError as exc:
        return _page(request, user, organisation, str(exc).splitlines(), False, 422)
    save(services, org, user)
    return RedirectResponse("/admin/organisation?saved=true", status_code=303)
