"""Real receivers for alert tests and the alerts bench: an HTTP webhook and an SMTP server.

The webhook is the standard library's HTTP server in a thread; the SMTP server is aiosmtpd
with STARTTLS required and AUTH LOGIN/PLAIN allowed only after it, as a company relay would
be. Both can be stopped and started again on the same port to play a channel outage.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.mqtt import HOST, TLSFiles, free_port


class _Waitable:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[Any] = []
        self.arrived: list[float] = []

    def add(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self.arrived.append(time.monotonic())
            self._cond.notify_all()

    def wait_for(self, n: int, timeout_s: float = 15.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self.items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.items)} of {n} within {timeout_s} s")
                self._cond.wait(left)
            return list(self.items)

    def wait_until(self, predicate: Callable[[list[Any]], bool], timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(self.items):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met within {timeout_s} s")
                self._cond.wait(left)


class WebhookServer(_Waitable):
    """Collects the JSON bodies POSTed to it; answers ``status`` (200 unless changed)."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.port = port or free_port()
        self.status = 200
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    def start(self) -> WebhookServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.status
                if status < 300:
                    receiver.add(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SmtpServer(_Waitable):
    """aiosmtpd on ``HOST``: STARTTLS required, then AUTH with ``username``/``password``."""

    def __init__(
        self, tls: TLSFiles, username: str, password: str, port: int | None = None
    ) -> None:
        super().__init__()
        self.port = port or free_port()
        self.username, self.password = username, password
        self.tls = tls
        self.auth_failures = 0
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's own deprecation note
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.tls.server_cert), str(self.tls.server_key))
        receiver = self

        class Handler:
            async def handle_DATA(self, _s: SMTP, _session: Session, envelope: Envelope) -> str:
                content = envelope.original_content or b""
                receiver.add(message_from_bytes(content))
                return "250 OK"

        def authenticator(
            _server: SMTP, _session: Session, _env: Envelope, _mech: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and data.login == receiver.username.encode()
                and data.password == receiver.password.encode()
            )
            if not ok:
                receiver.auth_failures += 1
            return AuthResult(success=ok)

        self._controller = Controller(
            Handler(),
            hostname=HOST,
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=True,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def messages(self) -> list[Message]:
        return list(self.items)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
