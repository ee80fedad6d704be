"""Hinge or rounded back: one judgement per `Lift`, from the spine's own shape.

Trunk angle, knee angle and hip height tell a stoop from a squat, not a flat back from a
flexed one: the hip hinge this product teaches *is* a stoop with a neutral spine. So the
rounded evidence here comes only from cues that change when the spine itself bends:

- ``back_curvature``: the silhouette of the back (`edge.silhouette`), when frames were
  there to measure it. It decides: its thresholds are degrees of spinal flexion turned into
  curvature by geometry (see `PostureConfig`), and ``spine_flexion_deg`` reports the
  estimate. In oblique views the outline traces the flank and arm, not the back, so
  there it decides nothing and the lift abstains; the keypoint cues add a dropped head
  and nothing else;
- without it, ``neck_drop``: the head (ear, else nose) falls below the hip→shoulder line
  extended, as the upper back flexes, measured against the same angle while standing; and
  ``chord_ratio``: a curved spine is shorter hip-to-shoulder than a straight one.

On the 20 labelled side/oblique real lifts the keypoint cues alone reach 0.50 balanced
accuracy (every real lifter raises the head at the bottom); the outline gives 1.00 on the
15 it scores, with 5 abstentions, but the margin is ~1–4° of flexion
(docs/lifts-and-posture.md).

Trunk flexion, hip and knee angles and hip travel are reported (and REBA's trunk band) so
a safety professional can see why, but they do not decide the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge.keypoints import KP
from edge.series import Lift, TrackSeries
from edge.stats import median

Arr = npt.NDArray[np.float64]
Label = Literal["hinge", "rounded", "unscorable"]
View = Literal["side", "oblique", "front"]
OutlineRole = Literal["decides", "reading", "unused"]

_LEFT = {"ear": KP.LEFT_EAR, "shoulder": KP.LEFT_SHOULDER, "hip": KP.LEFT_HIP,
         "knee": KP.LEFT_KNEE, "ankle": KP.LEFT_ANKLE}  # fmt: skip
_SEEN_SCORE = 0.2
_BOTH_SIDES_SCORE = 0.2
_RIGHT = {"ear": KP.RIGHT_EAR, "shoulder": KP.RIGHT_SHOULDER, "hip": KP.RIGHT_HIP,
          "knee": KP.RIGHT_KNEE, "ankle": KP.RIGHT_ANKLE}  # fmt: skip


@dataclass(frozen=True, slots=True)
class PostureConfig:
    """Every threshold of the posture judgement, each with the reason for its value."""

    min_score: float = 0.3
    """Keypoint confidence below which MoveNet's position is mostly a guess."""
    min_frames: int = 2
    """Fewer usable frames around the bottom than this is too little to judge a lift."""
    bottom_window_s: float = 0.3
    """Frames this close to the lift's bottom belong to the bottom phase."""
    fit_min_share: float = 0.5
    """Frames bent less than this share of the deepest flexion say little about the bottom."""
    upright_max_deg: float = 20.0
    """Trunk within this of vertical is upright: such frames give the standing head angle."""
    bottom_flexion_share: float = 0.8
    """So do frames bent at least this share of the lift's deepest trunk flexion: the spine
    holds its shape through the low phase, and more frames average out keypoint jitter."""
    side_max_width: float = 0.35
    """Shoulder/hip width over torso length below this while standing: a side view
    (a body seen square-on is about 0.7 wide per torso length). 0.35 is ~27° of yaw, where
    the shoulders' half-width times sin α overtakes the back's depth times cos α and the
    silhouette's back edge stops being the back (see `oblique_outline`)."""
    front_min_width: float = 0.62
    """Width over torso length above this: the body faces the camera, so the sagittal plane
    (where the spine bends) is seen edge-on and the back cannot be judged."""
    square_on_width: float = 0.75
    """Typical width/torso seen square-on, to estimate the yaw that foreshortens the trunk."""
    neck_neutral_deg: float = 4.5
    """Head drop against the trunk line (beyond standing) where hinge and rounded are equally
    likely: a flat-back lifter keeps the head near the line or looks up, while thoracic
    flexion of 30° or more drops it by roughly half that."""
    neck_scale_deg: float = 5.0
    """Degrees of head drop per unit of evidence; about the spread of MoveNet ear noise."""
    chord_neutral: float = 0.93
    """Chord ratio where the classes meet: a 60° spinal arc is ~5 % shorter than its length,
    and keypoints on the shoulder joint exaggerate it, while a flat back keeps ~1.0."""
    chord_scale: float = 0.05
    """Chord ratio per unit of evidence: about the frame-to-frame spread of torso length."""
    chord_weight: float = 0.3
    """Chord shortening is small next to keypoint noise and foreshortening mimics it: it only
    tips close calls."""
    curvature_flat: float = 0.022
    """Silhouette curvature (see `edge.silhouette.BackShape`) of a flat back: the outline
    still bows ~2 % of trunk length backwards (thoracic kyphosis, shoulder blades, the
    buttocks at the lower end). Median over upright side-view frames of all 31 real clips,
    posture labels unused (0.022; single frames are noisy because hanging arms cross the
    outline), and the same as the median at the bottom of the neutral side-view lifts."""
    curvature_per_deg: float = 0.00168
    """Added curvature per degree of spinal flexion: a flexion spread evenly over the spine
    between the lumbosacral and cervicothoracic junctions (0.15–0.85 of hip→shoulder; pelvis
    and shoulder girdle stay rigid), measured the way `back_shape` does (stations 0.1–0.9,
    chord through three end stations): 10° → 0.017, 20° → 0.034, 30° → 0.050."""
    curvature_boundary_deg: float = 10.0
    """Flexion where hinge and rounded are equally likely: half-way between a neutral spine
    (0°) and the 20° of flexion beyond neutral that we call rounded (about a third of the
    lumbar range, where lifting guidance stops calling a back neutral)."""
    curvature_scale: float = 0.003
    """Curvature per unit of log-odds: σ²/Δ for two classes 0.034 apart (0° vs 20°) with the
    ~0.01 frame-to-frame scatter of the measure on one held back."""
    oblique_outline: Literal["abstain", "clear", "trust"] = "abstain"
    """What the outline may say in an oblique view: nothing. Past ~27° of yaw (the
    `side_max_width` boundary) the silhouette's back edge is no longer the back: an
    outline point seen at yaw α reaches sqrt(depth²·cos²α + half-width²·sin²α) from the
    trunk's axis, and half-widths (shoulders with deltoids ~0.24 m, waist ~0.15 m, hips
    ~0.18 m) exceed the back's depth (~0.12 m) times cot α there. The outline then
    traces shoulder, arm, waist and hip breadths, which vary along the trunk by 0.02–0.05
    trunk lengths either way (a narrow waist reads hollow, an arm or deltoid bulge reads
    rounded) — 12–30° of apparent flexion, more than the 10° margin. Neutral real backs at
    ~33° yaw read +0.06–0.07 (the arm), so a high reading cannot condemn a back, and by
    the same geometry a low one cannot clear it. ``"clear"`` lets a low outline clear a back
    (abstaining on a high one); ``"trust"`` uses it as in side views."""
    outline_max_spread: float = 0.35
    """Left and right shoulders (and hips) further apart than this across the trunk's axis,
    per trunk length, at the frames the outline was measured (`edge.silhouette.trunk_spread`):
    the outline of a view estimated `side` while standing is then treated as oblique. How
    the camera sees the bent trunk's cross-section is not how it saw the standing body: a
    camera looking down on a trunk near horizontal sees the back from above (pitch acts as
    yaw in the cross-section), and a lifter may turn. The spread is about 0.75 (shoulder
    width per torso length, as in `square_on_width`) times sin α for the angle α in the
    cross-section, so 0.35 is the same ~27° as `side_max_width`; a trunk foreshortened
    toward the camera only raises it. It only takes the outline away, never grants it to an
    oblique view: keypoints that are wrong for a few frames can look side-on."""
    uncertain_z: float = 1.0
    """Head drop (or silhouette curvature) closer to the boundary than this many standard
    errors (from the frames' own spread) is too close to call: abstaining costs coverage, a
    coin flip costs trust."""
    head_up_cap: float = 1.5
    """A raised head is weak evidence of a flat back: lifters look forward with a rounded
    thoracic spine too (all three rounded real clips do), so it is worth at most this much
    log-odds (about 0.8 probability) toward hinge."""
    cue_cap: float = 4.0
    """No single cue may be worth more log-odds than this: one glitch must not decide."""
    oblique_confidence: float = 0.8
    """Oblique views foreshorten the sagittal plane: confidence is scaled down by this."""
    reba_bands_deg: tuple[float, float, float] = (5.0, 20.0, 60.0)
    """REBA trunk score: ≤5° → 1, ≤20° → 2, ≤60° → 3, beyond → 4 (flexion only)."""

    @property
    def curvature_neutral(self) -> float:
        """Silhouette curvature where hinge and rounded are equally likely (~0.039)."""
        return self.curvature_flat + self.curvature_per_deg * self.curvature_boundary_deg


