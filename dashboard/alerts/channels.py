"""Where alerts go: a webhook, e-mail over SMTP, and MQTT for stack lights and PLC gateways.

Each channel sends one alert and returns only once the other side took it (HTTP 2xx, the
SMTP server accepted the message, the broker's PUBACK); anything else raises, and the
delivery queue (`dashboard.alerts.delivery`) retries later. A channel holds no queue of
its own, so nothing is lost when the process stops mid-outage.
"""

from __future__ import annotations

import json
import os
import secrets
import smtplib
import ssl
import threading
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dashboard import __version__
from dashboard.alerts.store import Alert
from dashboard.config import EmailConfig, MQTTConfig, WebhookConfig
from edge.events import alerts_topic

SCHEMA_VERSION = 1


class ChannelError(RuntimeError):
    """The channel did not take the alert; the message says why (stored as last_error)."""


class Channel(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


def alert_message(alert: Alert) -> dict[str, Any]:
    """The alert as every channel carries it: no person, only where, what and how many."""
    return {
        "schema_version": SCHEMA_VERSION,
        "id": alert.id,
        "rule": alert.rule_id,
        "kind": alert.kind,
        "site": alert.site,
        "scope": alert.scope_kind,
        "camera": alert.camera,
        "zone": alert.zone,
        "team": alert.team,
        "shift": alert.shift,
        "day": alert.day.isoformat() if alert.day else None,
        "count": alert.count,
        "value": alert.value,
        "since": _iso(alert.since),
        "fired_at": _iso(alert.fired_at),
        "text": alert.text,
    }


def _iso(value: Any) -> str:
    return str(value.isoformat(timespec="milliseconds")).replace("+00:00", "Z")


class WebhookChannel:
    """POSTs ``{"text": ..., "alert": {...}}``: Slack and Teams show ``text``."""

    name = "webhook"

    def __init__(self, cfg: WebhookConfig) -> None:
        self.cfg = cfg

    def send(self, alert: Alert) -> None:
        body = json.dumps({"text": alert.text, "alert": alert_message(alert)}).encode()
        request = urllib.request.Request(
            self.cfg.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"liftwatch-dashboard/{__version__}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.cfg.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise ChannelError(f"webhook answered HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ChannelError(f"webhook unreachable: {reason}") from None

    def close(self) -> None:
        pass


class EmailChannel:
    """One message per alert over SMTP; STARTTLS (or SMTPS) before the login."""

    name = "email"

    def __init__(self, cfg: EmailConfig) -> None:
        self.cfg = cfg

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        where = alert.camera or alert.zone or alert.team or alert.site
        msg["Subject"] = f"[liftwatch] {alert.site}: risky lifting at {where}"
        msg["From"] = self.cfg.sender
        msg["To"] = ", ".join(self.cfg.to)
        msg["Message-ID"] = f"<liftwatch-alert-{alert.id}-{secrets.token_hex(6)}@liftwatch>"
        details = [
            f"{k}: {v}"
            for k, v in alert_message(alert).items()
            if v is not None and k not in ("text", "schema_version")
        ]
        msg.set_content(alert.text + "\n\n" + "\n".join(details) + "\n")
        return msg

    def send(self, alert: Alert) -> None:
        c = self.cfg
        context = ssl.create_default_context(cafile=str(c.ca_file) if c.ca_file else None)
        try:
            smtp: smtplib.SMTP
            if c.security == "tls":
                smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=context)
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
            with smtp:
                smtp.ehlo()
                if c.security == "starttls":
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if c.username is not None:
                    password = c.password.get_secret_value() if c.password else ""
                    smtp.login(c.username, password)
                refused = smtp.send_message(self.message(alert))
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"SMTP {c.host}:{c.port}: {type(exc).__name__}: {exc}") from None
        if refused:
            raise ChannelError(f"SMTP refused recipients: {', '.join(refused)}")

    def close(self) -> None:
        pass


class MQTTChannel:
    """Publishes on ``liftwatch/v1/{site}/alerts`` (QoS 1, not retained), waiting for the
    PUBACK. The connection is kept between alerts; after any failure it is thrown away, so
    paho never resends on its own what the queue is going to retry (no duplicates)."""

    name = "mqtt"

    def __init__(self, cfg: MQTTConfig, *, timeout_s: float = 10.0) -> None:
        self.cfg = cfg
        self.timeout_s = timeout_s
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._answered = threading.Event()
        self._refused: str | None = None

    def send(self, alert: Alert) -> None:
        client = self._connect()
        payload = json.dumps(alert_message(alert)).encode()
        try:
            info = client.publish(alerts_topic(alert.site), payload, qos=1, retain=False)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise ChannelError(f"MQTT publish failed: {mqtt.error_string(info.rc)}")
            info.wait_for_publish(self.timeout_s)
            if not info.is_published():
                raise ChannelError(f"no PUBACK from the broker within {self.timeout_s:g} s")
        except (ChannelError, RuntimeError, ValueError, OSError) as exc:
            self.close()
            raise ChannelError(str(exc)) from None

    def _connect(self) -> mqtt.Client:
        if self._client is not None and self._connected.is_set():
            return self._client
        self.close()
        c = self.cfg
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{c.client_id}-alerts-{os.getpid()}-{secrets.token_hex(3)}"[:128],
            protocol=mqtt.MQTTv5,
        )
        if c.username is not None:
            password = c.password.get_secret_value() if c.password is not None else None
            client.username_pw_set(c.username, password)
        if c.tls is not None:
            client.tls_set(
                ca_certs=str(c.tls.ca_file),
                certfile=str(c.tls.cert_file) if c.tls.cert_file else None,
                keyfile=str(c.tls.key_file) if c.tls.key_file else None,
            )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._connected.clear()
        self._answered.clear()
        self._refused = None
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        try:
            client.connect(c.host, c.port, keepalive=c.keepalive_s, clean_start=True,
                           properties=props)  # fmt: skip
        except (OSError, ValueError) as exc:
            raise ChannelError(f"MQTT broker {c.host}:{c.port} unreachable: {exc}") from None
        client.loop_start()
        self._client = client
        self._answered.wait(self.timeout_s)
        if not self._connected.is_set():
            self.close()
            why = self._refused or f"no CONNACK within {self.timeout_s:g} s"
            raise ChannelError(f"MQTT broker {c.host}:{c.port}: {why}")
        return client

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = f"refused the connection: {reason}"
        else:
            self._connected.set()
        self._answered.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
        self._connected.clear()

    def close(self) -> None:
        client, self._client = self._client, None
        self._connected.clear()
        if client is not None:
            try:
                client.disconnect()
            finally:
                client.loop_stop()
