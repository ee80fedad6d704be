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
class BackCurvature:
    """A lift's back curvature: median of its good masks, standard error, how many."""

    value: float
    se: float
    samples: int


@dataclass(frozen=True, slots=True)
class SamplerConfig:
    """When to run the ~16 ms segmentation and how to summarise what it measured."""

    every: int = 1
    """Measure every n-th low-hands frame of a track. The measure scatters ~0.01 from frame
    to frame, three times the margin between the real rounded and neutral lifts, so every
    frame counts: a lift's low phase is 1–2 s, 10–20 masks at 10 fps (~0.2–0.3 s of one
    core per lift). 2 halves that; on the real clips it moved one rounded lift (bad009)
    from 0.0415 to 0.0375, across the boundary."""
    min_score: float = 0.3
    """Wrists and knees below this confidence do not count for the hands-low test."""
    buffer_s: float = 12.0
    """Samples older than this are dropped: longer than the longest lift cycle (10 s)."""
    max_samples: int = 64
    """Hard cap per track, so a person working at floor level cannot grow the buffer."""
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

    def curvature(self, lift: Lift) -> BackCurvature | None:
        """Median back curvature of the good masks of the lift's low phase, or None.

        Every hands-low frame of the lift counts, not only the bottom: the spine is loaded
        all through the low phase (rounding under load often shows as the load leaves the
        floor), and more masks steady a median that single masks (an arm across the back,
        the load merged in) would throw. The standard error comes from the masks' spread.
        """
        c = self.config
        values = np.array(
            [
                s.curvature
                for t, s in self.samples(lift.track_id)
                if lift.start <= t <= lift.end and s.mask_quality >= c.min_quality
            ]
        )
        if values.size < c.min_samples:
            return None
        median = float(np.median(values))
        spread = 1.4826 * float(np.median(np.abs(values - median)))
        se = 1.25 * spread / math.sqrt(values.size)
        return BackCurvature(round(median, 4), round(se, 4), int(values.size))

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
        back = self.sampler.curvature(lift) if self.sampler is not None else None
        if back is None:
            return JudgedLift(lift, judge(lift, None, self.posture_config))
        return JudgedLift(lift, judge(lift, back.value, self.posture_config, back.se))
