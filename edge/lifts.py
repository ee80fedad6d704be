"""Floor-level lift detection: per track, standing → hands at floor level → standing.

Everything is measured in the person's own body units so camera distance and zoom do not
matter: hand height is the wrist's height above the ankles divided by the standing
shoulder-to-ankle height, both taken from recent upright frames (the ankles are often hidden
by the load at the bottom of a lift, so the reference is frozen while the person bends).
A wrist the model loses is replaced by the elbow→wrist line extrapolated by the forearm
length. A cycle counts when the smoothed hand height drops from standing level to floor
level and comes back up to standing level, within time limits that rule out long
floor-level work (tying shoes, kneeling jobs).

Floor level, the product definition (shared with `edge.synth`): the hands at or below about
mid-shin, ~0.17 of stature (boxes and totes off the floor, a barbell on plates), not a bend
that stops at the upper shin. Body units alone cannot draw that line: a pitched camera draws
hands that are nearer to it lower, and bent-over hands are ~0.35 m ahead of the feet. So
floor level also needs the hands low on the shin of the same frame, (ankle − wrist) /
(ankle − knee), measured along the person's standing axis (so an off-centre position does
not tilt it) and corrected for depth: the standing shoulders give the body's yaw and the
camera's pitch, and the hands' sideways offset from the ankles then tells how far ahead of
the feet they are and how much lower that makes them look, with the pitch steepened from the
shoulders' row to the hands' (a camera a few metres away looks down more steeply at the shins
than at the shoulders: `LiftConfig.perspective`). Facing the camera head-on that offset is
invisible, so a short reach is assumed there, at the pitch the standing body's proportions
give, and a stricter shin level applies. Kneeling is a knee on the floor: low against the
standing ankle, low against its own ankle, or far below the other knee.

Streaming: `LiftDetector.update` per frame returns the lifts completed at that frame.
A lift still in progress when its track ends or the stream ends is not emitted.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from edge.keypoints import KP
from edge.poses import UNTRACKED, FloatArray, Poses
from edge.series import Lift, TrackSeries
from edge.stats import median


@dataclass(frozen=True, slots=True)
class LiftConfig:
    """Thresholds of the lift cycle; heights are in standing shoulder-to-ankle units."""

    stand_level: float = 0.42
    """Hands above this are "standing": hanging hands sit near 0.55, a half-bend goes below.
    Measured at the midpoint of the two hands: a camera looking down on a person seen from
    the side draws the near hand lower than the far one, by the shoulders' span times the
    pitch's sine, and the near hand alone then hangs below this from ~50° of pitch
    (synthetic side views: 0.52 at 15°, 0.43 at 45°, 0.34 at 65°), so a ceiling camera
    never saw the lifter stand up again."""
    floor_enter: float = 0.26
    """Hands below this (~0.35 m above the ankles) are at floor level. Real barbell pulls bottom
    out at 0.0-0.22 (bar axle 0.225 m); lower values start missing low-camera gym clips."""
    floor_exit: float = 0.31
    """Hands above this leave floor level; the gap to floor_enter absorbs keypoint jitter."""
    below_knee_margin: float = 0.05
    """Hands must be this far (standing-knee units) below the lowest visible knee; a quick
    check in standing units that the shin test refines."""
    knee_ratio: float = 0.31
    """Standing knee over shoulder-to-ankle height (anthropometric), used when knees were not
    seen while upright; knee heights are measured in standing-knee units."""
    shin_floor: float = 0.7
    """Hands at most this far up the shin (ankle 0, knee 1, same frame, depth-corrected) are
    at floor level. The 31 real barbell pulls bottom out at -0.05-0.67 (the wrist sits above
    the bar); synthetic bends to the upper shin read 0.72-1.1 (1st percentile 0.74)."""
    shin_floor_facing: float = 0.4
    """The same when facing the camera head-on, where depth is corrected only for a short
    reach (`facing_reach`) and a pitched camera draws hands that reach further up to a shin
    lower; floor lifts there still read below 0.1."""
    shin_floor_exit: float = 0.8
    """Hands above this shin fraction leave floor level; the gap absorbs keypoint jitter."""
    shin_smooth_frames: int = 7
    """Median over this many shin fractions: a bend's 2-3 noisy low frames are not a floor
    reach, a real bottom holds for 4 or more at the 10 fps analysis rate. Frames, not
    seconds: the noise it removes comes per frame. At 5 fps a 0.7 s window (4 frames)
    counted 9 synthetic upper-shin bends and squats as lifts in 10 person-hours, against 4
    with 7 frames, for 0.4 % more of the lifts."""
    shoulder_span: float = 0.3
    """Shoulder-to-shoulder over shoulder-to-ankle height (anthropometric): the scale that
    turns the standing shoulders' image offset into body yaw and camera pitch."""
    perspective: float = 0.12
    """The angle (radians) the standing shoulder-to-ankle height subtends at the camera, at
    least: ~1.4 m seen from 12 m or nearer. Sightlines to the shins are steeper than to the
    shoulders by up to this much, so the pitch read from the standing shoulders is steepened
    by it down to the hands' row. Too small only under-corrects (the old value, 0, assumed a
    camera infinitely far); synthetic cameras at 4.5-8 m subtend 0.13-0.3."""
    facing_reach: float = 0.1
    """Facing a pitched camera head-on, how far ahead of the ankles (standing heights, ~0.14
    m) the hands are taken to be at least. That depth draws them lower, by the reach times
    the pitch's tangent, and head-on it cannot be measured (the sideways offset that tells
    it in other views is nil): from 25° of pitch a bend to the upper shin read as a floor
    reach. Low on purpose, so it never lifts a floor reach out of floor level: a deadlift bar
    sits over the midfoot, ~0.1 m ahead of the ankles, a box further. (Facing away, the
    same correction the other way also called deep squats to knee height floor lifts: those
    read like a straight-legged floor reach from behind, so it is not made.)"""
    facing_settled_s: float = 1.0
    """The pitch for `facing_reach` is read from the standing reference only once it holds
    this long of upright frames: a reference taken from a glimpse may hold a body cut off
    by the image edge, too short for its shoulders, which reads as a steep camera."""
    min_side: float = 0.6
    """Views with sin(yaw from the front) below this are head-on: the depth correction is
    capped there (it divides by it) and, facing the camera, `shin_floor_facing` applies."""
    hands_apart: float = 0.5
    """Wrists further apart in height (shin units, after the shoulders' own offset) than this
    are a one-handed reach: use the lower, else their midpoint, which cancels side depth."""
    min_shin: float = 0.3
    """Knee-above-ankle heights under this (standing-knee units) are too short to divide by."""
    kneel_shin: float = 0.3
    """A knee less than this (standing-knee units) above its own ankle: the shin lies on the
    floor. Compared with its own ankle because that one is at the knee's depth."""
    kneel_uneven: float = 0.6
    """Knees further apart in height than this (standing-knee units, depth-corrected): one
    is down, one up. Lifting stances are symmetric; real lifts never reached it for long."""
    hip_over_shoulder: float = 0.75
    """Knee spacing over shoulder spacing, to take the knees' width out of their offset."""
    kneel_level: float = 0.35
    """A knee lower than this (standing-knee units) is on the floor: kneeling, not lifting."""
    kneel_share: float = 0.5
    """Kneeling when a knee is on the floor for more than this share of the frames of the cycle
    with the hands at floor height (below `floor_exit`), whether or not the knee and shin tests
    passed yet: a kneeler's hands are above the knee on the floor, so floor level may begin
    only when the model loses that knee for a frame, late in the hold, and the rise that
    follows lifts the knee. A share, not a count, because loads hide the knees and MoveNet
    then puts them low (real pulls: at most 0.13 of their low frames)."""
    min_floor_s: float = 0.15
    """Shortest time at floor level: a one-frame dip is a keypoint glitch, not a lift."""
    max_floor_s: float = 4.0
    """Longest time at floor level: longer is floor work (tying shoes, sorting), not a lift."""
    min_duration_s: float = 0.6
    """Shortest standing-to-standing cycle a person can physically do with a load."""
    max_duration_s: float = 10.0
    """Longest cycle; slower than this is some other activity and is dropped."""
    max_height_change: float = 0.3
    """Standing height after a lift may differ from before by this fraction; more is an id swap."""
    max_gap_s: float = 1.0
    """A track unseen this long loses its cycle: the frames in between are unknown."""
    stale_track_s: float = 10.0
    """Tracks unseen this long are forgotten even if the tracker never retired them."""
    upright_max_trunk_deg: float = 25.0
    """Trunk within this of vertical counts as upright for the standing reference."""
    upright_min_leg_ratio: float = 1.0
    """Hip-to-ankle over shoulder-to-hip height above this rules out squats (standing: ~1.5)."""
    ankle_window_s: float = 3.0
    """Feet stay planted while loads or plates hide the ankles: reuse recent ankles this long."""
    upright_max_leg_ratio: float = 2.5
    """Above this the trunk looks short: bent toward or away from the camera, not upright."""
    upright_min_thigh_ratio: float = 0.6
    """Hip-above-knee over knee-above-ankle height below this is a bent knee, not standing.
    Standing, both are ~0.25 of stature and a pitched camera shortens them alike; squatting
    seen from behind, the thighs point away and shrink, while the trunk, bent away, shrinks
    too, so the legs-to-trunk ratio still looks upright."""
    reference_s: float = 1.5
    """Window of upright frames whose median is the standing reference; seconds, not frames."""
    reference_min_s: float = 0.3
    """Upright frames worth this long are needed before a track has a standing reference: 3
    at 10 fps, 2 (never fewer) at 5. A count of frames would ask a 5 fps stream for 0.6 s
    of standing, and a lifter who stands 0.4 s between a pull and the next (coach-good015)
    would never get one."""
    reference_max_age_s: float = 15.0
    """A standing reference older than this (person never upright since) is not trusted."""
    forearm_ratio: float = 0.19
    """Elbow-to-wrist length over shoulder-to-ankle height (anthropometric mean) for lost wrists."""
    min_score: float = 0.25
    """Keypoints below this confidence are treated as missing."""
    smooth_frames: int = 3
    """Median over this many hand heights removes single-frame spikes at one frame of latency."""
    lead_s: float = 1.0
    """Samples kept before the lift start in `Lift.series`, for context."""
    standing_s: float = 1.0
    """Length of the upright window handed over as `Lift.standing`."""
    history_s: float = 3.0
    """Samples kept while idle, so the lead-in and standing window exist when a lift starts."""


