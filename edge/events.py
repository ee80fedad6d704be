"""The MQTT contract: topics and the three messages an agent publishes, in one place.

The dashboard, stack-light gateways and third-party consumers all read these payloads, so
every message carries ``schema_version`` and rejects what it does not know (unknown fields,
naive times, out-of-range numbers, oversize strings): a malformed message is refused at
the boundary instead of corrupting a database row. Nothing here identifies a person: the
``track_id`` is a random per-process key, not a tracker number, and no image data leaves.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PlainSerializer,
    model_validator,
)
from typing_extensions import Self

if TYPE_CHECKING:
    from edge.analysis import JudgedLift

SCHEMA_VERSION: Final = 1
TOPIC_ROOT = "liftwatch/v1"

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def validate_name(value: str) -> str:
    """A site or camera id usable as one MQTT topic level: no wildcards, no '/', no spaces."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid id: use 1-64 letters, digits, '_' or '-' "
            "(no '/', '+', '#' or spaces)"
        )
    return value


def lift_topic(site: str, camera: str) -> str:
    return f"{TOPIC_ROOT}/{validate_name(site)}/{validate_name(camera)}/lift"


def status_topic(site: str, camera: str) -> str:
    return f"{TOPIC_ROOT}/{validate_name(site)}/{validate_name(camera)}/status"


def stats_topic(site: str, camera: str) -> str:
    return f"{TOPIC_ROOT}/{validate_name(site)}/{validate_name(camera)}/stats"


def alerts_topic(site: str) -> str:
    return f"{TOPIC_ROOT}/{validate_name(site)}/alerts"


_ZERO: Final = timedelta(0)


def _utc(value: datetime) -> datetime:
    """UTC to the millisecond: finer is noise at 10 fps, and it keeps payloads uniform."""
    if value.microsecond % 1000 == 0 and value.utcoffset() == _ZERO:
        # what every agent sends ("...T08:00:01.000Z"): skip the arithmetic, which was
        # half the cost of validating a lift on the dashboard's ingest
        return value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=0) + timedelta(milliseconds=round(value.microsecond / 1000))


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


Name = Annotated[str, AfterValidator(validate_name)]
UtcTime = Annotated[
    AwareDatetime, AfterValidator(_utc), PlainSerializer(_iso, return_type=str, when_used="json")
]
Metric = Annotated[float | None, Field(allow_inf_nan=False)]
PostureLabel = Literal["hinge", "rounded", "unscorable"]
ViewLabel = Literal["side", "oblique", "front"]
TrackKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"
"""No control characters: PostgreSQL cannot store NUL, and none belongs in a label."""
ShortText = Annotated[str, Field(min_length=1, max_length=64, pattern=_PRINTABLE)]
ReasonText = Annotated[str, Field(min_length=1, max_length=200, pattern=_PRINTABLE)]


class _Message(BaseModel):
    """Frozen, strict about unknown fields, compact JSON on the wire."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_payload(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_payload(cls, data: bytes | str) -> Self:
        """Parse and validate one payload; raises `pydantic.ValidationError` (a ValueError)."""
        return cls.model_validate_json(data)


class LiftMetrics(BaseModel):
    """What the judgement saw, for a safety professional to check why; None = not measured.

    Angles in degrees; ``hip_shift`` and ``chord_ratio`` in body units; ``back_curvature``
    is the silhouette measure (`edge.silhouette`), ``spine_flexion_deg`` its estimate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    trunk_flexion_deg: Metric = None
    trunk_flexion_max_deg: Metric = None
    hip_angle_deg: Metric = None
    knee_angle_deg: Metric = None
    hip_shift: Metric = None
    neck_drop_deg: Metric = None
    chord_ratio: Metric = None
    back_curvature: Metric = None
    spine_flexion_deg: Metric = None
    duration_s: Metric = None
    reba_trunk: Annotated[int | None, Field(ge=1, le=4)] = None


class LiftEvent(_Message):
    """One judged floor-level lift. ``event_id`` is the dedup key (delivery is at least
    once); ``seq`` rises by one per event of this agent, so a gap shows a lost event."""

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: UUID
    seq: NonNegativeInt
    site: Name
    camera: Name
    track_id: TrackKey
    start: UtcTime
    bottom: UtcTime
    end: UtcTime
    posture: PostureLabel
    confidence: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
    reason: ReasonText | None = None
    view: ViewLabel
    metrics: LiftMetrics
    model: ShortText
    model_sha256: Sha256
    agent_version: ShortText

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        if not self.start <= self.bottom <= self.end:
            raise ValueError("times must satisfy start <= bottom <= end")
        return self


