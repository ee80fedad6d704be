"""systemd's notify protocol, stdlib only: READY, the watchdog ping, STOPPING.

Under ``Type=notify`` and ``WatchdogSec=`` (deploy/pi/liftwatch-edge@.service) systemd
restarts an agent that stops pinging. The ping is sent only while ``healthy()`` says the
agent's loop is not stuck, so a hung analysis step gets the process restarted, while a
camera that is down (handled by the source's own reconnect and watchdog) does not. Outside
systemd (no ``NOTIFY_SOCKET``) everything here does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger("edge.sdnotify")


def notify(state: str, env: Mapping[str, str] = os.environ) -> bool:
    """Send one datagram such as ``READY=1`` to systemd; False when not run by systemd."""
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", env.get("NOTIFY_SOCKET"), exc)
        return False
    return True


def watchdog_interval(env: Mapping[str, str] = os.environ) -> float | None:
    """Seconds within which systemd expects a ping, or None when no watchdog is set for us."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        seconds = int(usec) / 1e6
    except ValueError:
        return None
    return seconds if seconds > 0 else None


class Watchdog:
    """Tells systemd the agent is ready, pings at half the interval while ``healthy()``."""

    def __init__(self, healthy: Callable[[], bool], env: Mapping[str, str] = os.environ) -> None:
        self.healthy = healthy
        self.env = dict(env)
        self.interval = watchdog_interval(self.env)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._missed = False

    def start(self) -> None:
        notify("READY=1", self.env)
        if self.interval is None:
            return
        self._thread = threading.Thread(target=self._ping, name="sd-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        notify("STOPPING=1", self.env)

    def _ping(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval / 2):
            if self.healthy():
                self._missed = False
                notify("WATCHDOG=1", self.env)
            elif not self._missed:
                self._missed = True
                log.error("analysis is stuck: no watchdog ping, systemd will restart the agent")
