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
from edge.pose.movenet_single import MoveNetSingle
from edge.poses import Poses, keypoint_boxes

BoxFinder = Callable[[Image], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]


def iou_matrix(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> np.ndarray:
    """Pairwise IoU of two sets of x1, y1, x2, y2 boxes."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-6)


class CropTracking:
    """Stateful estimator: ``finder`` every ``keyframe_every`` calls, ``refiner`` crops always."""

    def __init__(
        self,
        finder: BoxFinder,
        refiner: MoveNetSingle,
        keyframe_every: int = 5,
        min_person_score: float = 0.25,
        max_people: int = 6,
        name: str = "",
    ) -> None:
        self.name = name or f"{refiner.name}+tracking"
        self.finder = finder
        self.refiner = refiner
        self.keyframe_every = max(1, keyframe_every)
        self.min_person_score = min_person_score
        self.max_people = max_people
        self._calls = 0
        self._boxes = np.zeros((0, 4), np.float32)
        self.keyframes = 0

    def __call__(self, image: Image) -> Poses:
        keyframe = self._calls % self.keyframe_every == 0 or len(self._boxes) == 0
        self._calls += 1
        boxes = self._boxes
        if keyframe:
            self.keyframes += 1
            found, _ = self.finder(image)
            if len(found) and len(boxes):
                known = iou_matrix(found, boxes).max(axis=1) > 0.3
                found = found[~known]
            boxes = np.concatenate([boxes, found])[: self.max_people]
        poses = self.refiner.on_crops(image, boxes)
        if not len(poses):
            self._boxes = boxes[:0]
            return poses
        poses = poses[poses.person_scores >= self.min_person_score]
        poses = _dedupe(poses)
        self._boxes = _next_crop_boxes(poses, image.shape[1], image.shape[0])
        return poses


def _dedupe(poses: Poses, iou: float = 0.6) -> Poses:
    """Two crops that converged on one person (after a crossing) keep the better one."""
    if len(poses) < 2:
        return poses
    order = np.argsort(-poses.person_scores)
    overlap = iou_matrix(poses.boxes, poses.boxes)
    keep: list[int] = []
    for i in order:
        if all(overlap[i, j] <= iou for j in keep):
            keep.append(int(i))
    return poses[np.array(sorted(keep))]


def _next_crop_boxes(poses: Poses, width: int, height: int) -> npt.NDArray[np.float32]:
    """Where to look next frame: the confident keypoints' box, clipped to the image."""
    boxes = keypoint_boxes(poses.xy, poses.scores, min_score=0.2)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return boxes
