"""Back-contour curvature: synthetic masks of known shape, and the real model on a real clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.keypoints import KP, NUM_KEYPOINTS
from edge.silhouette import (
    BackContour,
    BackShape,
    back_normal,
    back_shape,
    trunk_ends,
    trunk_spread,
)

TRUNK = 300.0
THICKNESS = 120.0


def _trunk_mask(
    bump: float, angle_deg: float = 0.0, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A trunk whose back is straight except a triangular bump of ``bump`` trunk lengths.

    Built in a trunk frame (s along hip→shoulder, e out of the back), then rotated and scaled
    into an image. Returns mask, hip, shoulder and the back normal in image pixels.
    """
    length = TRUNK * scale
    back = [(0.0, 0.0), (0.3 * length, 0.0), (0.5 * length, bump * length), (0.7 * length, 0.0)]
    outline = [(-0.2 * length, 0.0), *back, (1.2 * length, 0.0)]
    outline += [(1.2 * length, -THICKNESS * scale), (-0.2 * length, -THICKNESS * scale)]
    a = np.radians(angle_deg)
    u = np.array([np.cos(a), np.sin(a)])
    n = np.array([-u[1], u[0]])
    size = int(2.2 * length) + 1
    hip = np.array([0.6 * length, size / 2])
    pts = np.array([hip + s * u + e * n for s, e in outline])
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    shoulder = hip + length * u
    chord_to_back = 0.4 * THICKNESS * scale  # the joints sit inside the body
    hip_in, shoulder_in = hip - chord_to_back * n, shoulder - chord_to_back * n
    return (
        (mask / 255.0).astype(np.float32),
        hip_in.astype(np.float32),
        shoulder_in.astype(np.float32),
        n.astype(np.float32),
    )


def test_straight_back_measures_flat() -> None:
    shape = back_shape(*_trunk_mask(0.0, angle_deg=-35.0))
    assert shape is not None
    assert abs(shape.curvature) < 0.005
    assert abs(shape.area) < 0.002
    assert shape.mask_quality > 0.9


@pytest.mark.parametrize("angle", [0.0, -35.0, 120.0])
def test_bowed_back_is_positive_with_its_size_in_trunk_lengths(angle: float) -> None:
    shape = back_shape(*_trunk_mask(0.05, angle_deg=angle))
    assert shape is not None
    assert shape.curvature == pytest.approx(0.05, abs=0.005)
    assert shape.area == pytest.approx(0.5 * 0.4 * 0.05, abs=0.002)  # triangle area / L²


def test_hollow_back_is_negative() -> None:
    shape = back_shape(*_trunk_mask(-0.04, angle_deg=-35.0))
    assert shape is not None
    assert shape.curvature == pytest.approx(-0.04, abs=0.005)
    assert shape.area < 0


def test_curvature_does_not_depend_on_image_scale() -> None:
    small = back_shape(*_trunk_mask(0.05, angle_deg=-35.0, scale=0.25))
    large = back_shape(*_trunk_mask(0.05, angle_deg=-35.0, scale=1.0))
    assert small is not None and large is not None
    assert small.curvature == pytest.approx(large.curvature, abs=0.008)


