"""Lift detection precision on long synthetic streams: false lifts per person-hour and recall.

Runs `edge.synth.random_scenario` streams (mixed lifts, set-downs, walking, kneeling, squats
short of the floor, shin-height bends, table reaches; varied yaw, pitch, distance, noise,
dropouts, 1-3 people) through `edge.lifts.LiftDetector` and matches detections to the truth:
a detection counts as true when its bottom falls inside an unmatched true lift of the same
track. False lifts are also split by view: side-on (within 60° of a side view) or near the
front or back, where a pitched camera hides how far ahead of the feet the hands are. Also
times the detector per person-frame.

    .venv/bin/python bench/lift_precision.py --hours 2 --json /tmp/lift_precision.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edge.lifts import LiftConfig, LiftDetector
from edge.series import Lift
from edge.synth import Truth, random_scenario, synth_stream


def view_class(view_yaw_deg: float) -> str:
    """Side-on (within 60° of a side view), or near the front or back, where a pitched camera
    hides how far the hands are ahead of the feet (see `edge.lifts`)."""
    off_side = abs((view_yaw_deg + 90.0) % 180.0 - 90.0)
    return "side" if off_side <= 60.0 else "front_back"


def match(lifts: list[Lift], truth: list[Truth]) -> tuple[int, Counter[str], Counter[str]]:
    """True detections, the activity kind under each false one, and its view class."""
    free = [x for x in truth if x.is_lift]
    hits = 0
    false_kinds: Counter[str] = Counter()
    false_views: Counter[str] = Counter()
    for lift in lifts:
        found = next(
            (x for x in free if x.track_id == lift.track_id and x.start <= lift.bottom <= x.end),
            None,
        )
        if found is not None:
            free.remove(found)
            hits += 1
            continue
        under = [
            x for x in truth if x.track_id == lift.track_id and x.start <= lift.bottom <= x.end
        ]
        false_kinds[under[0].kind if under else "between"] += 1
        false_views[view_class(under[0].view_yaw_deg) if under else "between"] += 1
    return hits, false_kinds, false_views


def run(hours: float, seed: int, fps: float, config: LiftConfig) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    person_s = lift_s = 0.0
    true_lifts = hits = detections = 0
    person_frames = 0
    detector_s = 0.0
    false_kinds: Counter[str] = Counter()
    false_views: Counter[str] = Counter()
    missed_kinds: Counter[str] = Counter()
    streams = 0
    while person_s < hours * 3600:
        n_people = int(rng.integers(1, 4))
        scenario = random_scenario(rng, duration_s=120.0, n_people=n_people, lift_share=0.4)
        stream = synth_stream(scenario, fps=fps, seed=int(rng.integers(1 << 31)))
        detector = LiftDetector(config)
        lifts: list[Lift] = []
        t0 = time.perf_counter()
        for t, poses in zip(stream.t, stream.poses, strict=True):
            lifts += detector.update(float(t), poses)
        lifts += detector.flush()
        detector_s += time.perf_counter() - t0
        person_frames += sum(len(p) for p in stream.poses)
        person_s += float(stream.t[-1] - stream.t[0]) * n_people
        found, fk, fv = match(lifts, stream.labels)
        truths = [x for x in stream.labels if x.is_lift]
        true_lifts += len(truths)
        lift_s += sum(x.end - x.start for x in truths)
        hits += found
        detections += len(lifts)
        false_kinds += fk
        false_views += fv
        for x in truths:
            if not any(lf.track_id == x.track_id and x.start <= lf.bottom <= x.end for lf in lifts):
                missed_kinds["setdown" if x.setdown else "pickup"] += 1
        streams += 1
    false = detections - hits
    return {
        "person_hours": round(person_s / 3600, 3),
        "streams": streams,
        "fps": fps,
        "true_lifts": true_lifts,
        "detections": detections,
        "false_lifts": false,
        "false_lifts_per_hour": round(false / (person_s / 3600), 3),
        # The figure: per hour of non-lift activity (everything outside true lifts).
        "nonlift_person_hours": round((person_s - lift_s) / 3600, 3),
        "false_lifts_per_nonlift_hour": round(false / max(1e-9, (person_s - lift_s) / 3600), 3),
        "recall": round(hits / max(1, true_lifts), 4),
        "precision": round(hits / max(1, detections), 4),
        "false_by_activity": dict(false_kinds),
        "false_by_view": dict(false_views),
        "missed": dict(missed_kinds),
        "ms_per_person_frame": round(1000 * detector_s / max(1, person_frames), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0, help="person-hours to simulate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fps", type=float, default=10.0, help="analysis frame rate")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    result = run(args.hours, args.seed, args.fps, LiftConfig())
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