DEFAULT_CONFIG = PostureConfig()


@dataclass(frozen=True, slots=True)
class Posture:
    """The judgement of one lift, with the features behind it."""

    label: Label
    confidence: float
    reason: str | None
    view: View
    features: dict[str, float | None] = field(default_factory=dict)
    reba_trunk: int | None = None

    @property
    def scored(self) -> bool:
        return self.label != "unscorable"


def reba_trunk_score(flexion_deg: float, bands: tuple[float, float, float] = (5, 20, 60)) -> int:
    """REBA trunk score 1–4 from trunk flexion (twist and side-bend are not seen here)."""
    f = abs(flexion_deg)
    return 1 + sum(f > b for b in bands)


def judge(
    lift: Lift,
    back_curvature: float | None = None,
    config: PostureConfig = DEFAULT_CONFIG,
    back_curvature_se: float | None = None,
    back_spread: float | None = None,
    outline_tried: bool = False,
) -> Posture:
    """Hinge, rounded or unscorable for one lift (see the module docstring for why).

    ``back_curvature`` is the silhouette measure summarised over the lift's low phase,
    ``back_curvature_se`` its standard error and ``back_spread`` how obliquely the trunk's
    cross-section was seen in those frames (see `PostureConfig.outline_max_spread`); with
    it the outline decides and the keypoint cues only add a dropped head. ``outline_tried``
    says a silhouette model was there for an outline even if no reading came of it (no low
    frame sampled, or ragged masks): an oblique view then abstains as it would with one, a
    side view with ``no outline``, rather than fall back on keypoint cues that call nearly
    every real lift `hinge` (a mirrored real rounded pull among them). Without a silhouette
    model at all (poses only) the keypoint cues judge.
    """
    c = config
    standing = _standing(lift)
    view, width = estimate_view(standing, c)
    side = _visible_side(lift.series)
    bottom = _bottom_phase(lift, c)
    curvature = (
        back_curvature if back_curvature is not None and math.isfinite(back_curvature) else None
    )

    features: dict[str, float | None] = {
        "duration_s": round(lift.duration, 3),
        "view_width": _r(width),
        "back_curvature": back_curvature,
        "back_curvature_se": back_curvature_se,
        "back_spread": _r(back_spread) if back_spread is not None else None,
        "spine_flexion_deg": None
        if curvature is None
        else _r((curvature - c.curvature_flat) / c.curvature_per_deg),
    }
    reason = _visibility_problem(bottom, standing, side, view, c)
    geo = _bottom_geometry(lift, standing, bottom, side, view, width, c)
    features.update({k: _r(v) for k, v in geo.items()})
    flex = geo.get("trunk_flexion_deg", math.nan)
    reba = reba_trunk_score(flex, c.reba_bands_deg) if math.isfinite(flex) else None

    if curvature is not None:
        evidence: float | None = _silhouette_evidence(geo, curvature, c)
        outline = _curvature_term(curvature, c)
        if view == "front":
            reason = "front view"
        elif (
            reason is None
            and _outline_oblique(view, back_spread, c)
            and _oblique_outline_mute(outline, c)
        ):
            reason = "oblique outline"
        elif reason is None and _curvature_too_close(curvature, back_curvature_se, c):
            reason = "uncertain"
    else:
        evidence = _keypoint_evidence(geo, c)
        if view == "front":
            reason = "front view"
        elif reason is None and outline_tried and _outline_withheld(view, c):
            reason = "oblique outline"
        elif reason is None and outline_tried:
            reason = "no outline"
        elif reason is None and evidence is None:
            reason = "head hidden"
        elif reason is None and _too_close_to_call(geo, c):
            reason = "uncertain"
    if reason is not None or evidence is None:
        return Posture("unscorable", 0.0, reason, view, features, reba)
    p_rounded = 1.0 / (1.0 + math.exp(-evidence))
    features["p_rounded"] = _r(p_rounded)
    label: Label = "rounded" if p_rounded >= 0.5 else "hinge"
    confidence = max(p_rounded, 1.0 - p_rounded) * _visibility(bottom, side)
    if view == "oblique":
        confidence *= c.oblique_confidence
    return Posture(label, round(confidence, 3), None, view, features, reba)


