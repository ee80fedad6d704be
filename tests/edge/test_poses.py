from __future__ import annotations

import numpy as np
import pytest

from edge.poses import UNTRACKED, Poses, keypoint_boxes


def _poses(n: int) -> Poses:
    rng = np.random.default_rng(0)
    return Poses.from_arrays(
        xy=rng.uniform(0, 100, (n, 17, 2)), scores=rng.uniform(0.3, 1, (n, 17))
    )


def test_empty_is_a_zero_length_value() -> None:
    p = Poses.empty()
    assert len(p) == 0 and p.xy.shape == (0, 17, 2) and p.track_ids.shape == (0,)


def test_boxes_default_to_confident_keypoints_and_ids_to_untracked() -> None:
    p = _poses(3)
    assert np.allclose(p.boxes[:, 0], p.xy[..., 0].min(axis=1))
    assert np.allclose(p.boxes[:, 3], p.xy[..., 1].max(axis=1))
    assert (p.track_ids == UNTRACKED).all()


def test_low_score_keypoints_do_not_stretch_the_box() -> None:
    xy = np.full((1, 17, 2), 50.0)
    xy[0, 0] = [500, 500]
    scores = np.ones((1, 17))
    scores[0, 0] = 0.01
    assert keypoint_boxes(xy.astype(np.float32), scores.astype(np.float32))[0].tolist() == [
        50,
        50,
        50,
        50,
    ]


def test_select_concat_and_records_round_trip() -> None:
    p = _poses(4).with_track_ids([7, 8, 9, 10])
    sub = p[np.array([True, False, True, False])]
    assert sub.track_ids.tolist() == [7, 9]
    both = Poses.concat([sub, p[3]])
    assert both.track_ids.tolist() == [7, 9, 10]
    back = Poses.from_records(both.to_records(decimals=3))
    assert back.track_ids.tolist() == [7, 9, 10]
    assert np.allclose(back.xy, both.xy, atol=1e-3)
    assert np.allclose(back.scores, both.scores, atol=1e-3)


def test_shape_errors_are_caught() -> None:
    with pytest.raises(ValueError):
        Poses(
            xy=np.zeros((2, 16, 2), np.float32),
            scores=np.zeros((2, 17), np.float32),
            person_scores=np.zeros(2, np.float32),
            boxes=np.zeros((2, 4), np.float32),
        )
