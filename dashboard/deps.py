"""FastAPI dependencies: the process's services, reached from any request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dashboard.app import Services


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]
