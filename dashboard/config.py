"""The dashboard's YAML configuration, typed and checked before anything starts.

Secrets need not live in the file: ``DATABASE_URL`` overrides ``database_url``,
``LIFTWATCH_MQTT_PASSWORD`` the broker password, ``LIFTWATCH_SMTP_PASSWORD`` the alert
e-mail password and ``LIFTWATCH_ALERT_WEBHOOK_URL`` the alert webhook (its URL is often the
secret), as a container or systemd unit sets them.
Relative paths (SQLite file, organisation file, TLS files) are relative to the config file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from typing_extensions import Self

from dashboard.alerts.rules import DEFAULT_RULES, Rule, check_unique
from edge.events import validate_name
from edge.yamlfile import ConfigError, problems, read_mapping, resolve

__all__ = ["ConfigError", "DashboardConfig", "load_config"]

DATABASE_ENV = "DATABASE_URL"
PASSWORD_ENV = "LIFTWATCH_MQTT_PASSWORD"
SMTP_PASSWORD_ENV = "LIFTWATCH_SMTP_PASSWORD"
WEBHOOK_URL_ENV = "LIFTWATCH_ALERT_WEBHOOK_URL"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TLSConfig(_Section):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


class MQTTConfig(_Section):
    """Where events come from. A fixed ``client_id`` and a persistent session make the broker
    keep QoS 1 events while the dashboard is down; ``shared_group`` lets several ingest
    workers split the lift stream (MQTT v5 ``$share/{group}/...``), each with its own id."""

    enabled: bool = True
    host: str = Field(default="localhost", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(default="liftwatch-dashboard", min_length=1, max_length=128)
    username: str | None = None
    password: SecretStr | None = None
    tls: TLSConfig | None = None
    sites: list[Annotated[str, AfterValidator(validate_name)]] | None = None
    """Subscribe to these sites only; all sites when unset."""
    shared_group: Annotated[str, AfterValidator(validate_name)] | None = None
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0, le=2**32 - 1)
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    """Unacknowledged events in flight: events are acknowledged only once stored."""
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    writer: Literal["process", "thread"] = "process"
    """Validate and store in a process of its own (a second core for the ingest) or in a
    thread of the dashboard's process."""


class WebConfig(_Section):
    host: str = "127.0.0.1"
    """Listen address; 0.0.0.0 behind a reverse proxy or in a container."""
    port: int = Field(default=8080, ge=1, le=65535)
    cookie_secure: bool = True
    """Send the session cookie over HTTPS only; turn off only for a plain-HTTP test setup."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    login_attempts_per_minute: int = Field(default=10, ge=1)
    max_body_kib: int = Field(default=1024, ge=16, le=1024 * 1024)
    """Largest request body accepted (413 above it); the organisation document of a site
    with a thousand cameras is about 100 KiB."""


class PrivacyConfig(_Section):
    min_group_lifts: int = Field(default=5, ge=1)
    """Ratios are hidden for a group with fewer lifts: a tiny group can point at one person."""


class WebhookConfig(_Section):
    url: str = Field(min_length=1, pattern=r"^https?://")
    """Receives ``{"text": ..., "alert": {...}}``: Slack and Teams incoming webhooks show
    ``text``; other consumers read ``alert``."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class EmailConfig(_Section):
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    """``starttls`` (port 587) upgrades the connection before logging in; ``tls`` is SMTPS
    (port 465); ``none`` only for a relay on the same host."""
    ca_file: Path | None = None
    """Trust this CA for the server certificate instead of the system's."""
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(alias="from", min_length=3)
    to: list[Annotated[str, Field(min_length=3)]] = Field(min_length=1)
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class RetryConfig(_Section):
    """Back-off between delivery attempts of one alert on one channel: doubling from
    ``first_s`` up to ``max_s``; after ``give_up_h`` the delivery is marked failed."""

    first_s: float = Field(default=1.0, gt=0, le=3600)
    max_s: float = Field(default=60.0, gt=0, le=3600)
    give_up_h: float = Field(default=24.0, gt=0, le=24 * 30)