def estimate_view(
    standing: TrackSeries, config: PostureConfig = DEFAULT_CONFIG
) -> tuple[View, float]:
    """`side`, `oblique` or `front` from shoulder and hip widths per torso length, standing.

    The body's own proportions need no camera calibration: seen from the side the left and
    right joints overlap; seen from the front they are most of a torso length apart.
    """
    if not len(standing):
        return "oblique", math.nan
    xy, sc = standing.xy, standing.scores
    ok = sc >= config.min_score
    widths = []
    for a, b in ((KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER), (KP.LEFT_HIP, KP.RIGHT_HIP)):
        w = np.abs(xy[:, a, 0] - xy[:, b, 0])
        widths.append(np.where(ok[:, a] & ok[:, b], w, np.nan))
    sh = _mid(xy, KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER)
    hp = _mid(xy, KP.LEFT_HIP, KP.RIGHT_HIP)
    torso = np.linalg.norm(sh - hp, axis=1)
    stacked = np.stack(widths)
    seen = np.isfinite(stacked).sum(axis=0)
    mean_width = np.where(seen > 0, np.nansum(stacked, axis=0) / np.maximum(seen, 1), np.nan)
    ratio = _nanmedian(mean_width / np.maximum(torso, 1e-6))
    if not math.isfinite(ratio):
        return "oblique", math.nan
    if ratio < config.side_max_width:
        return "side", ratio
    if ratio > config.front_min_width:
        return "front", ratio
    return "oblique", ratio


