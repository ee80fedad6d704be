"""Pose back-ends behind one interface, picked by the model manifest's ``backend`` key.

A new model of a known kind is a manifest entry; a new kind of model is one new module
here plus one line in ``_BACKENDS``.
"""

from __future__ import annotations

import numpy as np

from edge.models import ModelError, load_manifest, resolve
from edge.pose.base import Image, PoseEstimator
from edge.pose.movenet_multipose import MoveNetMultiPose
from edge.pose.movenet_single import MoveNetSingle
from edge.pose.tracking import CropTracking
from edge.pose.yolox import YoloxPersons
from edge.poses import Poses

DEFAULT_MODEL = "movenet_multipose"
DEFAULT_DETECTOR = "yolox_nano"
DEFAULT_REFINER = "movenet_lightning"

__all__ = [
    "DEFAULT_MODEL",
    "CropTracking",
    "MoveNetMultiPose",
    "MoveNetSingle",
    "PoseEstimator",
    "TwoStage",
    "YoloxPersons",
    "create_estimator",
    "pose_model_keys",
]


class TwoStage:
    """Detector boxes → single-person pose per crop: sees people too small for MultiPose."""

    def __init__(self, detector: YoloxPersons, single: MoveNetSingle, max_people: int = 6):
        self.name = f"{single.name}+{detector.name}"
        self.detector = detector
        self.single = single
        self.max_people = max_people

    def __call__(self, image: Image) -> Poses:
        boxes, det_scores = self.detector(image)
        boxes, det_scores = boxes[: self.max_people], det_scores[: self.max_people]
        poses = self.single.on_crops(image, boxes)
        if not len(poses):
            return poses
        return Poses(
            xy=poses.xy,
            scores=poses.scores,
            person_scores=np.sqrt(det_scores * poses.scores.mean(axis=1)).astype(np.float32),
            boxes=boxes,
        )


def pose_model_keys() -> list[str]:
    return sorted(k for k, s in load_manifest().items() if s.role == "pose")


def create_estimator(
    key: str = DEFAULT_MODEL,
    threads: int = 1,
    detector: str = DEFAULT_DETECTOR,
    refine: str | None = None,
    keyframe_every: int = 5,
) -> PoseEstimator:
    """A ready estimator for manifest ``key``; raises `ModelError` naming any missing file.

    With ``refine`` (a single-person model key), ``key`` only finds people on keyframes and
    the refiner follows each of them on crops in between (see `edge.pose.tracking`).
    """
    manifest = load_manifest()
    spec, path = resolve(key, manifest)
    if spec.role != "pose":
        raise ModelError(f"{key} is a {spec.role} model, not a pose model: {pose_model_keys()}")
    if spec.backend == "movenet_multipose":
        multi = MoveNetMultiPose(spec, path, threads, min_person_score=0.2)
        base: PoseEstimator = multi
    elif spec.backend == "movenet_single":
        det_spec, det_path = resolve(detector, manifest)
        single = MoveNetSingle(spec, path, threads)
        base = TwoStage(YoloxPersons(det_spec, det_path, threads), single)
    else:
        raise ModelError(f"model {key}: no back-end for {spec.backend!r}")
    if not refine:
        return base
    ref_spec, ref_path = resolve(refine, manifest)
    if ref_spec.backend != "movenet_single":
        raise ModelError(f"--refine needs a single-person model, {refine} is {ref_spec.backend}")
    refiner = MoveNetSingle(ref_spec, ref_path, threads)
    if isinstance(base, MoveNetMultiPose):
        # Keyframes only propose crops, which the refiner then confirms or drops: a low bar
        # keeps small, far people that MultiPose scores around 0.1-0.2.
        base.min_person_score = 0.1
        finder = _boxes_of(base)
    else:
        finder = base.detector
    return CropTracking(finder, refiner, keyframe_every=keyframe_every, name=f"{key}>{refine}")


def _boxes_of(estimator: PoseEstimator):  # type: ignore[no-untyped-def]
    def find(image: Image):  # type: ignore[no-untyped-def]
        poses = estimator(image)
        return poses.boxes, poses.person_scores

    return find
