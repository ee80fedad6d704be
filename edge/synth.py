"""Synthetic people who lift, bend, kneel, walk and stand, seen by a pinhole camera as COCO-17.

Why: lift detection and posture classification need unit tests and calibration data whose
truth is exact (lift times, spine flexion, trunk angle, view angle). This is a kinematic
model, not evidence that the product works on real people: the real clips are for that.

Usage::

    from edge.synth import lift_scenario, synth_stream
    s = synth_stream(lift_scenario("stoop", yaw_deg=20, noise=0.01), fps=10, seed=1)
    s.t                # (m,) seconds
    s.poses[i]         # edge.poses.Poses of frame i, track_ids already set
    s.lifts            # list[Truth] of the lifts; s.labels has every activity

Public API (kept small and stable):

- ``synth_stream(scenario, fps=10.0, seed=0) -> SynthStream`` (deterministic per seed)
- ``SynthStream``: ``t``, ``poses: list[Poses]``, ``labels: list[Truth]``, ``lifts``,
  ``camera``, ``track(track_id) -> TrackSeries``
- ``Truth``: track_id, kind, start, bottom, end, posture (``hinge`` | ``rounded`` | None),
  spine_flexion_deg, trunk_angle_deg (hip→shoulder chord from vertical at the bottom),
  hip_flexion_deg, knee_bend_deg, hand_height_m (wrists above the floor at the bottom),
  view_yaw_deg (along the line of sight at the bottom, so perspective counts), setdown;
  ``is_lift``
- Activities (plain frozen dataclasses): ``LiftMove``, ``Bend``, ``Kneel``, ``Walk``, ``Reach``,
  ``Idle``; composed by ``Person(activities, ...)`` and ``Scenario(people, camera, noise)``
- ``Camera`` (``Camera.aimed(distance_m, pitch_deg)``), ``Noise``
- ``lift_scenario(style, ...)``, ``non_lift_scenario(kind, ...)``, ``random_scenario(rng, ...)``
- ``LIFT_STYLES``, ``NON_LIFT_KINDS``, ``ROUNDED_SPINE_DEG``, ``FLOOR_LIFT_MAX``,
  ``SHIN_BEND_RANGE``

Conventions:

- The body model is sagittal: joint angles in the body's x (forward) / z (up) plane, with fixed
  lateral offsets; lengths are Drillis–Contini fractions of stature. The spine has a pelvis
  segment and three flexing segments (L5–L1, T12–T7, T7–T1) plus neck and head. Spine flexion
  is shared 50/30/20 between them, so a rounded back really curves, the head drops and the
  hip–shoulder chord shortens (modestly: ~4% at 50°, as for any arc).
- A lift's bottom pose is solved, not scripted: hip flexion so the wrists reach
  ``hand_height_m`` and shank tilt so the centre of mass stays over the feet (the hips go back
  in a hinge by themselves).
- ``yaw_deg`` is the view: 0 = facing image right (the camera sees the right side),
  90 = facing the camera, 180 = facing image left (left side seen), -90 = the back.
- Wrists at 0.05–0.15 m with knees under ~40° force the hip–shoulder chord past horizontal
  (trunk_angle_deg ≈ 110–120° for hinge and stoop alike): that is anthropometry, and why
  posture must look at the spine's curve, not the trunk angle alone.
- Posture truth is ``rounded`` when spine flexion >= ``ROUNDED_SPINE_DEG`` (25°), else
  ``hinge``: the class is about the spine, not the legs, so a flat-back squat is ``hinge``.
  ``random_scenario`` keeps away from the boundary (≤15° or ≥35°).
- Floor-level lift vs bend, the product definition: a lift brings the hands to at most
  ``FLOOR_LIFT_MAX`` (0.17) of stature above the floor, about mid-shin (0.30 m at 1.75 m: boxes
  and totes picked off the floor, a barbell on plates). A ``shin_bend`` stops with the hands at
  upper-shin height just below the knee, ``SHIN_BEND_RANGE`` (0.23–0.285 of stature, 0.40–0.50 m
  at 1.75 m); a non-lift ``squat`` has the hands at standing knee height. Nothing is generated
  between 0.17 and 0.23 of stature: a real grip can sit there (a low crate's handles, a bar on
  small plates) and so can a bend to the shin, so neither label is right and a detector's
  boundary inside that band is a product choice, not an error either way.
- Kneeling (one knee on the floor, hands at the front shoe as if tying a lace) is labelled
  ``kneel``, a non-lift: nothing is picked up and the back is not loaded. The hands do go
  below the knee, so a detector may count it; tests decide whether that is tolerated.
- Label times: ``start`` = the body starts to move from standing, ``bottom`` = middle of the
  hold at the lowest pose, ``end`` = standing again. Between activities (and before / after)
  a person stands idle with a small sway.
- Scores: ~0.7–0.9 when visible, about halved (and position noise doubled) for the side turned
  away; dropouts and occluded points get 0.02–0.25 and a position error of ~8% of body height;
  points outside the image get ≤0.05, and a person with fewer than 5 points inside is absent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.keypoints import KP, NUM_KEYPOINTS
from edge.poses import Poses, keypoint_boxes
from edge.series import TrackSeries

Arr = npt.NDArray[np.float64]

ROUNDED_SPINE_DEG = 25.0
FLOOR_LIFT_MAX = 0.17  # hands at or below this share of stature: a floor-level lift
SHIN_BEND_RANGE = (0.23, 0.285)  # shin bends: hands at upper shin, just below the knee

# Stature fractions (Drillis & Contini; Winter, Biomechanics of Human Movement).
_ANKLE_H = 0.039
_KNEECAP_H = 0.03
_SHANK = 0.246
_THIGH = 0.245
_PELVIS = 0.05
_LUMBAR = 0.09
_THOR_LO = 0.085
_THOR_HI = 0.085
_SHOULDER_DROP = 0.022
_NECK = 0.05
_UPPER_ARM = 0.186
_FOREARM = 0.146
_HIP_HALF = 0.09
_SHOULDER_HALF = 0.12
_SPINE_SHARE = (0.5, 0.3, 0.2)
_FOOT_CENTRE = 0.04
_KNEE_STANDING = _ANKLE_H + _SHANK  # kneecap height when standing
# Winter segment mass fractions: head+neck, trunk, upper arm, forearm+hand, thigh, shank+foot.
_MASS = {"head": 0.081, "trunk": 0.497, "uarm": 0.028, "farm": 0.022, "thigh": 0.1, "leg": 0.061}

_ANGLE_KEYS = (
    "thigh_l",
    "thigh_r",
    "knee_l",
    "knee_r",
    "pelvis",
    "lumbar",
    "thor_lo",
    "thor_hi",
    "neck",
    "head",
    "arm_l",
    "arm_r",
    "elbow_l",
    "elbow_r",
)
_STAND: dict[str, float] = dict.fromkeys(_ANGLE_KEYS, 0.0) | {"elbow_l": 8.0, "elbow_r": 8.0}
_LEFT = (
    KP.LEFT_EYE,
    KP.LEFT_EAR,
    KP.LEFT_SHOULDER,
    KP.LEFT_ELBOW,
    KP.LEFT_WRIST,
    KP.LEFT_HIP,
    KP.LEFT_KNEE,
    KP.LEFT_ANKLE,
)
_BASE_SCORE = np.array(
    [0.85, 0.85, 0.85, 0.8, 0.8, 0.9, 0.9, 0.8, 0.8, 0.75, 0.75, 0.85, 0.85, 0.85, 0.85, 0.8, 0.8]
)


# --------------------------------------------------------------------------- body model


def _fk(stature: float, a: dict[str, Arr], planted: bool | Arr = True) -> dict[str, Arr]:
    """Joint positions (…, 3) in the body frame from angles in degrees.

    The root is set so nothing goes through the floor (ankles ≥ ankle height, kneecaps ≥ 0);
    where ``planted`` the mean ankle x is pinned at 0, elsewhere the hip is at ``a["root_x"]``.
    """
    H = stature
    r = {k: np.radians(np.asarray(a[k], float)) for k in _ANGLE_KEYS}
    shape = np.broadcast_shapes(*(v.shape for v in r.values()))
    r = {k: np.broadcast_to(v, shape) for k, v in r.items()}
    zero = np.zeros(shape)

    def down(ang: Arr, length: float) -> Arr:
        return np.stack([length * np.sin(ang), zero, -length * np.cos(ang)], -1)

    def up(ang: Arr, length: float) -> Arr:
        return np.stack([length * np.sin(ang), zero, length * np.cos(ang)], -1)

    def lat(y: float) -> Arr:
        return np.stack([zero, zero + y, zero], -1)

    hip_c = np.zeros((*shape, 3))
    j: dict[str, Arr] = {}
    for s, sign in (("l", 1.0), ("r", -1.0)):
        hip = hip_c + lat(sign * _HIP_HALF * H)
        knee = hip + down(r[f"thigh_{s}"], _THIGH * H)
        j[f"hip_{s}"], j[f"knee_{s}"] = hip, knee
        j[f"ankle_{s}"] = knee + down(r[f"thigh_{s}"] - r[f"knee_{s}"], _SHANK * H)
    ang = r["pelvis"]
    p = hip_c + up(ang, _PELVIS * H)
    for key, seg in (("lumbar", _LUMBAR), ("thor_lo", _THOR_LO), ("thor_hi", _THOR_HI)):
        ang = ang + r[key]
        p = p + up(ang, seg * H)
    t1 = p
    j["hip_c"], j["t1"] = hip_c, t1
    sh_c = t1 - up(ang, _SHOULDER_DROP * H)
    ang_n = ang + r["neck"]
    atlas = t1 + up(ang_n, _NECK * H)
    ang_h = ang_n + r["head"]
    fwd = np.stack([np.cos(ang_h), zero, -np.sin(ang_h)], -1)
    hup = up(ang_h, 1.0)

    def head_pt(f: float, y: float, u: float) -> Arr:
        return atlas + H * (f * fwd + u * hup) + lat(y * H)

    j["nose"] = head_pt(0.065, 0.0, 0.03)
    j["eye_l"], j["eye_r"] = head_pt(0.05, 0.018, 0.05), head_pt(0.05, -0.018, 0.05)
    j["ear_l"], j["ear_r"] = head_pt(0.0, 0.043, 0.04), head_pt(0.0, -0.043, 0.04)
    j["head_c"] = head_pt(0.02, 0.0, 0.05)
    for s, sign in (("l", 1.0), ("r", -1.0)):
        sh = sh_c + lat(sign * _SHOULDER_HALF * H)
        elbow = sh + down(r[f"arm_{s}"], _UPPER_ARM * H)
        j[f"shoulder_{s}"], j[f"elbow_{s}"] = sh, elbow
        j[f"wrist_{s}"] = elbow + down(r[f"arm_{s}"] + r[f"elbow_{s}"], _FOREARM * H)
    lift_z = np.maximum.reduce(
        [
            _ANKLE_H * H - j["ankle_l"][..., 2],
            _ANKLE_H * H - j["ankle_r"][..., 2],
            _KNEECAP_H * H - j["knee_l"][..., 2],
            _KNEECAP_H * H - j["knee_r"][..., 2],
        ]
    )
    shift_x = np.where(
        planted,
        -0.5 * (j["ankle_l"][..., 0] + j["ankle_r"][..., 0]),
        np.asarray(a.get("root_x", 0.0), float) + zero,
    )
    shift = np.stack([shift_x, zero, lift_z], -1)
    return {k: v + shift for k, v in j.items()}


def _com_x(stature: float, j: dict[str, Arr]) -> Arr:
    """Horizontal centre of mass from segment midpoints (Winter's mass fractions)."""
    m = _MASS
    x = m["head"] * j["head_c"][..., 0] + m["trunk"] * 0.5 * (j["hip_c"] + j["t1"])[..., 0]
    for s in "lr":
        x = x + m["uarm"] * 0.5 * (j[f"shoulder_{s}"] + j[f"elbow_{s}"])[..., 0]
        x = x + m["farm"] * j[f"wrist_{s}"][..., 0]
        x = x + m["thigh"] * 0.5 * (j[f"hip_{s}"] + j[f"knee_{s}"])[..., 0]
        x = x + m["leg"] * 0.5 * (j[f"knee_{s}"] + j[f"ankle_{s}"])[..., 0]
    return x


def _coco(j: dict[str, Arr]) -> Arr:
    names = (
        "nose",
        "eye_l",
        "eye_r",
        "ear_l",
        "ear_r",
        "shoulder_l",
        "shoulder_r",
        "elbow_l",
        "elbow_r",
        "wrist_l",
        "wrist_r",
        "hip_l",
        "hip_r",
        "knee_l",
        "knee_r",
        "ankle_l",
        "ankle_r",
    )
    return np.stack([j[n] for n in names], -2)


def _spine(flexion: float) -> dict[str, float]:
    return {
        k: flexion * w for k, w in zip(("lumbar", "thor_lo", "thor_hi"), _SPINE_SHARE, strict=True)
    }


def _ik2(dx: float, dz: float, l1: float, l2: float) -> tuple[float, float]:
    """Two-link chain reaching (dx, dz) from its root: (first angle, bend) in degrees.

    First angle from straight down, positive forward; bend folds the second link backward.
    """
    d = min(math.hypot(dx, dz), l1 + l2 - 1e-9)
    bend = math.pi - math.acos((l1 * l1 + l2 * l2 - d * d) / (2 * l1 * l2))
    first = math.atan2(dx, -dz) + math.acos(min(1.0, (l1 * l1 + d * d - l2 * l2) / (2 * l1 * d)))
    return math.degrees(first), math.degrees(bend)


def _arm_to(j: dict[str, Arr], stature: float, x: float, z: float) -> dict[str, float]:
    """Arm angles so both wrists reach height z, as far forward as x allows (elbows bend)."""
    sh = j["shoulder_l"]
    l1, l2 = _UPPER_ARM * stature, _FOREARM * stature
    dz = z - float(sh[2])
    dx = min(x - float(sh[0]), math.sqrt(max((0.97 * (l1 + l2)) ** 2 - dz * dz, 0.0)))
    first, bend = _ik2(-dx, dz, l1, l2)
    return {"arm_l": -first, "arm_r": -first, "elbow_l": bend, "elbow_r": bend}


@dataclass(frozen=True, slots=True)
class _KeyPose:
    angles: dict[str, float]
    trunk_deg: float
    hip_flexion_deg: float
    hand_height_m: float


def _measure(stature: float, angles: dict[str, float], hip_flex: float) -> _KeyPose:
    j = _fk(stature, {k: np.asarray(v) for k, v in angles.items()})
    sh = j["shoulder_l"] - np.array([0, _SHOULDER_HALF * stature, 0]) - j["hip_c"]
    trunk = math.degrees(math.atan2(float(sh[0]), float(sh[2])))
    hand = 0.5 * float(j["wrist_l"][2] + j["wrist_r"][2])
    return _KeyPose(angles, trunk, hip_flex, hand)


@lru_cache(maxsize=4096)
def _solve_bend(stature: float, spine: float, knee: float, hand_h: float) -> _KeyPose:
    """Bottom pose of a bend: hip flexion puts the wrists at ``hand_h``, shank tilt balances."""
    tilt = np.arange(-15.0, 46.0, 1.0)
    grid = np.arange(0.0, 131.0, 5.0)
    base = (
        _STAND
        | _spine(spine)
        | {
            "knee_l": knee,
            "knee_r": knee,
            "neck": 0.3 * spine - 10.0,
            "arm_l": 5.0,
            "arm_r": 5.0,
            "elbow_l": 10.0,
            "elbow_r": 10.0,
        }
    )

    def pose(tilt: Arr, pelvis: Arr) -> dict[str, Arr]:
        thigh = knee - tilt
        a = {k: np.asarray(v) for k, v in base.items()}
        return a | {"thigh_l": thigh, "thigh_r": thigh, "pelvis": pelvis}

    j = _fk(stature, pose(tilt[:, None], grid[None, :]))
    hand = 0.5 * (j["wrist_l"][..., 2] + j["wrist_r"][..., 2])
    below = hand <= hand_h
    first = np.where(below.any(1), below.argmax(1), hand.argmin(1))
    rows = np.arange(tilt.size)
    prev = np.maximum(first - 1, 0)
    h0, h1 = hand[rows, prev], hand[rows, first]
    frac = np.where(h0 > h1, np.clip((h0 - hand_h) / np.maximum(h0 - h1, 1e-9), 0, 1), 1.0)
    pelvis = grid[prev] + frac * (grid[first] - grid[prev])
    imbalance = np.abs(_com_x(stature, _fk(stature, pose(tilt, pelvis))) - _FOOT_CENTRE * stature)
    best = int(np.argmin(imbalance))
    t, p = float(tilt[best]), float(pelvis[best])
    angles = base | {"thigh_l": knee - t, "thigh_r": knee - t, "pelvis": p}
    return _measure(stature, angles, p + knee - t)


# --------------------------------------------------------------------------- activities


@dataclass(frozen=True, slots=True)
class _Motion:
    """One activity sampled at its own times: angles (m,) each, plus how to place the root."""

    angles: dict[str, Arr]
    root_x: Arr | None = None  # None: feet planted where the activity started
    hidden: npt.NDArray[np.bool_] | None = None  # (m, 17) keypoints hidden by an occluder
    turn_deg: float = 0.0  # body yaw relative to the person's own


class Activity(Protocol):
    """Something a person does for ``duration_s`` seconds, starting and ending standing."""

    @property
    def kind(self) -> str: ...
    @property
    def duration_s(self) -> float: ...
    def advance_m(self, stature: float) -> float: ...
    def motion(self, stature: float, tau: Arr) -> _Motion: ...
    def key(self, stature: float) -> _KeyPose: ...
    def bottom_s(self) -> float: ...


def _ease(u: Arr) -> Arr:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))


