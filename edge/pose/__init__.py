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
from edge.pose.tracking import BoxFinder, CropTracking
from edge.pose.yolox import LazyPersons, YoloxPersons
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
    keyframe_every: int = 10,
    reuse_still: bool = True,
    bystander_every: int = 3,
    rescue: str | None = DEFAULT_DETECTOR,
) -> PoseEstimator:
    """A ready estimator for manifest ``key``; raises `ModelError` naming any missing file.

    With ``refine`` (a single-person model key), a MultiPose ``key`` only finds people on
    keyframes (every ``keyframe_every`` frames, and at once after someone is lost) and the
    refiner follows each of them on crops in between (see `edge.pose.tracking`). A
    single-person ``key`` is the two-stage path: ``detector`` boxes, then ``key`` on each
    crop; with ``refine`` set the detector runs on keyframes only and ``key`` follows.
    Following people, ``reuse_still`` reports a person whose crop did not change again
    instead of posing them, and with several people followed, bystanders (not in a lift, not
    the nearest person) are posed on every ``bystander_every``-th frame (1: every frame; see
    `edge.pose.tracking`). With a MultiPose ``key`` and ``refine``, the detector ``rescue``
    (None: none) looks on keyframes where MultiPose finds nobody and nobody is followed.
    """
    manifest = load_manifest()
    spec, path = resolve(key, manifest)
    if spec.role != "pose":
        raise ModelError(f"{key} is a {spec.role} model, not a pose model: {pose_model_keys()}")
    finder: BoxFinder
    if spec.backend == "movenet_multipose":
        # As a keyframe finder it runs on one frame in ten: no memory pattern (see make_session).
        multi = MoveNetMultiPose(spec, path, threads, min_person_score=0.2, mem_pattern=not refine)
        if not refine:
            return multi
        # Keyframes only propose crops, which the refiner then confirms or drops: a low bar
        # keeps small, far people that MultiPose scores around 0.1-0.2.
        multi.min_person_score = 0.1
        finder = _boxes_of(multi)
    elif spec.backend == "movenet_single":
        # Two-stage: the detector finds people, this single-person model poses each crop
        # (every frame without ``refine``; between detector keyframes with it).
        det_spec, det_path = resolve(detector, manifest)
        persons = YoloxPersons(det_spec, det_path, threads)
        single = MoveNetSingle(spec, path, threads)
        if not refine:
            return TwoStage(persons, single)
        return CropTracking(
            persons,
            single,
            keyframe_every=keyframe_every,
            name=f"{key}+{detector}",
            reuse_still=reuse_still,
            bystander_every=bystander_every,
        )
    else:
        raise ModelError(f"model {key}: no back-end for {spec.backend!r}")
    ref_spec, ref_path = resolve(refine, manifest)
    if ref_spec.backend != "movenet_single":
        raise ModelError(f"--refine needs a single-person model, {refine} is {ref_spec.backend}")
    refiner = MoveNetSingle(ref_spec, ref_path, threads)
    rescuer = None
    if rescue is not None:
        res_spec, res_path = resolve(rescue, manifest)
        if res_spec.role != "detector":
            raise ModelError(f"rescue needs a person detector; {rescue} is a {res_spec.role} model")
        rescuer = LazyPersons(res_spec, res_path, threads)
    return CropTracking(
        finder,
        refiner,
        keyframe_every=keyframe_every,
        name=f"{key}>{refine}",
        reuse_still=reuse_still,
        bystander_every=bystander_every,
        rescue=rescuer,
    )


def _boxes_of(estimator: PoseEstimator) -> BoxFinder:
    def find(image: Image) -> tuple[np.ndarray, np.ndarray]:
        poses = estimator(image)
        return poses.boxes, poses.person_scores

    return find
