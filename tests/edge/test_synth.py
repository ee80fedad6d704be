import numpy as np
import pytest

from edge.keypoints import KP
from edge.synth import (
    FLOOR_LIFT_MAX,
    LIFT_STYLES,
    NON_LIFT_KINDS,
    ROUNDED_SPINE_DEG,
    SHIN_BEND_RANGE,
    Camera,
    LiftMove,
    Noise,
    Person,
    Scenario,
    Walk,
    lift_scenario,
    non_lift_scenario,
    random_scenario,
    synth_stream,
)

CLEAN = Noise(pixel_sigma=0.0, dropout=0.0)


def _frame_at(stream, t):
    return int(np.argmin(np.abs(stream.t - t)))


def _mid(xy, a, b):
    return 0.5 * (xy[..., a, :] + xy[..., b, :])


def _standing_height_px(xy):
    return float(_mid(xy, KP.LEFT_ANKLE, KP.RIGHT_ANKLE)[1] - xy[KP.NOSE, 1])


def test_standing_person_projects_head_to_feet_downward():
    s = synth_stream(non_lift_scenario("idle", yaw_deg=30, noise=CLEAN), seed=0)
    y = s.poses[0].xy[0, :, 1]
    order = [
        y[KP.NOSE],
        _mid(s.poses[0].xy[0], KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER)[1],
        _mid(s.poses[0].xy[0], KP.LEFT_HIP, KP.RIGHT_HIP)[1],
        _mid(s.poses[0].xy[0], KP.LEFT_KNEE, KP.RIGHT_KNEE)[1],
        _mid(s.poses[0].xy[0], KP.LEFT_ANKLE, KP.RIGHT_ANKLE)[1],
    ]
    assert np.all(np.diff(order) > 0)
    assert y.min() > 0 and y.max() < s.camera.height


def test_side_view_narrows_shoulders_front_view_widens_them():
    def width(yaw):
        s = synth_stream(non_lift_scenario("idle", yaw_deg=yaw, noise=CLEAN), seed=0)
        xy = s.poses[0].xy[0]
        return abs(xy[KP.LEFT_SHOULDER, 0] - xy[KP.RIGHT_SHOULDER, 0]) / _standing_height_px(xy)

    assert width(0) < 0.03
    assert width(90) > 0.2


def test_lift_bottom_brings_wrists_to_ankle_height_inside_label_times():
    s = synth_stream(lift_scenario("hinge", noise=CLEAN), seed=0)
    (lift,) = s.lifts
    assert lift.start < lift.bottom < lift.end <= s.t[-1]
    assert abs(lift.hand_height_m - 0.12) < 0.02
    stand = s.poses[0].xy[0]
    height = _standing_height_px(stand)
    bottom = s.poses[_frame_at(s, lift.bottom)].xy[0]
    wrist = _mid(bottom, KP.LEFT_WRIST, KP.RIGHT_WRIST)
    ankle = _mid(bottom, KP.LEFT_ANKLE, KP.RIGHT_ANKLE)
    knee = _mid(bottom, KP.LEFT_KNEE, KP.RIGHT_KNEE)
    assert abs(wrist[1] - ankle[1]) < 0.08 * height
    assert wrist[1] > knee[1]
    for t in (lift.start - 0.3, lift.end + 0.3):
        xy = s.poses[_frame_at(s, t)].xy[0]
        assert _mid(xy, KP.LEFT_WRIST, KP.RIGHT_WRIST)[1] < _mid(xy, KP.LEFT_KNEE, KP.RIGHT_KNEE)[1]


def test_hinge_pushes_hips_back_behind_the_ankles():
    s = synth_stream(lift_scenario("hinge", yaw_deg=0, noise=CLEAN), seed=0)
    xy = s.poses[_frame_at(s, s.lifts[0].bottom)].xy[0]
    facing_right_nose_ahead = xy[KP.NOSE, 0] > _mid(xy, KP.LEFT_HIP, KP.RIGHT_HIP)[0]
    assert facing_right_nose_ahead
    assert _mid(xy, KP.LEFT_HIP, KP.RIGHT_HIP)[0] < _mid(xy, KP.LEFT_ANKLE, KP.RIGHT_ANKLE)[0]


@pytest.mark.parametrize("style", list(LIFT_STYLES))
def test_every_style_reaches_the_floor_with_the_posture_its_spine_implies(style):
    s = synth_stream(lift_scenario(style, noise=CLEAN), seed=0)
    (lift,) = s.lifts
    assert lift.hand_height_m < 0.18
    spine, knee = LIFT_STYLES[style]
    assert lift.spine_flexion_deg == pytest.approx(spine)
    assert lift.knee_bend_deg == pytest.approx(knee)
    assert lift.posture == ("rounded" if spine >= ROUNDED_SPINE_DEG else "hinge")


