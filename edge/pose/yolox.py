"""YOLOX person detector (YOLOX-Nano, or the 192² Pi-class person model): boxes only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.models import ModelSpec
from edge.pose.base import Image, make_session
from edge.pose.letterbox import letterbox_into
from edge.poses import nms

STRIDES = (8, 16, 32)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    cells, strides = [], []
    for s in STRIDES:
        n = size // s
        ys, xs = np.mgrid[0:n, 0:n]
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full(n * n, s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


class YoloxPersons:
    """Returns (boxes (n, 4) xyxy frame pixels, scores (n,)) for the person class."""

    def __init__(
        self,
        spec: ModelSpec,
        path: Path,
        threads: int = 1,
        min_score: float = 0.35,
        mem_pattern: bool = True,
    ) -> None:
        self.name = spec.key
        self.session = make_session(path, threads, mem_pattern)
        self.input_name = str(spec.input.get("name", "images"))
        self.size = int(str(spec.input.get("size", "416x416")).split("x")[0])
        self.pad = int(spec.input.get("pad", 114))
        self.person_class = int(spec.extra.get("person_class", 0))
        self.min_score = min_score
        self.grid, self.strides = _grid(self.size)
        self._buf = np.zeros((self.size, self.size, 3), np.uint8)

    def __call__(self, image: Image) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        h, w = image.shape[:2]
        scale = min(self.size / w, self.size / h)
        letterbox_into(image, self._buf, scale, pad_value=self.pad)
        blob = self._buf.transpose(2, 0, 1)[None].astype(np.float32)
        out = self.session.run(None, {self.input_name: blob})[0][0]
        score = out[:, 4] * out[:, 5 + self.person_class]
        keep = score >= self.min_score
        if not keep.any():
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        out, score = out[keep], score[keep]
        stride = self.strides[keep, None]
        cxy = (out[:, :2] + self.grid[keep]) * stride
        wh = np.exp(out[:, 2:4]) * stride
        boxes = np.concatenate([cxy - wh / 2, cxy + wh / 2], axis=1) / scale
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        idx = nms(boxes, score, 0.45)
        return boxes[idx].astype(np.float32), score[idx].astype(np.float32)


class LazyPersons:
    """A `YoloxPersons` whose session (~15 ms, ~10 MB) is made on its first call.

    As `CropTracking`'s rescue finder it runs only on keyframes where nobody is found, so an
    agent whose camera always sees someone never loads it. The file was verified by whoever
    resolved ``path``, so a missing or corrupt one still fails at start-up.
    """

    def __init__(self, spec: ModelSpec, path: Path, threads: int = 1) -> None:
        self.name = spec.key
        self._args = (spec, path, threads)
        self._detector: YoloxPersons | None = None

    def __call__(self, image: Image) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        if self._detector is None:
            # Run now and then only: no memory pattern (see `make_session`).
            self._detector = YoloxPersons(*self._args, mem_pattern=False)
        return self._detector(image)
