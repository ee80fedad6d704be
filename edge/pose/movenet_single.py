"""MoveNet SinglePose (Lightning / Thunder) run on one square crop per person."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.models import ModelSpec
from edge.pose import prologue
from edge.pose.base import Image, make_session
from edge.poses import Poses

CROP_MARGIN = 1.25


def square_crops(boxes: npt.NDArray[np.float32], margin: float = CROP_MARGIN) -> np.ndarray:
    """(n, 3) crop squares as centre x, centre y, side: the box's long side times ``margin``.

    A bending lifter's box turns wide and short; squaring it keeps the whole body in view
    at any phase of the lift.
    """
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * margin
    return np.stack([cx, cy, np.maximum(side, 16.0)], axis=1).astype(np.float32)


class MoveNetSingle:
    """One person per crop; crops come from a detector or from the previous frame's track."""

    def __init__(self, spec: ModelSpec, path: Path, threads: int = 1) -> None:
        self.name = spec.key
        self.session = make_session(path, threads, edit=prologue.strip, edit_tag=prologue.EDIT_TAG)
        self.prepared = prologue.takes_prepared(self.session)
        self.input_name = str(spec.input.get("name", "input"))
        self.size = int(str(spec.input.get("size", "192x192")).split("x")[0])
        self.dtype = np.uint8 if spec.input.get("dtype") == "uint8" else np.int32

    def on_crops(
        self, image: Image, boxes: npt.NDArray[np.float32], margin: float = CROP_MARGIN
    ) -> Poses:
        """Pose of the person in each box, in frame pixels."""
        return self.on_squares(image, square_crops(boxes, margin))

    def on_squares(self, image: Image, squares: npt.NDArray[np.float32]) -> Poses:
        """Pose in each (centre x, centre y, side) square crop, in frame pixels."""
        if len(squares) == 0:
            return Poses.empty()
        xy = np.empty((len(squares), 17, 2), np.float32)
        scores = np.empty((len(squares), 17), np.float32)
        for i, (cx, cy, side) in enumerate(squares):
            k = self.size / side
            m = np.array([[k, 0, self.size / 2 - k * cx], [0, k, self.size / 2 - k * cy]])
            crop = cv2.warpAffine(
                image, m, (self.size, self.size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)
            )
            rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)[None]
            feed = prologue.feed(self.prepared, self.input_name, rgb, self.dtype)
            out = self.session.run(None, feed)[0].reshape(17, 3)
            xy[i, :, 0] = cx + (out[:, 1] - 0.5) * side
            xy[i, :, 1] = cy + (out[:, 0] - 0.5) * side
            scores[i] = out[:, 2]
        return Poses.from_arrays(xy=xy, scores=scores)

    def __call__(self, image: Image) -> Poses:
        """Whole frame as one crop: only right when one person fills the view."""
        h, w = image.shape[:2]
        return self.on_crops(image, np.array([[0, 0, w, h]], np.float32), margin=1.0)
