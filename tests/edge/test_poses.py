from __future__ import annotations

import numpy as np
import pytest

from edge.poses import UNTRACKED, Poses, iou_matrix, keypoint_boxes, nms


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


def test_iou_of_identical_disjoint_and_half_overlapping_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]], np.float32)
    assert iou_matrix(a, b)[0] == pytest.approx([1.0, 0.0, 1 / 3], abs=1e-4)


def test_nms_keeps_the_best_of_overlapping_boxes_and_all_separate_ones() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.5, 0.9, 0.4], np.float32)
    assert nms(boxes, scores, iou=0.5) == [1, 2]
