"""The peer a user would otherwise pick: MediaPipe Pose over one clip, at an analysis rate.

Run by the peer venv's python (see vs_mediapipe.py), never by liftwatch's own venv, so it
must not import liftwatch. It decodes every frame, as a camera agent must, but runs the pose
model only on the frames due at ``--fps``, with the same rule as ``liftwatch-edge analyze``
(edge/source.py): a frame is due once its timestamp reaches the next due time less half an
input frame interval; the due time then moves on by 1/fps, or restarts after a gap.
One JSON line per analysed frame: ``{"t", "frame", "found", "landmarks": [[x, y, vis]*33]}``
with x, y in pixels (empty list when no person was found).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import cv2
import mediapipe as mp


class DueClock:
    """Which frame timestamps are due for analysis at ``fps``."""

    def __init__(self, fps: float, fps_in: float) -> None:
        self.period = 1.0 / fps
        self.slack = 0.5 / fps_in if fps_in > 0 else 1e-6
        self.next_due: float | None = None

    def due(self, t: float) -> bool:
        if self.next_due is not None and t < self.next_due - self.slack:
            return False
        if self.next_due is None or t - self.next_due >= self.period:
            self.next_due = t + self.period
        else:
            self.next_due += self.period
        return True


def frame_time(cap: Any, index: int, last_t: float, fps_in: float) -> float:
    """Container timestamp of the frame just grabbed; from the index when it has none."""
    t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
    if math.isfinite(t) and t >= 0 and (index == 0 or t > last_t):
        return float(t)
    if fps_in > 0:
        return max(index / fps_in, last_t + 1e-6)
    return last_t + 1e-3


def landmarks_px(result: Any, width: int, height: int) -> list[list[float]]:
    if result.pose_landmarks is None:
        return []
    return [
        [round(lm.x * width, 1), round(lm.y * height, 1), round(lm.visibility, 3)]
        for lm in result.pose_landmarks.landmark
    ]


def analyze(clip: Path, fps: float, out: Path) -> int:
    """Write one record per analysed frame to ``out``; returns the number analysed."""
    cap = cv2.VideoCapture(str(clip), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {clip}")
    fps_in = cap.get(cv2.CAP_PROP_FPS)
    fps_in = fps_in if fps_in > 0 and math.isfinite(fps_in) else 0.0
    clock = DueClock(fps, fps_in)
    analysed = 0
    pose = mp.solutions.pose.Pose(
        static_image_mode=False,
        model_complexity=1,
        enable_segmentation=False,
        smooth_landmarks=True,
    )
    with pose, out.open("w") as sink:
        index = 0
        last_t = -math.inf
        while cap.grab():
            t = last_t = frame_time(cap, index, last_t, fps_in)
            if clock.due(t):
                ok, bgr = cap.retrieve()
                if ok:
                    height, width = bgr.shape[:2]
                    result = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                    kps = landmarks_px(result, width, height)
                    record = {
                        "t": round(t, 3),
                        "frame": index,
                        "found": bool(kps),
                        "landmarks": kps,
                    }
                    sink.write(json.dumps(record) + "\n")
                    analysed += 1
            index += 1
    cap.release()
    return analysed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--fps", type=float, default=10.0, help="analysis rate")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, one per frame")
    args = parser.parse_args(argv)
    analyze(args.clip, args.fps, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