def _flexed_trunk_mask(flexion_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A side-view trunk whose spine flexes by ``flexion_deg`` spread evenly from 0.15 to 0.85
    of hip→shoulder (pelvis and shoulder girdle rigid): the model behind PostureConfig."""
    u = np.linspace(0.0, 1.0, 400)
    bend = np.radians(flexion_deg) * np.clip((u - 0.15) / 0.7, 0.0, 1.0)
    pts = np.cumsum(np.stack([np.cos(bend), -np.sin(bend)], axis=1), axis=0) * (u[1] - u[0])
    chord = pts[-1] - pts[0]
    rot = np.array([[chord[0], chord[1]], [-chord[1], chord[0]]]) / np.hypot(*chord) ** 2
    back = (pts - pts[0]) @ rot.T * TRUNK  # hip at 0, shoulder at (TRUNK, 0), bulge to +e
    back[:, 1] *= -1 if back[:, 1].mean() < 0 else 1
    size = int(2.2 * TRUNK)
    hip = np.array([0.6 * TRUNK, size / 2])
    outline = [(-0.2 * TRUNK, 0.0), *map(tuple, back), (1.2 * TRUNK, 0.0)]
    outline += [(1.2 * TRUNK, -THICKNESS), (-0.2 * TRUNK, -THICKNESS)]
    n = np.array([0.0, -1.0])  # out of the back is up in the image
    poly = np.array([hip + np.array([s, 0.0]) + e * n for s, e in outline])
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    inside = 0.4 * THICKNESS * n
    shoulder = hip + np.array([TRUNK, 0.0])
    return ((mask / 255.0).astype(np.float32), (hip - inside).astype(np.float32),
            (shoulder - inside).astype(np.float32), n.astype(np.float32))  # fmt: skip


@pytest.mark.parametrize("flexion", [10.0, 20.0, 30.0])
def test_spinal_flexion_reads_as_posture_config_assumes(flexion: float) -> None:
    """The degrees-to-curvature rate the posture judge uses is what this measure gives."""
    from edge.posture import PostureConfig

    shape = back_shape(*_flexed_trunk_mask(flexion))
    assert shape is not None
    assert shape.curvature == pytest.approx(PostureConfig().curvature_per_deg * flexion, rel=0.15)


def test_empty_or_tiny_masks_give_none() -> None:
    _, hip, shoulder, normal = _trunk_mask(0.05)
    assert back_shape(np.zeros((700, 700), np.float32), hip, shoulder, normal) is None
    mask, hip, shoulder, normal = _trunk_mask(0.05, scale=0.05)
    assert back_shape(mask, hip, shoulder, normal) is None


def _bent_lifter(facing: int) -> tuple[np.ndarray, np.ndarray]:
    """A side-view lifter at the bottom of a deadlift, facing +x (1) or -x (-1)."""
    xy = np.zeros((NUM_KEYPOINTS, 2), np.float32)
    place = {
        KP.LEFT_HIP: (0, 0),
        KP.LEFT_SHOULDER: (80, -50),
        KP.LEFT_KNEE: (45, 55),
        KP.LEFT_ANKLE: (30, 130),
        KP.LEFT_WRIST: (85, 40),
        KP.LEFT_EAR: (100, -65),
        KP.NOSE: (115, -60),
    }
    scores = np.zeros(NUM_KEYPOINTS, np.float32)
    for k, (x, y) in place.items():
        xy[k] = (500 + facing * x, 500 + y)
        scores[k] = 0.8
    return xy, scores


@pytest.mark.parametrize("facing", [1, -1])
def test_back_normal_points_away_from_knees_and_hands(facing: int) -> None:
    xy, scores = _bent_lifter(facing)
    ends = trunk_ends(xy, scores)
    assert ends is not None
    normal = back_normal(xy, scores, *ends)
    assert normal is not None
    assert np.sign(normal[0]) == -facing and normal[1] < 0  # up and behind
    assert abs(float(normal @ (ends[1] - ends[0]))) < 1e-4


def test_back_side_is_unclear_from_the_front() -> None:
    xy = np.zeros((NUM_KEYPOINTS, 2), np.float32)
    scores = np.full(NUM_KEYPOINTS, 0.8, np.float32)
    for k, (x, y) in {
        KP.LEFT_SHOULDER: (-40, -100), KP.RIGHT_SHOULDER: (40, -100),
        KP.LEFT_HIP: (-25, 0), KP.RIGHT_HIP: (25, 0),
        KP.LEFT_KNEE: (-25, 90), KP.RIGHT_KNEE: (25, 90),
        KP.LEFT_WRIST: (-45, 20), KP.RIGHT_WRIST: (45, 20),
        KP.NOSE: (0, -130), KP.LEFT_EAR: (-10, -128), KP.RIGHT_EAR: (10, -128),
    }.items():  # fmt: skip
        xy[k] = (300 + x, 300 + y)
    ends = trunk_ends(xy, scores)
    assert ends is not None
    assert back_normal(xy, scores, *ends) is None


def test_missing_hips_give_none() -> None:
    xy, scores = _bent_lifter(1)
    scores[[KP.LEFT_HIP, KP.RIGHT_HIP]] = 0.0
    assert trunk_ends(xy, scores) is None


def _trunk_seen_at(alpha_deg: float, lean_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic keypoints of a trunk (length 100, shoulders 75 and hips 55 wide) whose
    cross-section is seen at ``alpha_deg`` from its left-right axis, drawn leaning by
    ``lean_deg`` in the image."""
    a, t = np.radians(alpha_deg), np.radians(lean_deg)
    up = np.array([np.sin(t), -np.cos(t)])
    across = np.array([np.cos(t), np.sin(t)])
    hip = np.array([300.0, 300.0])
    xy = np.zeros((NUM_KEYPOINTS, 2), np.float32)
    for (left, right), centre, width in (
        ((KP.LEFT_HIP, KP.RIGHT_HIP), hip, 55.0),
        ((KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER), hip + 100.0 * up, 75.0),
    ):
        xy[left] = centre + 0.5 * width * np.sin(a) * across
        xy[right] = centre - 0.5 * width * np.sin(a) * across
    scores = np.full(NUM_KEYPOINTS, 0.8, np.float32)
    return xy, scores


@pytest.mark.parametrize("lean", [0.0, 70.0, -110.0])
@pytest.mark.parametrize("alpha", [0.0, 20.0, 35.0, 60.0])
def test_trunk_spread_is_the_sine_of_the_cross_section_angle(alpha: float, lean: float) -> None:
    xy, scores = _trunk_seen_at(alpha, lean)
    ends = trunk_ends(xy, scores)
    assert ends is not None
    expected = 0.5 * (0.75 + 0.55) * np.sin(np.radians(alpha))
    assert trunk_spread(xy, scores, *ends) == pytest.approx(expected, abs=1e-4)


def test_trunk_spread_uses_the_pairs_it_sees() -> None:
    xy, scores = _trunk_seen_at(35.0, 70.0)
    ends = trunk_ends(xy, scores)
    assert ends is not None
    scores[KP.RIGHT_HIP] = 0.0
    assert trunk_spread(xy, scores, *ends) == pytest.approx(0.75 * np.sin(np.radians(35)), 1e-3)
    scores[KP.RIGHT_SHOULDER] = 0.0
    assert np.isnan(trunk_spread(xy, scores, *ends))


def _bottom_spread(pitch_deg: float, yaw_deg: float = 0.0) -> tuple[float, str]:
    """Median trunk spread near the bottom of a synthetic hinge, and the standing view."""
    from edge.lifts import detect_lifts
    from edge.posture import estimate_view
    from edge.synth import lift_scenario, synth_stream

    s = synth_stream(lift_scenario("hinge", yaw_deg, pitch_deg=pitch_deg), fps=10)
    (lift,) = detect_lifts(zip(s.t, s.poses, strict=True))
    near = [
        (xy, sc)
        for t, xy, sc in zip(lift.series.t, lift.series.xy, lift.series.scores, strict=True)
        if abs(t - lift.bottom) <= 0.3
    ]
    spreads = []
    for xy, sc in near:
        ends = trunk_ends(xy, sc)
        assert ends is not None
        spreads.append(trunk_spread(xy, sc, *ends))
    return float(np.median(spreads)), estimate_view(lift.standing)[0]


def test_a_camera_looking_down_sees_a_bent_trunk_obliquely_though_standing_side_on() -> None:
    """Standing side-on says nothing about the bent trunk: from above, a trunk near
    horizontal shows its flank, and its shoulders and hips spread across its axis."""
    low, low_view = _bottom_spread(pitch_deg=5.0)
    high, high_view = _bottom_spread(pitch_deg=45.0)
    assert low_view == high_view == "side"
    assert low < 0.2
    assert high > 0.4
    turned, turned_view = _bottom_spread(pitch_deg=15.0, yaw_deg=45.0)
    assert turned_view == "oblique" and turned > 0.35


ROUNDED_CLIP = "deadlift-coach-bad009.mp4"
ROUNDED_BOTTOM_FRAME = 104  # the lowest-wrist frame under MoveNet MultiPose


def test_real_model_measures_a_lifters_back_at_the_bottom(clips_dir: Path, model_dir: Path) -> None:
    from edge.pose import create_estimator

    cap = cv2.VideoCapture(str(clips_dir / ROUNDED_CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, ROUNDED_BOTTOM_FRAME)
    ok, frame = cap.read()
    cap.release()
    assert ok
    poses = create_estimator("movenet_multipose")(frame)
    assert len(poses) >= 1
    best = int(np.argmax(poses.person_scores))
    shape = BackContour().measure(frame, poses.xy[best], poses.scores[best])
    assert isinstance(shape, BackShape)
    assert shape.mask_quality > 0.8
    assert shape.points >= 20
    assert 0.0 < shape.curvature < 0.2  # bowed backwards, by a few percent of trunk length


def test_the_mask_session_is_made_when_the_first_mask_is_asked_for(model_dir: Path) -> None:
    contour = BackContour()
    assert contour._session is None  # a camera that sees no lift never loads it
    prob = contour.mask(np.zeros((256, 256, 3), np.uint8))
    assert prob.shape == (256, 256) and contour._session is not None


def test_a_missing_mask_model_still_fails_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.models import ModelError

    monkeypatch.setenv("LIFTWATCH_MODEL_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match=r"blazepose_landmark_full\.onnx not found"):
        BackContour()
