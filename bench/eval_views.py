#!/usr/bin/env python3
"""`eval` on changed copies of the clips: does a result hold for a camera that is not this one?

The figures are judged on other footage than the development clips, so each clip is also run
mirrored (filmed from the other side), at half size (a camera twice as far away or a lower
resolution), at a quarter (lifters 60-145 px from nose to ankle instead of 250-570, as a
wide warehouse camera or a low-resolution substream sees them), rolled by ±5° (a camera not
mounted level), darker (a dim aisle), through heavy JPEG compression (a cheap IP camera's
blocks), in monochrome (a camera in night mode), with sensor noise (σ = 8 grey levels, a
small sensor at high gain) and out of focus. Every change is made to the decoded images in
memory, nothing is written. For each it prints detection precision and recall, the posture
figures pooled as `eval` pools them, the trunk-angle baseline, and the clips whose lift
count or labels differ from the unchanged run. ``--json`` writes them under `eval`'s key
names per change, with each clip's lifts and their outline readings.

    .venv/bin/python bench/eval_views.py [--clips DIR] [--labels CSV] [--only mirror half]
                                         [--json OUT]

Needs LIFTWATCH_MODEL_DIR; --clips defaults to LIFTWATCH_CLIPS. ~25-45 s per change, 11 changes,
on 2 vCPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.evaluate import EvalReport, Transform, evaluate, read_labels
from edge.pose.base import Image


def _mirror(image: Image) -> Image:
    return cv2.flip(image, 1)


def _half(image: Image) -> Image:
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def _quarter(image: Image) -> Image:
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 4, h // 4), interpolation=cv2.INTER_AREA)


def _roll(deg: float) -> Transform:
    def roll(image: Image) -> Image:
        h, w = image.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
        return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR)

    return roll


def _dim(image: Image) -> Image:
    # Underexposed: a third of the light, then the camera's gamma lifts the shadows a bit.
    lut = (255.0 * (np.arange(256) / 255.0 / 3.0) ** 0.8).astype(np.uint8)
    return cv2.LUT(image, lut)


def _jpeg(quality: int) -> Transform:
    def jpeg(image: Image) -> Image:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)

    return jpeg


def _grey(image: Image) -> Image:
    # A camera in night (infrared) mode: one channel, repeated as the decoder delivers it.
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _noise(sigma: float) -> Transform:
    # Sensor noise of a small sensor at high gain; seeded, so a run can be repeated.
    rng = np.random.default_rng(0)

    def noise(image: Image) -> Image:
        grain = rng.normal(0.0, sigma, (*image.shape[:2], 1)).astype(np.float32)
        return np.clip(image.astype(np.float32) + grain, 0, 255).astype(np.uint8)

    return noise


def _blur(image: Image) -> Image:
    # Out of focus: a Gaussian of 1/500 of the picture's diagonal (~4 px at 1080p).
    h, w = image.shape[:2]
    return cv2.GaussianBlur(image, (0, 0), ((h * h + w * w) ** 0.5) / 500)


TRANSFORMS: dict[str, Transform | None] = {
    "original": None,
    "mirror": _mirror,
    "half": _half,
    "quarter": _quarter,
    "roll+5": _roll(5.0),
    "roll-5": _roll(-5.0),
    "dim": _dim,
    "jpeg20": _jpeg(20),
    "grey": _grey,
    "noise": _noise(8.0),
    "blur": _blur,
}


def labels_by_clip(report: EvalReport) -> dict[str, list[str]]:
    """Each clip's lifts as labels (``error`` when it could not be read)."""
    return {c.label.clip: c.lift_labels for c in report.clips}


def summary(report: EvalReport, original: dict[str, list[str]] | None) -> dict[str, Any]:
    doc = json.loads(report.to_json())
    keep = ("balanced_accuracy", "sensitivity", "specificity", "abstain_rate", "scored", "lifts")
    row: dict[str, Any] = {
        "detection": {k: doc["detection"][k] for k in ("precision", "recall", "false", "missed")},
        "posture": {k: doc["posture"][k] for k in keep},
        "baseline": {"balanced_accuracy": doc["baseline"]["balanced_accuracy"]},
    }
    outline = ("back_curvature", "back_curvature_se", "spine_flexion_deg")
    row["clips"] = {
        c["clip"]: [
            {"label": lift["label"], "reason": lift["reason"]}
            | {k: lift["features"].get(k) for k in outline}
            for lift in c["lifts"]
        ]
        for c in doc["clips"]
    }
    if original is not None:
        now = labels_by_clip(report)
        row["changed"] = {
            clip: {"original": original.get(clip), "now": labels}
            for clip, labels in now.items()
            if labels != original.get(clip)
        }
    return row


def _fmt(v: float | None) -> str:
    return "   -" if v is None else f"{v:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, default=os.environ.get("LIFTWATCH_CLIPS"))
    ap.add_argument("--labels", type=Path, help="labels CSV (default: CLIPS/labels.csv)")
    ap.add_argument("--only", nargs="+", choices=[k for k in TRANSFORMS if k != "original"])
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    if args.clips is None:
        ap.error("give --clips or set LIFTWATCH_CLIPS")
    labels = args.labels or args.clips / "labels.csv"
    names = ["original", *(args.only or [k for k in TRANSFORMS if k != "original"])]

    n_clips = len(read_labels(labels))  # a malformed labels file stops here, not later
    rows: dict[str, dict[str, Any]] = {}
    original: dict[str, list[str]] | None = None
    print(
        f"{'change':9} {'prec':>5} {'rec':>5} {'BA':>5} {'sens':>5} {'spec':>5} {'abst':>5} "
        f"{'base':>5}  changed clips",
        flush=True,
    )
    for name in names:
        t0 = time.monotonic()
        print(f"  ({name}: {n_clips} clips…)", file=sys.stderr, flush=True)
        report = evaluate(labels, args.clips, transform=TRANSFORMS[name], progress=False)
        row = summary(report, original)
        row["seconds"] = round(time.monotonic() - t0, 1)
        if original is None:
            original = labels_by_clip(report)
        rows[name] = row
        d, p = row["detection"], row["posture"]
        changed = row.get("changed", {})
        print(
            f"{name:9} {_fmt(d['precision']):>5} {_fmt(d['recall']):>5} "
            f"{_fmt(p['balanced_accuracy']):>5} {_fmt(p['sensitivity']):>5} "
            f"{_fmt(p['specificity']):>5} {_fmt(p['abstain_rate']):>5} "
            f"{_fmt(row['baseline']['balanced_accuracy']):>5}  "
            + ", ".join(
                f"{clip.removesuffix('.mp4')} {'/'.join(c['original'] or [])}→"
                f"{'/'.join(c['now']) or 'none'}"
                for clip, c in changed.items()
            ),
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"labels": str(labels), "by_change": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
