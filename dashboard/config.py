"""The dashboard's YAML configuration, typed and checked before anything starts.

Secrets need not live in the file: ``DATABASE_URL`` overrides ``database_url`` and
``LIFTWATCH_MQTT_PASSWORD`` the broker password, as a container or systemd unit sets them.
Relative paths (SQLite file, organisation file, TLS files) are relative to the config file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

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

from edge.events import validate_name
from edge.yamlfile import ConfigError, problems, read_mapping, resolve

__all__ = ["ConfigError", "DashboardConfig", "load_config"]

DATABASE_ENV = "DATABASE_URL"
PASSWORD_ENV = "LIFTWATCH_MQTT_PASSWORD"


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


class WebConfig(_Section):
    host: str = "127.0.0.1"
    """Listen address; 0.0.0.0 behind a reverse proxy or in a container."""
    port: int = Field(default=8080, ge=1, le=65535)
    cookie_secure: bool = True
    """Send the session cookie over HTTPS only; turn off only for a plain-HTTP test setup."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    login_attempts_per_minute: int = Field(default=10, ge=1)


class PrivacyConfig(_Section):
    min_group_lifts: int = Field(default=5, ge=1)
    """Ratios are hidden for a group with fewer lifts: a tiny group can point at one person."""


class DashboardConfig(_Section):
    database_url: str = "sqlite:///liftwatch.db"
    """SQLAlchemy URL; a relative SQLite path is relative to the config file."""
    organisation: Path | None = None
    """YAML with sites, zones, teams, cameras and shifts, loaded at start (see docs)."""
    mqtt: MQTTConfig = MQTTConfig()
    web: WebConfig = WebConfig()
    privacy: PrivacyConfig = PrivacyConfig()

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
            "mqtt": mqtt,
            "organisation": resolve(base, cfg.organisation),
            "database_url": _sqlite_relative_to(cfg.database_url, base),
        }
    )


def _sqlite_relative_to(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or url.startswith(prefix + "/"):
        return url
    rest = url[len(prefix) :]
    if rest.startswith(":memory:"):
        return url
    return prefix + str(base / rest)