def outline_role(lift: Lift, config: PostureConfig = DEFAULT_CONFIG) -> OutlineRole:
    """What the back's outline can do for this lift, judging by the view while standing.

    ``decides`` in a side view (and in an oblique one if `PostureConfig.oblique_outline`
    lets it count); ``reading`` in an oblique view, where `judge` says ``oblique outline``
    whatever it reads, so a reading to report is all it is worth; ``unused`` facing the
    camera, where the spine bends edge-on and `judge` says ``front view``. Masks cost ~16 ms
    each, so the caller masks accordingly. (A side view whose masked frames turn out
    oblique, `PostureConfig.outline_max_spread`, is only known after them.)
    """
    view, _ = estimate_view(_standing(lift), config)
    if view == "front":
        return "unused"
    if view == "side" or config.oblique_outline != "abstain":
        return "decides"
    return "reading"


def _standing(lift: Lift) -> TrackSeries:
    return lift.standing if len(lift.standing) else lift.series.window(lift.start, lift.start)


def _too_close_to_call(geo: dict[str, float], c: PostureConfig) -> bool:
    """The head cue sits within its own noise of the class boundary: abstain, don't guess."""
    se = geo.get("neck_drop_se", math.nan)
    if not math.isfinite(se):
        return False
    return abs(geo["neck_drop"] - c.neck_neutral_deg) < c.uncertain_z * se


