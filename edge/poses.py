"""`Poses`: the value every stage after the pose model works on.

One frame's people as stacked numpy arrays, so analysis stays vectorised and a frame with
nobody in it is just ``n == 0`` rather than a special case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.keypoints import NUM_KEYPOINTS

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

UNTRACKED = -1


def _f32(a: Any, shape: tuple[int, ...]) -> FloatArray:
    arr = np.asarray(a, dtype=np.float32)
    return arr.reshape(shape)


@dataclass(frozen=True, slots=True)
class Poses:
    """n persons × 17 COCO keypoints in original-frame pixels.

    - ``xy``: (n, 17, 2) x, y pixels
    - ``scores``: (n, 17) keypoint confidences in [0, 1]
    - ``person_scores``: (n,) instance confidence
    - ``boxes``: (n, 4) x1, y1, x2, y2 pixels
    - ``track_ids``: (n,) anonymous per-camera ids, ``UNTRACKED`` until the tracker ran
    """

    xy: FloatArray
    scores: FloatArray
    person_scores: FloatArray
    boxes: FloatArray
    track_ids: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = self.xy.shape[0]
        if self.xy.shape != (n, NUM_KEYPOINTS, 2):
            raise ValueError(f"xy must be (n, 17, 2), got {self.xy.shape}")
        if self.scores.shape != (n, NUM_KEYPOINTS):
            raise ValueError(f"scores must be (n, 17), got {self.scores.shape}")
        if self.person_scores.shape != (n,) or self.boxes.shape != (n, 4):
            raise ValueError("person_scores must be (n,) and boxes (n, 4)")
        if self.track_ids.shape != (n,):
            object.__setattr__(self, "track_ids", np.full(n, UNTRACKED, dtype=np.int64))

    @classmethod
    def empty(cls) -> Poses:
        return cls(
            xy=np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
            scores=np.zeros((0, NUM_KEYPOINTS), np.float32),
            person_scores=np.zeros(0, np.float32),
            boxes=np.zeros((0, 4), np.float32),
        )

    @classmethod
    def from_arrays(
        cls,
        xy: Any,
        scores: Any,
        person_scores: Any | None = None,
        boxes: Any | None = None,
        track_ids: Any | None = None,
    ) -> Poses:
        """Build from array-likes; missing boxes come from the confident keypoints."""
        xy_a = np.asarray(xy, dtype=np.float32)
        n = xy_a.shape[0] if xy_a.size else 0
        xy_a = _f32(xy_a, (n, NUM_KEYPOINTS, 2))
        sc = _f32(scores, (n, NUM_KEYPOINTS))
        ps = _f32(sc.mean(axis=1) if person_scores is None else person_scores, (n,))
        bx = keypoint_boxes(xy_a, sc) if boxes is None else _f32(boxes, (n, 4))
        ids = (
            np.full(n, UNTRACKED, np.int64)
            if track_ids is None
            else np.asarray(track_ids, np.int64).reshape(n)
        )
        return cls(xy=xy_a, scores=sc, person_scores=ps, boxes=bx, track_ids=ids)

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    def __getitem__(self, index: Any) -> Poses:
        """Select persons by integer array, slice or boolean mask."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Poses(
            xy=self.xy[index],
            scores=self.scores[index],
            person_scores=self.person_scores[index],
            boxes=self.boxes[index],
            track_ids=self.track_ids[index],
        )

    def with_track_ids(self, track_ids: Any) -> Poses:
        return Poses(
            xy=self.xy,
            scores=self.scores,
            person_scores=self.person_scores,
            boxes=self.boxes,
            track_ids=np.asarray(track_ids, np.int64).reshape(len(self)),
        )

    @classmethod
    def concat(cls, parts: Sequence[Poses]) -> Poses:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(
            xy=np.concatenate([p.xy for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            person_scores=np.concatenate([p.person_scores for p in parts]),
            boxes=np.concatenate([p.boxes for p in parts]),
            track_ids=np.concatenate([p.track_ids for p in parts]),
        )

    def to_records(self, decimals: int = 1) -> list[dict[str, Any]]:
        """JSON-ready list, one dict per person (keypoints as [x, y, score])."""
        kps = np.concatenate([self.xy, self.scores[..., None]], axis=2)
        out = []
        for i in range(len(self)):
            out.append(
                {
                    "track_id": int(self.track_ids[i]),
                    "score": round(float(self.person_scores[i]), 3),
                    "box": [round(float(v), decimals) for v in self.boxes[i]],
                    "keypoints": [
                        [round(float(x), decimals), round(float(y), decimals), round(float(s), 3)]
                        for x, y, s in kps[i]
                    ],
                }
            )
        return out

    @classmethod
    def from_records(cls, records: Sequence[dict[str, Any]]) -> Poses:
        if not records:
            return cls.empty()
        kps = np.asarray([r["keypoints"] for r in records], np.float32)
        return cls.from_arrays(
            xy=kps[..., :2],
            scores=kps[..., 2],
            person_scores=[r.get("score", 0.0) for r in records],
            boxes=[r["box"] for r in records],
            track_ids=[r.get("track_id", UNTRACKED) for r in records],
        )


def keypoint_boxes(xy: FloatArray, scores: FloatArray, min_score: float = 0.2) -> FloatArray:
    """Tight x1, y1, x2, y2 boxes around each person's confident keypoints."""
    n = xy.shape[0]
    if n == 0:
        return np.zeros((0, 4), np.float32)
    ok = scores >= min_score
    ok[~ok.any(axis=1)] = True  # nobody confident: use every point rather than NaN
    big = np.float32(1e9)
    x = xy[..., 0]
    y = xy[..., 1]
    return np.stack(
        [
            np.where(ok, x, big).min(axis=1),
            np.where(ok, y, big).min(axis=1),
            np.where(ok, x, -big).max(axis=1),
            np.where(ok, y, -big).max(axis=1),
        ],
        axis=1,
    ).astype(np.float32)


def iou_matrix(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> np.ndarray:
    """Pairwise IoU of two sets of x1, y1, x2, y2 boxes: (len(a), len(b))."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.asarray(inter / (area_a[:, None] + area_b[None, :] - inter + 1e-6))


def nms(boxes: npt.NDArray[np.floating], scores: npt.NDArray[np.floating], iou: float) -> list[int]:
    """Greedy non-maximum suppression: indices of the boxes kept, best first."""
    overlap = iou_matrix(boxes, boxes)
    keep: list[int] = []
    for i in np.argsort(-scores):
        if all(overlap[i, j] <= iou for j in keep):
            keep.append(int(i))
    return keep
