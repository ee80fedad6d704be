"""Spinal curvature from the back contour of a person mask, between hip and shoulder.

Keypoints alone cannot tell a flexed spine from a hinge: a rounded back moves the joints
only a little. The outline of the back can, so at a few frames near the bottom of a lift
this runs BlazePose's segmentation on a crop of the lifter and measures how far the back
edge bows away from a straight line between its hip and shoulder ends. The effect is a few
percent of trunk length, so the numbers are noisy; treat them as one feature among several.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.keypoints import KP
from edge.models import resolve
from edge.pose.base import Image, make_session

FloatArray = npt.NDArray[np.float32]

INPUT_SIZE = 256
ROI_MARGIN = 1.25
MIN_SCORE = 0.2
MIN_TRUNK_PX = 20.0
MIN_SIDE_EVIDENCE = 0.15
MIN_VALID_STATIONS = 0.7
STATIONS = 25
END_WINDOW = 3
SPAN = (0.1, 0.9)  # the outline wraps round the buttocks and over the shoulder at the ends


@dataclass(frozen=True, slots=True)
class BackShape:
    """How the back edge deviates from its hip→shoulder chord, in trunk lengths.

    - ``curvature``: the largest perpendicular deviation of the edge from the chord, signed,
      over trunk length; positive bulges backwards (rounded), negative is a hollow back
    - ``area``: signed area between edge and chord over trunk length squared
    - ``points``: back-edge samples found between hip and shoulder
    - ``mask_quality``: 0..1, share of stations with an edge times how crisp the edges are
    """

    curvature: float
    area: float
    points: int
    mask_quality: float


def trunk_ends(
    xy: FloatArray, scores: FloatArray, min_score: float = MIN_SCORE
) -> tuple[FloatArray, FloatArray] | None:
    """Mid-hip and mid-shoulder from whichever side's keypoints are confident."""
    ends = []
    for pair in ((KP.LEFT_HIP, KP.RIGHT_HIP), (KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER)):
        seen = [xy[k] for k in pair if scores[k] >= min_score]
        if not seen:
            return None
        ends.append(np.mean(seen, axis=0).astype(np.float32))
    return ends[0], ends[1]


def back_normal(
    xy: FloatArray,
    scores: FloatArray,
    hip: FloatArray,
    shoulder: FloatArray,
    min_score: float = MIN_SCORE,
) -> FloatArray | None:
    """Unit vector perpendicular to the trunk pointing out of the back, or None if unclear.

    The person faces where the knees and hands are (and the nose, ahead of the ears); the
    back is the other side of the hip→shoulder line. Frontal views give no evidence either way.
    """
    axis = shoulder - hip
    length = float(np.hypot(*axis))
    if length < 1e-6:
        return None
    front = np.array([-axis[1], axis[0]], np.float32) / length
    cues = [(KP.LEFT_KNEE, hip), (KP.RIGHT_KNEE, hip), (KP.LEFT_WRIST, hip), (KP.RIGHT_WRIST, hip)]
    offsets = [float(front @ (xy[k] - origin)) for k, origin in cues if scores[k] >= min_score]
    ears = [xy[k] for k in (KP.LEFT_EAR, KP.RIGHT_EAR) if scores[k] >= min_score]
    if scores[KP.NOSE] >= min_score and ears:
        offsets.append(float(front @ (xy[KP.NOSE] - np.mean(ears, axis=0))))
    if not offsets:
        return None
    evidence = float(np.mean(offsets)) / length
    if abs(evidence) < MIN_SIDE_EVIDENCE:
        return None
    return (-front if evidence > 0 else front).astype(np.float32)