def _down_hold_up(tau: Arr, duration: float, hold: float) -> Arr:
    """0 → 1 (descend), 1 (hold), 1 → 0 (rise); descend and rise share the rest equally."""
    move = max(duration - hold, 1e-6) / 2
    return np.where(tau < move + hold, _ease(tau / move), _ease((duration - tau) / move))


def _blend(key: dict[str, float], s: Arr) -> dict[str, Arr]:
    return {k: _STAND[k] + (key[k] - _STAND[k]) * s for k in _ANGLE_KEYS}


@dataclass(frozen=True, slots=True)
class _Posed:
    """Shared shape of activities that go down to a key pose, hold it and come back."""

    duration_s: float = 3.0
    hold_s: float = 0.5

    def advance_m(self, stature: float) -> float:
        return 0.0

    def bottom_s(self) -> float:
        return (self.duration_s - self.hold_s) / 2 + self.hold_s / 2

    def _s(self, tau: Arr) -> Arr:
        return _down_hold_up(tau, self.duration_s, self.hold_s)


@dataclass(frozen=True, slots=True)
class LiftMove(_Posed):
    """Stand → hands at the floor → stand; ``setdown`` is the same motion putting a load down.

    Typical: hinge spine 0–15° knee 10–30°; squat knee 60–130°; rounded spine 35–60°.
    """

    spine_flexion_deg: float = 8.0
    knee_bend_deg: float = 25.0
    hand_height_m: float = 0.12
    setdown: bool = False
    occlude_ankles: bool = False  # the load hides the ankles near the bottom

    @property
    def kind(self) -> str:
        return "lift"

    def key(self, stature: float) -> _KeyPose:
        return _solve_bend(stature, self.spine_flexion_deg, self.knee_bend_deg, self.hand_height_m)

    def motion(self, stature: float, tau: Arr) -> _Motion:
        s = self._s(tau)
        hidden = None
        if self.occlude_ankles:
            hidden = np.zeros((tau.shape[0], NUM_KEYPOINTS), bool)
            hidden[:, [KP.LEFT_ANKLE, KP.RIGHT_ANKLE]] = (s > 0.7)[:, None]
        return _Motion(_blend(self.key(stature).angles, s), hidden=hidden)


