"""Frames in, tracked `Poses` and judged lifts out: the edge pipeline, with stage timings.

source → pose → track → lifts → posture. The caller owns the source and decides what
happens to each result (JSON lines, an overlay video, MQTT events).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from edge.analysis import JudgedLift, LiftAnalyzer
from edge.background import Background
from edge.frames import Frame
from edge.lifts import LiftConfig
from edge.pose.base import PoseEstimator
from edge.pose.tracking import CropTracking
from edge.poses import Poses
from edge.series import Lift
from edge.source import cpus_usable
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


@dataclass(frozen=True, slots=True)
class _Detected:
    """A frame through the pose stage: tracked poses, the tracks that ended at it and the
    lifts it completed (not judged yet)."""

    frame: Frame
    poses: Poses
    ended: tuple[int, ...] = ()
    lifts: list[Lift] = field(default_factory=list)


class PosePipeline:
    """pose → track → lift detection, then (when an analyzer is given) posture, per frame.

    The two stages of a frame can run in two threads (`run`): posture and whatever the
    caller does with a frame trail the pose stage by a frame instead of holding up the next
    inference. Only one model runs at a time whichever thread asks (``threads`` is the
    cores inference uses), so what overlaps is the work around the models.
    """

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
        self._inference = threading.Lock()

    def process(self, frame: Frame) -> TrackedFrame:
        """One frame through both stages, in this thread."""
        return self._posture(self._detect(frame))

    def _detect(self, frame: Frame) -> _Detected:
        """Pose stage: everything the next frame's pose needs from this one."""
        t0 = time.perf_counter()
        with self._inference:
            poses = self.estimator(frame.image)
        t1 = time.perf_counter()
        tracked = self.tracker.update(poses, frame.t)
        t2 = time.perf_counter()
        self.clock.add("pose", t1 - t0)
        self.clock.add("track", t2 - t1)
        self.clock.frames += 1
        ended = tuple(self.tracker.ended)
        if self.analyzer is None:
            return _Detected(frame, tracked, ended)
        analyzer = self.analyzer
        lifts = analyzer.detect(frame.t, tracked, ended)
        if isinstance(self.estimator, CropTracking):
            # A lift's timing and posture come from fresh keypoints, never reused ones.
            self.estimator.keep_fresh(
                np.array([analyzer.in_lift(int(tid)) for tid in tracked.track_ids], np.bool_)
            )
        self.clock.add("lifts", time.perf_counter() - t2)
        return _Detected(frame, tracked, ended, lifts)

    def _posture(self, detected: _Detected) -> TrackedFrame:
        """Posture stage: trunk views of this frame, and the judgement of finished lifts."""
        if self.analyzer is None:
            return TrackedFrame(detected.frame, detected.poses)
        t0 = time.perf_counter()
        frame = detected.frame
        self.analyzer.sample(frame.t, detected.poses, frame.image, detected.ended)
        judged: list[JudgedLift] = []
        if detected.lifts:
            with self._inference:
                judged = self.analyzer.judge(detected.lifts)
        self.clock.add("posture", time.perf_counter() - t0)
        return TrackedFrame(frame, detected.poses, judged)

    def finish(self) -> list[JudgedLift]:
        """End of stream: lifts the analyzer can still complete."""
        return self.analyzer.flush() if self.analyzer is not None else []

    def run(self, frames: Iterable[Frame], overlap: bool | None = None) -> Iterator[TrackedFrame]:
        """Process a frame stream; time spent waiting for frames is booked as ``decode``.

        With ``overlap`` (by default when this process may use more than one CPU), the pose
        stage runs in a thread of its own, a frame ahead of the posture stage and of the
        caller's loop body; results come out in order and are the same either way.
        """
        if overlap is None:
            overlap = cpus_usable() > 1
        if not overlap:
            for frame in self._timed(frames):
                yield self.process(frame)
            return
        stage = Background((self._detect(f) for f in self._timed(frames)), name="pose")
        try:
            for detected in stage:
                yield self._posture(detected)
        finally:
            stage.close()

    def _timed(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        it = iter(frames)
        while True:
            t0 = time.perf_counter()
            frame = next(it, None)
            self.clock.add("decode", time.perf_counter() - t0)
            if frame is None:
                return
            yield frame


def build_pipeline(
    model: str,
    refine: str | None,
    threads: int = 1,
    silhouette: bool = True,
    lift_config: LiftConfig | None = None,
    reuse_still: bool = True,
) -> PosePipeline:
    """Every stage as `analyze` and the agent run them; raises ModelError naming a bad file."""
    from edge.pose import create_estimator

    estimator = create_estimator(model, threads=threads, refine=refine, reuse_still=reuse_still)
    contour = None
    if silhouette:
        from edge.silhouette import BackContour

        contour = BackContour(threads=threads)
    return PosePipeline(estimator, analyzer=LiftAnalyzer(lift_config, contour=contour))
