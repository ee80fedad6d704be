"""Stable anonymous track ids per camera, so lift detection can follow one person over time.

Each track keeps its last keypoints and box, a body scale (square root of the area of the
back-end's box joined with the confident keypoints: it changes little when someone bends,
as the box goes from tall and narrow to short and wide) and a smoothed velocity. Every
frame, tracks are predicted forward at constant velocity and matched to detections by
optimal assignment (Hungarian, with a price on leaving a track unmatched: see `match`)
over a cost of

- torso displacement (shoulders and hips, else any shared keypoint, else box centre) in
  units of the track's scale: hips barely move while a person bends to the floor,
- keypoint similarity (OKS-style, on keypoints confident in both),
- scale change (a near person passing in front of a far one differs in size), ignored
  when fewer than ``min_sized_keypoints`` keypoints are confident: a person cut by the
  frame edge has a box that says little about size,

with gates refusing implausible pairs; the displacement gate widens with the time a track
has been unseen, so a person hidden for a moment keeps their id.

Matching runs in rounds: confident detections to confirmed tracks (``confirm_hits``
matches or more) first, so a young track born on a stray detection cannot take an
established person's detection; then to young tracks; last, weak detections
(``person_score < min_birth_score``, as in ByteTrack) may continue a track, since a person
folded over often scores low, but they never start one.

Pose back-ends sometimes report one body twice. A near-exact copy of a better-scored
detection, and any detection with fewer than 3 confident keypoints, is left out and
returned UNTRACKED; an unmatched confident detection starts a track only with
``min_birth_keypoints`` confident keypoints and if it is not roughly the same body as one
already tracked in this frame.

Ids are given on first sight, so a person's first frame is returned with an id (a lift
seen from its first frame needs it). Flicker from false detections is contained instead by
retiring young tracks after ``young_max_age_s`` unseen (keep it above the frame interval).
Ids come from one counter per process, so a restarted tracker never reuses one.

Without appearance features, a person leaving at the frame edge and another entering at
the same spot within ``max_age_s`` inherit the first one's id.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.keypoints import KP
from edge.poses import UNTRACKED, FloatArray, Poses, iou_matrix, keypoint_boxes

_ids = itertools.count(1)

_TORSO_WEIGHT = np.ones(17, np.float32)
_TORSO_WEIGHT[[KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER, KP.LEFT_HIP, KP.RIGHT_HIP]] = 100.0

_BIG = 1e6


@dataclass(slots=True)
class _Track:
    id: int
    xy: FloatArray  # (17, 2) last matched keypoints
    scores: FloatArray  # (17,)
    box: FloatArray  # (4,)
    scale: float
    velocity: FloatArray  # (2,) pixels per second
    last_seen: float
    sized: bool  # scale measured on a detection with enough keypoints to trust its box
    hits: int = 1


class Tracker:
    """Assigns ``track_ids`` to each frame's `Poses`; one instance per camera.

    After every `update`, ``ended`` lists the ids retired at that call (unseen for longer
    than ``max_age_s``, or young tracks unseen for ``young_max_age_s``), so per-track state
    downstream can be flushed. `finish` retires every track at the end of a stream.
    """

    def __init__(
        self,
        max_age_s: float = 2.0,
        min_birth_score: float = 0.15,
        min_birth_keypoints: int = 5,
        min_sized_keypoints: int = 8,
        min_keypoint_score: float = 0.3,
        confirm_hits: int = 3,
        young_max_age_s: float = 0.3,
        gate: float = 0.8,
        gate_growth_per_s: float = 1.5,
        max_scale_ratio: float = 2.5,
        velocity_smoothing: float = 0.5,
    ) -> None:
        self.max_age_s = max_age_s
        self.min_birth_score = min_birth_score
        self.min_birth_keypoints = min_birth_keypoints
        self.min_sized_keypoints = min_sized_keypoints
        self.min_keypoint_score = min_keypoint_score
        self.confirm_hits = confirm_hits
        self.young_max_age_s = young_max_age_s
        self.gate = gate
        self.gate_growth_per_s = gate_growth_per_s
        self.max_log_scale = math.log(max_scale_ratio)
        self.velocity_smoothing = velocity_smoothing
        self.ended: list[int] = []
        self._tracks: list[_Track] = []

    @property
    def active_ids(self) -> list[int]:
        """Ids of live tracks, including ones unseen for less than their max age."""
        return [tr.id for tr in self._tracks]

    def finish(self) -> list[int]:
        """End of stream: retire every track and return their ids (also set as ``ended``)."""
        self.ended = self.active_ids
        self._tracks = []
        return self.ended

    def update(self, poses: Poses, t: float) -> Poses:
        """The same persons with ``track_ids`` set; unmatched weak detections stay UNTRACKED."""
        self.ended = []
        self._retire(t)
        ids = np.full(len(poses), UNTRACKED, np.int64)
        if len(poses) == 0:
            return poses.with_track_ids(ids)

        visible = poses.scores >= self.min_keypoint_score
        scales = _scales(_body_boxes(poses, self.min_keypoint_score))
        # too few keypoints to say where the body is: a box alone can drag a track away
        copies = _copies(poses.person_scores, _same_body(poses, visible, scales))
        ignored = copies | (visible.sum(axis=1) < 3)
        strong = (poses.person_scores >= self.min_birth_score) & ~ignored
        weak = ~strong & ~ignored
        free_tracks = list(range(len(self._tracks)))
        for mask, confirmed in ((strong, True), (strong, False), (weak, None)):
            dets = np.flatnonzero(mask & (ids == UNTRACKED))
            candidates = [
                k
                for k in free_tracks
                if confirmed is None or (self._tracks[k].hits >= self.confirm_hits) == confirmed
            ]
            if len(dets) == 0 or not candidates:
                continue
            tracks = [self._tracks[k] for k in candidates]
            cost, unmatched, moved = self._cost(tracks, poses, visible, scales, dets, t)
            used = set()
            for r, c in match(cost, unmatched):
                j = int(dets[c])
                sized = bool(visible[j].sum() >= self.min_sized_keypoints)
                self._absorb(tracks[r], poses, j, t, moved[r, c], float(scales[j]), sized)
                ids[j] = tracks[r].id
                used.add(candidates[r])
            free_tracks = [k for k in free_tracks if k not in used]

        taken = [int(j) for j in np.flatnonzero(ids != UNTRACKED)]
        born = strong & (ids == UNTRACKED) & (visible.sum(axis=1) >= self.min_birth_keypoints)
        near = _same_body(poses, visible, scales, loose=True) if born.any() else None
        for j in np.flatnonzero(born)[np.argsort(-poses.person_scores[born], kind="stable")]:
            if near is not None and taken and near[j, taken].any():
                continue
            sized = bool(visible[j].sum() >= self.min_sized_keypoints)
            ids[j] = self._birth(poses, int(j), t, float(scales[j]), sized).id
            taken.append(int(j))
        return poses.with_track_ids(ids)

    def _retire(self, t: float) -> None:
        keep = []
        for tr in self._tracks:
            unseen = t - tr.last_seen
            young = tr.hits < self.confirm_hits
            if unseen > self.max_age_s or (young and unseen > self.young_max_age_s):
                self.ended.append(tr.id)
            else:
                keep.append(tr)
        self._tracks = keep

    def _cost(
        self,
        tracks: list[_Track],
        poses: Poses,
        visible: npt.NDArray[np.bool_],
        scales: FloatArray,
        dets: npt.NDArray[np.intp],
        t: float,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(tracks, dets) matching cost (``_BIG`` where a gate refuses the pair), each
        track's cost of staying unmatched, and the (tracks, dets, 2) anchor shift since each
        track was last seen (NaN where no keypoint is shared: a box-only shift is too rough
        to learn a velocity from)."""
        dt = np.array([max(0.0, min(t - tr.last_seen, self.max_age_s)) for tr in tracks])
        shift = np.stack([tr.velocity for tr in tracks]) * dt[:, None]
        t_xy = np.stack([tr.xy for tr in tracks]) + shift[:, None, :]
        t_ok = np.stack([tr.scores for tr in tracks]) >= self.min_keypoint_score
        t_centres = _centres(np.stack([tr.box for tr in tracks])) + shift
        scale = np.array([tr.scale for tr in tracks])

        both = t_ok[:, None, :] & visible[dets][None, :, :]  # (T, D, 17)
        delta = poses.xy[dets][None, :, :, :] - t_xy[:, None, :, :]  # (T, D, 17, 2)
        box_delta = _centres(poses.boxes[dets])[None, :, :] - t_centres[:, None, :]
        displacement = _anchor_displacement(delta, both, box_delta)
        dist = np.sqrt((displacement**2).sum(axis=2)) / scale[:, None]

        sq = (delta**2).sum(axis=3) / (2 * (0.25 * scale[:, None, None]) ** 2)
        n_both = both.sum(axis=2)
        oks = np.where(n_both >= 3, (np.exp(-sq) * both).sum(axis=2) / np.maximum(n_both, 1), 0.5)
        # a box around a few keypoints (person cut by the frame edge) says nothing of size
        sized = np.array([tr.sized for tr in tracks])[:, None] & (
            visible[dets].sum(axis=1) >= self.min_sized_keypoints
        )
        log_scale = np.abs(np.log(scales[dets][None, :] / scale[:, None])) * sized

        cost = dist + (1.0 - oks) + log_scale
        gate = self.gate + self.gate_growth_per_s * dt
        refused = (dist > gate[:, None]) | (log_scale > self.max_log_scale)
        moved = np.where(n_both[..., None] > 0, displacement + shift[:, None, :], np.nan)
        # Leaving a track unmatched costs about the dearest pair its gate lets through, but
        # that price grows only half as fast as the gate: otherwise a track unseen for a
        # second is as dear to leave out as it is loose to match, and can take a detection
        # from the track that saw the same person a frame ago (deadlift-bad-000003).
        worst = self.gate + 1.0 + self.max_log_scale + 0.5 * self.gate_growth_per_s * dt
        return np.where(refused, _BIG, cost), worst, moved

    def _absorb(
        self,
        track: _Track,
        poses: Poses,
        j: int,
        t: float,
        moved: np.ndarray,
        scale: float,
        sized: bool,
    ) -> None:
        dt = t - track.last_seen
        if dt > 0 and not np.isnan(moved[0]):
            a = self.velocity_smoothing
            velocity = (1 - a) * track.velocity + a * moved / dt
            speed = math.hypot(float(velocity[0]), float(velocity[1]))
            limit = 4.0 * track.scale
            if speed > limit:
                velocity *= limit / speed
            track.velocity = velocity.astype(np.float32)
        track.xy = poses.xy[j]
        track.scores = poses.scores[j]
        track.box = poses.boxes[j]
        if sized:
            track.scale = 0.7 * track.scale + 0.3 * scale if track.sized else scale
            track.sized = True
        track.last_seen = t
        track.hits += 1

    def _birth(self, poses: Poses, j: int, t: float, scale: float, sized: bool) -> _Track:
        track = _Track(
            id=next(_ids),
            xy=poses.xy[j],
            scores=poses.scores[j],
            box=poses.boxes[j],
            scale=scale,
            velocity=np.zeros(2, np.float32),
            last_seen=t,
            sized=sized,
        )
        self._tracks.append(track)
        return track