class AlertsConfig(_Section):
    """Alert rules and where alerts go. ``rules`` seed the database on its first start;
    after that an admin edits them in the UI or API and the database copy is the one used."""

    enabled: bool = True
    rules: Annotated[list[Rule], AfterValidator(check_unique)] = Field(
        default_factory=lambda: list(DEFAULT_RULES)
    )
    webhook: WebhookConfig | None = None
    email: EmailConfig | None = None
    mqtt: bool = True
    """Publish on ``liftwatch/v1/{site}/alerts`` over the ``mqtt:`` connection settings."""
    retry: RetryConfig = RetryConfig()
    max_lift_age_min: float = Field(default=60.0, gt=0)
    """Lifts stored longer than this after they happened (an agent's outbox replayed after
    an outage) are kept but raise no alert: an alert is for what is happening now."""


class DashboardConfig(_Section):
    database_url: str = "sqlite:///liftwatch.db"
    """SQLAlchemy URL; a relative SQLite path is relative to the config file."""
    organisation: Path | None = None
    """YAML with sites, zones, teams, cameras and shifts, loaded at start (see docs)."""
    mqtt: MQTTConfig = MQTTConfig()
    web: WebConfig = WebConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    alerts: AlertsConfig = AlertsConfig()

    @model_validator(mode="after")
    def _url_scheme(self) -> Self:
        scheme = self.database_url.split(":", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql"):
            raise ValueError(f"database_url: unsupported database {scheme!r} (sqlite, postgresql)")
        return self


def load_config(path: Path | str, env: Mapping[str, str] = os.environ) -> DashboardConfig:
    """Read, validate and complete (paths, secrets) the dashboard config; raises ConfigError."""
    path = Path(path)
    data = read_mapping(path, "database_url:, mqtt:, organisation:, ...")
    return complete(data, path, env)


def complete(
    data: dict[str, object], source: Path | None, env: Mapping[str, str] = os.environ
) -> DashboardConfig:
    """Validate ``data`` and apply the environment; ``source`` is the file it came from."""
    name = str(source) if source is not None else "config"
    if env.get(DATABASE_ENV):
        data = {**data, "database_url": env[DATABASE_ENV]}
    try:
        cfg = DashboardConfig.model_validate(data)
    except ValidationError as exc:
        lines = problems(exc, DashboardConfig)
        raise ConfigError("\n".join(f"{name}: {p}" for p in lines)) from None
    base = source.parent if source is not None else Path.cwd()
    mqtt = cfg.mqtt
    if env.get(PASSWORD_ENV):
        mqtt = mqtt.model_copy(update={"password": SecretStr(env[PASSWORD_ENV])})
    if mqtt.tls is not None:
        tls = mqtt.tls.model_copy(
            update={
                "ca_file": resolve(base, mqtt.tls.ca_file),
                "cert_file": resolve(base, mqtt.tls.cert_file),
                "key_file": resolve(base, mqtt.tls.key_file),
            }
        )
        mqtt = mqtt.model_copy(update={"tls": tls})
    return cfg.model_copy(
        update={
            "alerts": _complete_alerts(cfg.alerts, base, env),
            "mqtt": mqtt,
            "organisation": resolve(base, cfg.organisation),
            "database_url": _sqlite_relative_to(cfg.database_url, base),
        }
    )


def _complete_alerts(alerts: AlertsConfig, base: Path, env: Mapping[str, str]) -> AlertsConfig:
    webhook, email = alerts.webhook, alerts.email
    if env.get(WEBHOOK_URL_ENV):
        url = env[WEBHOOK_URL_ENV]
        webhook = (webhook or WebhookConfig(url=url)).model_copy(update={"url": url})
    if email is not None:
        update: dict[str, object] = {"ca_file": resolve(base, email.ca_file)}
        if env.get(SMTP_PASSWORD_ENV):
            update["password"] = SecretStr(env[SMTP_PASSWORD_ENV])
        email = email.model_copy(update=update)
    return alerts.model_copy(update={"webhook": webhook, "email": email})


def _sqlite_relative_to(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or url.startswith(prefix + "/"):
        return url
    rest = url[len(prefix) :]
    if rest.startswith(":memory:"):
        return url
    return prefix + str(base / rest)