def test_rounded_spine_shortens_the_hip_shoulder_chord():
    def chord(spine):
        act = LiftMove(spine_flexion_deg=spine, knee_bend_deg=20.0)
        s = synth_stream(Scenario([Person([act])], Camera.aimed(), CLEAN), seed=0)
        xy = s.poses[_frame_at(s, s.lifts[0].bottom)].xy[0]
        d = _mid(xy, KP.LEFT_SHOULDER, KP.RIGHT_SHOULDER) - _mid(xy, KP.LEFT_HIP, KP.RIGHT_HIP)
        return float(np.hypot(*d)) / _standing_height_px(s.poses[0].xy[0])

    flat, rounded = chord(5.0), chord(50.0)
    assert rounded < 0.98 * flat  # a 50° arc over the spine: chord/arc ≈ sin(25°)/0.436


def test_same_seed_same_stream_other_seed_other_noise():
    scenario = lift_scenario("stoop", yaw_deg=20, noise=Noise(pixel_sigma=0.01, dropout=0.05))
    a, b = synth_stream(scenario, seed=3), synth_stream(scenario, seed=3)
    c = synth_stream(scenario, seed=4)
    assert a.labels == b.labels
    assert all(
        np.array_equal(p.xy, q.xy) and np.array_equal(p.scores, q.scores)
        for p, q in zip(a.poses, b.poses, strict=True)
    )
    assert not np.array_equal(a.poses[5].xy, c.poses[5].xy)


def test_several_people_carry_distinct_track_ids_and_labels():
    people = [
        Person([LiftMove()], x_m=-1.5, yaw_deg=0),
        Person([Walk(duration_s=2.0), LiftMove(spine_flexion_deg=50)], x_m=1.0, yaw_deg=180),
    ]
    s = synth_stream(Scenario(people, Camera.aimed(6.0), CLEAN), seed=0)
    assert all(sorted(p.track_ids.tolist()) == [1, 2] for p in s.poses)
    assert {lb.track_id for lb in s.lifts} == {1, 2}
    assert len(s.track(2)) == len(s.t)
    assert [lb.kind for lb in s.labels if lb.track_id == 2] == ["walk", "lift"]


def test_pixel_noise_scales_with_the_asked_sigma():
    clean = synth_stream(lift_scenario("hinge", noise=CLEAN), seed=0)
    noisy = synth_stream(lift_scenario("hinge", noise=Noise(0.02, far_side=False)), seed=0)
    err = np.concatenate(
        [(n.xy - c.xy).ravel() for n, c in zip(noisy.poses, clean.poses, strict=True)]
    )
    height = _standing_height_px(clean.poses[0].xy[0])
    assert 0.015 * height < err.std() < 0.03 * height


def test_dropouts_lower_scores_at_the_asked_rate():
    def low_share(dropout):
        sc = lift_scenario("hinge", yaw_deg=90, noise=Noise(0.0, dropout=dropout))
        scores = np.stack([p.scores[0] for p in synth_stream(sc, seed=1).poses])
        return float((scores < 0.3).mean())

    assert low_share(0.0) < 0.01
    assert 0.15 < low_share(0.2) < 0.25


@pytest.mark.parametrize(("yaw", "near_side"), [(0, "RIGHT"), (180, "LEFT")])
def test_far_side_of_a_side_view_scores_lower(yaw, near_side):
    s = synth_stream(non_lift_scenario("idle", yaw_deg=yaw, noise=CLEAN), seed=0)
    scores = np.stack([p.scores[0] for p in s.poses])
    far_side = "LEFT" if near_side == "RIGHT" else "RIGHT"
    parts = ("SHOULDER", "HIP", "KNEE")
    near = scores[:, [KP[f"{near_side}_{p}"] for p in parts]].mean()
    far = scores[:, [KP[f"{far_side}_{p}"] for p in parts]].mean()
    assert far < near - 0.2


def test_load_occluder_hides_ankles_only_near_the_bottom():
    act = LiftMove(occlude_ankles=True)
    s = synth_stream(Scenario([Person([act])], Camera.aimed(), CLEAN), seed=0)
    ankles = [KP.LEFT_ANKLE, KP.RIGHT_ANKLE]
    assert s.poses[_frame_at(s, s.lifts[0].bottom)].scores[0, ankles].max() < 0.3
    assert s.poses[0].scores[0, KP.RIGHT_ANKLE] > 0.5  # the near side at yaw 0


