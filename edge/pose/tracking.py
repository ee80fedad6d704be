"""Crop tracking: find people now and then, follow each with a cheap single-person model.

The same idea as MediaPipe's tracking mode. A finder (MultiPose, or a person detector) runs
on keyframes only; in between, each person is re-estimated by MoveNet Lightning on a crop
taken around their keypoints in the previous frame. That is cheaper than a whole-frame pass
for the one to three people a warehouse camera usually sees, and the crop gives the model
the person at full input resolution, so keypoints of people far from the camera get better.

A person who has not moved is not posed again: the pixels of their crop are compared, as a
small grey patch, with the ones they were last posed on, and while the difference stays
under camera noise their last keypoints are reported again (at most ``max_reuse`` frames in
a row). The model would give the same person back from the same pixels, at ~5 ms a crop;
someone standing between lifts or waiting by a station costs nothing. The caller marks
people whose keypoints must stay fresh (`keep_fresh`: a lift under way), who are posed on
every frame.

With several people followed, the bystanders (neither marked fresh nor the nearest person,
who is the one at the station) are posed only on every ``bystander_every``-th frame, in
turns so that the work per frame stays even, and reported with their last keypoints in
between: people in the background are still found and followed, for a fraction of the
cost of posing them on every frame. Someone followed alone is posed on every frame.

When a keyframe's finder sees nobody and nobody is followed, a second finder of another kind
(``rescue``: a person detector) looks once. MultiPose, bottom-up, can score a person folded
over a load in a night camera's monochrome near zero while a detector trained on people's
boxes still sees them; the refiner then confirms the person or drops the crop. While anyone
is followed it never runs, so it costs nothing where people are found.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from edge.pose.base import Image
from edge.pose.movenet_single import MoveNetSingle, square_crops
from edge.poses import Poses, iou_matrix, keypoint_boxes, nms
from edge.stats import median

BoxFinder = Callable[[Image], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]

PATCH_SIZE = 24
"""Side of the grey patch a crop is reduced to for the stillness test: each patch pixel
averages 16 frame pixels or more, which evens out compression noise."""


class CropTracking:
    """Stateful estimator: ``finder`` every ``keyframe_every`` calls, ``refiner`` crops always.

    Each followed person is a crop square (centre x, centre y, side). The next square comes
    from this frame's keypoints, moved on by their last motion, and never shrinks by more
    than ``shrink`` per frame: a crop built only from its own keypoints collapses when a
    fast rise takes the head out of view, and the person is lost mid-lift.
    """

    def __init__(
        self,
        finder: BoxFinder,
        refiner: MoveNetSingle,
        keyframe_every: int = 10,
        min_person_score: float = 0.25,
        max_people: int = 6,
        shrink: float = 0.9,
        name: str = "",
        reuse_still: bool = True,
        still_diff: int = 8,
        max_reuse: int = 4,
        bystander_every: int = 3,
        rescue: BoxFinder | None = None,
    ) -> None:
        self.name = name or f"{refiner.name}+tracking"
        self.finder = finder
        self.refiner = refiner
        self.keyframe_every = max(1, keyframe_every)
        self.min_person_score = min_person_score
        self.max_people = max_people
        self.shrink = shrink
        self._calls = 0
        self._force_keyframe = True  # the first frame is always a keyframe
        self._squares = np.zeros((0, 3), np.float32)
        self._centres = np.zeros((0, 2), np.float32)  # keypoint centres that made the squares
        self.keyframes = 0
        self.reuse_still = reuse_still
        self.still_diff = still_diff
        self.max_reuse = max(0, max_reuse)
        self.bystander_every = max(1, bystander_every)
        # Per followed person, aligned with _squares: last output pose, the square and grey
        # patch of the frame they were last posed on, frames reused since, must-pose flag.
        self._last = Poses.empty()
        self._posed_on = np.zeros((0, 3), np.float32)
        self._patches: list[npt.NDArray[np.int16] | None] = []
        self._reused = np.zeros(0, np.int64)
        self._fresh = np.zeros(0, np.bool_)
        self._told = False  # whether the caller said who must stay fresh since the last frame
        self._skipped = np.zeros(0, np.bool_)  # per person: skipped since last posed
        self.crops_posed = 0
        self.crops_reused = 0
        self.crops_skipped = 0
        self.rescue = rescue
        self.rescues = 0  # keyframes on which the rescue finder looked

    def keep_fresh(self, fresh: npt.NDArray[np.bool_]) -> None:
        """Mark, per person of the last returned `Poses` (same order), who must be posed
        on the next frame whatever their pixels do; a mask of another length is ignored."""
        if len(fresh) == len(self._fresh):
            self._fresh = np.asarray(fresh, np.bool_).copy()
            self._told = True

    def __call__(self, image: Image) -> Poses:
        keyframe = self._force_keyframe or self._calls % self.keyframe_every == 0
        self._calls += 1
        squares, centres = self._squares, self._centres
        followed = len(squares)
        if keyframe:
            self.keyframes += 1
            squares, centres = self._add_found(image, squares, centres)
        skipped = self._off_turn(squares, followed)
        still = self._still(image, squares, followed) & ~skipped
        poses, posed_on, patches, reused = self._pose(image, squares, still, skipped)
        keep = _dedupe(poses, self.min_person_score)
        # Losing someone we were following makes the next frame a keyframe, so a person who
        # moves out of their crop is found again at once rather than a second later. A crop
        # dropped as the duplicate of a kept one (a keyframe's fresh crop on the same body)
        # loses nobody.
        dropped = np.setdiff1d(np.arange(followed), keep)
        self._force_keyframe = bool((poses.person_scores[dropped] < self.min_person_score).any())
        poses = poses[keep]
        # Frames since each person was last posed, counting this one, for those posed now
        # after being skipped (1 for everyone else): their motion spans all of them.
        was_skipped = np.zeros(len(squares), np.bool_)
        was_skipped[:followed] = self._skipped
        span = np.ones(len(squares), np.int64)
        catching_up = np.flatnonzero(was_skipped & ~(still | skipped))
        span[catching_up] += self._reused[catching_up]
        self._squares, self._centres = self._follow(
            poses, squares[keep], centres[keep], image.shape[1], image.shape[0], span[keep]
        )
        self._skipped = (skipped | (still & was_skipped))[keep]
        self._last = poses
        self._posed_on = posed_on[keep]
        self._patches = [patches[int(i)] for i in keep]
        self._reused = reused[keep]
        self._fresh = np.zeros(len(keep), np.bool_)
        self._told = False
        return poses

    def _still(
        self, image: Image, squares: npt.NDArray[np.float32], followed: int
    ) -> npt.NDArray[np.bool_]:
        """Per crop: the followed person whose last pose can be reported again unchanged.

        Their crop was not moved by a keyframe, nobody asked for them fresh, they have not
        been reused ``max_reuse`` times in a row, and inside the square they were last posed
        in, this frame differs from that one by less than ``still_diff`` grey levels in
        every patch pixel.
        """
        still = np.zeros(len(squares), np.bool_)
        if not self.reuse_still or len(self._last) != followed:
            return still
        for i in range(followed):
            ref = self._patches[i]
            if (
                ref is None
                or self._fresh[i]
                or self._reused[i] >= self.max_reuse
                or not np.array_equal(squares[i], self._squares[i])
            ):
                continue
            now = grey_patch(image, self._posed_on[i])
            still[i] = now is not None and int(np.abs(now - ref).max()) < self.still_diff
        return still

    def _off_turn(self, squares: npt.NDArray[np.float32], followed: int) -> npt.NDArray[np.bool_]:
        """Per crop: a bystander whose turn to be posed this is not.

        Only while several people are followed, and the caller said who is in a lift: a
        bystander is someone not marked fresh who is not the nearest person followed (the
        largest crop; the lifter at a station, whose next lift must be seen from its first
        frame) and whose crop was not moved by a keyframe. Bystander i takes their turn on
        the frames where (frame + i) is a multiple of ``bystander_every``, so that two are
        not posed on the same frame, and at the latest ``bystander_every - 1`` frames after
        their last pose whatever their turn (the order of people changes when one is lost).
        Without word from the caller nobody is known not to be lifting: all are posed.
        """
        skipped = np.zeros(len(squares), np.bool_)
        every = self.bystander_every
        if every <= 1 or not self._told or followed < 2 or len(self._last) != followed:
            return skipped
        nearest = int(np.argmax(self._squares[:, 2]))
        for i in range(followed):
            skipped[i] = not (
                i == nearest
                or self._fresh[i]
                or self._reused[i] >= every - 1
                or (self._calls + i) % every == 0
                or not np.array_equal(squares[i], self._squares[i])
            )
        return skipped

    def _pose(
        self,
        image: Image,
        squares: npt.NDArray[np.float32],
        still: npt.NDArray[np.bool_],
        skipped: npt.NDArray[np.bool_],
    ) -> tuple[
        Poses, npt.NDArray[np.float32], list[npt.NDArray[np.int16] | None], npt.NDArray[np.int64]
    ]:
        """Poses per crop (the refiner's, or the last one for still people and skipped
        bystanders), and per crop the square and patch its pose was made on and how many
        frames it has been reported without a pose."""
        kept = still | skipped
        moved = np.flatnonzero(~kept)
        fresh = self.refiner.on_squares(image, squares[moved])
        self.crops_posed += len(moved)
        self.crops_reused += int(still.sum())
        self.crops_skipped += int(skipped.sum())
        if not kept.any():
            refs = [grey_patch(image, sq) if self.reuse_still else None for sq in squares]
            return fresh, squares.copy(), refs, np.zeros(len(squares), np.int64)
        xy = np.empty((len(squares), 17, 2), np.float32)
        scores = np.empty((len(squares), 17), np.float32)
        posed_on = squares.copy()
        patches: list[npt.NDArray[np.int16] | None] = [None] * len(squares)
        reused = np.zeros(len(squares), np.int64)
        for i in np.flatnonzero(kept):
            xy[i], scores[i] = self._last.xy[i], self._last.scores[i]
            posed_on[i], patches[i] = self._posed_on[i], self._patches[i]
            reused[i] = self._reused[i] + 1
        for k, i in enumerate(moved):
            xy[i], scores[i] = fresh.xy[k], fresh.scores[k]
            patches[i] = grey_patch(image, squares[i]) if self.reuse_still else None
        return Poses.from_arrays(xy=xy, scores=scores), posed_on, patches, reused

    def _add_found(
        self, image: Image, squares: npt.NDArray[np.float32], centres: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        found, _ = self.finder(image)
        if len(found) == 0 and len(squares) == 0 and self.rescue is not None:
            found, _ = self.rescue(image)
            self.rescues += 1
        fresh = square_crops(found)
        if len(found) and len(squares):
            squares = squares.copy()
            overlap = iou_matrix(found, _square_boxes(squares))
            known = overlap.max(axis=1) > 0.3
            for i in np.flatnonzero(known):
                # A followed crop that has drifted smaller than the person is reset to the
                # finder's view of them (e.g. the legs dropped out during a rise).
                j = int(overlap[i].argmax())
                if fresh[i, 2] > squares[j, 2]:
                    squares[j] = fresh[i]
            fresh = fresh[~known]
        n = min(self.max_people, len(squares) + len(fresh))
        squares = np.concatenate([squares, fresh])[:n]
        centres = np.concatenate([centres, fresh[:, :2]])[:n]
        return squares, centres

    def _follow(
        self,
        poses: Poses,
        squares: npt.NDArray[np.float32],
        centres: npt.NDArray[np.float32],
        width: int,
        height: int,
        span: npt.NDArray[np.int64],
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Next frame's crop squares and the keypoint centres they were built from.

        A skipped bystander keeps their keypoints, so their crop stays put; posed again,
        the way they moved since their last keypoints took ``span`` frames, and their crop
        moves on by the average: the whole way in one frame would throw it far ahead.
        """
        boxes = keypoint_boxes(poses.xy, poses.scores, min_score=0.15)
        nxt = square_crops(boxes)
        centre = nxt[:, :2].copy()
        motion = centre - centres
        if (span > 1).any():
            motion /= span[:, None]
        nxt[:, :2] += motion
        nxt[:, 2] = np.maximum(nxt[:, 2], squares[:, 2] * self.shrink)
        nxt[:, 0] = nxt[:, 0].clip(0, width)
        nxt[:, 1] = nxt[:, 1].clip(0, height)
        return nxt.astype(np.float32), centre.astype(np.float32)


