#!/usr/bin/env python3
"""Whole edge pose pipeline against the bare model loop, on the same frames, in one run.

The pipeline pass is what `liftwatch-edge analyze` does: decode at native resolution (in a
background thread, as on the Pi), pre-processing, inference, post-processing, tracking, lifts
and posture, and writing the JSON lines. The model pass replays exactly the ONNX Runtime
calls the pipeline made (same models and options, same input tensors) with nothing around
them. ``ratio`` = pipeline fps / model fps says how much the code around the model costs;
both are measured here, back to back, so a noisy shared machine affects both alike.

Both passes start from sessions that are made but have never run. A session's first run
or two cost more than the rest (ONNX Runtime allocates its buffers then: ~30 ms over the
three models here), which matters on clips of 40-100 analysed frames; replaying on the
pipeline's warm sessions booked that model cost to the code around the model instead.

    python bench/edge_pipeline.py --clip deadlift-good-000001.mp4 --threads 1 --json out.json
    python bench/edge_pipeline.py --all --repeat 2 --json out.json   # every labelled clip
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.analyze import frame_record
from edge.evaluate import read_labels
from edge.pipeline import build_pipeline
from edge.source import open_source

_Session = ort.InferenceSession


def _clip_path(name: str) -> Path:
    p = Path(name)
    if p.exists():
        return p
    clips = os.environ.get("LIFTWATCH_CLIPS")
    if clips and (Path(clips) / name).exists():
        return Path(clips) / name
    sys.exit(f"error: clip {name} not found (as a path or under $LIFTWATCH_CLIPS={clips})")


def pipeline_pass(args: argparse.Namespace, record: list | None = None) -> tuple[float, int, dict]:
    """One full analyze-equivalent pass; returns (seconds, frames, stage ms)."""
    pipeline = build_pipeline(args.model, args.refine, args.threads, not args.no_silhouette)
    analyzer = pipeline.analyzer
    if analyzer is not None and analyzer.sampler is not None:
        # The mask model's session is made at the first lift; make it now, as the others
        # are, so that neither pass times making a session.
        getattr(analyzer.sampler.contour, "session", None)
    original = _Session.run
    if record is not None:

        def recording_run(self, output_names, feed, run_options=None):  # type: ignore[no-untyped-def]
            record.append((self, {k: np.array(v, copy=True) for k, v in feed.items()}))
            return original(self, output_names, feed, run_options)

        _Session.run = recording_run  # type: ignore[method-assign]
    sink = io.StringIO()
    source = open_source(str(args.clip_path), args.fps, prefetch=True)
    start = time.perf_counter()
    try:
        for item in pipeline.run(source):
            t0 = time.perf_counter()
            sink.write(
                frame_record(
                    item.frame.t, item.frame.index, item.frame.wall, item.poses.to_records()
                )
                + "\n"
            )
            pipeline.clock.add("write", time.perf_counter() - t0)
    finally:
        source.close()
        _Session.run = original  # type: ignore[method-assign]
    return time.perf_counter() - start, pipeline.clock.frames, pipeline.clock.ms_per_frame()


def fresh_twin(session: ort.InferenceSession) -> ort.InferenceSession:
    """A new, never-run session of the same model (file, or edited bytes) with the same options."""
    model = session._model_path or session._model_bytes
    return _Session(model, session._sess_options, providers=session.get_providers())


def model_pass(calls: list) -> float:
    twins = {id(s): fresh_twin(s) for s, _ in calls}
    start = time.perf_counter()
    for session, feed in calls:
        twins[id(session)].run(None, feed)
    return time.perf_counter() - start


def measure(args: argparse.Namespace, clip_path: Path) -> dict:
    """Alternating pipeline and model passes on one clip; the figures of `main`'s JSON."""
    args.clip_path = clip_path
    print(
        f"clip {clip_path.name}, model {args.model} refine {args.refine}, "
        f"{args.threads} thread(s), {args.fps} fps; {args.repeat} passes each",
        file=sys.stderr,
    )
    # Pipeline and model passes alternate, so a neighbour's load on this shared machine
    # slows both kinds alike instead of whichever happened to run during it.
    pipe_s: list[float] = []
    model_s: list[float] = []
    stages: dict = {}
    calls: list = []
    peak_rss_mb = 0.0
    frames = 0
    for i in range(args.repeat):
        seconds, frames, ms = pipeline_pass(args)
        if i == 0:  # one pipeline's peak, as in one analyze run, before recording adds its own
            peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            pipeline_pass(args, record=calls)
        pipe_s.append(seconds)
        if seconds == min(pipe_s):
            stages = ms
        model_s.append(model_pass(calls))
        print(
            f"  pass {i + 1}: pipeline {frames / seconds:.1f} fps, model "
            f"{frames / model_s[-1]:.1f} fps ({len(calls)} inference calls)",
            file=sys.stderr,
        )
    pipeline_fps = frames / min(pipe_s)
    model_fps = frames / min(model_s)
    return {
        "clip": clip_path.name,
        "model": args.model,
        "refine": args.refine,
        "threads": args.threads,
        "fps": args.fps,
        "frames": frames,
        "inference_calls": len(calls),
        "pipeline_fps": round(pipeline_fps, 2),
        "model_fps": round(model_fps, 2),
        "ratio": round(pipeline_fps / model_fps, 3),
        "stage_ms": stages,
        "model_ms": round(min(model_s) * 1000 / frames, 3),
        "pipeline_fps_median": round(frames / statistics.median(pipe_s), 2),
        "ratio_median_of_pairs": round(
            statistics.median(m / p for m, p in zip(model_s, pipe_s, strict=True)), 3
        ),
        "peak_rss_mb": round(peak_rss_mb, 1),
    }