@dataclass(frozen=True, slots=True)
class Bend(_Posed):
    """A bend that stops short of the floor: ``shin_bend`` (hands at upper-shin height,
    ``SHIN_BEND_RANGE`` of stature) or ``squat`` (deep knees, hands at standing knee height;
    the solver raises them when the hips cannot go that low). Not a lift."""

    kind: str = "shin_bend"
    spine_flexion_deg: float = 15.0
    knee_bend_deg: float = 15.0
    hand_height_m: float = 0.45

    def key(self, stature: float) -> _KeyPose:
        return _solve_bend(stature, self.spine_flexion_deg, self.knee_bend_deg, self.hand_height_m)

    def motion(self, stature: float, tau: Arr) -> _Motion:
        return _Motion(_blend(self.key(stature).angles, self._s(tau)))


@dataclass(frozen=True, slots=True)
class Kneel(_Posed):
    """Right knee to the floor, left foot forward, hands at the left shoe (tying a lace)."""

    duration_s: float = 5.0
    hold_s: float = 2.5
    hand_height_m: float = 0.25

    @property
    def kind(self) -> str:
        return "kneel"

    def key(self, stature: float) -> _KeyPose:
        H = stature
        root_z = _KNEECAP_H * H + _THIGH * H * math.cos(math.radians(5.0))
        thigh_l, knee_l = _ik2(0.2 * H, _ANKLE_H * H - root_z, _THIGH * H, _SHANK * H)
        angles = (
            _STAND
            | _spine(30.0)
            | {
                "thigh_l": thigh_l,
                "knee_l": knee_l,
                "thigh_r": 5.0,
                "knee_r": 95.0,
                "pelvis": 40.0,
                "neck": 10.0,
            }
        )
        j = _fk(H, {k: np.asarray(v) for k, v in angles.items()}, planted=False)
        angles |= _arm_to(j, H, 0.2 * H + 0.03, self.hand_height_m)
        return _measure(H, angles, 40.0 + thigh_l)

    def motion(self, stature: float, tau: Arr) -> _Motion:
        s = self._s(tau)
        return _Motion(_blend(self.key(stature).angles, s), root_x=np.zeros_like(s))