class _Phase(Enum):
    IDLE = 0
    DESCENT = 1
    FLOOR = 2
    RISE = 3


@dataclass(slots=True)
class _Sample:
    t: float
    xy: FloatArray
    scores: FloatArray
    upright: bool
    legs: bool = True
    """Whether a knee or an ankle was seen in this frame or the `ankle_window_s` before it."""
    low: bool | None = None
    """Whether the lowest hand was below the knee (None: not measured, no reference yet or
    no hand): the frames whose back the silhouette measures."""


@dataclass(slots=True)
class _Track:
    """Small bounded state of one track: recent samples, reference window, cycle phase."""

    samples: deque[_Sample] = field(default_factory=deque)
    ref: deque[tuple[float, float, float, float, float, float, float]] = field(
        default_factory=deque
    )  # t, ankle, h, knee, shoulders' left-minus-right x and y, shoulders-over-ankles x
    ref_lateral: tuple[float, float] | None = None
    ref_up: tuple[float, float] = (0.0, -1.0)
    ankles: deque[tuple[float, float, float]] = field(default_factory=deque)  # t, low y, mid x
    ref_ankle: float = math.nan
    ref_height: float = math.nan
    ref_knee: float = math.nan
    kneel_frames: int = 0
    low_frames: int = 0
    ref_t: float = -math.inf
    legs_t: float = -math.inf
    raw_h: deque[float] = field(default_factory=deque)
    raw_hang: deque[float] = field(default_factory=deque)
    raw_shin: deque[float] = field(default_factory=deque)
    phase: _Phase = _Phase.IDLE
    armed: bool = False
    last_stand_t: float = math.nan
    start: float = math.nan
    floor_t0: float = math.nan
    bottom_t: float = math.nan
    bottom_h: float = math.inf
    start_height: float = math.nan
    last_t: float = -math.inf