def _outline_oblique(view: View, spread: float | None, c: PostureConfig) -> bool:
    """The outline was measured on a trunk seen obliquely: the view while standing says so,
    or the shoulders and hips spread across the bent trunk say so (see `PostureConfig`)."""
    if view == "oblique":
        return True
    return spread is not None and math.isfinite(spread) and spread >= c.outline_max_spread


def _outline_withheld(view: View, c: PostureConfig) -> bool:
    """An oblique view whose outline, had it been read, could not have cleared the back for
    sure (``abstain``: never; ``clear``: only a low one): without it there is no verdict."""
    return view == "oblique" and c.oblique_outline != "trust"


def _oblique_outline_mute(outline: float, c: PostureConfig) -> bool:
    """The outline of an oblique view traces the flank, not the back (see `PostureConfig`)."""
    if c.oblique_outline == "trust":
        return False
    return c.oblique_outline == "abstain" or outline > 0


def _curvature_too_close(curvature: float, se: float | None, c: PostureConfig) -> bool:
    """The outline's median sits within its own noise of the class boundary."""
    if se is None or not math.isfinite(se):
        return False
    return abs(curvature - c.curvature_neutral) < c.uncertain_z * se


def _head_term(geo: dict[str, float], c: PostureConfig) -> float | None:
    neck = geo.get("neck_drop", math.nan)
    if not math.isfinite(neck):
        return None
    return float(np.clip((neck - c.neck_neutral_deg) / c.neck_scale_deg, -c.head_up_cap, c.cue_cap))


def _curvature_term(curvature: float, c: PostureConfig) -> float:
    return float(
        np.clip((curvature - c.curvature_neutral) / c.curvature_scale, -c.cue_cap, c.cue_cap)
    )


def _keypoint_evidence(geo: dict[str, float], c: PostureConfig) -> float | None:
    """Log-odds of a rounded back from keypoints alone; None without the head cue."""
    total = _head_term(geo, c)
    if total is None:
        return None
    chord = geo.get("chord_ratio", math.nan)
    if math.isfinite(chord):
        total += c.chord_weight * float(
            np.clip((c.chord_neutral - chord) / c.chord_scale, -c.cue_cap, c.cue_cap)
        )
    return total


def _silhouette_evidence(geo: dict[str, float], curvature: float, c: PostureConfig) -> float:
    """Log-odds of a rounded back when the outline was measured.

    The outline measures the flexion the chord ratio only hints at, so the chord is left
    out. A raised head counts for nothing: it comes from the neck (every real lifter looks
    up at the bottom, rounded or not); a dropped head still adds thoracic evidence.
    """
    head = _head_term(geo, c)
    return _curvature_term(curvature, c) + max(0.0, head if head is not None else 0.0)