@dataclass(frozen=True, slots=True)
class Reach(_Posed):
    """Reach forward to a table: small trunk lean, hands forward at ``hand_height_m``."""

    duration_s: float = 3.0
    hold_s: float = 1.0
    hand_height_m: float = 0.95
    lean_deg: float = 20.0

    @property
    def kind(self) -> str:
        return "reach"

    def key(self, stature: float) -> _KeyPose:
        angles = _STAND | _spine(5.0) | {"pelvis": self.lean_deg}
        j = _fk(stature, {k: np.asarray(v) for k, v in angles.items()})
        x = float(j["shoulder_l"][0]) + 0.28 * stature
        angles |= _arm_to(j, stature, x, self.hand_height_m)
        return _measure(stature, angles, self.lean_deg)

    def motion(self, stature: float, tau: Arr) -> _Motion:
        return _Motion(_blend(self.key(stature).angles, self._s(tau)))


@dataclass(frozen=True, slots=True)
class Walk:
    """Walk along the person's facing direction, or turned round and back with ``back``."""

    duration_s: float = 4.0
    speed_mps: float = 1.3
    back: bool = False

    @property
    def kind(self) -> str:
        return "walk"

    def advance_m(self, stature: float) -> float:
        return (-1.0 if self.back else 1.0) * self.speed_mps * self.duration_s

    def bottom_s(self) -> float:
        return self.duration_s / 2

    def key(self, stature: float) -> _KeyPose:
        return _measure(stature, _STAND | {"pelvis": 3.0}, 0.0)

    def motion(self, stature: float, tau: Arr) -> _Motion:
        stride = 2 * 0.41 * stature
        ph = 2 * np.pi * self.speed_mps / stride * tau
        swing = np.sin(ph)
        ramp = np.clip(np.minimum(tau, self.duration_s - tau) / 0.4, 0.0, 1.0)
        a = {k: np.full(tau.shape, v) for k, v in _STAND.items()}
        a |= {
            "thigh_l": 22 * swing * ramp,
            "thigh_r": -22 * swing * ramp,
            "knee_l": 5 + 50 * np.maximum(0, np.cos(ph)) ** 2 * ramp,
            "knee_r": 5 + 50 * np.maximum(0, -np.cos(ph)) ** 2 * ramp,
            "arm_l": -15 * swing * ramp,
            "arm_r": 15 * swing * ramp,
            "pelvis": 3.0 * ramp,
            "elbow_l": 8 + 10 * ramp,
            "elbow_r": 8 + 10 * ramp,
        }
        return _Motion(a, root_x=self.speed_mps * tau, turn_deg=180.0 if self.back else 0.0)