class AgentStatus(_Message):
    """Retained on the status topic: ``online`` on every connect, ``offline`` as the Last
    Will (built at connect time, so ``since`` is then the connect time) or on clean stop."""

    schema_version: Literal[1] = SCHEMA_VERSION
    site: Name
    camera: Name
    state: Literal["online", "offline"]
    since: UtcTime
    agent_version: ShortText
    model: ShortText


class AgentStats(_Message):
    """Periodic telemetry (QoS 0): enough to see a camera, model or broker link degrade."""

    schema_version: Literal[1] = SCHEMA_VERSION
    site: Name
    camera: Name
    at: UtcTime
    fps: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    inference_ms: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    outbox_depth: NonNegativeInt
    outbox_dropped: NonNegativeInt
    published: NonNegativeInt
    publish_failures: NonNegativeInt
    camera_reconnects: NonNegativeInt
    mqtt_reconnects: NonNegativeInt
    frames: NonNegativeInt
    lifts: dict[PostureLabel, NonNegativeInt] = Field(default_factory=dict)


def new_event_id(epoch_s: float | None = None, rand: int | None = None) -> UUID:
    """A time-ordered UUID (version 7, RFC 9562): milliseconds since the epoch, then 74
    random bits.

    Any UUID is a valid ``event_id``; this one is generated so that ids rise with time. A
    database stores each event once by a unique index on ``event_id``, and random (version
    4) keys land on a random page of that index per insert, so every commit rewrote about
    one page per lift; rising keys append. ``epoch_s`` defaults to now and ``rand`` to 74
    bits from ``os.urandom`` (given for reproducible simulations).
    """
    ms = int((time.time() if epoch_s is None else epoch_s) * 1000) & ((1 << 48) - 1)
    if rand is None:
        rand = int.from_bytes(os.urandom(10), "big")
    rand &= (1 << 74) - 1
    value = (
        (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    )
    return UUID(int=value)


def utc_time(epoch_s: float) -> datetime:
    """UTC epoch seconds → aware datetime, to the millisecond (the events' resolution)."""
    return datetime.fromtimestamp(round(epoch_s, 3), timezone.utc)


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def lift_metrics(features: dict[str, float | None], reba_trunk: int | None) -> LiftMetrics:
    """The reported subset of `Posture.features`; NaN and missing become None."""
    f = features
    return LiftMetrics(
        trunk_flexion_deg=_finite(f.get("trunk_flexion_deg")),
        trunk_flexion_max_deg=_finite(f.get("trunk_flexion_max_deg")),
        hip_angle_deg=_finite(f.get("hip_angle_deg")),
        knee_angle_deg=_finite(f.get("knee_angle_deg")),
        hip_shift=_finite(f.get("hip_shift")),
        neck_drop_deg=_finite(f.get("neck_drop")),
        chord_ratio=_finite(f.get("chord_ratio")),
        back_curvature=_finite(f.get("back_curvature")),
        spine_flexion_deg=_finite(f.get("spine_flexion_deg")),
        duration_s=_finite(f.get("duration_s")),
        reba_trunk=reba_trunk,
    )


def lift_event(
    judged: JudgedLift,
    *,
    site: str,
    camera: str,
    seq: int,
    track_key: str,
    wall_of: Callable[[float], float],
    model: str,
    model_sha256: str,
    agent_version: str,
    event_id: UUID | None = None,
) -> LiftEvent:
    """The event for one judged lift; ``wall_of`` maps stream seconds to UTC epoch seconds.

    ``track_key`` stands in for the tracker's integer id, which is deliberately not sent.
    """
    lift, p = judged.lift, judged.posture
    return LiftEvent(
        event_id=event_id or new_event_id(),
        seq=seq,
        site=site,
        camera=camera,
        track_id=track_key,
        start=utc_time(wall_of(lift.start)),
        bottom=utc_time(wall_of(lift.bottom)),
        end=utc_time(wall_of(lift.end)),
        posture=p.label,
        confidence=p.confidence,
        reason=p.reason,
        view=p.view,
        metrics=lift_metrics(p.features, p.reba_trunk),
        model=model,
        model_sha256=model_sha256,
        agent_version=agent_version,
    )


def json_schema() -> dict[str, Any]:
    """JSON Schema of each message, for consumers that do not read Python."""
    return {m.__name__: m.model_json_schema() for m in (LiftEvent, AgentStatus, AgentStats)}