def _bottom_geometry(
    lift: Lift,
    standing: TrackSeries,
    bottom: TrackSeries,
    side: dict[str, KP] | None,
    view: View,
    width: float,
    c: PostureConfig,
) -> dict[str, float]:
    """Angles and body-unit distances at the bottom, mirrored so the person faces +x."""
    facing = _facing(bottom, side)
    pts_b = _points(bottom, side, facing)
    pts_s = _points(standing, side, facing)
    pts_all = _points(lift.series, side, facing)
    up = np.array([0.0, -1.0])

    trunk_b = pts_b["shoulder"] - pts_b["hip"]
    trunk_s = pts_s["shoulder"] - pts_s["hip"]
    trunk_len = _nanmedian(np.linalg.norm(trunk_s, axis=1))
    height = _nanmedian(pts_s["ankle"][:, 1] - pts_s["shoulder"][:, 1])
    if not math.isfinite(height) or height <= 0:
        height = 2.6 * trunk_len

    flexion = _angle_between(trunk_b, up[None, :])
    flexion_all = _angle_between(pts_all["shoulder"] - pts_all["hip"], up[None, :])
    hip_angle = _joint_angle(pts_b["shoulder"], pts_b["hip"], pts_b["knee"])
    knee_angle = _joint_angle(pts_b["hip"], pts_b["knee"], pts_b["ankle"])
    hip_shift = (pts_b["ankle"][:, 0] - pts_b["hip"][:, 0]) / height

    neck_b = _signed_drop(trunk_b, pts_b["head"] - pts_b["shoulder"])
    upright = _upright(lift, standing, c)
    pts_u = _points(upright, side, facing)
    neck_s = _signed_drop(pts_u["shoulder"] - pts_u["hip"], pts_u["head"] - pts_u["shoulder"])
    neck_ref = _nanmedian(neck_s)
    ref = neck_ref if math.isfinite(neck_ref) else 0.0
    lift_only = lift.series.window(lift.start, lift.end)
    pts_l = _points(lift_only, side, facing)
    trunk_l = pts_l["shoulder"] - pts_l["hip"]
    neck_drop, neck_se = _drop_at_bottom(
        _angle_between(trunk_l, up[None, :]),
        _signed_drop(trunk_l, pts_l["head"] - pts_l["shoulder"]) - ref,
        _nanmedian(neck_b) - ref,
        c,
    )

    chord = np.linalg.norm(trunk_b, axis=1)
    flex_b = _nanmedian(flexion)
    expected = trunk_len * _yaw_foreshortening(flex_b, width, view, c)
    return {
        "trunk_flexion_deg": flex_b,
        "trunk_flexion_max_deg": float(np.nanmax(flexion_all)) if _any(flexion_all) else math.nan,
        "hip_angle_deg": _nanmedian(hip_angle),
        "knee_angle_deg": _nanmedian(knee_angle),
        "hip_shift": _nanmedian(hip_shift),
        "neck_drop": neck_drop,
        "neck_drop_se": neck_se,
        "chord_ratio": _nanmedian(chord) / expected if expected > 0 else math.nan,
    }


def _drop_at_bottom(
    flexion: Arr, drop: Arr, fallback: float, c: PostureConfig
) -> tuple[float, float]:
    """Head drop at the deepest bend, fitted over the whole descent and ascent.

    A flexing spine rounds as the trunk goes down, so each frame's drop is taken as
    proportional to its share of the deepest trunk flexion; the weighted median of the
    implied bottom values uses three times the frames of the bottom alone, and per-frame
    keypoint noise (about 18° on the short shoulder-to-ear lever) needs them. Also returns
    the standard error of that median, from the frames' spread.
    """
    ok = np.isfinite(flexion) & np.isfinite(drop)
    if ok.sum() < c.min_frames:
        return fallback, math.nan
    share = flexion[ok] / max(float(np.max(flexion[ok])), 1e-6)
    use = share >= c.fit_min_share
    if use.sum() < c.min_frames:
        return fallback, math.nan
    implied = drop[ok][use] / share[use]
    value = _weighted_median(implied, share[use] ** 2)
    spread = 1.4826 * median(np.abs(implied - value))
    return value, 1.25 * spread / math.sqrt(int(use.sum()))


def _weighted_median(values: Arr, weights: Arr) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def _yaw_foreshortening(flexion_deg: float, width: float, view: View, c: PostureConfig) -> float:
    """How much a straight trunk's image shrinks at this flexion when the body is yawed.

    A forward lean seen at yaw α keeps its vertical part but its forward part shrinks by
    cos α, so an oblique hinge looks like a shorter chord unless this is divided out.
    """
    if view == "side" or not math.isfinite(width) or not math.isfinite(flexion_deg):
        return 1.0
    sin_yaw = min(1.0, width / c.square_on_width)
    cos_yaw2 = 1.0 - sin_yaw**2
    th = math.radians(flexion_deg)
    return math.sqrt(math.cos(th) ** 2 + math.sin(th) ** 2 * cos_yaw2)


