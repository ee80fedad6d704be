"""The MQTT contract: topics, and messages that round-trip and refuse what they do not know."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import RFC_4122, UUID, uuid4

import pytest
from pydantic import BaseModel, ValidationError

from edge.analysis import JudgedLift
from edge.events import (
    SCHEMA_VERSION,
    AgentStats,
    AgentStatus,
    LiftEvent,
    LiftMetrics,
    alerts_topic,
    json_schema,
    lift_event,
    lift_topic,
    new_event_id,
    stats_topic,
    status_topic,
    validate_name,
)
from edge.lifts import detect_lifts
from edge.posture import Posture, judge
from edge.series import Lift
from edge.synth import lift_scenario, synth_stream

T0 = datetime(2026, 3, 1, 8, 30, 0, 250000, tzinfo=timezone.utc)
SHA = "ab" * 32


def _event(**changes: Any) -> dict[str, Any]:
    """A valid lift event as JSON-ready data, with some fields changed."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "event_id": str(uuid4()),
        "seq": 7,
        "site": "dc-north",
        "camera": "dock-3",
        "track_id": "3f9a1c2e",
        "start": T0.isoformat(),
        "bottom": (T0 + timedelta(seconds=1.2)).isoformat(),
        "end": (T0 + timedelta(seconds=2.5)).isoformat(),
        "posture": "rounded",
        "confidence": 0.81,
        "reason": None,
        "view": "side",
        "metrics": {"trunk_flexion_deg": 71.5, "neck_drop_deg": 9.0, "reba_trunk": 4},
        "model": "movenet_multipose",
        "model_sha256": SHA,
        "agent_version": "0.1.0",
    }
    data.update(changes)
    return data


def _payload(**changes: Any) -> bytes:
    return json.dumps(_event(**changes)).encode()


def test_lift_event_round_trips_through_compact_json() -> None:
    event = LiftEvent.from_payload(_payload())
    payload = event.to_payload()
    assert b" " not in payload and b"\n" not in payload
    assert LiftEvent.from_payload(payload) == event
    assert event.metrics.chord_ratio is None  # unmeasured metrics stay None, not 0
    assert event.start.tzinfo is not None and event.start.utcoffset() == timedelta(0)


def test_times_in_other_zones_are_normalised_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    event = LiftEvent.from_payload(
        _payload(
            start=T0.astimezone(cet).isoformat(),
            bottom=T0.isoformat(),
            end=T0.isoformat(),
        )
    )
    assert event.start == T0 and event.start.utcoffset() == timedelta(0)
    assert b"+01:00" not in event.to_payload()


