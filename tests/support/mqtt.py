"""A real Mosquitto for tests and benches: own config, free port, persistence, restartable.

Delivery guarantees only mean something against a real broker that can be stopped, killed
and restarted on the same port with its sessions and queued messages intact, so this starts
``mosquitto`` itself instead of mocking paho.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HOST = "127.0.0.1"


def mosquitto_binary() -> str | None:
    """Path of the broker binary, or None when it is not installed."""
    if os.access("/usr/sbin/mosquitto", os.X_OK):
        return "/usr/sbin/mosquitto"
    return shutil.which("mosquitto")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


@dataclass(frozen=True)
class TLSFiles:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls(directory: Path) -> TLSFiles:
    """Generate a CA and certificates with ``openssl`` (never committed: lives in a tmp dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    d = directory

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *new_key, "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("server", "localhost"), ("client", "liftwatch-test-client")):
        run("req", *new_key, "-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        extra = ["-extfile", "server.ext"] if name == "server" else []
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", *extra)  # fmt: skip
    return TLSFiles(
        d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key"
    )


class Broker:
    """One mosquitto process on ``HOST``; ``stop``/``start`` keep the port and the persistent state.

    ``users`` turns on password authentication (anonymous clients are then refused).
    ``tls`` adds a TLS listener on ``tls_port`` (the plain listener stays on ``port``);
    ``require_client_cert`` makes it mutual TLS. ``config`` replaces the generated config
    with its own text (a deploy/ config rendered for the test): it is called with the broker
    and listens on ``port`` (plain) and ``tls_port`` (TLS), both free ports chosen here.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        tls: TLSFiles | None = None,
        require_client_cert: bool = False,
        autosave_interval_s: int = 1,
        config_extra: str = "",
        config: Callable[[Broker], str] | None = None,
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed (Debian package 'mosquitto')")
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.tls = tls
        self.tls_port = free_port() if tls or config else None
        self.require_client_cert = require_client_cert
        self.autosave_interval_s = autosave_interval_s
        self.config_extra = config_extra
        self.config = config
        self.users = dict(users) if users else None
        self.log_file = workdir / "mosquitto.log"
        self.config_file = workdir / "mosquitto.conf"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self.running else None

    def start(self, timeout_s: float = 15.0) -> Broker:
        if self.running:
            return self
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.wait_listening(timeout_s)
        return self

    def wait_listening(self, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        ports = [p for p in (self.port, self.tls_port) if p]
        while not all(_listening(p) for p in ports):
            process = self._process
            if process is not None and process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"mosquitto exited with {process.returncode}: {err}{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"mosquitto not listening on {ports} after {timeout_s} s")
            time.sleep(0.02)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Clean shutdown: mosquitto saves its persistence file, so sessions survive."""
        self._end(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """Crash: state not yet autosaved is lost, like a power cut."""
        self._end(signal.SIGKILL, 5.0)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        if down_s:
            time.sleep(down_s)
        self.start()

    def set_users(self, users: dict[str, str] | None) -> None:
        """Replace the password file (or turn auth off) and make a running broker reload it."""
        self.users = dict(users) if users else None
        self._write_config()
        if self.running and self._process is not None:
            self._process.send_signal(signal.SIGHUP)
            time.sleep(0.3)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def _end(self, sig: signal.Signals, timeout_s: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()

    def _write_config(self) -> None:
        if self.config is not None:
            self.config_file.write_text(self.config(self))
            return
        lines = [
            f"user {getpass.getuser()}",
            "persistence true",
            f"persistence_location {self.workdir}/",
            f"autosave_interval {self.autosave_interval_s}",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "max_queued_messages 0",
            "set_tcp_nodelay true",
            "per_listener_settings false",
        ]
        if self.users:
            password_file = self.workdir / "passwords"
            password_file.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(password_file), user, password],
                    check=True,
                    capture_output=True,
                )
            password_file.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        lines.append(f"listener {self.port} {HOST}")
        if self.tls and self.tls_port:
            lines += [
                f"listener {self.tls_port} {HOST}",
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
                f"require_certificate {'true' if self.require_client_cert else 'false'}",
            ]
        self.config_file.write_text("\n".join(lines) + "\n" + self.config_extra + "\n")

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    received: float  # time.monotonic() on arrival


class Subscriber:
    """Collects every message on ``topics``; reconnects on its own across broker restarts.

    A ``client_id`` with ``persistent=True`` keeps a session on the broker, so QoS 1 messages
    published while this subscriber is away are delivered when it comes back.
    """

    def __init__(
        self,
        broker: Broker,
        topics: str | Iterable[str] = "#",
        *,
        client_id: str = "",
        persistent: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{os.getpid()}-{id(self):x}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(0.05, 0.5)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if persistent else 0
        self._client.connect(HOST, broker.port, keepalive=5, clean_start=not persistent,
                             properties=props)  # fmt: skip
        self._client.loop_start()
        if not self._subscribed.wait(5.0):
            self.close()
            raise TimeoutError(f"subscriber not subscribed to {self.topics} within 5 s")

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if not reason_code.is_failure:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _m: int, _rc: Any, _p: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        message = Message(
            msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), time.monotonic()
        )
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def on(self, topic: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, n: int, timeout_s: float = 15.0, topic: str | None = None) -> list[Message]:
        """Block until ``n`` messages (on ``topic`` if given) arrived; returns them all.

        Raises TimeoutError naming how many came, so a failing test says what was lost.
        """
        deadline = time.monotonic() + timeout_s

        def matching() -> list[Message]:
            return [m for m in self.messages if topic is None or m.topic == topic]

        with self._cond:
            while len(found := matching()) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(found)} of {n} messages within {timeout_s} s")
                self._cond.wait(left)
            return found

    def wait_until(
        self, predicate: Callable[[list[Message]], bool], timeout_s: float = 15.0
    ) -> list[Message]:
        """Block until ``predicate(messages)`` is true; returns the messages."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met within {timeout_s} s")
                self._cond.wait(left)
            return list(self.messages)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
