"""Per-track time series and the `Lift` value that lift detection hands to posture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.keypoints import NUM_KEYPOINTS
from edge.poses import FloatArray


@dataclass(frozen=True, slots=True)
class TrackSeries:
    """One track's keypoints over time: ``t`` (m,), ``xy`` (m, 17, 2), ``scores`` (m, 17)."""

    track_id: int
    t: FloatArray
    xy: FloatArray
    scores: FloatArray

    def __post_init__(self) -> None:
        m = self.t.shape[0]
        if self.xy.shape != (m, NUM_KEYPOINTS, 2) or self.scores.shape != (m, NUM_KEYPOINTS):
            raise ValueError("TrackSeries arrays must be (m,), (m, 17, 2), (m, 17)")

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def window(self, t0: float, t1: float) -> TrackSeries:
        """The samples with t0 <= t <= t1."""
        keep = (self.t >= t0) & (self.t <= t1)
        return TrackSeries(self.track_id, self.t[keep], self.xy[keep], self.scores[keep])

    def at(self, t: float) -> int:
        """Index of the sample nearest to time t."""
        return int(np.argmin(np.abs(self.t - t)))


@dataclass(frozen=True, slots=True)
class Lift:
    """One floor-level lift cycle of one track: standing → hands at floor → standing.

    ``series`` covers the lift plus the standing lead-in used as the person's own reference
    (``standing`` is that reference window), so posture can be judged in body units.
    ``low_times`` are the frames of the lift whose hands the detector read below the knees
    (None when the lift did not come from the detector): where the back is measured.
    """

    track_id: int
    start: float
    bottom: float
    end: float
    series: TrackSeries
    standing: TrackSeries
    low_times: tuple[float, ...] | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start