def test_times_go_out_in_utc_to_the_millisecond() -> None:
    event = LiftEvent.from_payload(_payload())
    assert b'"start":"2026-03-01T08:30:00.250Z"' in event.to_payload()
    fine = T0 + timedelta(microseconds=999_600)
    event = LiftEvent.from_payload(_payload(start=fine.isoformat(), bottom=fine.isoformat()))
    assert event.start == T0.replace(microsecond=0) + timedelta(seconds=1, milliseconds=250)
    assert LiftEvent.from_payload(event.to_payload()) == event


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"surprise": 1}, "surprise"),
        ({"metrics": {"trunk_flexion_deg": 10.0, "bogus": 1}}, "metrics.bogus"),
        ({"start": "2026-03-01T08:30:00"}, "start"),  # naive: whose clock?
        ({"posture": "stooped"}, "posture"),
        ({"view": "top"}, "view"),
        ({"confidence": 1.01}, "confidence"),
        ({"confidence": -0.1}, "confidence"),
        ({"seq": -1}, "seq"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"reason": "x" * 201}, "reason"),
        ({"model": "m" * 65}, "model"),
        ({"agent_version": ""}, "agent_version"),
        ({"track_id": "t" * 33}, "track_id"),
        ({"model_sha256": "ABC"}, "model_sha256"),
        ({"site": "dc/north"}, "site"),
        ({"camera": "#"}, "camera"),
        ({"metrics": {"reba_trunk": 5}}, "metrics.reba_trunk"),
        ({"reason": "front\x00view"}, "reason"),  # PostgreSQL cannot store NUL
        ({"model": "m\n"}, "model"),
        ({"agent_version": "0.1\x85"}, "agent_version"),
    ],
)
def test_lift_event_rejects(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        LiftEvent.from_payload(_payload(**changes))
    assert field in {".".join(map(str, e["loc"])) for e in err.value.errors()}


def test_lift_event_rejects_missing_fields_and_non_finite_numbers() -> None:
    data = _event()
    del data["event_id"]
    with pytest.raises(ValidationError):
        LiftEvent.model_validate(data)
    for good, bad in (
        (b'"confidence": 0.81', b'"confidence": NaN'),
        (b'"trunk_flexion_deg": 71.5', b'"trunk_flexion_deg": Infinity'),
    ):
        raw = _payload()
        assert good in raw
        with pytest.raises(ValidationError):
            LiftEvent.from_payload(raw.replace(good, bad))
    with pytest.raises(ValidationError):
        LiftMetrics(trunk_flexion_deg=math.nan)


def test_lift_event_rejects_times_out_of_order_and_non_json() -> None:
    with pytest.raises(ValidationError, match="start <= bottom <= end"):
        LiftEvent.from_payload(_payload(bottom=(T0 - timedelta(seconds=1)).isoformat()))
    with pytest.raises(ValueError):
        LiftEvent.from_payload(b"\xff not json")


def test_events_are_immutable() -> None:
    event = LiftEvent.from_payload(_payload())
    with pytest.raises(ValidationError):
        event.seq = 8


def test_status_and_stats_round_trip_and_reject_unknowns() -> None:
    status = AgentStatus(
        site="dc-north",
        camera="dock-3",
        state="offline",
        since=T0,
        agent_version="0.1.0",
        model="movenet_multipose",
    )
    assert AgentStatus.from_payload(status.to_payload()) == status
    assert status.schema_version == SCHEMA_VERSION
    stats = AgentStats(
        site="dc-north",
        camera="dock-3",
        at=T0,
        fps=9.8,
        inference_ms=41.2,
        outbox_depth=3,
        outbox_dropped=0,
        published=120,
        publish_failures=1,
        camera_reconnects=0,
        mqtt_reconnects=2,
        frames=10_000,
        lifts={"hinge": 90, "rounded": 25, "unscorable": 5},
    )
    assert AgentStats.from_payload(stats.to_payload()) == stats
    raw = json.loads(status.to_payload())
    with pytest.raises(ValidationError):
        AgentStatus.model_validate({**raw, "state": "sleeping"})
    with pytest.raises(ValidationError):
        AgentStatus.model_validate({**raw, "since": "2026-03-01T08:30:00"})
    raw = json.loads(stats.to_payload())
    with pytest.raises(ValidationError):
        AgentStats.model_validate({**raw, "lifts": {"squat": 1}})
    with pytest.raises(ValidationError):
        AgentStats.model_validate({**raw, "outbox_depth": -1})
    with pytest.raises(ValidationError):
        AgentStats.model_validate({**raw, "extra": 0})


def test_topics() -> None:
    assert lift_topic("dc-north", "dock-3") == "liftwatch/v1/dc-north/dock-3/lift"
    assert status_topic("dc-north", "dock-3") == "liftwatch/v1/dc-north/dock-3/status"
    assert stats_topic("dc-north", "dock-3") == "liftwatch/v1/dc-north/dock-3/stats"
    assert alerts_topic("dc-north") == "liftwatch/v1/dc-north/alerts"
    with pytest.raises(ValueError):
        lift_topic("dc/north", "dock-3")


@pytest.mark.parametrize("bad", ["", "+", "#", "a/b", "dock 3", "x" * 65, "dock-3\n", "é"])
def test_validate_name_rejects_what_breaks_a_topic_level(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_name(bad)


def test_validate_name_accepts_ids() -> None:
    for good in ("dock-3", "DC_North", "7", "x" * 64):
        assert validate_name(good) == good


def _judged(style: str = "hinge") -> JudgedLift:
    s = synth_stream(lift_scenario(style, noise=0.004, n_lifts=1), fps=10)
    lifts = detect_lifts(zip(s.t, s.poses, strict=True))
    assert lifts, "the synthetic scenario should contain a lift"
    return JudgedLift(lifts[0], judge(lifts[0]))


def _build(judged: JudgedLift, **changes: Any) -> LiftEvent:
    kwargs: dict[str, Any] = {
        "site": "dc-north",
        "camera": "dock-3",
        "seq": 0,
        "track_key": "a1b2c3d4",
        "wall_of": lambda t: 1_772_353_800.0 + t,
        "model": "movenet_multipose",
        "model_sha256": SHA,
        "agent_version": "0.1.0",
    }
    kwargs.update(changes)
    return lift_event(judged, **kwargs)


def test_lift_event_from_a_judged_lift() -> None:
    judged = _judged()
    lift, p = judged.lift, judged.posture
    event = _build(judged, seq=41)
    assert event.seq == 41 and event.track_id == "a1b2c3d4"
    assert isinstance(event.event_id, UUID)
    assert event.start.timestamp() == pytest.approx(1_772_353_800.0 + lift.start, abs=1e-3)
    assert event.bottom.timestamp() == pytest.approx(1_772_353_800.0 + lift.bottom, abs=1e-3)
    assert event.end.timestamp() == pytest.approx(1_772_353_800.0 + lift.end, abs=1e-3)
    assert (event.posture, event.view, event.reason) == (p.label, p.view, p.reason)
    assert event.confidence == p.confidence
    m = event.metrics
    assert m.trunk_flexion_deg == p.features["trunk_flexion_deg"] is not None
    assert m.neck_drop_deg == p.features["neck_drop"]
    assert m.hip_angle_deg == p.features["hip_angle_deg"]
    assert m.duration_s == pytest.approx(lift.duration, abs=1e-3)
    assert m.reba_trunk == p.reba_trunk is not None
    assert LiftEvent.from_payload(event.to_payload()) == event
    assert _build(judged).event_id != event.event_id  # a fresh dedup key per event


def test_event_ids_are_version_7_and_rise_with_time() -> None:
    """Rising keys append to the dashboard's unique index instead of landing on a random
    page of it per lift."""
    at = 1_772_353_800.0
    ids = [new_event_id(at + k * 0.001) for k in range(50)]
    assert all(u.version == 7 and u.variant == RFC_4122 for u in ids)
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert ids[0].int >> 80 == int(at * 1000)  # the time, in ms, leads
    same_ms = {new_event_id(at) for _ in range(100)}
    assert len(same_ms) == 100  # random bits keep ids of one millisecond apart
    assert new_event_id(at, 5) == new_event_id(at, 5) != new_event_id(at, 6)
    assert _build(_judged()).event_id.version == 7  # what an agent sends


def test_lift_event_carries_nothing_of_the_tracker_and_no_nan() -> None:
    lift = _judged().lift
    features = {"trunk_flexion_deg": math.nan, "hip_angle_deg": None, "chord_ratio": 0.97}
    posture = Posture("unscorable", 0.0, "head hidden", "front", features, None)
    lift = Lift(12345, lift.start, lift.bottom, lift.end, lift.series, lift.standing)
    event = _build(JudgedLift(lift, posture), track_key="k9")
    assert event.metrics.trunk_flexion_deg is None  # NaN is not valid JSON
    assert event.metrics.hip_angle_deg is None and event.metrics.chord_ratio == 0.97
    assert event.reason == "head hidden"
    assert b"12345" not in event.to_payload()
    with pytest.raises(ValidationError):
        _build(JudgedLift(lift, posture), track_key="has space")


def test_json_schema_describes_the_three_messages() -> None:
    schemas = json_schema()
    assert set(schemas) == {"LiftEvent", "AgentStatus", "AgentStats"}
    lift = schemas["LiftEvent"]
    assert lift["additionalProperties"] is False
    assert set(lift["required"]) >= {"event_id", "seq", "site", "camera", "start", "posture"}
    assert lift["properties"]["posture"]["enum"] == ["hinge", "rounded", "unscorable"]
    json.dumps(schemas)  # serialisable as is, for `liftwatch-edge schema`


DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt-contract.md"
README = DOC.parents[1] / "README.md"
MODELS: dict[str, type[BaseModel]] = {
    "LiftEvent": LiftEvent,
    "AgentStatus": AgentStatus,
    "AgentStats": AgentStats,
}


def _doc_examples(doc: Path = DOC) -> list[tuple[str, str]]:
    return re.findall(r"<!-- example: (\w+) -->\s*```json\n(.*?)```", doc.read_text(), re.S)


@pytest.mark.parametrize("doc", [DOC, README], ids=["contract", "readme"])
def test_every_example_in_the_contract_doc_is_a_valid_complete_message(doc: Path) -> None:
    examples = _doc_examples(doc)
    assert {name for name, _ in examples} == set(MODELS)
    for name, text in examples:
        model = MODELS[name]
        message = model.from_payload(text.encode())  # type: ignore[attr-defined]
        data = json.loads(text)
        assert json.loads(message.to_payload()) == data  # no field left to a default
        assert set(data) == set(model.model_fields)
        if name == "LiftEvent":
            assert set(data["metrics"]) == set(LiftMetrics.model_fields)


def test_the_contract_doc_names_the_topics_the_code_uses() -> None:
    text = DOC.read_text()

    def pattern(topic: str) -> str:
        return topic.replace("SITE", "{site}").replace("CAM", "{camera}")

    for topic in (
        lift_topic("SITE", "CAM"),
        status_topic("SITE", "CAM"),
        stats_topic("SITE", "CAM"),
        alerts_topic("SITE"),
    ):
        assert f"`{pattern(topic)}`" in text
