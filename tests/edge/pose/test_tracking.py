"""Crop tracking: who is posed again and who keeps their last keypoints (a still person, a
bystander between turns)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edge.analysis import LiftAnalyzer
from edge.frames import Frame
from edge.models import ModelError
from edge.pipeline import PosePipeline, build_pipeline
from edge.pose import create_estimator
from edge.pose.tracking import PATCH_SIZE, CropTracking, grey_patch
from edge.poses import Poses
from edge.source import open_source

BOX = np.array([[200.0, 100.0, 300.0, 380.0]], np.float32)  # one person, x1 y1 x2 y2
# The same person (BOX, the nearest) with two smaller people in the background.
CROWD = np.array(
    [[200.0, 100.0, 300.0, 380.0], [420.0, 150.0, 470.0, 290.0], [520.0, 160.0, 570.0, 300.0]],
    np.float32,
)


class StandingRefiner:
    """Stand-in for MoveNet Lightning: a confident upright body filling each square, and a
    count of the crops it was asked to pose."""

    name = "fake"

    def __init__(self) -> None:
        self.posed: list[int] = []
        self.centres: list[set[int]] = []  # per call, the x centres of the squares posed

    def on_squares(self, image: np.ndarray, squares: npt.NDArray[np.float32]) -> Poses:
        self.posed.append(len(squares))
        self.centres.append({round(float(cx)) for cx in squares[:, 0]})
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


def _find_crowd(image: np.ndarray) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    return CROWD, np.full(len(CROWD), 0.9, np.float32)


def _tracking(**kwargs: object) -> tuple[CropTracking, StandingRefiner]:
    refiner = StandingRefiner()
    return CropTracking(_find, refiner, keyframe_every=100, **kwargs), refiner  # type: ignore[arg-type]


def _crowd(people: int, **kwargs: object) -> tuple[CropTracking, StandingRefiner]:
    """The nearest person and ``people - 1`` bystanders, posed whether or not they move."""
    refiner = StandingRefiner()
    tracking = CropTracking(
        _find_crowd_of(people), refiner, keyframe_every=100, reuse_still=False, **kwargs
    )  # type: ignore[arg-type]
    return tracking, refiner


def _times_posed(refiner: StandingRefiner, box: npt.NDArray[np.float32]) -> list[bool]:
    """Per frame, whether the person in ``box`` was posed (the fake keeps them centred)."""
    cx = round(float(box[0] + box[2]) / 2)
    return [any(abs(c - cx) <= 1 for c in centres) for centres in refiner.centres]


def _run(tracking: CropTracking, frames: int, fresh: list[bool] | None) -> list[Poses]:
    """Frames of one scene; after each, the caller's word on who is in a lift (none: no
    word at all, as from a pipeline without lift analysis)."""
    out = []
    for _ in range(frames):
        poses = tracking(_scene())
        out.append(poses)
        if fresh is not None:
            tracking.keep_fresh(np.array(fresh[: len(poses)], np.bool_))
    return out


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


def test_bystander_is_posed_on_every_third_frame_and_still_reported() -> None:
    tracking, refiner = _crowd(2)
    frames = _run(tracking, 13, fresh=[False, False])
    nearest, bystander = _times_posed(refiner, CROWD[0]), _times_posed(refiner, CROWD[1])
    assert all(nearest)  # the nearest person (the one at the station) on every frame
    assert 4 <= sum(bystander) <= 6 and bystander[0]  # 13 frames: first, then every 3rd
    assert all(any(bystander[i : i + 3]) for i in range(len(bystander) - 2))  # never 3 unposed
    assert all(len(poses) == 2 for poses in frames)  # reported on every frame all the same
    skipped = [i for i, posed in enumerate(bystander) if not posed]
    for i in skipped:  # with the keypoints of the frame they were last posed on
        last = max(j for j in range(i) if bystander[j])
        np.testing.assert_array_equal(frames[i].xy[1], frames[last].xy[1])
    assert tracking.crops_skipped == len(skipped)


def test_two_bystanders_take_turns() -> None:
    tracking, refiner = _crowd(3)
    _run(tracking, 12, fresh=[False, False, False])
    assert refiner.posed[0] == 3
    assert max(refiner.posed[1:]) == 2  # the nearest and at most one bystander per frame
    for box in CROWD[1:]:
        assert 3 <= sum(_times_posed(refiner, box)[1:]) <= 5  # a third of 11 frames


def test_bystander_every_1_poses_everyone_every_frame() -> None:
    tracking, refiner = _crowd(3, bystander_every=1)
    _run(tracking, 6, fresh=[False, False, False])
    assert refiner.posed == [3] * 6


def test_bystander_marked_fresh_is_posed_every_frame() -> None:
    tracking, refiner = _crowd(3)
    _run(tracking, 9, fresh=[False, True, False])
    assert all(_times_posed(refiner, CROWD[1]))
    assert sum(_times_posed(refiner, CROWD[2])) <= 4


def test_lone_person_is_posed_every_frame() -> None:
    tracking, refiner = _crowd(1)
    _run(tracking, 6, fresh=[False])
    assert refiner.posed == [1] * 6


def test_without_word_on_lifts_everyone_is_posed() -> None:
    """A pipeline without lift analysis cannot tell a bystander from a lifter."""
    tracking, refiner = _crowd(3)
    _run(tracking, 6, fresh=None)
    assert refiner.posed == [3] * 6


def test_pipeline_poses_bystanders_less_often_unless_lifting() -> None:
    for analyzer, lifting in ((Lifting(False), False), (Lifting(True), True)):
        refiner = StandingRefiner()
        tracking = CropTracking(_find_crowd, refiner, keyframe_every=100, reuse_still=False)  # type: ignore[arg-type]
        pipeline = PosePipeline(tracking, analyzer=analyzer)
        for i in range(9):
            item = pipeline.process(Frame(image=_scene(), t=i / 10, wall=0.0, index=i))
            assert len(item.poses) == 3
        bystanders = [sum(_times_posed(refiner, box)) for box in CROWD[1:]]
        assert all(_times_posed(refiner, CROWD[0]))
        assert bystanders == [9, 9] if lifting else max(bystanders) <= 4


class WalkingRefiner(StandingRefiner):
    """The nearest person stands at x=250; a bystander walks right, ``step`` px a frame."""

    def __init__(self, step: float) -> None:
        super().__init__()
        self.step = step
        self.frame = 0
        self.bystander_crops: dict[int, float] = {}  # frame -> crop centre x when posed

    def walker_x(self) -> float:
        return 445.0 + self.step * self.frame

    def on_squares(self, image: np.ndarray, squares: npt.NDArray[np.float32]) -> Poses:
        self.posed.append(len(squares))
        xy = np.zeros((len(squares), 17, 2), np.float32)
        for i, (cx, _, _) in enumerate(squares):
            walker = cx > 350
            if walker:
                self.bystander_crops[self.frame] = float(cx)
            x, y, h = (self.walker_x(), 220.0, 140.0) if walker else (250.0, 240.0, 280.0)
            xy[i, :, 0] = x + np.linspace(-0.1, 0.1, 17) * h
            xy[i, :, 1] = y + np.linspace(-0.5, 0.5, 17) * h
        return Poses.from_arrays(xy=xy, scores=np.full((len(squares), 17), 0.8, np.float32))


def test_crop_of_a_bystander_posed_after_skipped_frames_moves_on_by_one_frame() -> None:
    """Posed again after two skipped frames, a walker has moved three steps since their
    last keypoints: their next crop is one step ahead of them, not three."""
    refiner = WalkingRefiner(step=15.0)
    tracking = CropTracking(_find_crowd_of(2), refiner, keyframe_every=100, reuse_still=False)  # type: ignore[arg-type]
    caught_up = None
    for frame in range(12):
        refiner.frame = frame
        tracking(_scene())
        if caught_up is not None:
            break
        crops = refiner.bystander_crops
        if frame in crops and frame - 1 not in crops and frame > 1:
            caught_up = frame  # posed after skipped frames: have them posed on the next too
            tracking.keep_fresh(np.array([False, True]))
        else:
            tracking.keep_fresh(np.array([False, False]))
    assert caught_up is not None
    expected = 445.0 + 15.0 * (caught_up + 1)
    assert abs(refiner.bystander_crops[caught_up + 1] - expected) <= 1.0


def _find_crowd_of(people: int) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    return lambda image: (CROWD[:people], np.full(people, 0.9, np.float32))


def test_a_bystander_rate_below_one_poses_everyone_on_every_frame() -> None:
    tracking = CropTracking(_find_crowd_of(2), StandingRefiner(), bystander_every=0)  # type: ignore[arg-type]
    assert tracking.bystander_every == 1


def test_the_pipeline_passes_its_bystander_rate_to_crop_tracking(model_dir: Path) -> None:
    pipeline = build_pipeline("movenet_multipose", "movenet_lightning", bystander_every=2)
    assert isinstance(pipeline.estimator, CropTracking)
    assert pipeline.estimator.bystander_every == 2


def _pose_clip(
    clip: Path, every: int
) -> tuple[list[Poses], list[tuple[float, float, float, str]], CropTracking]:
    tracking = create_estimator(
        "movenet_multipose", refine="movenet_lightning", bystander_every=every
    )
    assert isinstance(tracking, CropTracking)
    pipeline = PosePipeline(tracking, analyzer=LiftAnalyzer())
    frames, lifts = [], []
    with open_source(str(clip), 10.0) as source:
        for frame in source:
            item = pipeline.process(frame)
            frames.append(item.poses)
            lifts += [
                (j.lift.start, j.lift.bottom, j.lift.end, j.posture.label) for j in item.lifts
            ]
    return frames, lifts, tracking


def test_real_clip_bystander_posed_less_lifter_every_frame(
    clips_dir: Path, model_dir: Path
) -> None:
    """deadlift-bad-000008: the lifter and one person training behind them."""
    every_frame, lifts_all, all_posed = _pose_clip(clips_dir / "deadlift-bad-000008.mp4", 1)
    frames, lifts, tracking = _pose_clip(clips_dir / "deadlift-bad-000008.mp4", 3)
    assert max(len(p) for p in every_frame) == 2
    assert tracking.crops_posed <= 0.75 * all_posed.crops_posed and tracking.crops_skipped >= 15
    assert [len(p) for p in frames] == [len(p) for p in every_frame]  # both found throughout
    assert lifts == lifts_all and len(lifts) == 1
    for ours, reference in zip(frames, every_frame, strict=True):
        # The lifter (the largest person) has exactly the keypoints of posing everyone
        # on every frame: never skipped, not even between lifts.
        a, b = _largest(ours), _largest(reference)
        np.testing.assert_array_equal(ours.xy[a], reference.xy[b])


def _largest(poses: Poses) -> int:
    wh = poses.boxes[:, 2:] - poses.boxes[:, :2]
    return int(np.argmax(wh[:, 0] * wh[:, 1]))


class ScoredRefiner(StandingRefiner):
    """The upright body of `StandingRefiner`, scored by square: ``score(side)`` for all 17
    keypoints (and so for the person)."""

    def __init__(self, score: Callable[[float], float]) -> None:
        super().__init__()
        self.score = score

    def on_squares(self, image: np.ndarray, squares: npt.NDArray[np.float32]) -> Poses:
        poses = super().on_squares(image, squares)
        scores = np.array([[self.score(float(s))] * 17 for s in squares[:, 2]], np.float32)
        return Poses.from_arrays(xy=poses.xy, scores=scores.reshape(-1, 17))


def _finder_then(later: npt.NDArray[np.float32]) -> Callable[[np.ndarray], tuple]:
    """A finder that sees BOX on its first call and ``later`` on every call after."""
    calls = []

    def find(image: np.ndarray) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        calls.append(1)
        boxes = BOX if len(calls) == 1 else later
        return boxes, np.full(len(boxes), 0.9, np.float32)

    return find


def test_a_keyframes_duplicate_crop_on_a_followed_person_forces_no_keyframe() -> None:
    """The keyframe finds the followed person again as a small box (their torso) that hardly
    overlaps their crop, so it gets a crop of its own; that crop reads the same body, scores
    higher and wins the dedupe over the old one. Nobody was lost: no keyframe follows."""
    torso = np.array([[235.0, 180.0, 265.0, 230.0]], np.float32)
    refiner = ScoredRefiner(lambda side: 0.9 if side < 100 else 0.6)
    tracking = CropTracking(_finder_then(torso), refiner, keyframe_every=5, reuse_still=False)  # type: ignore[arg-type]
    counts = []
    for _ in range(8):
        counts.append(len(tracking(_scene())))
    assert counts == [1] * 8
    assert refiner.posed[5] == 2  # the keyframe's fresh crop and the old one, one kept
    assert tracking.keyframes == 2  # frames 0 and 5, not 6


def test_a_followed_person_who_fades_forces_a_keyframe() -> None:
    """A crop whose pose falls under the person score threshold has lost its person: the
    next frame is a keyframe, to find them again at once."""
    sides: list[float] = []

    def score(side: float) -> float:
        sides.append(side)
        return 0.1 if len(sides) == 3 else 0.8  # the third crop posed reads nobody

    refiner = ScoredRefiner(score)
    tracking = CropTracking(_find, refiner, keyframe_every=100, reuse_still=False)  # type: ignore[arg-type]
    counts = [len(tracking(_scene())) for _ in range(5)]
    assert counts == [1, 1, 0, 1, 1]
    assert tracking.keyframes == 2  # frame 0, and frame 3 after the loss


def _find_nobody(image: np.ndarray) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)


class CountingFinder:
    """A rescue finder that sees ``boxes`` and counts its calls."""

    def __init__(self, boxes: npt.NDArray[np.float32]) -> None:
        self.boxes = boxes
        self.calls = 0

    def __call__(
        self, image: np.ndarray
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        self.calls += 1
        return self.boxes, np.full(len(self.boxes), 0.5, np.float32)


def test_rescue_finds_who_the_finder_missed_then_rests_while_they_are_followed() -> None:
    rescue = CountingFinder(BOX)
    tracking = CropTracking(_find_nobody, StandingRefiner(), keyframe_every=3, rescue=rescue)  # type: ignore[arg-type]
    counts = [len(tracking(_scene())) for _ in range(7)]
    assert counts == [1] * 7  # found on the first frame, by the rescue
    assert tracking.keyframes == 3 and rescue.calls == tracking.rescues == 1


def test_rescue_does_not_look_when_the_finder_sees_someone() -> None:
    rescue = CountingFinder(CROWD)
    tracking = CropTracking(_find, StandingRefiner(), keyframe_every=1, rescue=rescue)  # type: ignore[arg-type]
    assert [len(tracking(_scene())) for _ in range(3)] == [1, 1, 1]
    assert rescue.calls == 0


def test_a_rescue_crop_the_refiner_drops_forces_no_keyframe() -> None:
    """An empty scene where the detector sees something the refiner does not confirm: the
    crop is dropped at once and the rescue looks again only at the next keyframe."""
    rescue = CountingFinder(BOX)
    refiner = ScoredRefiner(lambda side: 0.1)
    tracking = CropTracking(_find_nobody, refiner, keyframe_every=4, rescue=rescue)  # type: ignore[arg-type]
    assert [len(tracking(_scene())) for _ in range(8)] == [0] * 8
    assert tracking.keyframes == 2 and rescue.calls == 2


def _monochrome_start(clips_dir: Path, seconds: float) -> list[np.ndarray]:
    """The first analysed frames (10 fps) of deadlift-good-000009 as a night camera sees them.

    The lifter starts folded over the bar; in monochrome MultiPose scores him 0.00-0.03 for
    the first second and a half, while in colour it finds him at once."""
    frames = []
    with open_source(str(clips_dir / "deadlift-good-000009.mp4"), 10.0) as source:
        for frame in source:
            if frame.t >= seconds:
                break
            grey = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
            frames.append(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    return frames


def test_real_rescue_finds_a_lifter_multipose_misses_in_monochrome(
    clips_dir: Path, model_dir: Path
) -> None:
    frames = _monochrome_start(clips_dir, 1.0)
    found = {}
    for rescue in ("yolox_nano", None):
        tracking = create_estimator("movenet_multipose", refine="movenet_lightning", rescue=rescue)
        assert isinstance(tracking, CropTracking)
        found[rescue] = [tracking(f) for f in frames]
    assert all(len(p) == 0 for p in found[None])
    assert all(len(p) == 1 for p in found["yolox_nano"])
    for poses in found["yolox_nano"]:
        # The lifter stands in the middle of the picture, folded over a bar at knee height:
        # hips above ankles, keypoints inside the frame.
        xy, scores = poses.xy[0], poses.scores[0]
        w = frames[0].shape[1]
        assert (xy[:, 0] > 0.25 * w).all() and (xy[:, 0] < 0.75 * w).all()
        assert xy[[11, 12], 1].mean() < xy[[15, 16], 1].mean()
        assert poses.person_scores[0] >= 0.25 and scores.max() >= 0.5


def test_real_rescue_is_never_loaded_while_people_are_found(
    clips_dir: Path, model_dir: Path
) -> None:
    tracking = create_estimator("movenet_multipose", refine="movenet_lightning")
    assert isinstance(tracking, CropTracking)
    with open_source(str(clips_dir / "deadlift-good-000009.mp4"), 10.0) as source:
        found = [len(tracking(frame.image)) for frame in source]
    assert min(found) >= 1 and tracking.keyframes >= 5
    assert tracking.rescues == 0
    assert getattr(tracking.rescue, "_detector", "missing") is None  # no session was made


def test_real_rescue_on_an_empty_scene_reports_nobody(model_dir: Path) -> None:
    """A blank wall: MultiPose and the detector see nobody, and nobody is made up."""
    rng = np.random.default_rng(1)
    wall = np.clip(rng.normal(128, 6, (720, 1280, 1)), 0, 255).astype(np.uint8).repeat(3, 2)
    tracking = create_estimator("movenet_multipose", refine="movenet_lightning")
    assert isinstance(tracking, CropTracking)
    assert [len(tracking(wall)) for _ in range(12)] == [0] * 12
    assert tracking.rescues == tracking.keyframes == 2


def test_rescue_must_be_a_person_detector(model_dir: Path) -> None:
    with pytest.raises(ModelError, match="rescue needs a person detector"):
        create_estimator(
            "movenet_multipose", refine="movenet_lightning", rescue="movenet_lightning"
        )