def _same_body(
    poses: Poses, visible: npt.NDArray[np.bool_], scales: FloatArray, loose: bool = False
) -> npt.NDArray[np.bool_]:
    """(n, n): which detections of one frame are the same body.

    Strict: keypoints agree within 5 % of the person scale (box overlap decides only when
    fewer than 3 keypoints are visible in both), so two people crossing are never merged.
    Loose: within 10 %, or boxes overlapping by IoU > 0.7.
    """
    n = len(poses)
    none = np.zeros((n, n), bool)
    if n < 2:
        return none
    centres = _centres(poses.boxes)
    pair_scale = (scales[:, None] + scales[None, :]) / 2
    far = ((centres[:, None] - centres[None, :]) ** 2).sum(axis=2) > pair_scale**2
    if not loose and far.sum() == n * (n - 1):  # the usual frame: nobody on top of anybody
        return none
    both = visible[:, None, :] & visible[None, :, :]
    count = both.sum(axis=2)
    sq = ((poses.xy[:, None] - poses.xy[None, :]) ** 2).sum(axis=3)
    sigma = (0.1 if loose else 0.05) * pair_scale[..., None]
    oks = (np.exp(-sq / (2 * sigma**2)) * both).sum(axis=2) / np.maximum(count, 1)
    iou = iou_matrix(poses.boxes, poses.boxes)
    max_iou = 0.7 if loose else 0.9
    same = np.where(count >= 3, oks > 0.5, iou > max_iou)
    if loose:
        same |= iou > max_iou
    np.fill_diagonal(same, False)
    return np.asarray(same)


