"""Real model on real clips: keypoints must land on the person, in frame pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.keypoints import KP
from edge.pose import create_estimator
from edge.pose.letterbox import fit_multiple
from edge.poses import Poses

STANDING_CLIP = "deadlift-good-000001.mp4"  # 1920x1080, lifter stands still for the first second


def _first_frame(clips_dir: Path, name: str) -> np.ndarray:
    cap = cv2.VideoCapture(str(clips_dir / name))
    ok, frame = cap.read()
    cap.release()
    assert ok, f"cannot read {name}"
    return frame


def _assert_standing_person(poses: Poses, width: int, height: int) -> None:
    assert len(poses) >= 1
    best = int(np.argmax(poses.person_scores))
    y = poses.xy[best, :, 1]

    def mid(a: KP, b: KP) -> float:
        return float((y[a] + y[b]) / 2)

    shoulders = mid(KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER)
    hips = mid(KP.LEFT_HIP, KP.RIGHT_HIP)
    knees = mid(KP.LEFT_KNEE, KP.RIGHT_KNEE)
    ankles = mid(KP.LEFT_ANKLE, KP.RIGHT_ANKLE)
    assert shoulders < hips < knees < ankles
    x1, y1, x2, y2 = poses.boxes[best]
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    inside = (poses.xy[best, :, 0] >= x1 - 5) & (poses.xy[best, :, 0] <= x2 + 5)
    assert inside.mean() > 0.8


@pytest.mark.parametrize(
    "model,refine",
    [
        ("movenet_multipose", None),
        ("movenet_multipose", "movenet_lightning"),
        ("movenet_thunder", None),
    ],
)
def test_standing_lifter_keypoints_are_ordered_head_to_feet(
    clips_dir: Path, model_dir: Path, model: str, refine: str | None
) -> None:
    frame = _first_frame(clips_dir, STANDING_CLIP)
    estimator = create_estimator(model, refine=refine)
    poses = estimator(frame)
    _assert_standing_person(poses, frame.shape[1], frame.shape[0])


def test_multipose_handles_any_aspect_ratio(clips_dir: Path, model_dir: Path) -> None:
    frame = _first_frame(clips_dir, STANDING_CLIP)
    portrait = np.ascontiguousarray(frame[:, 560:1360])  # 800x1080, person still inside
    poses = create_estimator("movenet_multipose")(portrait)
    _assert_standing_person(poses, portrait.shape[1], portrait.shape[0])


def test_letterbox_geometry_is_multiple_of_32_and_keeps_aspect() -> None:
    w, h, scale = fit_multiple(1920, 1080, 256, 32)
    assert (w, h) == (256, 160) and scale == pytest.approx(256 / 1920)
    w, h, _ = fit_multiple(600, 600, 256, 32)
    assert (w, h) == (256, 256)
    w, h, _ = fit_multiple(720, 1280, 256, 32)
    assert (w, h) == (160, 256)


def test_crop_tracking_keeps_a_small_lifter_multipose_alone_misses(
    clips_dir: Path, model_dir: Path
) -> None:
    """deadlift-coach-bad016: small lifter that MultiPose scores below 0.2 on most frames."""
    cap = cv2.VideoCapture(str(clips_dir / "deadlift-coach-bad016.mp4"))
    tracking = create_estimator("movenet_multipose", refine="movenet_lightning")
    found = []
    for i in range(60):
        ok, frame = cap.read()
        assert ok
        if i % 3 == 0:
            found.append(len(tracking(frame)))
    cap.release()
    assert min(found) >= 1
