"""The FastAPI application: store, organisation and ingest wired together for one process.

`create_app` is what `liftwatch-dashboard serve` runs and what the tests start; everything a
request handler needs hangs off ``app.state`` as a `Services` value (see `dashboard.deps`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI

from dashboard import __version__
from dashboard.config import DashboardConfig
from dashboard.guard import LimitBody, RefuseNul
from dashboard.store import Store, open_store
from dashboard.store.organisation import CurrentOrganisation, apply_organisation_file

log = logging.getLogger("liftwatch.dashboard")


@dataclass
class Services:
    """What one dashboard process runs; ``ingest`` is None when MQTT is off."""

    config: DashboardConfig
    store: Store
    org: CurrentOrganisation
    ingest: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


def _routers() -> list[APIRouter]:
    from dashboard import api, org_admin, telemetry, web, web_auth
    from dashboard.alerts import api as alerts_api
    from dashboard.alerts import web as alerts_web

    return [
        web_auth.router,
        org_admin.router,
        telemetry.router,
        api.router,
        web.router,
        alerts_api.router,
        alerts_web.router,
    ]


def create_app(config: DashboardConfig, *, ingest: bool | None = None) -> FastAPI:
    """The app for ``config``; ``ingest`` overrides ``config.mqtt.enabled`` (tests)."""
    run_ingest = config.mqtt.enabled if ingest is None else ingest

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = start_services(config, run_ingest)
        app.state.services = services
        try:
            yield
        finally:
            stop_services(services)

    app = FastAPI(
        title="liftwatch dashboard",
        version=__version__,
        description="Team, zone and shift metrics of floor-level lifts; never per person.",
        lifespan=lifespan,
    )
    app.add_middleware(RefuseNul)
    app.add_middleware(LimitBody, max_bytes=config.web.max_body_kib * 1024)
    for router in _routers():
        app.include_router(router)
    return app


def start_services(config: DashboardConfig, run_ingest: bool) -> Services:
    store = open_store(config.database_url)
    if config.organisation is not None:
        with store.engine.begin() as conn:
            if apply_organisation_file(conn, config.organisation):
                log.info("organisation loaded from %s", config.organisation)
    services = Services(config=config, store=store, org=CurrentOrganisation(store.engine))
    if config.alerts.enabled:
        from dashboard.alerts.service import start_alerts

        services.extras["alerts"] = start_alerts(config, store)
    if run_ingest:
        from dashboard.ingest import Ingest

        services.ingest = Ingest(config.mqtt, store, services.org)
        if "alerts" in services.extras:
            services.ingest.on_stored.append(services.extras["alerts"].engine.on_stored)
        services.ingest.start()
    return services


def stop_services(services: Services) -> None:
    if services.ingest is not None:
        services.ingest.stop()
    if "alerts" in services.extras:
        services.extras["alerts"].stop()
    services.store.close()
