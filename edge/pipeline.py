"""Frames in, tracked `Poses` out: the pose half of the edge pipeline, with stage timings."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from edge.frames import Frame
from edge.pose.base import PoseEstimator
from edge.poses import Poses
from edge.track import Tracker


@dataclass(slots=True)
class StageClock:
    """Accumulated wall time per stage, so a run can say where its milliseconds went."""

    seconds: dict[str, float] = field(default_factory=dict)
    frames: int = 0

    def add(self, stage: str, dt: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + dt

    def ms_per_frame(self) -> dict[str, float]:
        n = max(1, self.frames)
        return {k: round(v * 1000 / n, 3) for k, v in self.seconds.items()}


@dataclass(frozen=True, slots=True)
class TrackedFrame:
    frame: Frame
    poses: Poses


class PosePipeline:
    """pose → track for each frame; the caller owns the source and what happens next."""

    def __init__(self, estimator: PoseEstimator, tracker: Tracker | None = None) -> None:
        self.estimator = estimator
        self.tracker = tracker or Tracker()
        self.clock = StageClock()

    def process(self, frame: Frame) -> Poses:
        t0 = time.perf_counter()
        poses = self.estimator(frame.image)
        t1 = time.perf_counter()
        tracked = self.tracker.update(poses, frame.t)
        t2 = time.perf_counter()
        self.clock.add("pose", t1 - t0)
        self.clock.add("track", t2 - t1)
        self.clock.frames += 1
        return tracked

    def run(self, frames: Iterable[Frame]) -> Iterator[TrackedFrame]:
        """Process a frame stream; time spent waiting for frames is booked as ``decode``."""
        it = iter(frames)
        while True:
            t0 = time.perf_counter()
            frame = next(it, None)
            self.clock.add("decode", time.perf_counter() - t0)
            if frame is None:
                return
            yield TrackedFrame(frame, self.process(frame))