def _visible_side(series: TrackSeries) -> dict[str, KP] | None:
    """The body side the camera sees best, or None (use left/right midpoints) when even."""
    left = series.scores[:, list(_LEFT.values())].mean()
    right = series.scores[:, list(_RIGHT.values())].mean()
    if abs(left - right) < 0.05:
        return None
    return _LEFT if left > right else _RIGHT


def _points(series: TrackSeries, side: dict[str, KP] | None, facing: float) -> dict[str, Arr]:
    """Per-frame joint positions (NaN where unseen), x mirrored by ``facing``.

    Shoulders, hips and ears use the plain left/right midpoint when both are seen: it lies
    on the sagittal plane, where the spine bends, whereas one side's joints sit at different
    lateral offsets and a pitched or yawed camera turns those offsets into fake angles.
    The visible side stands in when the far side is lost.
    """
    xy, sc = series.xy.astype(np.float64), series.scores.astype(np.float64)
    out: dict[str, Arr] = {}
    for name in ("ear", "shoulder", "hip", "knee", "ankle"):
        a, b = _LEFT[name], _RIGHT[name]
        both = (sc[:, a] >= _BOTH_SIDES_SCORE) & (sc[:, b] >= _BOTH_SIDES_SCORE)
        near = side[name] if side is not None else (a if sc[:, a].mean() >= sc[:, b].mean() else b)
        one = np.where((sc[:, near] >= _SEEN_SCORE)[:, None], xy[:, near], np.nan)
        mid = (xy[:, a] + xy[:, b]) / 2.0
        use_mid = both if name in ("ear", "shoulder", "hip") or side is None else both & False
        out[name] = np.where(use_mid[:, None], mid, one)
    nose = np.where((sc[:, KP.NOSE] >= _SEEN_SCORE)[:, None], xy[:, KP.NOSE], np.nan)
    out["head"] = np.where(np.isnan(out["ear"]), nose, out["ear"])
    for p in out.values():
        p[:, 0] *= facing
    return out


def _facing(bottom: TrackSeries, side: dict[str, KP] | None) -> float:
    """+1 if the person faces +x: at the bottom the shoulders lean ahead of the hips."""
    xy = bottom.xy
    sh = _mid(xy, KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER)
    hp = _mid(xy, KP.LEFT_HIP, KP.RIGHT_HIP)
    lean = median(sh[:, 0] - hp[:, 0]) if len(bottom) else 0.0
    torso = median(np.linalg.norm(sh - hp, axis=1)) if len(bottom) else 0.0
    if abs(lean) > 0.2 * torso:
        return 1.0 if lean > 0 else -1.0
    ear = _mid(xy, KP.LEFT_EAR, KP.RIGHT_EAR)
    look = median(xy[:, KP.NOSE, 0] - ear[:, 0]) if len(bottom) else 0.0
    return 1.0 if look >= 0 else -1.0


def _visibility_problem(
    bottom: TrackSeries,
    standing: TrackSeries,
    side: dict[str, KP] | None,
    view: View,
    c: PostureConfig,
) -> str | None:
    if len(bottom) < c.min_frames or len(standing) < 1:
        return "too few frames"
    sc = bottom.scores

    def seen(a: KP, b: KP) -> bool:
        if side is not None and a in _LEFT.values():
            key = next(k for k, v in _LEFT.items() if v == a)
            return median(sc[:, side[key]]) >= c.min_score
        return median(np.maximum(sc[:, a], sc[:, b])) >= c.min_score

    if not seen(KP.LEFT_HIP, KP.RIGHT_HIP):
        return "hips hidden"
    if not seen(KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER):
        return "shoulders hidden"
    if float(np.mean(sc >= c.min_score)) < 0.4:
        return "too few keypoints"
    return None


