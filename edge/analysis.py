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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge.keypoints import KP
from edge.lifts import LiftConfig, LiftDetector
from edge.pose.base import Image
from edge.poses import UNTRACKED, FloatArray, Poses
from edge.posture import DEFAULT_CONFIG, Posture, PostureConfig, judge, outline_role
from edge.series import Lift
from edge.silhouette import BackShape, BackView, back_view
from edge.stats import median


class BackMeasure(Protocol):
    """What `SpineSampler` needs of `BackContour`: the back shape in one prepared view."""

    def shape(self, view: BackView) -> BackShape | None: ...


@dataclass(frozen=True, slots=True)
class JudgedLift:
    lift: Lift
    posture: Posture


@dataclass(frozen=True, slots=True)
class BackCurvature:
    """A lift's back curvature: median of its good masks, standard error, how many, and
    the median `edge.silhouette.trunk_spread` of their frames (how obliquely the camera saw
    the trunk's cross-section while the outline was measured)."""

    value: float
    se: float
    samples: int
    spread: float = math.nan


@dataclass(frozen=True, slots=True)
class SamplerConfig:
    """When to run the ~16 ms segmentation and how to summarise what it measured."""

    max_masks: int = 8
    """Masks per lift, spread evenly over its low phase. Cutting the trunk out costs ~0.3 ms
    and is done on every low-hands frame; the mask is run only once a lift is complete, so
    the cost is bounded per lift (~0.13 s of one core), not per frame, and people working at
    floor level without lifting cost nothing. The measure scatters ~0.01 from frame to
    frame, three times the margin between the real rounded and neutral lifts, so a lift
    needs several masks: its low phase is 1-2 s, 10-20 frames at 10 fps."""
    min_score: float = 0.3
    """Wrists and knees below this confidence do not count for the hands-low test."""
    buffer_s: float = 12.0
    """Views older than this are dropped: longer than the longest lift cycle (10 s)."""
    max_samples: int = 48
    """Hard cap per track (a 256² crop is 0.2 MB), so floor-level work cannot grow it."""
    min_quality: float = 0.5
    """Masks with fewer crisp edge stations than this are too ragged to trust."""
    confident_views: int = 4
    """Views of a lift whose keypoints confidently show a wrist below a knee (``min_score``)
    that suffice on their own: such frames place the crop best. With fewer, every frame the
    lift detector read low counts too (`Lift.low_times`): sensor noise, dim light, a
    monochrome night picture or a load over the knees lower keypoint confidence long before
    the keypoints move, and at σ = 8 grey levels of noise 17 of the 30 real lifts had no
    confident low frame at all (`bench/eval_views.py`). Four is what settles a clear
    label (``settle_masks``)."""
    min_samples: int = 2
    """A single mask is one noisy look; at least this many good ones, or no curvature."""
    settle_masks: int = 4
    """Masks after which a lift may stop early: when every good mask so far reads clearly on
    one side of the posture boundary (``settle_margin``), more masks cannot change the label
    and would only cost ~16 ms each on a core (several times that on a Pi 4, unmeasured),
    in a burst that stalls the frame loop at the end of each lift. The views are masked
    spread-out first (every other pick, then the ones between), so four already span the
    low phase. Most lifts of a trained crew are clear hinges and stop here; close calls
    still get every mask."""
    settle_margin: float = 0.006
    """How far beyond the boundary (trunk lengths; ~3.6° of flexion, 0.6 of the typical
    mask scatter) every one of the first ``settle_masks`` masks must read to stop. Their
    median is then at least this far off and, whatever the four read, at least ~1.45 pooled
    standard errors (below; the worst of 200,000 random draws), so the lift cannot come out
    `uncertain` (`PostureConfig.uncertain_z`, 1.0) either."""
    typical_scatter: float = 0.01
    """Mask-to-mask scatter of the measure on one lift, in trunk lengths: the median of the
    per-lift robust scatter over the 23 real side-view lifts with 5 or more masks (0.002 to
    0.033, posture labels unused). A few masks that happen to agree say little about the
    scatter, so each lift's own is pooled with this one (see ``typical_weight``)."""
    typical_weight: float = 2.0
    """How many masks' worth of evidence ``typical_scatter`` counts for when pooled with a
    lift's own scatter (n − 1 degrees of freedom): two masks that agree can no longer give a
    standard error near zero and a confident call at the boundary, while eight masks mostly
    speak for themselves. Quick lifts, whose low phase gives 2–4 masks at 10 fps, need it."""


