"""`Frame`: one decoded camera image with the times analysis needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Frame:
    """A BGR image plus its position in the stream.

    ``t`` is seconds since the stream started (from the container for files, from a
    monotonic clock for live sources) and drives all timing in analysis; ``wall`` is UTC
    seconds since the epoch and is only used to stamp events.
    """

    image: npt.NDArray[np.uint8]
    t: float
    wall: float
    index: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        h, w = self.image.shape[:2]
        return w, h