def _visibility(bottom: TrackSeries, side: dict[str, KP] | None) -> float:
    """0–1 trust in the keypoints the judgement used."""
    idx = list((side or _LEFT).values())
    if side is None:
        idx += list(_RIGHT.values())
    return float(np.clip(median(bottom.scores[:, idx]) / 0.6, 0.3, 1.0))


def _upright(lift: Lift, standing: TrackSeries, c: PostureConfig) -> TrackSeries:
    """Every upright frame around the lift, standing reference included: the head-to-trunk
    angle of this person standing is the zero of ``neck_drop``, and more frames steady it."""
    t = np.concatenate([standing.t, lift.series.t])
    xy = np.concatenate([standing.xy, lift.series.xy])
    sc = np.concatenate([standing.scores, lift.series.scores])
    t, first = np.unique(t, return_index=True)
    xy, sc = xy[first], sc[first]
    trunk = _mid(xy, KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER) - _mid(xy, KP.LEFT_HIP, KP.RIGHT_HIP)
    keep = _angle_between(trunk, np.array([[0.0, -1.0]])) <= c.upright_max_deg
    if not keep.any():
        return standing
    return TrackSeries(standing.track_id, t[keep], xy[keep], sc[keep])


def _bottom_phase(lift: Lift, c: PostureConfig) -> TrackSeries:
    """The frames near the deepest trunk bend: the spine's shape is held through them, and
    their median rides out keypoint jitter that a single bottom frame would not."""
    series = lift.series.window(lift.start, lift.end)
    if len(series) < c.min_frames:
        return _nearest(lift.series, lift.bottom, c.min_frames)
    xy = series.xy.astype(np.float64)
    trunk = _mid(xy, KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER) - _mid(xy, KP.LEFT_HIP, KP.RIGHT_HIP)
    flexion = _angle_between(trunk, np.array([[0.0, -1.0]]))
    peak = float(np.max(flexion))
    near_bottom = np.abs(series.t - lift.bottom) <= c.bottom_window_s
    keep = near_bottom | (flexion >= c.bottom_flexion_share * peak)
    if keep.sum() < c.min_frames:
        return _nearest(lift.series, lift.bottom, c.min_frames)
    return TrackSeries(series.track_id, series.t[keep], series.xy[keep], series.scores[keep])


def _nearest(series: TrackSeries, t: float, n: int) -> TrackSeries:
    if not len(series):
        return series
    order = np.sort(np.argsort(np.abs(series.t - t))[:n])
    return TrackSeries(series.track_id, series.t[order], series.xy[order], series.scores[order])


def _mid(xy: npt.NDArray[np.floating], a: int, b: int) -> Arr:
    return (xy[:, a].astype(np.float64) + xy[:, b]) / 2.0


def _angle_between(u: Arr, v: Arr) -> Arr:
    cos = np.sum(u * v, axis=1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1) + 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _joint_angle(a: Arr, joint: Arr, b: Arr) -> Arr:
    return _angle_between(a - joint, b - joint)


def _signed_drop(trunk: Arr, neck: Arr) -> Arr:
    """Degrees the shoulder→head direction turns from the hip→shoulder line toward the front.

    With the person facing +x in image coordinates (y down), turning from the trunk toward
    the belly side is clockwise, i.e. a positive cross product.
    """
    cross = trunk[:, 0] * neck[:, 1] - trunk[:, 1] * neck[:, 0]
    dot = np.sum(trunk * neck, axis=1)
    return np.degrees(np.arctan2(cross, dot))


def _any(a: Arr) -> bool:
    return bool(np.isfinite(a).any())


def _nanmedian(a: Arr) -> float:
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    return median(a) if a.size else math.nan


def _r(v: float) -> float | None:
    return round(float(v), 4) if math.isfinite(v) else None
