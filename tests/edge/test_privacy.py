"""What leaves the camera: everything a real agent publishes while it analyses a real clip
(a lifter with people in the background) through the real model, captured by a subscriber
on ``#``. No payload may carry image data or anything that identifies a person.

Checked on the bytes (no JPEG/PNG signature, no base64 run, bounded size), on the JSON (only
the documented fields of `edge.events`, no lists anywhere, every string short) and on the
one per-person value sent, ``track_id``: a random key per process, so two runs of the same
clip share none and none is the tracker's small integer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.events import AgentStats, AgentStatus, LiftEvent, LiftMetrics
from tests.support.mqtt import HOST, Broker, Message, Subscriber

SITE = "plant1"
CLIP = "deadlift-bad-000002.mp4"  # one lifter, other people in the background, 1080p
MAX_PAYLOAD = 2048
"""Bytes; a lift event is well under 1 KiB, the others smaller."""
MAX_STRING = 64
"""Characters of any string value but ``reason`` (at most 200 by the contract)."""
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"data:image", b"BM6")
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{40,}={0,2}")
DOCUMENTED = {
    "lift": set(LiftEvent.model_fields),
    "status": set(AgentStatus.model_fields),
    "stats": set(AgentStats.model_fields),
}
MODELS = {"lift": LiftEvent, "status": AgentStatus, "stats": AgentStats}


def run_agent(tmp_path: Path, broker: Broker, clip: Path, camera: str) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "camera.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site": SITE,
                "camera": camera,
                "source": str(clip),
                "broker": {"host": HOST, "port": broker.port, "backoff_max_s": 0.5},
                "outbox": {"path": str(tmp_path / "outbox.sqlite")},
                "stats_interval_s": 0.5,
            }
        )
    )
    agent = Path(sys.executable).with_name("liftwatch-edge")
    command = [str(agent)] if agent.exists() else [sys.executable, "-m", "edge.cli"]
    done = subprocess.run(
        [*command, "run", "--config", str(config)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr


def strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(field path, text) of every string in a JSON value; fails on any list."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(v, f"{path}.{k}".lstrip("."))]
    assert not isinstance(value, list), f"{path}: a list (keypoints, pixels?) in a payload"
    return [(path, value)] if isinstance(value, str) else []


def check_message(m: Message) -> dict[str, Any]:
    """The message's JSON after every image and identity check; fails naming what it found."""
    kind = m.topic.rsplit("/", 1)[-1]
    assert re.fullmatch(rf"liftwatch/v1/{SITE}/dock-[12]/{kind}", m.topic), m.topic
    assert kind in MODELS, m.topic
    assert len(m.payload) <= MAX_PAYLOAD, (m.topic, len(m.payload))
    for signature in IMAGE_SIGNATURES:
        assert signature not in m.payload, (m.topic, signature)
    body = json.loads(m.payload)
    MODELS[kind].model_validate_json(m.payload)  # documented fields only, nothing extra
    assert set(body) <= DOCUMENTED[kind], set(body) - DOCUMENTED[kind]
    if kind == "lift":
        assert set(body["metrics"]) <= set(LiftMetrics.model_fields)
    for field, text in strings(body):
        bound = 200 if field == "reason" else MAX_STRING
        assert len(text) <= bound, (field, len(text))
        if field != "model_sha256":  # 64 hex digits, the weights' hash
            assert not BASE64_RUN.search(text.encode()), (field, "a base64-like run")
    return body


@pytest.mark.clips
@pytest.mark.models
def test_an_agent_on_a_real_clip_sends_no_image_and_nothing_that_identifies_a_person(
    clips_dir: Path, model_dir: Path, tmp_path: Path, broker: Broker
) -> None:
    del model_dir  # the agent reads LIFTWATCH_MODEL_DIR; the fixture skips when unset
    runs: dict[str, list[Message]] = {}
    for camera in ("dock-1", "dock-2"):  # two processes on the same clip
        with Subscriber(broker, "#", client_id=f"privacy-{camera}") as everything:
            run_agent(tmp_path / camera, broker, clips_dir / CLIP, camera)
            everything.wait_until(
                lambda ms: any(m.topic.endswith("/status") and b"offline" in m.payload
                               for m in ms),
                timeout_s=30,
            )  # fmt: skip
            runs[camera] = list(everything.messages)
    track_ids: list[set[str]] = []
    for camera, messages in runs.items():
        bodies = [check_message(m) for m in messages]  # with the last run's retained status
        own = [m for m in messages if m.topic.split("/")[3] == camera]
        assert {m.topic.rsplit("/", 1)[-1] for m in own} == {"lift", "status", "stats"}
        keys = {b["track_id"] for b in bodies if "track_id" in b and b["camera"] == camera}
        assert keys and all(re.fullmatch(r"[0-9a-f]{8}", k) for k in keys), keys
        track_ids.append(keys)
    assert not track_ids[0] & track_ids[1], "a track key came again in another process"
    sizes = sorted(len(m.payload) for ms in runs.values() for m in ms)
    print(f"privacy: {len(sizes)} messages, payload bytes {sizes[0]}-{sizes[-1]}")