def trunk_spread(
    xy: FloatArray,
    scores: FloatArray,
    hip: FloatArray,
    shoulder: FloatArray,
    min_score: float = MIN_SCORE,
) -> float:
    """How far apart left and right shoulders (and hips) lie across the hip→shoulder line,
    per trunk length; NaN when neither pair is seen.

    Whether the outline is the back depends on the angle α between the line of sight,
    projected into the trunk's cross-section, and the body's left–right axis (depth·cos α
    against half-width·sin α), whatever mix of body yaw, camera pitch and trunk lean makes
    it. Seen orthographically, a left–right pair of span W lies exactly W·sin α across the
    trunk's image, so this reads α at the very frame the mask is taken; a trunk pointing
    toward the camera is shorter in the image, which only raises the ratio.
    """
    axis = (shoulder - hip).astype(np.float64)
    length = float(np.hypot(*axis))
    if length < 1e-6:
        return math.nan
    across = np.array([-axis[1], axis[0]]) / length
    spans = [
        abs(float(across @ (xy[a] - xy[b]).astype(np.float64)))
        for a, b in ((KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER), (KP.LEFT_HIP, KP.RIGHT_HIP))
        if scores[a] >= min_score and scores[b] >= min_score
    ]
    return float(np.mean(spans)) / length if spans else math.nan


