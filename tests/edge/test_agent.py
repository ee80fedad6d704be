"""The agent end to end: camera-free sources, a real Mosquitto, a real SQLite outbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.agent import main_run
from edge.analysis import LiftAnalyzer
from edge.analyze import frame_record
from edge.events import AgentStats, AgentStatus, LiftEvent, lift_topic, stats_topic, status_topic
from edge.outbox import Outbox
from edge.synth import lift_scenario, synth_stream
from tests.support.mqtt import Broker, Subscriber, free_port

REPO = Path(__file__).resolve().parents[2]
SITE, CAMERA = "plant1", "dock-3"


def _poses_file(path: Path, n_lifts: int) -> list[str]:
    """A POSES.jsonl of one person lifting; returns the postures analysis finds in it."""
    stream = synth_stream(lift_scenario("stoop", n_lifts=n_lifts, yaw_deg=20), fps=10.0, seed=1)
    analyzer = LiftAnalyzer()
    labels: list[str] = []
    with path.open("w", encoding="utf-8") as out:
        for i, (t, poses) in enumerate(zip(stream.t, stream.poses, strict=True)):
            out.write(frame_record(float(t), i, 0.0, poses.to_records()) + "\n")
            labels += [j.posture.label for j in analyzer.update(float(t), poses)]
    return labels


def _config(tmp_path: Path, broker: Broker, source: str, **extra: Any) -> Path:
    cfg = {
        "site": SITE,
        "camera": CAMERA,
        "source": source,
        "broker": {"host": "127.0.0.1", "port": broker.port, "backoff_max_s": 0.5},
        "outbox": {"path": "outbox.sqlite"},
        **extra,
    }
    path = tmp_path / "camera.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _spawn(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge.agent", str(config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_every_lift_arrives_once_in_order_and_the_file_end_exits_0(
    tmp_path: Path, broker: Broker, subscriber: Subscriber
) -> None:
    expected = _poses_file(tmp_path / "poses.jsonl", n_lifts=3)
    assert len(expected) == 3
    config = _config(tmp_path, broker, f"replay-fast:{tmp_path / 'poses.jsonl'}")

    assert main_run(config) == 0

    got = subscriber.wait_for(3, topic=lift_topic(SITE, CAMERA))
    events = [LiftEvent.from_payload(m.payload) for m in got]
    assert [e.seq for e in events] == [0, 1, 2]
    assert [e.posture for e in events] == expected
    assert len({e.event_id for e in events}) == 3
    assert all(re.fullmatch(r"[0-9a-f]{8}", e.track_id) for e in events)
    assert events[0].track_id == events[2].track_id  # one person, one anonymous key
    assert all(e.start < e.bottom < e.end for e in events)
    assert [e.end for e in events] == sorted(e.end for e in events)
    assert (events[0].site, events[0].camera, events[0].model) == (SITE, CAMERA, "replay")
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        assert outbox.depth() == 0
    # a second run continues the sequence: gaps, not repeats, show loss
    assert main_run(config) == 0
    more = subscriber.wait_for(6, topic=lift_topic(SITE, CAMERA))
    assert [LiftEvent.from_payload(m.payload).seq for m in more[3:]] == [3, 4, 5]


def test_sigterm_publishes_offline_and_exits_0_with_stats_on_the_way(
    tmp_path: Path, broker: Broker, subscriber: Subscriber
) -> None:
    config = _config(tmp_path, broker, "synthetic:4", stats_interval_s=0.2)
    agent = _spawn(config)
    try:
        stats = subscriber.wait_for(2, topic=stats_topic(SITE, CAMERA), timeout_s=15)
        last = AgentStats.from_payload(stats[-1].payload)
        assert last.frames > 0 and last.fps > 0
        online = subscriber.on(status_topic(SITE, CAMERA))
        status = AgentStatus.from_payload(online[0].payload)
        assert (status.state, status.model) == ("online", "synthetic")  # same as its events
        agent.send_signal(signal.SIGTERM)
        out, _ = agent.communicate(timeout=15)
    finally:
        agent.kill()
    assert agent.returncode == 0, out
    assert "SIGTERM" in out
    with Subscriber(broker, status_topic(SITE, CAMERA)) as late:
        retained = late.wait_for(1)[0]
    assert retained.retain
    assert AgentStatus.from_payload(retained.payload).state == "offline"


def test_events_in_the_outbox_survive_sigkill_and_go_out_after_restart(
    tmp_path: Path, broker: Broker
) -> None:
    _poses_file(tmp_path / "poses.jsonl", n_lifts=2)
    broker.stop()
    port = free_port()
    config = _config(
        tmp_path, broker, f"replay-fast-loop:{tmp_path / 'poses.jsonl'}", metrics_port=port
    )
    agent = _spawn(config)
    try:
        deadline = time.monotonic() + 20
        while (_metric(port, "liftwatch_edge_outbox_depth") or 0) < 5:
            assert agent.poll() is None and time.monotonic() < deadline, agent.stdout
            time.sleep(0.05)
        assert _metric(port, "liftwatch_edge_mqtt_connected") == 0
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait(5)
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        stored = [json.loads(e.payload) for e in outbox.pending(limit=1_000_000)]
    assert len(stored) >= 5
    assert [e["seq"] for e in stored] == list(range(len(stored)))

    broker.start()
    (tmp_path / "empty.jsonl").write_text("")
    with Subscriber(broker, lift_topic(SITE, CAMERA)) as sub:
        assert main_run(_config(tmp_path, broker, f"replay-fast:{tmp_path / 'empty.jsonl'}")) == 0
        got = sub.wait_for(len(stored))
    received = {json.loads(m.payload)["event_id"]: json.loads(m.payload) for m in got}
    assert sorted(received) == sorted(e["event_id"] for e in stored)
    assert sorted(e["seq"] for e in received.values()) == list(range(len(stored)))


def test_a_full_outbox_drops_the_oldest_counts_them_and_the_agent_keeps_going(
    tmp_path: Path, broker: Broker
) -> None:
    assert len(_poses_file(tmp_path / "poses.jsonl", n_lifts=6)) == 6
    broker.stop()
    config = _config(
        tmp_path,
        broker,
        f"replay-fast:{tmp_path / 'poses.jsonl'}",
        outbox={"path": "outbox.sqlite", "max_events": 2},
    )
    assert main_run(config) == 0  # all six lifts judged; the broker never answered
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        kept = [LiftEvent.from_payload(e.payload).seq for e in outbox.pending()]
        assert (kept, outbox.dropped) == ([4, 5], 4)

    broker.start()
    (tmp_path / "empty.jsonl").write_text("")
    with Subscriber(broker, lift_topic(SITE, CAMERA)) as sub:
        assert main_run(_config(tmp_path, broker, f"replay-fast:{tmp_path / 'empty.jsonl'}")) == 0
        got = sub.wait_for(2)
    assert sorted(LiftEvent.from_payload(m.payload).seq for m in got) == [4, 5]


def test_an_invalid_config_exits_2_naming_the_field(
    tmp_path: Path, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_port = _config(tmp_path, broker, "synthetic:1")
    bad_port.write_text(bad_port.read_text().replace(f"port: {broker.port}", "port: eighty"))
    assert main_run(bad_port) == 2
    assert "broker.port" in capsys.readouterr().err

    bad_source = _config(tmp_path, broker, "synthetic:one")
    assert main_run(bad_source) == 2
    assert "synthetic:one" in capsys.readouterr().err

    no_ca = _config(tmp_path, broker, "synthetic:1")
    cfg = yaml.safe_load(no_ca.read_text())
    cfg["broker"]["tls"] = {"ca_file": "missing-ca.pem"}
    no_ca.write_text(yaml.safe_dump(cfg))
    assert main_run(no_ca) == 2
    assert "broker.tls.ca_file" in capsys.readouterr().err


@pytest.mark.clips
@pytest.mark.models
def test_a_real_clip_through_the_real_model_gives_its_lift(
    clips_dir: Path, model_dir: Path, tmp_path: Path, broker: Broker, subscriber: Subscriber
) -> None:
    from edge.models import load_manifest

    clip = clips_dir / "deadlift-side-nico_blocked.mp4"  # one hip-hinge deadlift, side on
    assert main_run(_config(tmp_path, broker, str(clip), silhouette=False)) == 0
    got = subscriber.wait_for(1, topic=lift_topic(SITE, CAMERA))
    event = LiftEvent.from_payload(got[0].payload)
    assert event.model == "movenet_multipose"
    assert event.model_sha256 == load_manifest()["movenet_multipose"].sha256
    assert event.posture == "hinge" and event.view == "side"
    assert event.metrics.trunk_flexion_max_deg is not None