@dataclass(frozen=True, slots=True)
class Idle:
    """Standing with a small sway (idle gaps between activities are added automatically)."""

    duration_s: float = 3.0

    @property
    def kind(self) -> str:
        return "idle"

    def advance_m(self, stature: float) -> float:
        return 0.0

    def bottom_s(self) -> float:
        return self.duration_s / 2

    def key(self, stature: float) -> _KeyPose:
        return _measure(stature, dict(_STAND), 0.0)

    def motion(self, stature: float, tau: Arr) -> _Motion:
        return _Motion({k: np.full(tau.shape, v) for k, v in _STAND.items()})


# --------------------------------------------------------------------------- scene


@dataclass(frozen=True, slots=True)
class Camera:
    """Pinhole camera at (0, 0, height_m) looking along +y (depth on the floor), pitched down."""

    pitch_deg: float = 15.0
    height_m: float = 2.2
    width: int = 1280
    height: int = 720
    hfov_deg: float = 70.0

    @classmethod
    def aimed(
        cls,
        distance_m: float = 5.0,
        pitch_deg: float = 15.0,
        aim_height_m: float = 0.9,
        **kw: float,
    ) -> Camera:
        """A camera whose optical axis hits ``aim_height_m`` at ``distance_m``."""
        h = aim_height_m + distance_m * math.tan(math.radians(pitch_deg))
        return cls(pitch_deg=pitch_deg, height_m=h, **kw)  # type: ignore[arg-type]

    @property
    def focal_px(self) -> float:
        return self.width / 2 / math.tan(math.radians(self.hfov_deg) / 2)

    @property
    def position(self) -> Arr:
        return np.array([0.0, 0.0, self.height_m])

    def project(self, xyz: Arr) -> tuple[Arr, Arr]:
        """World points (…, 3) → pixels (…, 2) and depth along the optical axis (…)."""
        p = math.radians(self.pitch_deg)
        rel = xyz - self.position
        fwd = np.array([0.0, math.cos(p), -math.sin(p)])
        upv = np.array([0.0, math.sin(p), math.cos(p)])
        depth = np.maximum(rel @ fwd, 1e-3)
        f = self.focal_px
        u = self.width / 2 + f * rel[..., 0] / depth
        v = self.height / 2 - f * (rel @ upv) / depth
        return np.stack([u, v], -1), depth


@dataclass(frozen=True, slots=True)
class Noise:
    """Detector-like imperfections.

    ``pixel_sigma`` is Gaussian noise as a fraction of the person's standing height in pixels;
    ``dropout`` the chance per keypoint per frame of a miss (low score, position far off);
    ``far_side`` lowers scores and adds noise on the side of the body turned away.
    """

    pixel_sigma: float = 0.01
    dropout: float = 0.0
    far_side: bool = True


@dataclass(frozen=True, slots=True)
class Person:
    """One person: activities in order with ``gap_s`` idle between, standing otherwise.

    ``x_m`` is the position to the camera's right, ``distance_m`` along the floor from it.
    """

    activities: Sequence[Activity]
    height_m: float = 1.75
    x_m: float = 0.0
    distance_m: float = 5.0
    yaw_deg: float = 0.0
    start_s: float = 1.0
    gap_s: float = 1.5
    track_id: int | None = None

    @property
    def end_s(self) -> float:
        acts = self.activities
        return self.start_s + sum(a.duration_s for a in acts) + self.gap_s * max(len(acts) - 1, 0)


@dataclass(frozen=True, slots=True)
class Scenario:
    people: Sequence[Person]
    camera: Camera = field(default_factory=Camera)
    noise: Noise = field(default_factory=Noise)
    tail_s: float = 1.5

    @property
    def duration_s(self) -> float:
        return max((p.end_s for p in self.people), default=0.0) + self.tail_s


@dataclass(frozen=True, slots=True)
class Truth:
    """Ground truth of one activity of one person (all times in stream seconds)."""

    track_id: int
    kind: str
    start: float
    bottom: float
    end: float
    posture: str | None
    spine_flexion_deg: float
    trunk_angle_deg: float
    hip_flexion_deg: float
    knee_bend_deg: float
    hand_height_m: float
    view_yaw_deg: float
    setdown: bool = False

    @property
    def is_lift(self) -> bool:
        return self.kind == "lift"


