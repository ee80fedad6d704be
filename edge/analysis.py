"""Per camera: tracked poses (and frames) in, judged lifts out.

`LiftAnalyzer` composes the three analysis stages that need each other's timing: lift
detection (`LiftDetector`), the silhouette of the back while someone is bent over
(`SpineSampler`), and the posture judgement (`judge`). Lift detection only knows a lift
happened once the person stands up again, by which time the frames of the bottom are gone,
so the back is measured *while* hands are low and the measurements wait in a small
per-track buffer until the lift they belong to is emitted.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge.keypoints import KP
from edge.lifts import LiftConfig, LiftDetector
from edge.pose.base import Image
from edge.poses import UNTRACKED, FloatArray, Poses
from edge.posture import DEFAULT_CONFIG, Posture, PostureConfig, judge
from edge.series import Lift
from edge.silhouette import BackShape


class BackMeasure(Protocol):
    """What `SpineSampler` needs of `BackContour`: one person's back shape in one frame."""

    def measure(self, image_bgr: Image, xy: FloatArray, scores: FloatArray) -> BackShape | None: ...


@dataclass(frozen=True, slots=True)
class JudgedLift:
    lift: Lift
    posture: Posture


@dataclass(frozen=True, slots=True)
class SamplerConfig:
    """When to run the ~16 ms segmentation and how to summarise what it measured."""

    every: int = 2
    """Measure every n-th low-hands frame of a track: at 10 fps that still gives ~5 samples
    within half a second of the bottom, at half the cost."""
    min_score: float = 0.3
    """Wrists and knees below this confidence do not count for the hands-low test."""
    buffer_s: float = 12.0
    """Samples older than this are dropped: longer than the longest lift cycle (10 s)."""
    max_samples: int = 64
    """Hard cap per track, so a person working at floor level cannot grow the buffer."""
    bottom_window_s: float = 0.5
    """Samples this close to the lift's bottom describe the bent-over back."""
    min_quality: float = 0.5
    """Masks with fewer crisp edge stations than this are too ragged to trust."""
    min_samples: int = 2
    """A single mask is one noisy look; at least this many good ones, or no curvature."""


@dataclass(slots=True)
class _Buffer:
    samples: deque[tuple[float, BackShape]] = field(default_factory=deque)
    low_frames: int = 0
    last_t: float = -math.inf


class SpineSampler:
    """Back-contour measurements of people whose hands are low, kept per track."""

    def __init__(self, contour: BackMeasure, config: SamplerConfig | None = None) -> None:
        self.contour = contour
        self.config = config or SamplerConfig()
        self._tracks: dict[int, _Buffer] = {}
        self.calls = 0

    def observe(self, t: float, poses: Poses, image: Image) -> None:
        """Measure the back of every tracked person bending to floor level in this frame."""
        c = self.config
        for i in range(len(poses)):
            tid = int(poses.track_ids[i])
            if tid == UNTRACKED or not hands_low(poses.xy[i], poses.scores[i], c.min_score):
                continue
            buf = self._tracks.setdefault(tid, _Buffer())
            buf.last_t = t
            buf.low_frames += 1
            if (buf.low_frames - 1) % c.every:
                continue
            self.calls += 1
            shape = self.contour.measure(image, poses.xy[i], poses.scores[i])
            if shape is not None:
                buf.samples.append((t, shape))
            while buf.samples and (
                len(buf.samples) > c.max_samples or t - buf.samples[0][0] > c.buffer_s
            ):
                buf.samples.popleft()
        stale = [k for k, b in self._tracks.items() if t - b.last_t > c.buffer_s]
        for k in stale:
            del self._tracks[k]

    def samples(self, track_id: int) -> list[tuple[float, BackShape]]:
        buf = self._tracks.get(track_id)
        return list(buf.samples) if buf else []

    def curvature(self, lift: Lift) -> float | None:
        """Median back curvature of good masks near the lift's bottom, or None if too few.

        The median rides out single masks that lost an arm or merged with the load; falling
        back to the whole low phase keeps quick lifts with few frames at the bottom scorable.
        """
        c = self.config
        good = [
            (t, s.curvature)
            for t, s in self.samples(lift.track_id)
            if lift.start <= t <= lift.end and s.mask_quality >= c.min_quality
        ]
        near = [v for t, v in good if abs(t - lift.bottom) <= c.bottom_window_s]
        values = near if len(near) >= c.min_samples else [v for _, v in good]
        if len(values) < c.min_samples:
            return None
        return round(float(np.median(values)), 4)

    def forget(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)

    def clear(self) -> None:
        self._tracks.clear()


def hands_low(xy: FloatArray, scores: FloatArray, min_score: float = 0.3) -> bool:
    """A wrist below the higher knee (image y grows down): the only frames worth a mask."""
    knees = [xy[k, 1] for k in (KP.LEFT_KNEE, KP.RIGHT_KNEE) if scores[k] >= min_score]
    wrists = [xy[k, 1] for k in (KP.LEFT_WRIST, KP.RIGHT_WRIST) if scores[k] >= min_score]
    return bool(knees and wrists and max(wrists) > min(knees))


class LiftAnalyzer:
    """Per camera: poses (+ frames) in, judged lifts out.

    ``contour`` is usually an `edge.silhouette.BackContour`. Without images (cached poses)
    or without a contour, lifts are judged from
    keypoints alone (``back_curvature=None``).
    """

    def __init__(
        self,
        lift_config: LiftConfig | None = None,
        posture_config: PostureConfig = DEFAULT_CONFIG,
        contour: BackMeasure | None = None,
        sampler_config: SamplerConfig | None = None,
    ) -> None:
        self.detector = LiftDetector(lift_config)
        self.posture_config = posture_config
        self.sampler = SpineSampler(contour, sampler_config) if contour is not None else None

    def update(self, t: float, poses: Poses, image: Image | None = None) -> list[JudgedLift]:
        """Feed one frame; returns the lifts completed at it, judged."""
        if image is not None and self.sampler is not None:
            self.sampler.observe(t, poses, image)
        return [self._judge(lift) for lift in self.detector.update(t, poses)]

    def end_track(self, track_id: int) -> None:
        """The tracker retired this track: drop its lift in progress and its samples."""
        self.detector.end_track(track_id)
        if self.sampler is not None:
            self.sampler.forget(track_id)

    def flush(self) -> list[JudgedLift]:
        """End of stream: judge whatever the detector still emits, then forget everything."""
        judged = [self._judge(lift) for lift in self.detector.flush()]
        if self.sampler is not None:
            self.sampler.clear()
        return judged

    def _judge(self, lift: Lift) -> JudgedLift:
        curvature = self.sampler.curvature(lift) if self.sampler is not None else None
        return JudgedLift(lift, judge(lift, curvature, self.posture_config))
