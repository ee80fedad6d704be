#!/usr/bin/env python3
"""Is each clip's lifter followed with one track id from start to end?

The lifter is taken to be the largest person in each frame (the one nearest the camera in
every labelled clip). A clip passes when that person carries one id throughout and is found
in nearly every frame; otherwise the id switches and gaps are listed so they can be looked at.

    python bench/track_stability.py [--clips DIR] [--poses-dir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge.pipeline import build_pipeline
from edge.pose import DEFAULT_MODEL, DEFAULT_REFINER
from edge.poses import Poses
from edge.source import open_source


def frames_from_clip(path: Path, fps: float) -> Iterator[tuple[float, Poses]]:
    # The product's pipeline, lift detection included: which people crop tracking poses
    # afresh (lifters, the nearest person) and which it may reuse or skip depends on it.
    # The silhouette only judges posture, which does not feed back into tracking.
    pipeline = build_pipeline(DEFAULT_MODEL, DEFAULT_REFINER, silhouette=False)
    with open_source(str(path), fps, prefetch=True) as source:
        for item in pipeline.run(source):
            yield item.frame.t, item.poses


def frames_from_jsonl(path: Path) -> Iterator[tuple[float, Poses]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if "persons" in rec:
                yield rec["t"], Poses.from_records(rec["persons"])


def lifter_ids(frames: Iterator[tuple[float, Poses]]) -> dict[str, object]:
    ids: list[int] = []
    missing = 0
    total = 0
    for _, poses in frames:
        total += 1
        if not len(poses):
            missing += 1
            continue
        area = (poses.boxes[:, 2] - poses.boxes[:, 0]) * (poses.boxes[:, 3] - poses.boxes[:, 1])
        ids.append(int(poses.track_ids[int(np.argmax(area))]))
    switches = sum(1 for a, b in itertools.pairwise(ids) if a != b)
    distinct = sorted(set(ids))
    return {
        "frames": total,
        "missing": missing,
        "ids": distinct,
        "switches": switches,
        "ok": len(distinct) == 1 and missing <= 0.05 * total,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clips", default=os.environ.get("LIFTWATCH_CLIPS"), help="clips folder")
    ap.add_argument("--poses-dir", help="use cached <clip>.jsonl from analyze instead of the model")
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    if not args.clips:
        sys.exit("error: give --clips or set LIFTWATCH_CLIPS")
    clips = Path(args.clips)
    with (clips / "labels.csv").open(encoding="utf-8") as fh:
        names = [row["clip"] for row in csv.DictReader(fh)]
    results = {}
    for i, name in enumerate(names, 1):
        cached = Path(args.poses_dir) / f"{Path(name).stem}.jsonl" if args.poses_dir else None
        frames = (
            frames_from_jsonl(cached)
            if cached and cached.exists()
            else frames_from_clip(clips / name, args.fps)
        )
        r = lifter_ids(frames)
        results[name] = r
        flag = "ok " if r["ok"] else "FAIL"
        print(
            f"[{i:2d}/{len(names)}] {flag} {name:34s} ids {r['ids']} switches {r['switches']} "
            f"missing {r['missing']}/{r['frames']}"
        )
    passed = sum(1 for r in results.values() if r["ok"])
    print(f"lifter kept one id in {passed} of {len(results)} clips")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"passed": passed, "clips": len(results), "per_clip": results}, indent=2)
            + "\n"
        )


if __name__ == "__main__":
    main()