@dataclass(frozen=True, slots=True)
class SynthStream:
    t: Arr
    poses: list[Poses]
    labels: list[Truth]
    camera: Camera

    @property
    def lifts(self) -> list[Truth]:
        return [lb for lb in self.labels if lb.is_lift]

    def track(self, track_id: int) -> TrackSeries:
        """The frames where ``track_id`` is present, as a `TrackSeries`."""
        ts, xys, scs = [], [], []
        for t, p in zip(self.t, self.poses, strict=True):
            hit = np.flatnonzero(p.track_ids == track_id)
            if hit.size:
                ts.append(t)
                xys.append(p.xy[hit[0]])
                scs.append(p.scores[hit[0]])
        n = len(ts)
        return TrackSeries(
            track_id,
            np.asarray(ts, np.float32),
            np.asarray(xys, np.float32).reshape(n, NUM_KEYPOINTS, 2),
            np.asarray(scs, np.float32).reshape(n, NUM_KEYPOINTS),
        )


# --------------------------------------------------------------------------- rendering


def _person_track(
    person: Person, t: Arr, rng: np.random.Generator
) -> tuple[Arr, Arr, npt.NDArray[np.bool_], list[tuple[Activity, float]]]:
    """World keypoints (m, 17, 3), body yaw (m,) in degrees, hidden mask (m, 17), and
    (activity, start) pairs."""
    H = person.height_m
    m = t.shape[0]
    sway_f = rng.uniform(0.15, 0.3)
    sway_ph = rng.uniform(0, 2 * np.pi)
    sway = np.sin(2 * np.pi * sway_f * t + sway_ph)
    angles = {k: np.full(m, v) for k, v in _STAND.items()}
    angles["pelvis"] = angles["pelvis"] + 1.0 * sway
    angles["neck"] = angles["neck"] + 2.0 * np.sin(2 * np.pi * 0.5 * sway_f * t)
    root_x = 0.01 * sway
    planted = np.ones(m, bool)
    hidden = np.zeros((m, NUM_KEYPOINTS), bool)
    offset = np.zeros(m)
    turn = np.zeros(m)
    spans: list[tuple[Activity, float]] = []
    start, travelled = person.start_s, 0.0
    for act in person.activities:
        end = start + act.duration_s
        idx = np.flatnonzero((t >= start) & (t < end))
        if idx.size:
            mo = act.motion(H, t[idx] - start)
            for k in _ANGLE_KEYS:
                angles[k][idx] = mo.angles[k]
            if mo.root_x is not None:
                root_x[idx] = mo.root_x
                planted[idx] = False
            if mo.hidden is not None:
                hidden[idx] = mo.hidden
            turn[idx] = mo.turn_deg
        offset[t >= start] = travelled
        travelled += act.advance_m(H)
        offset[t >= end] = travelled
        spans.append((act, start))
        start = end + person.gap_s
    angles["root_x"] = root_x
    body = _coco(_fk(H, angles, planted))
    yaw_deg = person.yaw_deg + turn
    yaw = np.radians(yaw_deg)[:, None]
    fx, fy = np.cos(yaw), -np.sin(yaw)  # facing direction on the floor
    world = np.empty_like(body)
    world[..., 0] = person.x_m + fx * body[..., 0] - fy * body[..., 1]
    world[..., 1] = person.distance_m + fy * body[..., 0] + fx * body[..., 1]
    world[..., 2] = body[..., 2]
    yaw0 = math.radians(person.yaw_deg)
    world[..., 0] += math.cos(yaw0) * offset[:, None]
    world[..., 1] -= math.sin(yaw0) * offset[:, None]
    return world, yaw_deg, hidden, spans


def _view_yaw(world: Arr, yaw_deg: Arr) -> Arr:
    """Yaw as seen along each frame's line of sight to the hips (perspective included)."""
    hips = 0.5 * (world[:, KP.LEFT_HIP, :2] + world[:, KP.RIGHT_HIP, :2])
    los = hips / np.linalg.norm(hips, axis=1, keepdims=True)
    yaw = np.radians(yaw_deg)
    fx, fy = np.cos(yaw), -np.sin(yaw)
    along = fx * los[:, 0] + fy * los[:, 1]
    across = fx * los[:, 1] - fy * los[:, 0]
    return np.degrees(np.arctan2(-along, across))


def _observe(
    world: Arr,
    hidden: npt.NDArray[np.bool_],
    yaw_deg: Arr,
    person: Person,
    cam: Camera,
    noise: Noise,
    rng: np.random.Generator,
) -> tuple[Arr, Arr, npt.NDArray[np.bool_]]:
    """Project and corrupt like a pose model: pixels (m, 17, 2), scores (m, 17), present (m,)."""
    m = world.shape[0]
    xy, depth = cam.project(world)
    scale = cam.focal_px * person.height_m / depth.mean(axis=1)  # standing height in px
    yaw = np.radians(yaw_deg)[:, None]
    view = cam.position - world
    view /= np.linalg.norm(view, axis=-1, keepdims=True)
    side = np.zeros(NUM_KEYPOINTS)
    side[list(_LEFT)] = 1.0
    side[[k + 1 for k in _LEFT]] = -1.0
    toward = (view[..., 0] * np.sin(yaw) + view[..., 1] * np.cos(yaw)) * side
    face = view[..., 0] * np.cos(yaw) - view[..., 1] * np.sin(yaw)
    toward[:, [KP.NOSE]] = face[:, [KP.NOSE]]
    toward[:, 1:3] = 0.5 * toward[:, 1:3] + 0.5 * face[:, 1:3]
    away = np.clip(-toward, 0.0, 1.0) if noise.far_side else np.zeros_like(toward)
    scores = _BASE_SCORE * (1 - 0.5 * away) - rng.uniform(0, 0.12, (m, NUM_KEYPOINTS))
    sigma = noise.pixel_sigma * scale[:, None] * (1 + away)
    xy = xy + rng.normal(size=xy.shape) * sigma[..., None]
    drop = rng.random((m, NUM_KEYPOINTS)) < noise.dropout
    lost = drop | hidden
    n_lost = int(lost.sum())
    if n_lost:
        xy[lost] += (
            rng.normal(size=(n_lost, 2))
            * 0.08
            * np.repeat(scale, NUM_KEYPOINTS)[lost.reshape(-1)][:, None]
        )
        scores[lost] = rng.uniform(0.02, 0.25, n_lost)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < cam.width) & (xy[..., 1] >= 0)
    inside &= xy[..., 1] < cam.height
    scores = np.where(inside, scores, np.minimum(scores, 0.05))
    present = inside.sum(axis=1) >= 5
    return xy, np.clip(scores, 0.0, 1.0), present