RATE_FRAMES = 11
"""Frame times kept to follow the analysis rate: ten intervals, enough that a dropped
frame moves it by a tenth at most."""
NOMINAL_FPS = 10.0
"""The rate assumed until a second frame arrives: the agent's default analysis rate."""


class LiftDetector:
    """Streaming lift segmentation over tracked poses, one small state machine per track."""

    def __init__(self, config: LiftConfig | None = None) -> None:
        self.config = config or LiftConfig()
        self._tracks: dict[int, _Track] = {}
        self._times: deque[float] = deque(maxlen=RATE_FRAMES)
        self._fps = NOMINAL_FPS

    def update(self, t: float, poses: Poses) -> list[Lift]:
        """Feed one frame; returns the lifts completed now. Untracked poses are skipped."""
        self._note_time(t)
        lifts: list[Lift] = []
        for i in range(len(poses)):
            tid = int(poses.track_ids[i])
            if tid == UNTRACKED:
                continue
            track = self._tracks.get(tid)
            if track is None:
                track = self._tracks[tid] = _Track()
            lift = self._step(tid, track, t, poses.xy[i], poses.scores[i])
            if lift is not None:
                lifts.append(lift)
        stale = [k for k, tr in self._tracks.items() if t - tr.last_t > self.config.stale_track_s]
        for k in stale:
            del self._tracks[k]
        return lifts

    def _note_time(self, t: float) -> None:
        """Follow the analysis rate, so windows given in seconds hold whatever rate the
        stream runs at: the mean interval of the last few frames (a 24 fps camera read at 10
        fps alternates 83 and 125 ms, which a median would not average out), each interval
        capped at twice their median so one stall does not count as a slow rate."""
        if self._times and t <= self._times[-1]:
            return
        self._times.append(t)
        if len(self._times) > 1:
            gaps = np.diff(np.fromiter(self._times, np.float64))
            self._fps = 1.0 / float(np.minimum(gaps, 2.0 * median(gaps)).mean())

    def _frames(self, seconds: float, least: int) -> int:
        """A window in seconds as a frame count at the current analysis rate."""
        return max(least, round(seconds * self._fps))

    def in_lift(self, track_id: int) -> bool:
        """Whether this track may be in a lift: from the first frame after its last standing
        one (where a lift would start) until it stands up again or the cycle is dropped, and
        before it has a standing reference (those frames are replayed once it has one)."""
        tr = self._tracks.get(track_id)
        if tr is None:
            return False
        if tr.ref_t == -math.inf or tr.phase is not _Phase.IDLE:
            return True
        return tr.armed and tr.last_stand_t < tr.last_t

    def hands_low(self, track_id: int) -> bool | None:
        """Whether the track's lowest hand was below the knee in its last frame, as this
        detector reads it: a lost wrist extended from the elbow, the knee of that frame or
        else the standing one, so a load hiding the knees does not matter. None when it
        could not tell (no standing reference yet, no hand seen)."""
        tr = self._tracks.get(track_id)
        if tr is None or not tr.samples or tr.samples[-1].t != tr.last_t:
            return None
        return tr.samples[-1].low

    def end_track(self, track_id: int) -> None:
        """The tracker retired this track: forget it, dropping any lift in progress."""
        self._tracks.pop(track_id, None)

    def flush(self) -> list[Lift]:
        """End of stream: lifts still in progress are dropped (their end is unknown)."""
        self._tracks.clear()
        return []

    def _step(
        self, tid: int, tr: _Track, t: float, xy: FloatArray, scores: FloatArray
    ) -> Lift | None:
        cfg = self.config
        if t - tr.last_t > cfg.max_gap_s:
            _reset(tr)
            tr.raw_h.clear()
            tr.raw_hang.clear()
            tr.raw_shin.clear()
        tr.last_t = t
        had_reference = tr.ref_t > -math.inf
        kp = _Body(xy, scores, cfg.min_score)
        upright = self._update_reference(tr, t, kp)
        if any(kp.ok[k] for k in _LEGS):
            tr.legs_t = t
        legs = t - tr.legs_t <= cfg.ankle_window_s
        sample = _Sample(t, xy.copy(), scores.copy(), upright, legs=legs)
        tr.samples.append(sample)
        self._trim(tr, t)
        if had_reference:
            return self._advance(tid, tr, sample, kp)
        if tr.ref_t == -math.inf:
            return None
        # First standing reference: replay the frames before it, so a person first seen bent
        # at the floor (a lift already under way) is counted once they stand up.
        tr.armed, tr.last_stand_t = True, tr.samples[0].t
        lift = None
        for s in list(tr.samples):
            kp_s = _Body(s.xy, s.scores, cfg.min_score)
            lift = self._advance(tid, tr, s, kp_s, replay=True) or lift
        return lift

    def _advance(
        self, tid: int, tr: _Track, sample: _Sample, kp: _Body, replay: bool = False
    ) -> Lift | None:
        """One step of the lift cycle state machine for a frame with a standing reference.

        A replayed frame (from before the first reference) is measured against a reference
        taken later, which holds only if the person stood where they stand later. Someone
        walking away from close in, legs below the image, is bigger in those frames, and
        their hands, measured against ankles that only showed up later, sat at floor level.
        So a replayed frame reaches floor level only once the legs have been seen: a knee or
        an ankle in it or in the `LiftConfig.ankle_window_s` before it. A lifter first seen
        bent at the load shows a knee or an ankle now and then even when the load hides
        them at the bottom (at another scale such a knee is far off and the hands are not
        below it)."""
        cfg = self.config
        t = sample.t
        heights = self._hand_height(tr, t, kp)
        if heights is None:
            return None
        h, hang, hk, knee_k, shin, kneeling = heights
        sample.low = hk < (1.0 if math.isnan(knee_k) else knee_k)
        hs = _smooth(tr.raw_h, h, cfg.smooth_frames)
        hang_s = _smooth(tr.raw_hang, hang, cfg.smooth_frames)
        shin_s = _smooth(tr.raw_shin, shin, cfg.shin_smooth_frames) if shin == shin else math.nan
        below_knee = math.isnan(knee_k) or hk < knee_k - cfg.below_knee_margin
        limit = cfg.shin_floor_facing if self._facing_camera(tr) else cfg.shin_floor
        below_mid_shin = math.isnan(shin_s) or shin_s <= limit
        at_floor = hs < cfg.floor_enter and below_knee and below_mid_shin
        at_floor = at_floor and (sample.legs or not replay)
        standing = hang_s >= cfg.stand_level and sample.upright

        if tr.phase is _Phase.IDLE:
            if standing:
                tr.armed = True
                tr.last_stand_t = t
            elif tr.armed and hang_s < cfg.stand_level:
                tr.phase = _Phase.DESCENT
                tr.start = tr.last_stand_t
                tr.start_height = tr.ref_height
        if tr.phase is _Phase.DESCENT:
            if hang_s >= cfg.stand_level:
                _reset(tr, armed=standing, t=t)
            elif at_floor:
                tr.phase = _Phase.FLOOR
                tr.floor_t0 = t
        if tr.phase is not _Phase.IDLE and hs < cfg.floor_exit:
            tr.low_frames += 1
            tr.kneel_frames += kneeling or knee_k < cfg.kneel_level
        if tr.phase is _Phase.FLOOR:
            if hs < tr.bottom_h:
                tr.bottom_h, tr.bottom_t = hs, t
            if t - tr.floor_t0 > cfg.max_floor_s:
                _reset(tr)
            elif hs > cfg.floor_exit or shin_s > cfg.shin_floor_exit:
                if t - tr.floor_t0 >= cfg.min_floor_s:
                    tr.phase = _Phase.RISE
                else:
                    tr.phase = _Phase.DESCENT
        if tr.phase is _Phase.RISE:
            if hs < cfg.floor_enter:
                tr.phase = _Phase.FLOOR
            elif standing:
                ok = self._same_person(tr, t) and tr.kneel_frames <= cfg.kneel_share * tr.low_frames
                lift = self._emit(tid, tr, t) if ok else None
                _reset(tr, armed=True, t=t)
                return lift
        if tr.phase is not _Phase.IDLE and t - tr.start > cfg.max_duration_s:
            _reset(tr)
        return None

    def _update_reference(self, tr: _Track, t: float, kp: _Body) -> bool:
        """Add an upright frame to the standing reference; returns whether it was upright."""
        cfg = self.config
        sh, hip, ank = kp.mid_y(_SHOULDERS), kp.mid_y(_HIPS), kp.low_y(_ANKLES)
        if ank is not None:
            tr.ankles.append((t, ank, kp.mid_x(_ANKLES)))  # type: ignore[arg-type]
        while tr.ankles and t - tr.ankles[0][0] > cfg.ankle_window_s:
            tr.ankles.popleft()
        if ank is None and tr.ankles:
            ank = _median([a[1] for a in tr.ankles])
        if sh is None or hip is None or ank is None:
            return False
        trunk = hip - sh
        legs = ank - hip
        if (
            trunk <= 0
            or not cfg.upright_min_leg_ratio * trunk <= legs <= cfg.upright_max_leg_ratio * trunk
        ):
            return False
        dx = kp.mid_x(_SHOULDERS) - kp.mid_x(_HIPS)  # type: ignore[operator]
        if math.degrees(math.atan2(abs(dx), trunk)) > cfg.upright_max_trunk_deg:
            return False
        knee = kp.low_y(_KNEES)
        if knee is not None and knee - hip < cfg.upright_min_thigh_ratio * (ank - knee):
            return False
        lat = kp.lateral(_SHOULDERS)
        ank_x = kp.mid_x(_ANKLES)
        lean = math.nan if ank_x is None else kp.mid_x(_SHOULDERS) - ank_x  # type: ignore[operator]
        tr.ref.append((t, ank, ank - sh, math.nan if knee is None else ank - knee, *lat, lean))
        while tr.ref and t - tr.ref[0][0] > cfg.reference_s:
            tr.ref.popleft()
        if len(tr.ref) >= self._frames(cfg.reference_min_s, 2):
            tr.ref_ankle = median([r[1] for r in tr.ref])
            tr.ref_height = median([r[2] for r in tr.ref])
            knees = [r[3] for r in tr.ref if r[3] == r[3]]
            tr.ref_knee = median(knees) if knees else cfg.knee_ratio * tr.ref_height
            leans = [r[6] for r in tr.ref if r[6] == r[6]]
            tilt = math.atan2(_median(leans), tr.ref_height) if leans else 0.0
            tr.ref_up = (math.sin(tilt), -math.cos(tilt))
            lats = [(r[4], r[5]) for r in tr.ref if r[4] == r[4]]
            tr.ref_lateral = (
                _upright(_median([a for a, _ in lats]), _median([b for _, b in lats]), tr.ref_up)
                if lats
                else None
            )
            tr.ref_t = t
        return True

    def _hand_height(
        self, tr: _Track, t: float, kp: _Body
    ) -> tuple[float, float, float, float, float, bool] | None:
        """Lowest hand in body units, the hands' midpoint in body units (for the standing
        level, see `LiftConfig.stand_level`), the lowest hand in standing-knee units, lowest
        knee in knee units, the hand's height up the shin of this frame, and whether a shin
        lies on the floor."""
        cfg = self.config
        if t - tr.ref_t > cfg.reference_max_age_s or not tr.ref_height > 0:
            return None
        forearm = cfg.forearm_ratio * tr.ref_height
        seen = [xy for xy in (kp.wrist_xy(*arm, forearm) for arm in _ARMS) if xy is not None]
        if not seen:
            return None
        hand_y = max(y for _, y in seen)
        knee_y = kp.low_y(_KNEES)
        knee_k = math.nan if knee_y is None else (tr.ref_ankle - knee_y) / tr.ref_knee
        hand = tr.ref_ankle - hand_y
        hang = tr.ref_ankle - self._hands_mid(tr, seen, tr.ref_knee)[1]
        shin, kneeling = self._shin(tr, kp, seen)
        return (
            hand / tr.ref_height,
            hang / tr.ref_height,
            hand / tr.ref_knee,
            knee_k,
            shin,
            kneeling,
        )

    def _shin(self, tr: _Track, kp: _Body, hands: list[tuple[float, float]]) -> tuple[float, bool]:
        """Hand height over this frame's knee-above-ankle height, and whether a knee is down.

        Knee and ankle of the same frame move with the person, so the ratio does not depend
        on a standing reference; midpoints of left and right points cancel the side-to-side
        depth that draws the near hand lower than the far one (hands far apart, one-handed,
        use the lower). The hands' height is taken along the standing axis and corrected for
        being ahead of the feet (`_depth_drop`). NaN when knees or ankles are unknown.
        """
        cfg = self.config
        knees = [kp.y[k] for k in _KNEES if kp.ok[k]]
        ankles = [kp.y[k] for k in _ANKLES if kp.ok[k]]
        if ankles:
            ankle = sum(ankles) / len(ankles)
            ankle_x = kp.mid_x(_ANKLES)
        elif tr.ankles:
            ankle = _median([a[1] for a in tr.ankles])
            ankle_x = _median([a[2] for a in tr.ankles])
        else:
            return math.nan, False
        kneeling = any(
            kp.ok[k] and kp.ok[a] and kp.y[a] - kp.y[k] < cfg.kneel_shin * tr.ref_knee
            for k, a in zip(_KNEES, _ANKLES, strict=True)
        )
        kneeling = kneeling or self._knees_uneven(tr, kp)
        rise = ankle - sum(knees) / len(knees) if knees else 0.0
        if rise < cfg.min_shin * tr.ref_knee:
            return math.nan, kneeling
        hand_x, hand_y = self._hands_mid(tr, hands, rise)
        if tr.ref_lateral is None or ankle_x is None:
            return (ankle - hand_y) / rise, kneeling
        across, down = _upright(hand_x - ankle_x, hand_y - ankle, tr.ref_up)
        drop = self._hand_depth_drop(tr, across, 1.0 + down / tr.ref_height)
        facing = self._facing_drop(tr)
        if facing > 0.0:
            drop = max(drop, facing)
        return (drop - down) / rise, kneeling

    def _hands_mid(
        self, tr: _Track, hands: list[tuple[float, float]], shin: float
    ) -> tuple[float, float]:
        """The two hands' midpoint, which cancels the side-to-side depth that draws the near
        hand lower than the far one; the lower hand when only one is seen or they are more
        than `LiftConfig.hands_apart` shins (``shin`` px) apart in height beyond the
        shoulders' own offset: a one-handed reach."""
        low = max(hands, key=lambda xy: xy[1])
        b = tr.ref_lateral[1] if tr.ref_lateral is not None else 0.0
        if len(hands) != 2 or abs(hands[0][1] - hands[1][1] - b) >= self.config.hands_apart * shin:
            return low
        return (hands[0][0] + hands[1][0]) / 2, (hands[0][1] + hands[1][1]) / 2

    def _knees_uneven(self, tr: _Track, kp: _Body) -> bool:
        """One knee far above the other, after taking out where the width of the hips and
        depth put them in the image: one knee down, one up."""
        cfg = self.config
        left, right = _KNEES
        if tr.ref_lateral is None or not (kp.ok[left] and kp.ok[right]):
            return False
        a, b = tr.ref_lateral
        across, down = _upright(kp.x[left] - kp.x[right], kp.y[left] - kp.y[right], tr.ref_up)
        across -= cfg.hip_over_shoulder * a
        down -= cfg.hip_over_shoulder * b
        return abs(self._depth_drop(tr, across) - down) > cfg.kneel_uneven * tr.ref_knee

    def _facing_camera(self, tr: _Track) -> bool:
        """Facing the camera nearly head-on: too close to the front to see how far ahead of
        the feet the hands are (see `_depth_drop`), and a pitched camera draws hands that are
        nearer to it lower. (Facing away draws them higher: that only costs recall.)"""
        if tr.ref_lateral is None:
            return False
        a, b = tr.ref_lateral  # the person's left is on the image right when facing us
        w2 = self._span2(tr, a, b)
        return a > 0 and w2 - a * a < self.config.min_side**2 * w2

    def _facing_drop(self, tr: _Track) -> float:
        """How far (px) a pitched camera drew down the hands of a person facing it nearly
        head-on, at the least reach (`facing_reach`); 0 in other views, where `_depth_drop`
        measures it. The pitch comes from the standing body's proportions: pitch
        foreshortens the standing height by its cosine and not the shoulder span (`_span2`)."""
        cfg = self.config
        if not self._facing_camera(tr) or len(tr.ref) < self._frames(cfg.facing_settled_s, 2):
            return 0.0
        a, b = tr.ref_lateral  # type: ignore[misc]
        cos_pitch = min(1.0, cfg.shoulder_span * tr.ref_height / math.sqrt(self._span2(tr, a, b)))
        tan_pitch = math.sqrt(1.0 - cos_pitch**2) / max(cos_pitch, 0.1)
        return cfg.facing_reach * tr.ref_height * tan_pitch

    def _span2(self, tr: _Track, a: float, b: float) -> float:
        """Squared image length of the shoulder span were it across the image."""
        k = (self.config.shoulder_span * tr.ref_height) ** 2
        s = a * a + b * b + k
        return (s + math.sqrt(max(s * s - 4 * k * a * a, 0.0))) / 2

    def _depth_drop(self, tr: _Track, dx: float) -> float:
        """How far (px) a pitched camera drew the hands down for being nearer to it.

        The standing shoulders give the floor's lateral axis in the image, (a, b) per
        shoulder span w: a = w cos(yaw), b = w sin(yaw) sin(pitch), and the standing height
        is foreshortened by cos(pitch), which fixes w. A point ahead of the feet by d shifts
        d sin(yaw) across the image and d cos(yaw) sin(pitch) down, so the hands' sideways
        offset dx from the ankles tells how far down depth moved them: dx a b / (w^2 - a^2).
        Near front and back views sin(yaw) -> 0 and the estimate is capped.
        """
        cfg = self.config
        a, b = tr.ref_lateral  # type: ignore[misc]
        w2 = self._span2(tr, a, b)
        return -dx * a * b / max(w2 - a * a, cfg.min_side**2 * w2)

    def _hand_depth_drop(self, tr: _Track, dx: float, below: float) -> float:
        """`_depth_drop` for hands `below` standing heights under the standing shoulders.

        The shoulders give the pitch of the sightline to the shoulders; a nearby camera looks
        down more steeply at the shins, by about `perspective` per standing height (that is
        what made a bend to the upper shin turned towards the camera read 0.1-0.15 of a shin
        too low). Which way the person faces, needed to tell the pitch from the shoulders'
        tilt, is the side the hands are on: ahead of the feet.
        """
        cfg = self.config
        a, b = tr.ref_lateral  # type: ignore[misc]
        w2 = self._span2(tr, a, b)
        side = math.copysign(math.sqrt(max(w2 - a * a, cfg.min_side**2 * w2)), -dx)
        pitch = math.asin(max(-1.0, min(1.0, b / side))) + cfg.perspective * below
        return -dx * a / side * math.sin(pitch)

    def _same_person(self, tr: _Track, t: float) -> bool:
        """The one who stands up is as tall as the one who bent down, or the tracker swapped."""
        if not tr.ref or tr.ref[-1][0] != t or not tr.start_height > 0:
            return True
        ratio = tr.ref[-1][2] / tr.start_height
        limit = 1.0 + self.config.max_height_change
        return 1.0 / limit <= ratio <= limit

    def _trim(self, tr: _Track, t: float) -> None:
        cfg = self.config
        keep_from = t - cfg.history_s
        if tr.ref_t == -math.inf:
            keep_from = t - cfg.max_duration_s
        elif tr.phase is not _Phase.IDLE:
            keep_from = min(keep_from, tr.start - max(cfg.lead_s, cfg.standing_s) - cfg.history_s)
        while tr.samples and tr.samples[0].t < keep_from:
            tr.samples.popleft()

    def _emit(self, tid: int, tr: _Track, end: float) -> Lift | None:
        cfg = self.config
        if not cfg.min_duration_s <= end - tr.start <= cfg.max_duration_s:
            return None
        samples = list(tr.samples)
        series = _series(tid, [s for s in samples if s.t >= tr.start - cfg.lead_s])
        before = [s for s in samples if s.t <= tr.start and s.upright]
        window = [s for s in before if s.t >= tr.start - cfg.standing_s]
        least = self._frames(cfg.reference_min_s, 2)
        if len(window) < least:
            upright = sorted((s for s in samples if s.upright), key=lambda s: abs(s.t - tr.start))
            n = max(len(window), self._frames(cfg.standing_s, least))
            window = sorted(upright[:n], key=lambda s: s.t)
        return Lift(
            track_id=tid,
            start=tr.start,
            bottom=tr.bottom_t,
            end=end,
            series=series,
            standing=_series(tid, window),
            low_times=tuple(s.t for s in samples if s.low and tr.start <= s.t <= end),
        )