def grey_patch(
    image: Image, square: npt.NDArray[np.float32], size: int = PATCH_SIZE
) -> npt.NDArray[np.int16] | None:
    """The part of a crop square inside the frame, shrunk to size² grey levels (None when
    less than size pixels of it are in the frame).

    Every step-th pixel is read first, ~4 per patch pixel across: averaging a whole
    1000-pixel square costs ~2 ms, as much as the pose it would save."""
    cx, cy, side = (float(v) for v in square)
    h, w = image.shape[:2]
    x0, x1 = max(0, int(cx - side / 2)), min(w, int(cx + side / 2))
    y0, y1 = max(0, int(cy - side / 2)), min(h, int(cy + side / 2))
    if x1 - x0 < size or y1 - y0 < size:
        return None
    step = max(1, min(x1 - x0, y1 - y0) // (4 * size))
    roi = image[y0:y1:step, x0:x1:step]
    small = cv2.resize(roi, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)


def _square_boxes(squares: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    half = squares[:, 2:3] / 2
    return np.concatenate([squares[:, :2] - half, squares[:, :2] + half], axis=1)


def _dedupe(poses: Poses, min_score: float, iou: float = 0.6) -> npt.NDArray[np.int64]:
    """Indices to keep: confident enough, and of two crops on one person only the better.

    Two crops converge on one person after a crossing, and a keyframe can add a crop for a
    person whose current crop has drifted (little box overlap): they are the same person
    when their boxes overlap a lot or their confident keypoints coincide.
    """
    ok = np.flatnonzero(poses.person_scores >= min_score)
    kept = nms(poses.boxes[ok], poses.person_scores[ok], iou)
    keep: list[int] = []
    for i in ok[kept]:
        if not any(_same_person(poses, int(i), j) for j in keep):
            keep.append(int(i))
    return np.sort(np.array(keep, dtype=np.int64))


def _same_person(
    poses: Poses, i: int, j: int, min_score: float = 0.3, near: float = 0.1, nested: float = 0.85
) -> bool:
    """One box (nearly) inside the other, or most keypoints confident in both within
    ``near`` of a body size of each other."""
    a, b = poses.boxes[i], poses.boxes[j]
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
        0.0, min(a[3], b[3]) - max(a[1], b[1])
    )
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    if inter >= nested * max(float(smaller), 1.0):
        return True  # one crop's person lies inside the other's: two readings of one body
    both = (poses.scores[i] >= min_score) & (poses.scores[j] >= min_score)
    if both.sum() < 4:
        return False
    gap = np.linalg.norm(poses.xy[i, both] - poses.xy[j, both], axis=1)
    wh = poses.boxes[[i, j], 2:] - poses.boxes[[i, j], :2]
    size = float(np.sqrt(np.clip(wh[:, 0] * wh[:, 1], 1.0, None).min()))
    return median(gap) < near * size