@dataclass(slots=True)
class _Buffer:
    views: deque[tuple[float, BackView, bool]] = field(default_factory=deque)
    """Time, view, and whether the keypoints confidently showed a wrist below a knee."""
    last_t: float = -math.inf


class SpineSampler:
    """Trunk views of people whose hands are low, kept per track; masks when a lift ends."""

    def __init__(self, contour: BackMeasure, config: SamplerConfig | None = None) -> None:
        self.contour = contour
        self.config = config or SamplerConfig()
        self._tracks: dict[int, _Buffer] = {}
        self.calls = 0

    def observe(
        self,
        t: float,
        poses: Poses,
        image: Image,
        low: Callable[[int], bool | None] | None = None,
    ) -> None:
        """Keep a trunk view of every tracked person bending to floor level in this frame.

        Kept are frames whose keypoints confidently show a wrist below a knee, and frames
        ``low`` (per track id: `LiftDetector.hands_low`) says the detector read low. Where
        it cannot tell yet (a person first seen bent, before a standing reference), a
        wrist below a knee at any confidence will do: the detector replays those frames
        once the person stands, and `low_phase` picks among them by `Lift.low_times`.
        """
        c = self.config
        for i in range(len(poses)):
            tid = int(poses.track_ids[i])
            if tid == UNTRACKED:
                continue
            xy, scores = poses.xy[i], poses.scores[i]
            said = low(tid) if low is not None else None
            strict = hands_low(xy, scores, c.min_score)
            if not (strict or said or (said is None and hands_low(xy, scores, 0.0))):
                continue
            buf = self._tracks.setdefault(tid, _Buffer())
            buf.last_t = t
            view = back_view(image, xy, scores)
            if view is not None:
                buf.views.append((t, view, strict))
            while buf.views and (
                len(buf.views) > c.max_samples or t - buf.views[0][0] > c.buffer_s
            ):
                buf.views.popleft()
        stale = [k for k, b in self._tracks.items() if t - b.last_t > c.buffer_s]
        for k in stale:
            del self._tracks[k]

    def samples(self, track_id: int) -> list[tuple[float, BackView]]:
        buf = self._tracks.get(track_id)
        return [(t, view) for t, view, _ in buf.views] if buf else []

    def low_phase(self, lift: Lift) -> list[BackView]:
        """The kept views of the lift's frames with the hands below the knees.

        Frames whose keypoints confidently show a wrist below a knee are used when there
        are enough of them; otherwise every frame the detector read low counts too
        (`SamplerConfig.confident_views`).
        """
        buf = self._tracks.get(lift.track_id)
        if buf is None:
            return []
        inside = [(t, view, strict) for t, view, strict in buf.views if lift.start <= t <= lift.end]
        confident = [view for _, view, strict in inside if strict]
        if len(confident) >= self.config.confident_views or lift.low_times is None:
            return confident
        low = set(lift.low_times)
        return [view for t, view, strict in inside if strict or t in low]

    def curvature(
        self, lift: Lift, boundary: float | None = None, decides: bool = True
    ) -> BackCurvature | None:
        """Median back curvature of up to ``max_masks`` views of the lift's low phase, or None.

        The views are spread over the whole low phase, not only the bottom: the spine is
        loaded all through it (rounding under load often shows as the load leaves the floor),
        and several masks steady a median that single masks (an arm across the back, the
        load merged in) would throw. The standard error comes from the masks' spread,
        pooled with the typical spread (`SamplerConfig.typical_scatter`) so a handful of
        masks that agree by chance do not look more certain than they are. Given the
        posture ``boundary``, masking stops once the masks so far settle the label
        (`SamplerConfig.settle_masks`); when the outline ``decides`` nothing (an oblique
        view), once there are enough good masks (``min_samples``) to report a reading.
        """
        c = self.config
        views = self.low_phase(lift)
        if len(views) > c.max_masks:
            picks = np.linspace(0, len(views) - 1, c.max_masks).round().astype(int)
            views = [views[k] for k in picks]
        good: list[tuple[float, float]] = []
        for view in views[0::2] + views[1::2]:  # spread over the low phase from the start
            if not decides and len(good) >= c.min_samples:
                break
            if boundary is not None and self._settled([g[0] for g in good], boundary):
                break
            shape = self.contour.shape(view)
            self.calls += 1
            if shape is not None and shape.mask_quality >= c.min_quality:
                good.append((shape.curvature, view.spread))
        if len(good) < c.min_samples:
            return None
        values = np.array([g[0] for g in good])
        middle = median(values)
        own = 1.4826 * median(np.abs(values - middle))
        se = 1.25 * pooled_scatter(own, values.size, c) / math.sqrt(values.size)
        spreads = np.array([g[1] for g in good])
        seen = spreads[np.isfinite(spreads)]
        spread = round(median(seen), 3) if seen.size else math.nan
        return BackCurvature(round(middle, 4), round(se, 4), int(values.size), spread)

    def _settled(self, values: list[float], boundary: float) -> bool:
        """Enough masks, all clearly on one side of ``boundary``: more cannot change the label."""
        c = self.config
        if len(values) < c.settle_masks:
            return False
        return (
            min(values) >= boundary + c.settle_margin or max(values) <= boundary - c.settle_margin
        )

    def forget(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)

    def clear(self) -> None:
        self._tracks.clear()


