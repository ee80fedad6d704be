"""Refuse malformed requests before any route sees them: a NUL in the path or query, a body
larger than any form or document of this application.

PostgreSQL cannot hold a NUL in text, not even as a query parameter: a ``?site=%00`` or a
``/teams/%00/x`` would make the database raise and the request fail with a 500. No id,
name or date in this application contains one, so such a request is malformed (400).
Form and JSON bodies are checked by their models (`edge.events.validate_name`, labels).

Starlette reads a whole body into memory before a route validates it, so without a limit
one client could make the process hold gigabytes: bodies over the limit are refused with
413, by their Content-Length or, when chunked, as soon as the bytes read pass it.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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


class _TooLarge(Exception):
    pass


class LimitBody:
    """ASGI middleware: 413 for an HTTP request body over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not refused:
                    if started:  # the route answered before reading it all
                        raise _TooLarge
                    # answered here: the framework turns errors while parsing into a 400
                    refused = True
                    await self._refuse(scope, receive, send)
                    raise _TooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the route's answer to the cut-off body; 413 went out already
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _TooLarge:
            if not refused:
                raise

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        text = f"request body larger than {self.max_bytes} bytes"
        await PlainTextResponse(text, status_code=413)(scope, receive, send)