def synth_stream(scenario: Scenario, fps: float = 10.0, seed: int = 0) -> SynthStream:
    """Render a scenario at ``fps``; the same seed gives the same stream."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, scenario.duration_s, 1.0 / fps)
    m = t.shape[0]
    xys, scs, pres, ids, labels = [], [], [], [], []
    for i, person in enumerate(scenario.people):
        tid = person.track_id if person.track_id is not None else i + 1
        world, yaw_deg, hidden, spans = _person_track(person, t, rng)
        view = _view_yaw(world, yaw_deg)
        xy, sc, present = _observe(
            world, hidden, yaw_deg, person, scenario.camera, scenario.noise, rng
        )
        xys.append(xy.astype(np.float32))
        scs.append(sc.astype(np.float32))
        pres.append(present)
        ids.append(tid)
        for act, start in spans:
            key = act.key(person.height_m)
            spine = sum(key.angles[k] for k in ("lumbar", "thor_lo", "thor_hi"))
            is_lift = act.kind == "lift"
            bottom = start + act.bottom_s()
            at = int(np.clip(np.searchsorted(t, bottom), 0, max(m - 1, 0)))
            labels.append(
                Truth(
                    track_id=tid,
                    kind=act.kind,
                    start=start,
                    bottom=bottom,
                    end=start + act.duration_s,
                    posture=("rounded" if spine >= ROUNDED_SPINE_DEG else "hinge")
                    if is_lift
                    else None,
                    spine_flexion_deg=spine,
                    trunk_angle_deg=key.trunk_deg,
                    hip_flexion_deg=key.hip_flexion_deg,
                    knee_bend_deg=max(key.angles["knee_l"], key.angles["knee_r"]),
                    hand_height_m=key.hand_height_m,
                    view_yaw_deg=float(view[at]) if m else person.yaw_deg,
                    setdown=bool(getattr(act, "setdown", False)),
                )
            )
    if len(set(ids)) != len(ids):
        raise ValueError(f"track ids must be distinct, got {ids}")
    xy_all = np.stack(xys, 1) if xys else np.zeros((m, 0, NUM_KEYPOINTS, 2), np.float32)
    sc_all = np.stack(scs, 1) if scs else np.zeros((m, 0, NUM_KEYPOINTS), np.float32)
    pr_all = np.stack(pres, 1) if pres else np.zeros((m, 0), bool)
    id_all = np.asarray(ids, np.int64)
    n = xy_all.shape[1]
    boxes = keypoint_boxes(
        xy_all.reshape(m * n, NUM_KEYPOINTS, 2), sc_all.reshape(m * n, NUM_KEYPOINTS)
    ).reshape(m, n, 4)
    person_scores = sc_all.mean(axis=2)
    poses = []
    for f in range(m):
        k = pr_all[f]
        poses.append(Poses(xy_all[f, k], sc_all[f, k], person_scores[f, k], boxes[f, k], id_all[k]))
    labels.sort(key=lambda lb: (lb.start, lb.track_id))
    return SynthStream(t=t, poses=poses, labels=labels, camera=scenario.camera)


# --------------------------------------------------------------------------- helpers

LIFT_STYLES: dict[str, tuple[float, float]] = {
    "hinge": (8.0, 30.0),  # (spine flexion, knee bend): knees soft, hips back, back flat
    "squat": (8.0, 110.0),  # flat-back squat: safe
    "stoop": (50.0, 15.0),  # rounded back, straight-ish legs: risky
    "squat_rounded": (45.0, 100.0),  # the hard case: squat legs but a rounded back
    "straight_leg": (5.0, 5.0),  # straight-leg stoop with a flat back: still a hinge
}
NON_LIFT_KINDS = ("walk", "kneel", "squat", "shin_bend", "reach", "idle")


def _noise(noise: Noise | float) -> Noise:
    return noise if isinstance(noise, Noise) else Noise(pixel_sigma=float(noise))


def lift_scenario(
    style: str = "hinge",
    yaw_deg: float = 0.0,
    noise: Noise | float = 0.0,
    *,
    pitch_deg: float = 15.0,
    distance_m: float = 5.0,
    height_m: float = 1.75,
    n_lifts: int = 1,
    duration_s: float = 3.0,
    setdown: bool = False,
) -> Scenario:
    """One person doing ``n_lifts`` lifts of a named style (see ``LIFT_STYLES``)."""
    spine, knee = LIFT_STYLES[style]
    lift = LiftMove(
        duration_s=duration_s, spine_flexion_deg=spine, knee_bend_deg=knee, setdown=setdown
    )
    person = Person([lift] * n_lifts, height_m=height_m, distance_m=distance_m, yaw_deg=yaw_deg)
    return Scenario([person], Camera.aimed(distance_m, pitch_deg), _noise(noise))


def _non_lift(kind: str, stature: float) -> Activity:
    if kind == "walk":
        return Walk()
    if kind == "kneel":
        return Kneel()
    if kind == "squat":
        hands = _KNEE_STANDING * stature
        return Bend(kind="squat", spine_flexion_deg=8.0, knee_bend_deg=100.0, hand_height_m=hands)
    if kind == "shin_bend":
        return Bend(hand_height_m=sum(SHIN_BEND_RANGE) / 2 * stature)
    if kind == "reach":
        return Reach()
    if kind == "idle":
        return Idle()
    raise ValueError(f"unknown non-lift kind {kind!r}; one of {NON_LIFT_KINDS}")


def non_lift_scenario(
    kind: str,
    yaw_deg: float = 0.0,
    noise: Noise | float = 0.0,
    *,
    pitch_deg: float = 15.0,
    distance_m: float = 5.0,
    height_m: float = 1.75,
) -> Scenario:
    """One person doing one non-lift activity (see ``NON_LIFT_KINDS``)."""
    act = _non_lift(kind, height_m)
    half = 0.5 * act.advance_m(height_m)  # centre a walk on the nominal spot
    yaw = math.radians(yaw_deg)
    x, d = -half * math.cos(yaw), distance_m + half * math.sin(yaw)
    person = Person([act], height_m=height_m, x_m=x, distance_m=d, yaw_deg=yaw_deg)
    return Scenario([person], Camera.aimed(distance_m, pitch_deg), _noise(noise))


def _random_activity(rng: np.random.Generator, lift_share: float, stature: float) -> Activity:
    dur = float(rng.uniform(2.0, 5.0))
    if rng.random() < lift_share:
        style = str(rng.choice(list(LIFT_STYLES)))
        spine, knee = LIFT_STYLES[style]
        spine = float(
            np.clip(spine + rng.normal(0, 5), 0, 15)
            if spine < ROUNDED_SPINE_DEG
            else np.clip(spine + rng.normal(0, 7), 35, 60)
        )
        knee = float(np.clip(knee + rng.normal(0, 8), 0, 130))
        hand = float(rng.uniform(0.05, 0.18))
        return LiftMove(
            duration_s=dur,
            hold_s=float(rng.uniform(0.2, 1.0)),
            spine_flexion_deg=spine,
            knee_bend_deg=knee,
            hand_height_m=hand,
            setdown=bool(rng.random() < 0.3),
            occlude_ankles=bool(rng.random() < 0.2),
        )
    kind = str(rng.choice(NON_LIFT_KINDS))
    if kind == "walk":
        return Walk(duration_s=dur * 0.6, speed_mps=float(rng.uniform(0.9, 1.6)))
    if kind == "shin_bend":
        return Bend(
            duration_s=dur,
            spine_flexion_deg=float(rng.uniform(0, 50)),
            knee_bend_deg=float(rng.uniform(5, 40)),
            hand_height_m=float(rng.uniform(*SHIN_BEND_RANGE)) * stature,
        )
    if kind == "squat":
        return Bend(
            kind="squat",
            duration_s=dur,
            spine_flexion_deg=float(rng.uniform(0, 20)),
            knee_bend_deg=float(rng.uniform(80, 120)),
            hand_height_m=_KNEE_STANDING * stature,
        )
    if kind == "reach":
        return Reach(duration_s=dur, hand_height_m=float(rng.uniform(0.85, 1.1)))
    if kind == "kneel":
        return Kneel(duration_s=dur + 1.5, hold_s=dur / 2)
    return Idle(duration_s=dur)


def random_scenario(
    rng: np.random.Generator,
    *,
    duration_s: float = 60.0,
    n_people: int = 1,
    lift_share: float = 0.5,
    noise: Noise | None = None,
) -> Scenario:
    """A realistic mix: random styles, views (mostly side-on), distances, heights, pitch.

    Walks alternate there and back, so people stay in view for any duration.
    """
    pitch = float(rng.uniform(0.0, 35.0))
    distance = float(rng.uniform(4.5, 8.0))
    people = []
    for i in range(n_people):
        height = float(rng.uniform(1.55, 1.95))
        acts: list[Activity] = []
        total, gap, net = 1.0, float(rng.uniform(0.5, 3.0)), 0.0
        while True:
            act = _random_activity(rng, lift_share, height)
            if isinstance(act, Walk):  # towards the spot and at most 2 m past it
                most = (2.0 + abs(net)) / act.speed_mps
                act = replace(act, back=net > 0, duration_s=min(act.duration_s, most))
            if total + act.duration_s + gap > duration_s - 1.5:
                break
            acts.append(act)
            total += act.duration_s + gap
            net += act.advance_m(height)
        yaw = float(rng.uniform(-60, 60) + (180 if rng.random() < 0.5 else 0))
        people.append(
            Person(
                acts,
                height_m=height,
                x_m=float((i - (n_people - 1) / 2) * 1.6 + rng.uniform(-0.5, 0.5)),
                distance_m=distance + float(rng.uniform(-1.0, 1.0)),
                yaw_deg=yaw,
                start_s=1.0,
                gap_s=gap,
            )
        )
    noise = noise or Noise(
        pixel_sigma=float(rng.uniform(0.003, 0.015)), dropout=float(rng.uniform(0.0, 0.05))
    )
    return Scenario(people, Camera.aimed(distance, pitch), noise)


__all__ = [
    "FLOOR_LIFT_MAX",
    "LIFT_STYLES",
    "NON_LIFT_KINDS",
    "ROUNDED_SPINE_DEG",
    "SHIN_BEND_RANGE",
    "Activity",
    "Bend",
    "Camera",
    "Idle",
    "Kneel",
    "LiftMove",
    "Noise",
    "Person",
    "Reach",
    "Scenario",
    "SynthStream",
    "Truth",
    "Walk",
    "lift_scenario",
    "non_lift_scenario",
    "random_scenario",
    "synth_stream",
]
