"""Crop tracking: find people now and then, follow each with a cheap single-person model.

The same idea as MediaPipe's tracking mode. A finder (MultiPose, or a person detector) runs
on keyframes only; in between, each person is re-estimated by MoveNet Lightning on a crop
taken around their keypoints in the previous frame. That is cheaper than a whole-frame pass
for the one to three people a warehouse camera usually sees, and the crop gives the model
the person at full input resolution, so keypoints of people far from the camera get better.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from edge.pose.base import Image
from edge.pose.movenet_single import MoveNetSingle, square_crops
from edge.poses import Poses, iou_matrix, keypoint_boxes, nms
from edge.stats import median

BoxFinder = Callable[[Image], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]


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

    def __call__(self, image: Image) -> Poses:
        keyframe = self._force_keyframe or self._calls % self.keyframe_every == 0
        self._calls += 1
        squares, centres = self._squares, self._centres
        followed = len(squares)
        if keyframe:
            self.keyframes += 1
            squares, centres = self._add_found(image, squares, centres)
        poses = self.refiner.on_squares(image, squares)
        keep = _dedupe(poses, self.min_person_score)
        # Losing someone we were following makes the next frame a keyframe, so a person who
        # moves out of their crop is found again at once rather than a second later.
        self._force_keyframe = not set(range(followed)) <= set(keep.tolist())
        poses = poses[keep]
        self._squares, self._centres = self._follow(
            poses, squares[keep], centres[keep], image.shape[1], image.shape[0]
        )
        return poses

    def _add_found(
        self, image: Image, squares: npt.NDArray[np.float32], centres: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        found, _ = self.finder(image)
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
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Next frame's crop squares and the keypoint centres they were built from."""
        boxes = keypoint_boxes(poses.xy, poses.scores, min_score=0.15)
        nxt = square_crops(boxes)
        centre = nxt[:, :2].copy()
        nxt[:, :2] += centre - centres
        nxt[:, 2] = np.maximum(nxt[:, 2], squares[:, 2] * self.shrink)
        nxt[:, 0] = nxt[:, 0].clip(0, width)
        nxt[:, 1] = nxt[:, 1].clip(0, height)
        return nxt.astype(np.float32), centre.astype(np.float32)


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
