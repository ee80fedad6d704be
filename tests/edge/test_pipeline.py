"""The pipeline's two stages in two threads give what one thread gives, one model at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from edge.analyze import frame_record, lift_record
from edge.frames import Frame
from edge.pipeline import PosePipeline, TrackedFrame, build_pipeline
from edge.poses import Poses
from edge.source import open_source

LIFT_CLIP = "deadlift-coach-bad016.mp4"  # one rounded-back lift, masks at its bottom


def _records(items: list[TrackedFrame], tail: list[Any]) -> list[str]:
    """Frame and lift lines with track ids renumbered by first appearance: ids come from a
    per-process counter, so two pipelines in one process number the same people apart."""
    ids: dict[int, int] = {}

    def renumber(tid: int) -> int:
        return ids.setdefault(tid, len(ids)) if tid >= 0 else tid

    out = []
    for item in items:
        poses = item.poses.with_track_ids([renumber(int(t)) for t in item.poses.track_ids])
        out.append(frame_record(item.frame.t, item.frame.index, 0.0, poses.to_records()))
        out.extend(str(_renumbered(lift_record(j), renumber)) for j in item.lifts)
    out.extend(str(_renumbered(lift_record(j), renumber)) for j in tail)
    return out


def _renumbered(record: dict[str, Any], renumber: Any) -> dict[str, Any]:
    return {**record, "track_id": renumber(record["track_id"])}


def _run(clip: Path, overlap: bool) -> tuple[list[str], set[str]]:
    pipeline = build_pipeline("movenet_multipose", "movenet_lightning")
    estimator = pipeline.estimator
    posed_in: set[str] = set()

    def estimate(image: np.ndarray) -> Poses:
        posed_in.add(threading.current_thread().name)
        return estimator(image)

    pipeline.estimator = estimate  # type: ignore[assignment]
    with open_source(str(clip), 10.0, prefetch=True) as source:
        items = list(pipeline.run(source, overlap=overlap))
    return _records(items, pipeline.finish()), posed_in


@pytest.mark.clips
def test_overlapped_stages_give_the_same_frames_and_lifts(clips_dir: Path) -> None:
    sequential, seq_threads = _run(clips_dir / LIFT_CLIP, overlap=False)
    overlapped, ovl_threads = _run(clips_dir / LIFT_CLIP, overlap=True)
    assert any(
        '"posture": "rounded"' in line or "'posture': 'rounded'" in line for line in overlapped
    )
    assert overlapped == sequential
    assert seq_threads == {threading.current_thread().name}
    assert ovl_threads == {"pose"}


@pytest.mark.clips
def test_only_one_model_runs_at_a_time(clips_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Posture's masks and the next frame's pose take turns: ``threads`` stays the cores
    inference uses, and the bench's model pass replays the same work one call after another."""
    running = 0
    most = 0
    sessions: set[int] = set()
    guard = threading.Lock()
    original = ort.InferenceSession.run

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
            sessions.add(id(self))
        try:
            return original(self, *args, **kwargs)
        finally:
            with guard:
                running -= 1

    monkeypatch.setattr(ort.InferenceSession, "run", counted)
    pipeline = build_pipeline("movenet_multipose", "movenet_lightning")
    with open_source(str(clips_dir / LIFT_CLIP), 10.0, prefetch=True) as source:
        lifts = [j for item in pipeline.run(source, overlap=True) for j in item.lifts]
    assert lifts and len(sessions) == 3  # keyframes, crops and the masks all ran
    assert most == 1


class _Still:
    """A stand-in estimator: one person, or an error at frame ``fail_at``."""

    name = "still"

    def __init__(self, fail_at: int = -1) -> None:
        self.calls = 0
        self.fail_at = fail_at

    def __call__(self, image: np.ndarray) -> Poses:
        if self.calls == self.fail_at:
            raise RuntimeError("model broke")
        self.calls += 1
        xy = np.stack([np.linspace(100, 140, 17), np.linspace(50, 300, 17)], axis=1)[None]
        return Poses.from_arrays(xy=xy, scores=np.full((1, 17), 0.9, np.float32))


def _frames(n: int) -> Iterator[Frame]:
    for i in range(n):
        yield Frame(image=np.zeros((360, 640, 3), np.uint8), t=i / 10, wall=0.0, index=i)


def test_a_pose_stage_error_reaches_the_caller() -> None:
    pipeline = PosePipeline(_Still(fail_at=5))  # type: ignore[arg-type]
    seen = []
    with pytest.raises(RuntimeError, match="model broke"):
        for item in pipeline.run(_frames(20), overlap=True):
            seen.append(item.frame.index)
    assert seen == [0, 1, 2, 3, 4]


def test_a_caller_that_stops_early_leaves_no_pose_thread() -> None:
    estimator = _Still()
    pipeline = PosePipeline(estimator)  # type: ignore[arg-type]
    run = pipeline.run(_frames(1000), overlap=True)
    for item in run:
        if item.frame.index == 3:
            break
    run.close()
    assert not [t for t in threading.enumerate() if t.name == "pose"]
    assert estimator.calls < 10  # at most a frame or two ahead, not the whole stream