def pooled_scatter(own: float, n: int, config: SamplerConfig) -> float:
    """A lift's mask scatter pooled with the typical one, as variances weighted by degrees
    of freedom: the typical scatter counts for ``typical_weight`` masks, the lift's own for
    ``n - 1``."""
    k, dof = config.typical_weight, max(0, n - 1)
    var = (k * config.typical_scatter**2 + dof * own**2) / max(k + dof, 1e-9)
    return math.sqrt(var)


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
        self._images = False  # whether any frame came with its image (not poses only)

    def update(self, t: float, poses: Poses, image: Image | None = None) -> list[JudgedLift]:
        """Feed one frame; returns the lifts completed at it, judged."""
        lifts = self.detector.update(t, poses)
        if image is not None and self.sampler is not None:
            self.sampler.observe(t, poses, image, self.detector.hands_low)
            self._images = True
        return [self._judge(lift) for lift in lifts]

    def in_lift(self, track_id: int) -> bool:
        """A lift under way: its timing and posture need this track's keypoints fresh."""
        return self.detector.in_lift(track_id)

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
        """Masks as many views as the outline can use (`edge.posture.outline_role`): up to
        ``max_masks`` where it decides (fewer when they settle the label early), just
        enough for a reading to report in an oblique view, none facing the camera."""
        cfg = self.posture_config
        role = outline_role(lift, cfg)
        sampler = self.sampler if role != "unused" else None
        back = None
        if sampler is not None:
            back = sampler.curvature(lift, cfg.curvature_neutral, role == "decides")
        if back is None:
            tried = sampler is not None and self._images
            return JudgedLift(lift, judge(lift, None, cfg, outline_tried=tried))
        return JudgedLift(lift, judge(lift, back.value, cfg, back.se, back.spread))
