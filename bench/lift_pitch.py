"""Lift detection by camera pitch: how high a camera may hang before lifts are missed.

Warehouse cameras hang high and look down. For each pitch, every lift style is performed
twice from each of 12 yaws (every 30°; 0 = seen from the side, 90 = facing the camera,
270 = back to it) at 4 m, with realistic keypoint noise, and each non-lift activity (walk,
kneel, squat short of the floor, bend to the upper shin, table reach, standing) once per
yaw and seed, through `edge.lifts.detect_lifts`. Prints recall per pitch and yaw and the
false lifts per pitch, by activity; ``--json`` writes them.

    .venv/bin/python bench/lift_pitch.py --json /tmp/lift_pitch.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from edge.lifts import detect_lifts
from edge.synth import (
    LIFT_STYLES,
    NON_LIFT_KINDS,
    Scenario,
    lift_scenario,
    non_lift_scenario,
    synth_stream,
)

YAWS = tuple(range(0, 360, 30))
"""Every 30°: the side views (0, 180), facing the camera (90) and turned away (270)."""


def _count(scenario: Scenario, seed: int) -> int:
    stream = synth_stream(scenario, fps=10.0, seed=seed)
    return len(detect_lifts(zip(map(float, stream.t), stream.poses, strict=True)))


def run(pitch: float, seeds: int, distance_m: float, noise: float) -> dict[str, Any]:
    """Recall by yaw and false lifts by activity for one camera pitch."""
    recall = {}
    for yaw in YAWS:
        found = want = 0
        for style in LIFT_STYLES:
            for seed in range(seeds):
                scenario = lift_scenario(
                    style, yaw, noise, pitch_deg=pitch, distance_m=distance_m, n_lifts=2
                )
                found += min(_count(scenario, seed), 2)
                want += 2
        recall[str(yaw)] = round(found / want, 3)
    false: Counter[str] = Counter()
    activities = 0
    for kind in NON_LIFT_KINDS:
        for yaw in YAWS:
            for seed in range(seeds):
                scenario = non_lift_scenario(
                    kind, yaw, noise, pitch_deg=pitch, distance_m=distance_m
                )
                false[kind] += _count(scenario, seed)
                activities += 1
    return {
        "pitch_deg": pitch,
        "recall": round(sum(recall.values()) / len(recall), 3),
        "recall_by_yaw": recall,
        "false_lifts": sum(false.values()),
        "non_lift_activities": activities,
        "false_by_activity": {k: v for k, v in false.items() if v},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pitch", type=float, nargs="+", default=[15, 35, 45, 55, 65])
    parser.add_argument("--seeds", type=int, default=2, help="runs per style or activity")
    parser.add_argument("--distance", type=float, default=4.0, help="metres to the person")
    parser.add_argument("--noise", type=float, default=0.004, help="keypoint noise, statures")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    rows = []
    print(f"recall by yaw ({', '.join(map(str, YAWS))}°); false lifts in non-lift activities")
    for pitch in args.pitch:
        row = run(pitch, args.seeds, args.distance, args.noise)
        rows.append(row)
        by_yaw = " ".join(f"{v:.2f}" for v in row["recall_by_yaw"].values())
        print(
            f"pitch {pitch:4.0f}°  recall {row['recall']:.3f}  [{by_yaw}]  "
            f"false {row['false_lifts']}/{row['non_lift_activities']} {row['false_by_activity']}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"distance_m": args.distance, "noise": args.noise, "seeds": args.seeds}
        args.json.write_text(json.dumps(doc | {"by_pitch": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
