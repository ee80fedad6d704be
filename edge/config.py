"""One camera agent's YAML configuration, typed and checked before anything starts.

A typo in a config file on a Pi in a warehouse should stop the agent at once with one line
per problem naming the field, not surface an hour later as a silent default. Relative paths
are relative to the config file, so a config folder can be moved as a whole. The broker
password never has to live in the file: ``LIFTWATCH_MQTT_PASSWORD`` overrides
``password_file``, which overrides ``password``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from edge.events import validate_name
from edge.lifts import LiftConfig
from edge.yamlfile import ConfigError, problems, read_mapping, resolve

__all__ = ["AgentConfig", "ConfigError", "load_config"]

PASSWORD_ENV = "LIFTWATCH_MQTT_PASSWORD"


class TLSConfig(BaseModel):
    """TLS to the broker: the CA that signed it, and a client certificate if it asks for one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False
    """Skip the host name check (a broker reached by IP); the chain is still verified."""

    @model_validator(mode="after")
    def _key_needs_cert(self) -> Self:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file given without cert_file")
        return self


class BrokerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="localhost", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str | None = Field(default=None, min_length=1, max_length=128)
    """Fixed, so the broker keeps this agent's session; default liftwatch-edge-{site}-{camera}."""
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    tls: TLSConfig | None = None
    keepalive_s: int = Field(default=30, ge=1, le=65535)
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0, le=2**32 - 1)
    """How long the broker keeps the session (and QoS 1 messages) while the agent is away."""
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _backoff_order(self) -> Self:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self


class OutboxConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path = Path("liftwatch-outbox.sqlite")
    max_events: int = Field(default=1_000_000, ge=1)
    """When full, the oldest events are dropped (and counted) so the newest still go out."""


@cache
def _lift_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(LiftConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(LiftConfig)}


def _check_lift_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Each override must be a `LiftConfig` field, of that field's type."""
    fields = _lift_fields()
    problems, checked = [], {}
    for name, value in overrides.items():
        if name not in fields:
            problems.append(f"{name}: unknown setting (valid: {', '.join(sorted(fields))})")
            continue
        try:
            checked[name] = TypeAdapter(fields[name]).validate_python(value, strict=True)
        except ValidationError:
            kind = getattr(fields[name], "__name__", fields[name])
            problems.append(f"{name}: {value!r} is not a valid {kind}")
    if problems:
        raise ValueError("\n".join(problems))
    return checked


Name = Annotated[str, AfterValidator(validate_name)]


class AgentConfig(BaseModel):
    """Everything one camera's agent process needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: Name
    camera: Name
    source: str = Field(min_length=1)
    """A video file, rtsp/http URL or device, or a camera-free source (see edge.agent)."""
    fps: float = Field(default=10.0, gt=0, le=60)
    """Analysis rate: frames are dropped to this before the pose model."""
    model: str = Field(default="movenet_multipose", min_length=1)
    refine: str | None = "movenet_lightning"
    threads: int = Field(default=1, ge=1, le=64)
    silhouette: bool = True
    reuse_still: bool = True
    """Report a followed person whose crop's pixels did not change with their last keypoints
    instead of posing them again (never during a lift; at most 4 frames in a row)."""
    bystander_every: int = Field(default=3, ge=1, le=10)
    """With several people followed, pose bystanders (not in a lift, not the nearest person)
    on every n-th frame only, reporting their last keypoints in between (1: everyone on
    every frame)."""
    rescue: str | None = "yolox_nano"
    """Person detector that looks on keyframes where the pose model finds nobody and nobody
    is followed (a person folded over a load, in poor light); null: none."""
    broker: BrokerConfig = BrokerConfig()
    outbox: OutboxConfig = OutboxConfig()
    stats_interval_s: float = Field(default=30.0, gt=0)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Prometheus endpoint; off when unset."""
    lifts: dict[str, float | int] = Field(default_factory=dict)
    """Overrides of `edge.lifts.LiftConfig` thresholds, by field name."""

    @field_validator("lifts", mode="before")
    @classmethod
    def _lifts_known(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return _check_lift_overrides(value)
        return value

    @model_validator(mode="after")
    def _default_client_id(self) -> Self:
        if self.broker.client_id is None:
            broker = self.broker.model_copy(
                update={"client_id": f"liftwatch-edge-{self.site}-{self.camera}"}
            )
            object.__setattr__(self, "broker", broker)
        return self

    def lift_config(self) -> LiftConfig:
        overrides: dict[str, Any] = dict(self.lifts)
        return dataclasses.replace(LiftConfig(), **overrides)


def load_config(path: Path | str, env: Mapping[str, str] = os.environ) -> AgentConfig:
    """Read, validate and complete (paths, password) one agent config; raises ConfigError."""
    path = Path(path)
    data = read_mapping(path, "site:, camera:, ...")
    try:
        cfg = AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            "\n".join(f"{path}: {p}" for p in problems(exc, AgentConfig, frozenset({"lifts"})))
        ) from None
    cfg = _resolve_paths(cfg, path.parent)
    return _with_password(cfg, env, path)


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_REPLAY = re.compile(r"^(replay(?:-[a-z]+)*):(.+)$", re.IGNORECASE)


def _resolve_source(base: Path, source: str) -> str:
    """A video file or replay path in ``source`` is relative to the config file, like every
    other path; URLs, devices and synthetic seeds are left alone."""
    text = source.strip()
    if _URL.match(text) or text.isdigit() or text.startswith("/dev/"):
        return source
    replay = _REPLAY.match(text)
    if replay:
        return f"{replay.group(1)}:{resolve(base, Path(replay.group(2)))}"
    if text.lower().startswith("synthetic"):
        return source
    return str(resolve(base, Path(text)))


def _resolve_paths(cfg: AgentConfig, base: Path) -> AgentConfig:
    b = cfg.broker
    tls = b.tls
    if tls is not None:
        tls = tls.model_copy(
            update={
                "ca_file": resolve(base, tls.ca_file),
                "cert_file": resolve(base, tls.cert_file),
                "key_file": resolve(base, tls.key_file),
            }
        )
    broker = b.model_copy(update={"tls": tls, "password_file": resolve(base, b.password_file)})
    outbox = cfg.outbox.model_copy(update={"path": resolve(base, cfg.outbox.path)})
    source = _resolve_source(base, cfg.source)
    return cfg.model_copy(update={"broker": broker, "outbox": outbox, "source": source})


def _with_password(cfg: AgentConfig, env: Mapping[str, str], source: Path) -> AgentConfig:
    b = cfg.broker
    password = b.password
    if env.get(PASSWORD_ENV):
        password = SecretStr(env[PASSWORD_ENV])
    elif b.password_file is not None:
        try:
            password = SecretStr(b.password_file.read_text(encoding="utf-8").strip("\r\n"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{source}: broker.password_file: cannot read {b.password_file}: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None
    if password is b.password:
        return cfg
    return cfg.model_copy(update={"broker": b.model_copy(update={"password": password})})
