"""The demo's MQTT broker: the system's Mosquitto when installed, else the embedded one.

Mosquitto gets its own config, a free port on 127.0.0.1 and its persistence in the demo
folder, so it never touches a broker the machine already runs. Without Mosquitto the demo
starts `dashboard.demo.mqtt_server`, a small MQTT v5 broker in this process: the agents,
ingest and alerts speak MQTT v5 only (session expiry, receive maximum, reason codes), and
the pure-Python brokers on PyPI speak 3.1.1 (see docs/demo.md).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Literal, Protocol

from dashboard.demo.processes import HOST, free_port, listening, spawn, stop_all

Choice = Literal["auto", "mosquitto", "embedded"]


class DemoError(RuntimeError):
    """The demo cannot start as asked; the message says why and what to do."""


class DemoBroker(Protocol):
    kind: str
    port: int

    def stop(self) -> None: ...


def mosquitto_binary() -> str | None:
    if os.access("/usr/sbin/mosquitto", os.X_OK):
        return "/usr/sbin/mosquitto"
    return shutil.which("mosquitto")


class Mosquitto:
    """One mosquitto process with the demo's config, stopped with the demo."""

    kind = "mosquitto"

    def __init__(self, binary: str, workdir: Path, timeout_s: float = 10.0) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = workdir / "mosquitto.conf"
        config.write_text(
            "\n".join(
                [
                    "# written by `liftwatch-dashboard demo`; a production config is in deploy/",
                    f"user {getpass.getuser()}",
                    "persistence true",
                    f"persistence_location {workdir}/",
                    f"log_dest file {workdir / 'mosquitto.log'}",
                    "max_queued_messages 0",
                    "allow_anonymous true",
                    f"listener {self.port} {HOST}",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] = spawn(
            [binary, "-c", str(config)], workdir / "mosquitto.out"
        )
        deadline = time.monotonic() + timeout_s
        while not listening(self.port):
            if self.process.poll() is not None:
                raise DemoError(
                    f"mosquitto exited with {self.process.returncode}; "
                    f"see {workdir / 'mosquitto.log'} and {workdir / 'mosquitto.out'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise DemoError(f"mosquitto not listening on port {self.port} after {timeout_s} s")
            time.sleep(0.05)

    def stop(self) -> None:
        stop_all([self.process], timeout_s=5.0)


def start_broker(workdir: Path, choice: Choice = "auto") -> DemoBroker:
    binary = mosquitto_binary()
    if choice == "mosquitto" and binary is None:
        raise DemoError("mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)")
    if binary is not None and choice != "embedded":
        return Mosquitto(binary, workdir)
    from dashboard.demo.mqtt_server import EmbeddedBroker

    return EmbeddedBroker.start_thread(HOST, free_port())
