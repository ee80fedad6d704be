"""Crop tracking's stillness test: who is posed again and who keeps their last keypoints."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.analysis import LiftAnalyzer
from edge.frames import Frame
from edge.pipeline import PosePipeline
from edge.pose import create_estimator
from edge.pose.tracking import PATCH_SIZE, CropTracking, grey_patch
from edge.poses import Poses

BOX = np.array([[200.0, 100.0, 300.0, 380.0]], np.float32)  # one person, x1 y1 x2 y2


class StandingRefiner:
    """Stand-in for MoveNet Lightning: a confident upright body filling each square, and a
    count of the crops it was asked to pose."""

    name = "fake"

    def __init__(self) -> None:
        self.posed: list[int] = []

    def on_squares(self, image: np.ndarray, squares: npt.NDArray[np.float32]) -> Poses:
        self.posed.append(len(squares))
        xy = np.zeros((len(squares), 17, 2), np.float32)
        for i, (cx, cy, side) in enumerate(squares):
            xy[i, :, 0] = cx + np.linspace(-0.15, 0.15, 17) * side
            xy[i, :, 1] = cy + np.linspace(-0.35, 0.35, 17) * side
        return Poses.from_arrays(xy=xy, scores=np.full((len(squares), 17), 0.8, np.float32))


def _find(image: np.ndarray) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    return BOX, np.array([0.9], np.float32)


def _scene(moved: int = 0) -> np.ndarray:
    """A textured frame with a bright block (a person's arm) ``moved`` pixels to the right."""
    rng = np.random.default_rng(0)
    image = rng.integers(40, 80, (480, 640, 3), dtype=np.uint8)
    cv2.rectangle(image, (230 + moved, 180), (260 + moved, 260), (230, 230, 230), -1)
    return image


def _tracking(**kwargs: object) -> tuple[CropTracking, StandingRefiner]:
    refiner = StandingRefiner()
    return CropTracking(_find, refiner, keyframe_every=100, **kwargs), refiner  # type: ignore[arg-type]


def test_still_person_keeps_last_keypoints_without_being_posed() -> None:
    tracking, refiner = _tracking()
    first = tracking(_scene())
    again = [tracking(_scene()) for _ in range(3)]
    assert refiner.posed == [1, 0, 0, 0]
    for poses in again:
        assert len(poses) == 1  # still found: box and keypoints reported
        np.testing.assert_array_equal(poses.xy, first.xy)
        np.testing.assert_array_equal(poses.boxes, first.boxes)
    assert (tracking.crops_posed, tracking.crops_reused) == (1, 3)


def test_moving_person_is_posed_every_frame() -> None:
    tracking, refiner = _tracking()
    for step in range(5):
        tracking(_scene(moved=6 * step))
    assert refiner.posed == [1, 1, 1, 1, 1]


def test_small_moves_add_up_against_the_frame_last_posed_on() -> None:
    """Each frame differs little from the one before, but the reference is the frame of the
    last real pose, so slow drift is caught."""
    tracking, refiner = _tracking(still_diff=40)
    for step in range(8):
        tracking(_scene(moved=step))
    assert 0 < sum(n == 0 for n in refiner.posed) < 7
    assert sum(refiner.posed) >= 2


def test_staleness_is_bounded_by_max_reuse() -> None:
    tracking, refiner = _tracking(max_reuse=3)
    for _ in range(13):
        tracking(_scene())
    assert refiner.posed == [1, 0, 0, 0] * 3 + [1]


def test_person_marked_fresh_is_posed_though_still() -> None:
    tracking, refiner = _tracking()
    tracking(_scene())
    tracking.keep_fresh(np.array([True]))
    tracking(_scene())
    tracking(_scene())  # the mark lasts one frame: the caller renews it every frame
    assert refiner.posed == [1, 1, 0]


def test_reuse_off_poses_everyone_every_frame() -> None:
    tracking, refiner = _tracking(reuse_still=False)
    for _ in range(4):
        tracking(_scene())
    assert refiner.posed == [1, 1, 1, 1]


class Lifting(LiftAnalyzer):
    """Lift analysis that says every track is (or is not) in a lift."""

    def __init__(self, lifting: bool) -> None:
        super().__init__()
        self.lifting = lifting

    def in_lift(self, track_id: int) -> bool:
        return self.lifting


def test_pipeline_reposes_a_person_in_a_lift_on_every_frame() -> None:
    for analyzer, expected in ((Lifting(False), [1, 0, 0, 0]), (Lifting(True), [1, 1, 1, 1])):
        tracking, refiner = _tracking()
        pipeline = PosePipeline(tracking, analyzer=analyzer)
        for i in range(4):
            item = pipeline.process(Frame(image=_scene(), t=i / 10, wall=0.0, index=i))
            assert len(item.poses) == 1 and item.poses.track_ids[0] >= 0
        assert refiner.posed == expected


def test_real_model_reuses_a_repeated_frame_and_poses_a_changed_one(
    clips_dir: Path, model_dir: Path
) -> None:
    cap = cv2.VideoCapture(str(clips_dir / "deadlift-good-000001.mp4"))
    frames = []
    for i in range(40):
        ok, frame = cap.read()
        assert ok
        if i in (0, 39):
            frames.append(frame)
    cap.release()
    tracking = create_estimator("movenet_multipose", refine="movenet_lightning")
    assert isinstance(tracking, CropTracking)
    first = tracking(frames[0])
    posed = tracking.crops_posed
    again = tracking(frames[0])
    assert tracking.crops_posed == posed and len(again) == len(first) >= 1
    np.testing.assert_array_equal(again.xy, first.xy)
    tracking(frames[1])  # 1.3 s later: the lifter has moved
    assert tracking.crops_posed > posed


def test_patch_of_a_square_mostly_outside_the_frame() -> None:
    """A square whose part inside the frame is too small to compare is never still."""
    image = _scene()
    assert grey_patch(image, np.array([5.0, 5.0, 10.0], np.float32)) is None
    patch = grey_patch(image, np.array([5.0, 5.0, 2000.0], np.float32))
    assert patch is not None and patch.shape == (PATCH_SIZE, PATCH_SIZE)
