"""Skeleton overlay video, so a person can check what the agent saw. Stays on the edge."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.analysis import JudgedLift
from edge.frames import Frame
from edge.keypoints import SKELETON
from edge.poses import Poses

MIN_SCORE = 0.25


def _colour(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track id."""
    hue = (track_id * 47) % 180
    hsv = np.array([[[hue, 200, 255]]], dtype=np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_poses(image: np.ndarray, poses: Poses, min_score: float = MIN_SCORE) -> np.ndarray:
    """Draw skeletons, boxes and track ids onto a copy of ``image``."""
    out = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 400))
    for i in range(len(poses)):
        colour = _colour(int(poses.track_ids[i]))
        xy, sc = poses.xy[i], poses.scores[i]
        for a, b in SKELETON:
            if sc[a] >= min_score and sc[b] >= min_score:
                pa = (int(xy[a, 0]), int(xy[a, 1]))
                pb = (int(xy[b, 0]), int(xy[b, 1]))
                cv2.line(out, pa, pb, colour, thick + 1, cv2.LINE_AA)
        for k in np.flatnonzero(sc >= min_score):
            cv2.circle(out, (int(xy[k, 0]), int(xy[k, 1])), thick + 2, (255, 255, 255), -1)
        x1, y1, x2, y2 = (int(v) for v in poses.boxes[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        label = f"#{int(poses.track_ids[i])}"
        cv2.putText(
            out,
            label,
            (x1, max(12, y1 - 6)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * thick + 0.3,
            colour,
            thick + 1,
            cv2.LINE_AA,
        )
    return out


def draw_caption(image: np.ndarray, lines: list[str], origin: tuple[int, int]) -> None:
    """Text with a dark backing so it reads on any scene (in place)."""
    scale = max(0.6, image.shape[0] / 900)
    x, y = origin
    for line in lines:
        (w, h), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        cv2.rectangle(image, (x - 3, y - h - 4), (x + w + 3, y + 4), (0, 0, 0), -1)
        cv2.putText(
            image, line, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA
        )
        y += h + 10


def lift_caption(judged: JudgedLift) -> list[str]:
    """What a reviewer needs to see why a lift was judged the way it was."""
    lift, p = judged.lift, judged.posture
    f = p.features

    def deg(key: str) -> str:
        v = f.get(key)
        return "-" if v is None else f"{v:.0f}"

    head = f"#{lift.track_id} {p.label.upper()} {p.confidence:.2f}"
    if p.reason:
        head += f" ({p.reason})"
    return [
        head,
        f"trunk {deg('trunk_flexion_deg')} hip {deg('hip_angle_deg')} knee {deg('knee_angle_deg')}"
        f" REBA {p.reba_trunk or '-'} {p.view}",
    ]


class OverlayWriter:
    """Writes an MP4 at the analysis rate; opened lazily at the first frame's size."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None

    def write(
        self, frame: Frame, poses: Poses, captions: list[list[str]] | None = None
    ) -> np.ndarray:
        image = draw_poses(frame.image, poses)
        y = 30
        for lines in captions or []:
            draw_caption(image, lines, (10, y))
            y += 40 * len(lines) + 10
        self.write_image(image)
        return image

    def write_image(self, image: np.ndarray) -> None:
        if self._writer is None:
            h, w = image.shape[:2]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise OSError(f"cannot write overlay video {self.path}")
        self._writer.write(image)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
