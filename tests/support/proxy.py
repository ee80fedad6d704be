"""A TCP proxy between an agent and its broker whose link can be cut and restored.

Stands in for the warehouse network: ``cut()`` either refuses (open connections reset, new
ones refused, as a blocked port with REJECT or a broker host that is down) or, with
``silent=True``, drops everything on the floor (connections stay open, no byte goes through,
as a pulled cable or a DROP rule), which only keepalives can notice.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from tests.support.mqtt import HOST, free_port


def _reset(sock: socket.socket) -> None:
    """End a connection abruptly; ``shutdown`` also wakes the pump blocked in ``recv``."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Forwards ``HOST:port`` to ``HOST:target_port`` until cut."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.connections = 0
        self._silent = False
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self, *, silent: bool = False) -> None:
        if silent:
            with self._lock:
                self._silent = True
            return
        listener, self._listener = self._listener, None
        if listener is not None:
            _reset(listener)  # a plain close would leave the blocked accept() serving
        self._reset_all()

    def restore(self) -> None:
        with self._lock:
            was_silent, self._silent = self._silent, False
        if was_silent:
            self._reset_all()  # both ends gave up on these by keepalive meanwhile
        if self._listener is None:
            self.start()

    def close(self) -> None:
        self.cut()

    def _reset_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _reset(a)
            _reset(b)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self._silent:
                    dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