@pytest.mark.parametrize("kind", NON_LIFT_KINDS)
def test_non_lifts_are_labelled_as_such(kind):
    s = synth_stream(non_lift_scenario(kind, noise=CLEAN), seed=0)
    (label,) = s.labels
    assert label.kind == kind and not label.is_lift and label.posture is None
    if kind in ("squat", "reach", "walk", "idle"):
        assert label.hand_height_m > 0.45
    if kind == "shin_bend":
        assert 0.40 <= label.hand_height_m <= 0.50  # upper shin of a 1.75 m person


@pytest.mark.parametrize("height", [1.55, 1.95])
def test_shin_bend_and_squat_hands_scale_with_stature(height):
    for kind, lo, hi in (("shin_bend", *SHIN_BEND_RANGE), ("squat", 0.22, 0.3)):
        s = synth_stream(non_lift_scenario(kind, noise=CLEAN, height_m=height), seed=0)
        assert lo <= s.labels[0].hand_height_m / height <= hi, kind


def test_random_scenario_leaves_the_lift_bend_guard_band_empty():
    """Lifts end at or below mid-shin, bends above it, nothing in the band in between."""
    scenario = random_scenario(np.random.default_rng(3), duration_s=600, n_people=3)
    stature = {i + 1: p.height_m for i, p in enumerate(scenario.people)}
    s = synth_stream(scenario, seed=3)
    share = {
        kind: [lb.hand_height_m / stature[lb.track_id] for lb in s.labels if lb.kind == kind]
        for kind in ("lift", "shin_bend", "squat", "kneel")
    }
    assert all(share.values())
    assert max(share["lift"]) <= FLOOR_LIFT_MAX
    assert min(share["shin_bend"]) >= SHIN_BEND_RANGE[0] > FLOOR_LIFT_MAX + 0.05
    assert max(share["shin_bend"]) <= SHIN_BEND_RANGE[1]
    assert min(share["squat"]) >= SHIN_BEND_RANGE[0]


def test_walk_crosses_the_view():
    s = synth_stream(non_lift_scenario("walk", yaw_deg=0, noise=CLEAN), seed=0)
    hip_x = [_mid(p.xy[0], KP.LEFT_HIP, KP.RIGHT_HIP)[0] for p in s.poses]
    assert hip_x[-1] - hip_x[0] > 0.2 * s.camera.width


def test_view_yaw_label_includes_perspective_off_the_optical_axis():
    person = Person([LiftMove()], x_m=3.0, distance_m=5.0, yaw_deg=0.0)
    s = synth_stream(Scenario([person], Camera.aimed(5.0), CLEAN), seed=0)
    assert s.lifts[0].view_yaw_deg == pytest.approx(-np.degrees(np.arctan2(3.0, 5.0)), abs=2.0)


def test_walking_there_and_back_returns_to_the_start():
    person = Person([Walk(duration_s=3.0), Walk(duration_s=3.0, back=True)], x_m=-2.0)
    s = synth_stream(Scenario([person], Camera.aimed(), CLEAN), seed=0)
    hip_x = np.array([_mid(p.xy[0], KP.LEFT_HIP, KP.RIGHT_HIP)[0] for p in s.poses])
    assert hip_x.max() - hip_x[0] > 0.2 * s.camera.width
    assert abs(hip_x[-1] - hip_x[0]) < 0.02 * s.camera.width
    back = s.poses[_frame_at(s, s.labels[1].bottom)].xy[0]
    assert back[KP.NOSE, 0] < _mid(back, KP.LEFT_EAR, KP.RIGHT_EAR)[0]  # faces the way it goes


def test_random_scenario_mixes_lifts_and_non_lifts_with_clear_posture_truth():
    rng = np.random.default_rng(7)
    s = synth_stream(random_scenario(rng, duration_s=240, n_people=2), seed=7)
    assert s.lifts and len(s.lifts) < len(s.labels)
    assert {lb.track_id for lb in s.labels} == {1, 2}
    assert all(lb.end <= s.t[-1] + 0.1 for lb in s.labels)
    spines = np.array([lb.spine_flexion_deg for lb in s.lifts])
    assert not np.any((spines > 15) & (spines < 35))
    present = np.array([len(p) for p in s.poses])
    assert (present == 2).mean() > 0.9  # walks alternate, so people stay in view
