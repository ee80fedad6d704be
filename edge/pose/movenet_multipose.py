"""MoveNet MultiPose Lightning: bottom-up, up to 6 people, no separate detector."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.models import ModelSpec
from edge.pose import prologue
from edge.pose.base import Image, make_session
from edge.pose.letterbox import fit_multiple, letterbox_into
from edge.poses import Poses

MAX_PEOPLE = 6


class MoveNetMultiPose:
    """Letterboxes any aspect ratio to multiples of 32 (long side from the manifest)."""

    def __init__(
        self,
        spec: ModelSpec,
        path: Path,
        threads: int = 1,
        min_person_score: float = 0.2,
        long_side: int | None = None,
        mem_pattern: bool = True,
    ) -> None:
        self.name = spec.key
        self.session = make_session(
            path, threads, mem_pattern, edit=prologue.strip, edit_tag=prologue.EDIT_TAG
        )
        self.prepared = prologue.takes_prepared(self.session)
        self.input_name = str(spec.input.get("name", "input"))
        self.long_side = int(long_side or spec.input.get("long_side", 256))
        self.min_person_score = min_person_score
        self._buf: np.ndarray | None = None
        self._geometry: tuple[int, int, int, int, float] | None = None

    def _input_buffer(self, w: int, h: int) -> tuple[np.ndarray, float]:
        if self._geometry is None or self._geometry[:2] != (w, h):
            in_w, in_h, scale = fit_multiple(w, h, self.long_side, 32)
            self._geometry = (w, h, in_w, in_h, scale)
            self._buf = np.zeros((in_h, in_w, 3), np.uint8)
        assert self._buf is not None
        return self._buf, self._geometry[4]

    def __call__(self, image: Image) -> Poses:
        h, w = image.shape[:2]
        buf, scale = self._input_buffer(w, h)
        box = letterbox_into(image, buf, scale)
        rgb = cv2.cvtColor(buf, cv2.COLOR_BGR2RGB)[None]
        feed = prologue.feed(self.prepared, self.input_name, rgb, np.int32)
        out = self.session.run(None, feed)[0][0]
        return decode(out, box.in_w, box.in_h, scale, self.min_person_score)


def decode(out: np.ndarray, in_w: int, in_h: int, scale: float, min_score: float) -> Poses:
    """(6, 56) raw output → Poses in frame pixels, keeping instances above ``min_score``."""
    keep = out[:, 55] >= min_score
    out = out[keep]
    if out.shape[0] == 0:
        return Poses.empty()
    kps = out[:, :51].reshape(-1, 17, 3)
    size = np.array([in_w, in_h], np.float32) / scale
    xy = kps[..., 1::-1] * size  # (y, x) → (x, y), normalised → frame pixels
    boxes = out[:, [52, 51, 54, 53]] * np.tile(size, 2)
    return Poses(
        xy=xy.astype(np.float32),
        scores=kps[..., 2].astype(np.float32),
        person_scores=out[:, 55].astype(np.float32),
        boxes=boxes.astype(np.float32),
    )