def _largest_blob(prob: FloatArray) -> FloatArray:
    """The mask's largest connected part, so stray blobs cannot pose as the back edge."""
    binary = (prob >= 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return np.zeros_like(prob)
    keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.where(labels == keep, prob, np.minimum(prob, 0.49)).astype(np.float32)


def back_shape(
    prob: FloatArray,
    hip: FloatArray,
    shoulder: FloatArray,
    normal: FloatArray,
    span: tuple[float, float] = SPAN,
) -> BackShape | None:
    """Measure the back edge of a person probability mask (H, W) in that mask's pixels.

    At stations from hip to shoulder, walk along ``normal`` (out of the back) and find where
    the mask ends, to sub-pixel precision; then compare those edge points with the straight
    line through the edge's two ends.
    """
    axis = (shoulder - hip).astype(np.float64)
    length = float(np.hypot(*axis))
    if length < MIN_TRUNK_PX:
        return None
    u = axis / length
    n = normal.astype(np.float64) - (normal @ u) * u
    n /= np.hypot(*n)
    prob = _largest_blob(np.asarray(prob, np.float32))
    if not (prob >= 0.5).any():
        return None

    step = 0.25
    s = np.linspace(span[0] * length, span[1] * length, STATIONS)
    t = np.arange(-0.5 * length, 0.6 * length, step)
    grid = hip[None, None, :] + s[:, None, None] * u + t[None, :, None] * n
    samples = cv2.remap(
        prob,
        grid[..., 0].astype(np.float32),
        grid[..., 1].astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )

    edges = np.full(STATIONS, np.nan)
    crisp = np.zeros(STATIONS)
    reach = max(1, round(2.0 / step))
    for i, row in enumerate(samples):
        inside = np.flatnonzero(row >= 0.5)
        if inside.size == 0 or inside[-1] == row.size - 1:
            continue
        j = int(inside[-1])
        p_in, p_out = float(row[j]), float(row[j + 1])
        edges[i] = t[j] + step * (p_in - 0.5) / max(p_in - p_out, 1e-6)
        crisp[i] = float(row[max(0, j - reach)] - row[min(row.size - 1, j + 1 + reach)])

    valid = np.isfinite(edges)
    if valid.mean() < MIN_VALID_STATIONS:
        return None
    sv, ev = s[valid], edges[valid]
    if sv.size < 2 * END_WINDOW + 1:
        return None
    a = np.array([sv[:END_WINDOW].mean(), ev[:END_WINDOW].mean()])
    b = np.array([sv[-END_WINDOW:].mean(), ev[-END_WINDOW:].mean()])
    chord = b - a
    chord /= np.hypot(*chord)
    outward = np.array([-chord[1], chord[0]])
    if outward[1] < 0:  # the edge coordinate grows out of the back
        outward = -outward
    deviation = (np.stack([sv, ev], axis=1) - a) @ outward
    extreme = float(deviation[np.argmax(np.abs(deviation))])
    area = float(np.sum((deviation[1:] + deviation[:-1]) * np.diff(sv)) / 2)
    quality = float(valid.mean() * np.clip(crisp[valid], 0.0, 1.0).mean())
    return BackShape(
        curvature=extreme / length,
        area=area / length**2,
        points=int(valid.sum()),
        mask_quality=quality,
    )


def roi_transform(
    xy: FloatArray,
    scores: FloatArray,
    hip: FloatArray,
    shoulder: FloatArray,
    margin: float = ROI_MARGIN,
    min_score: float = MIN_SCORE,
) -> npt.NDArray[np.float64]:
    """Frame → model-input affine: centred on mid-hip, trunk pointing up, whole body inside.

    This is MediaPipe's own ROI convention; a bent-over lifter in an unrotated box is barely
    recognised as a person (pose flag ~0.4 instead of ~1.0) and the mask suffers.
    """
    seen = xy[scores >= min_score]
    radius = float(np.max(np.hypot(*(seen - hip).T))) if len(seen) else 0.0
    radius = max(radius, float(np.hypot(*(shoulder - hip))))
    axis = shoulder - hip
    degrees = float(np.degrees(np.arctan2(axis[1], axis[0]))) + 90.0
    scale = INPUT_SIZE / (2.0 * radius * margin)
    m = np.asarray(
        cv2.getRotationMatrix2D((float(hip[0]), float(hip[1])), degrees, scale), np.float64
    )
    m[:, 2] += INPUT_SIZE / 2 - hip.astype(np.float64)
    return m


@dataclass(frozen=True, slots=True)
class BackView:
    """A person's trunk cut out and turned upright for the mask model, with the hip,
    shoulder and back normal in crop pixels: the cheap half of a measurement (~0.3 ms),
    kept until a lift is known to need the expensive half. ``spread`` is the frame's
    `trunk_spread`: how obliquely the camera saw the trunk's cross-section."""

    crop: Image
    hip: FloatArray
    shoulder: FloatArray
    normal: FloatArray
    spread: float = math.nan


def back_view(image_bgr: Image, xy: FloatArray, scores: FloatArray) -> BackView | None:
    """The model-input crop for one person, or None when hips, shoulders or side are unclear."""
    xy = np.asarray(xy, np.float32)
    scores = np.asarray(scores, np.float32)
    ends = trunk_ends(xy, scores)
    if ends is None:
        return None
    normal = back_normal(xy, scores, *ends)
    if normal is None:
        return None
    m = roi_transform(xy, scores, *ends)
    crop: Image = np.asarray(
        cv2.warpAffine(image_bgr, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR),
        np.uint8,
    )
    hip, shoulder = (np.asarray(ends) @ m[:, :2].T + m[:, 2]).astype(np.float32)
    spread = trunk_spread(xy, scores, *ends)
    return BackView(crop, hip, shoulder, (m[:, :2] @ normal).astype(np.float32), spread)


class BackContour:
    """BlazePose-full segmentation on one person crop → `BackShape` (~10–16 ms on one core).

    Meant for a few frames near the bottom of a lift, not for every frame. The model file is
    verified at once, so a missing or corrupt one fails at start-up, but its session (~15 ms,
    ~13 MB) is made when the first lift asks for a mask: a camera that sees no lift never
    pays for it. It runs without a memory pattern (see `make_session`): ~20 MB less at peak.
    """

    def __init__(self, threads: int = 1) -> None:
        _, self.path = resolve("blazepose_full")
        self.threads = threads
        self._session: Any = None

    @property
    def session(self) -> Any:
        """The ONNX Runtime session, made on first use."""
        if self._session is None:
            self._session = make_session(self.path, self.threads, mem_pattern=False)
        return self._session

    def mask(self, crop_bgr: Image) -> FloatArray:
        """Person probability (256, 256) for a 256×256 BGR crop."""
        rgb = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        (logits,) = self.session.run(["activation_segmentation"], {"input_1": rgb[None]})
        return (1.0 / (1.0 + np.exp(-np.clip(logits[0, :, :, 0], -30.0, 30.0)))).astype(np.float32)

    def shape(self, view: BackView) -> BackShape | None:
        """Back shape of a prepared trunk view (see `back_view`): the ~16 ms half."""
        return back_shape(self.mask(view.crop), view.hip, view.shoulder, view.normal)

    def measure(self, image_bgr: Image, xy: FloatArray, scores: FloatArray) -> BackShape | None:
        """Back shape of the person whose COCO-17 keypoints (frame pixels) are given."""
        view = back_view(image_bgr, xy, scores)
        return None if view is None else self.shape(view)
