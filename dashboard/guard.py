"""Refuse requests whose path or query carries a NUL character, before any route sees them.

PostgreSQL cannot hold a NUL in text, not even as a query parameter: a ``?site=%00`` or a
``/teams/%00/x`` would make the database raise and the request fail with a 500. No id,
name or date in this application contains one, so such a request is malformed (400).
Form and JSON bodies are checked by their models (`edge.events.validate_name`, labels).
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send


def has_nul(scope: Scope) -> bool:
    query = scope.get("query_string", b"").lower()
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query


class RefuseNul:
    """ASGI middleware: 400 for an HTTP request with NUL in its path or query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_nul(scope):
            response = PlainTextResponse("NUL character in the request URL", status_code=400)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