def _copies(person_scores: FloatArray, same: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Detections that repeat a better-scored, kept one: pose back-ends double people up."""
    copies = np.zeros(len(person_scores), dtype=bool)
    if not same.any():
        return copies
    kept: list[int] = []
    for j in np.argsort(-person_scores, kind="stable"):
        if kept and same[j, kept].any():
            copies[j] = True
        else:
            kept.append(int(j))
    return copies


def _centres(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def _body_boxes(poses: Poses, min_score: float) -> np.ndarray:
    """Union of the back-end's box and the confident keypoints: detector boxes sometimes
    cover half a body whose keypoints reach further."""
    kp = keypoint_boxes(poses.xy, poses.scores, min_score)
    return np.concatenate(
        [np.minimum(poses.boxes[:, :2], kp[:, :2]), np.maximum(poses.boxes[:, 2:], kp[:, 2:])],
        axis=1,
    )


def _scales(boxes: np.ndarray) -> np.ndarray:
    """Person scale in pixels: robust to bending, where height turns into width."""
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    return np.sqrt(w * h)


def _anchor_displacement(delta: np.ndarray, both: np.ndarray, box_delta: np.ndarray) -> np.ndarray:
    """(T, D, 2) mean shift of shared torso keypoints, else shared keypoints, else box centre.

    Torso keypoints weigh 100× the others, which picks them whenever one is shared.
    """
    w = both * _TORSO_WEIGHT
    total = w.sum(axis=2)[..., None]
    mean = (delta * w[..., None]).sum(axis=2) / np.maximum(total, 1e-9)
    return np.where(total > 0, mean, box_delta)


def match(cost: np.ndarray, unmatched: np.ndarray) -> list[tuple[int, int]]:
    """Least-cost (row, col) pairs where leaving row i unmatched costs ``unmatched[i]``.

    A plain optimal assignment prefers two plausible pairs to one near-certain pair, so a
    lost track far off could take a person's detection just to let that person's track pair
    with a stranger; pricing "no match" keeps that option open. ``_BIG`` marks refused pairs.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return []
    dummy = np.full((n, n), _BIG)
    np.fill_diagonal(dummy, unmatched)
    pairs = assign(np.concatenate([cost, dummy], axis=1))
    return [(r, c) for r, c in pairs if c < m and cost[r, c] < _BIG]


def assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost matching of rows to columns (Hungarian, O(n²m)); n·m ≤ a few dozen here.

    Returns min(rows, cols) (row, col) pairs; the caller drops pairs its gates refused.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return []
    if n > m:
        return [(r, c) for c, r in assign(cost.T)]
    a = cost.tolist()
    inf = math.inf
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    row_of = [0] * (m + 1)  # 1-based row matched to column j; column 0 is a sentinel
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        row_of[0] = i
        j0 = 0
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = row_of[j0]
            delta = inf
            j1 = 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = a[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[row_of[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    return [(row_of[j] - 1, j - 1) for j in range(1, m + 1) if row_of[j]]
