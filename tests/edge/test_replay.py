from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from edge.analysis import LiftAnalyzer
from edge.analyze import frame_record, lift_record
from edge.replay import (
    ReplaySource,
    SyntheticSource,
    open_pose_source,
    parse_spec,
    read_poses,
)
from edge.source import SourceError
from edge.synth import lift_scenario, synth_stream


def _write_poses(path: Path, lifts: int = 2) -> int:
    """A POSES.jsonl as `analyze` writes it, from a synthetic clip; returns its lift count."""
    stream = synth_stream(lift_scenario("hinge", n_lifts=lifts), fps=10.0, seed=3)
    analyzer = LiftAnalyzer()
    found = 0
    with path.open("w", encoding="utf-8") as out:
        for i, (t, poses) in enumerate(zip(stream.t, stream.poses, strict=True)):
            out.write(frame_record(float(t), i, 1e9 + float(t), poses.to_records()) + "\n")
            for judged in analyzer.update(float(t), poses):
                out.write(json.dumps({"lift": lift_record(judged)}) + "\n")
                found += 1
    return found


def _lifts(frames: object) -> list[str]:
    analyzer = LiftAnalyzer()
    return [
        j.posture.label
        for f in frames  # type: ignore[attr-defined]
        for j in analyzer.update(f.t, f.poses)
    ]


def test_specs_name_camera_free_sources_and_leave_the_rest_to_open_source() -> None:
    assert parse_spec("replay:/data/a.jsonl") == ("replay", "/data/a.jsonl", False, False)
    assert parse_spec("replay-loop-fast:a.jsonl") == ("replay", "a.jsonl", True, True)
    assert parse_spec("synthetic-fast:7") == ("synthetic", "7", True, False)
    for camera in ("rtsp://cam/1", "/videos/clip.mp4", "0", "/dev/video0", "C:clip.mp4"):
        assert parse_spec(camera) is None
        assert open_pose_source(camera) is None
    with pytest.raises(SourceError, match="modifier"):
        parse_spec("replay-slow:a.jsonl")
    with pytest.raises(SourceError, match="SEED must be an integer"):
        open_pose_source("synthetic:abc")
    with pytest.raises(SourceError, match="no such file"):
        open_pose_source("replay:/nonexistent/poses.jsonl")


def test_replay_gives_every_frame_and_the_same_lifts_as_the_recording(tmp_path: Path) -> None:
    path = tmp_path / "poses.jsonl"
    recorded = _write_poses(path, lifts=2)
    assert recorded == 2
    frames = list(ReplaySource(path, fast=True))
    originals = list(read_poses(path))
    assert [f.t for f in frames] == [t for t, _ in originals]
    assert len(_lifts(frames)) == recorded


def test_loop_continues_the_clock_with_new_tracks_so_lifts_repeat(tmp_path: Path) -> None:
    path = tmp_path / "poses.jsonl"
    recorded = _write_poses(path, lifts=1)
    n = sum(1 for _ in read_poses(path))
    frames = list(itertools.islice(ReplaySource(path, fast=True, loop=True), 3 * n))
    t = np.array([f.t for f in frames])
    assert np.all(np.diff(t) > 0)
    ids = [{int(i) for i in f.poses.track_ids} for f in frames]
    assert ids[0].isdisjoint(ids[n]) and ids[n].isdisjoint(ids[2 * n])
    assert len(_lifts(frames)) == 3 * recorded


def test_a_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "poses.jsonl"
    path.write_text('{"t": 0, "frame": 0, "wall": 0, "persons": []}\n{"t": 0.1}\n')
    with pytest.raises(SourceError, match="line 2"):
        list(ReplaySource(path, fast=True))


def test_close_ends_a_paced_replay(tmp_path: Path) -> None:
    path = tmp_path / "poses.jsonl"
    _write_poses(path, lifts=3)
    source = ReplaySource(path)
    got: list[float] = []
    first = threading.Event()

    def consume() -> None:
        for f in source:
            got.append(f.t)
            first.set()

    reader = threading.Thread(target=consume)
    reader.start()
    assert first.wait(5.0)
    source.close()
    reader.join(5.0)
    assert not reader.is_alive()
    assert len(got) < sum(1 for _ in read_poses(path))


def test_synthetic_is_endless_repeatable_and_has_lifts() -> None:
    n = 700  # past the first 60 s scenario
    a = list(itertools.islice(SyntheticSource(5, fast=True), n))
    b = list(itertools.islice(SyntheticSource(5, fast=True), n))
    assert len(a) == n
    assert all(np.array_equal(x.poses.xy, y.poses.xy) for x, y in zip(a, b, strict=True))
    assert np.all(np.diff([f.t for f in a]) > 0)
    first = {int(i) for f in a[:500] for i in f.poses.track_ids}
    last = {int(i) for f in a[-50:] for i in f.poses.track_ids}
    assert last and first.isdisjoint(last)
    assert len(_lifts(a)) >= 3
