"""Frames in, tracked `Poses` and judged lifts out: the edge pipeline, with stage timings.

source → pose → track → lifts → posture. The caller owns the source and decides what
happens to each result (JSON lines, an overlay video, MQTT events).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from edge.analysis import JudgedLift, LiftAnalyzer
from edge.frames import Frame
from edge.lifts import LiftConfig
from edge.pose.base import PoseEstimator
from edge.pose.tracking import CropTracking
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
    lifts: list[JudgedLift] = field(default_factory=list)


class PosePipeline:
    """pose → track (→ lifts → posture when an analyzer is given) for each frame."""

    def __init__(
        self,
        estimator: PoseEstimator,
        tracker: Tracker | None = None,
        analyzer: LiftAnalyzer | None = None,
    ) -> None:
        self.estimator = estimator
        self.tracker = tracker or Tracker()
        self.analyzer = analyzer
        self.clock = StageClock()

    def process(self, frame: Frame) -> TrackedFrame:
        t0 = time.perf_counter()
        poses = self.estimator(frame.image)
        t1 = time.perf_counter()
        tracked = self.tracker.update(poses, frame.t)
        t2 = time.perf_counter()
        self.clock.add("pose", t1 - t0)
        self.clock.add("track", t2 - t1)
        self.clock.frames += 1
        if self.analyzer is None:
            return TrackedFrame(frame, tracked)
        for track_id in self.tracker.ended:
            self.analyzer.end_track(track_id)
        lifts = self.analyzer.update(frame.t, tracked, frame.image)
        if isinstance(self.estimator, CropTracking):
            # A lift's timing and posture come from fresh keypoints, never reused ones.
            analyzer = self.analyzer
            self.estimator.keep_fresh(
                np.array([analyzer.in_lift(int(tid)) for tid in tracked.track_ids], np.bool_)
            )
        self.clock.add("lifts", time.perf_counter() - t2)
        return TrackedFrame(frame, tracked, lifts)

    def finish(self) -> list[JudgedLift]:
        """End of stream: lifts the analyzer can still complete."""
        return self.analyzer.flush() if self.analyzer is not None else []

    def run(self, frames: Iterable[Frame]) -> Iterator[TrackedFrame]:
        """Process a frame stream; time spent waiting for frames is booked as ``decode``."""
        it = iter(frames)
        while True:
            t0 = time.perf_counter()
            frame = next(it, None)
            self.clock.add("decode", time.perf_counter() - t0)
            if frame is None:
                return
            yield self.process(frame)


def build_pipeline(
    model: str,
    refine: str | None,
    threads: int = 1,
    silhouette: bool = True,
    lift_config: LiftConfig | None = None,
    reuse_still: bool = True,
    bystander_every: int = 3,
    rescue: str | None = "yolox_nano",
) -> PosePipeline:
    """Every stage as `analyze` and the agent run them; raises ModelError naming a bad file."""
    from edge.pose import create_estimator

    estimator = create_estimator(
        model,
        threads=threads,
        refine=refine,
        reuse_still=reuse_still,
        bystander_every=bystander_every,
        rescue=rescue,
    )
    contour = None
    if silhouette:
        from edge.silhouette import BackContour

        contour = BackContour(threads=threads)
    return PosePipeline(estimator, analyzer=LiftAnalyzer(lift_config, contour=contour))