def detect_lifts(
    frames: Iterable[tuple[float, Poses]], config: LiftConfig | None = None
) -> list[Lift]:
    """Batch helper: all lifts in a stream of (t, tracked poses), in completion order."""
    detector = LiftDetector(config)
    lifts: list[Lift] = []
    for t, poses in frames:
        lifts.extend(detector.update(t, poses))
    lifts.extend(detector.flush())
    return lifts


def _reset(tr: _Track, armed: bool = False, t: float = math.nan) -> None:
    tr.phase = _Phase.IDLE
    tr.armed = armed
    tr.last_stand_t = t
    tr.start = tr.floor_t0 = tr.bottom_t = math.nan
    tr.bottom_h = math.inf
    tr.start_height = math.nan
    tr.kneel_frames = tr.low_frames = 0


def _smooth(values: deque[float], value: float, n: int) -> float:
    """Running median of the last n values, so a single-frame spike changes nothing."""
    values.append(value)
    while len(values) > n:
        values.popleft()
    return sorted(values)[len(values) // 2]


def _upright(x: float, y: float, up: tuple[float, float]) -> tuple[float, float]:
    """An image vector in the frame of the person's standing axis: (across, down)."""
    ux, uy = up
    return -x * uy + y * ux, -(x * ux + y * uy)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _series(tid: int, samples: list[_Sample]) -> TrackSeries:
    if not samples:
        return TrackSeries(
            tid,
            np.zeros(0, np.float64),
            np.zeros((0, 17, 2), np.float32),
            np.zeros((0, 17), np.float32),
        )
    return TrackSeries(
        tid,
        np.array([s.t for s in samples], np.float64),
        np.stack([s.xy for s in samples]),
        np.stack([s.scores for s in samples]),
    )


_SHOULDERS = (KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER)
_HIPS = (KP.LEFT_HIP, KP.RIGHT_HIP)
_KNEES = (KP.LEFT_KNEE, KP.RIGHT_KNEE)
_ANKLES = (KP.LEFT_ANKLE, KP.RIGHT_ANKLE)
_LEGS = _KNEES + _ANKLES
_ARMS = (
    (KP.LEFT_SHOULDER, KP.LEFT_ELBOW, KP.LEFT_WRIST),
    (KP.RIGHT_SHOULDER, KP.RIGHT_ELBOW, KP.RIGHT_WRIST),
)


class _Body:
    """One person's keypoints as Python floats: scalar maths is cheaper than numpy here."""

    __slots__ = ("ok", "raw", "x", "y")

    def __init__(self, xy: FloatArray, scores: FloatArray, min_score: float) -> None:
        self.x: list[float] = xy[:, 0].tolist()
        self.y: list[float] = xy[:, 1].tolist()
        s: list[float] = scores.tolist()
        self.ok = [v >= min_score for v in s]
        self.raw = [v > 0.0 and math.isfinite(v) for v in s]

    def mid_y(self, pair: tuple[KP, KP]) -> float | None:
        vals = [self.y[k] for k in pair if self.ok[k]]
        return sum(vals) / len(vals) if vals else None

    def mid_x(self, pair: tuple[KP, KP]) -> float | None:
        vals = [self.x[k] for k in pair if self.ok[k]]
        return sum(vals) / len(vals) if vals else None

    def low_y(self, pair: tuple[KP, KP]) -> float | None:
        vals = [self.y[k] for k in pair if self.ok[k]]
        return max(vals) if vals else None

    def lateral(self, pair: tuple[KP, KP]) -> tuple[float, float]:
        """Image vector from the right point of a pair to the left one, or NaNs."""
        left, right = pair
        if not (self.ok[left] and self.ok[right]):
            return math.nan, math.nan
        return self.x[left] - self.x[right], self.y[left] - self.y[right]

    def wrist_xy(
        self, shoulder: KP, elbow: KP, wrist: KP, forearm: float
    ) -> tuple[float, float] | None:
        """The wrist, or the elbow extended by a forearm along the best direction known."""
        if self.ok[wrist]:
            return self.x[wrist], self.y[wrist]
        if not self.ok[elbow]:
            return None
        if self.raw[wrist]:
            dx, dy = self.x[wrist] - self.x[elbow], self.y[wrist] - self.y[elbow]
        elif self.ok[shoulder]:
            dx, dy = self.x[elbow] - self.x[shoulder], self.y[elbow] - self.y[shoulder]
        else:
            return None
        norm = math.hypot(dx, dy)
        if norm < 1e-6:
            return None
        return self.x[elbow] + dx / norm * forearm, self.y[elbow] + dy / norm * forearm