def labelled_clips() -> list[Path]:
    clips = os.environ.get("LIFTWATCH_CLIPS")
    if not clips or not (Path(clips) / "labels.csv").exists():
        sys.exit("error: --all needs $LIFTWATCH_CLIPS pointing at a folder with labels.csv")
    return [Path(clips) / label.clip for label in read_labels(Path(clips) / "labels.csv")]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--clip", help="clip path, or a name under $LIFTWATCH_CLIPS")
    which.add_argument("--all", action="store_true", help="every clip in labels.csv")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--model", default="movenet_multipose")
    ap.add_argument("--refine", default="movenet_lightning", help="'none' for whole-frame only")
    ap.add_argument("--no-silhouette", action="store_true", help="keypoint-only posture")
    ap.add_argument("--repeat", type=int, default=3, help="passes of each kind; best is kept")
    ap.add_argument("--json", metavar="OUT", help="write the figures to this JSON file")
    args = ap.parse_args()
    args.refine = None if args.refine in ("", "none") else args.refine
    clips = labelled_clips() if args.all else [_clip_path(args.clip)]

    results = []
    for clip in clips:
        r = measure(args, clip)
        results.append(r)
        print(
            f"{r['clip']}: pipeline {r['pipeline_fps']} fps, model {r['model_fps']} fps, "
            f"ratio {r['ratio']} (median of pairs {r['ratio_median_of_pairs']}), "
            f"stages ms/frame {r['stage_ms']}, peak RSS {r['peak_rss_mb']} MB",
            flush=True,
        )
    result: dict = results[0]
    if args.all:
        ratios = [r["ratio"] for r in results]
        result = {
            "clips": len(results),
            "ratio_min": min(ratios),
            "ratio_median": round(statistics.median(ratios), 3),
            "clips_at_or_above_0_85": sum(x >= 0.85 for x in ratios),
            "per_clip": results,
        }
        print(
            f"{len(results)} clips: ratio median {result['ratio_median']}, min "
            f"{result['ratio_min']}, {result['clips_at_or_above_0_85']} at or above 0.85"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
