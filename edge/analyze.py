"""`liftwatch-edge analyze`: a clip (or camera) in; poses, judged lifts and an overlay out.

POSES.jsonl holds one line per analysed frame (``t``, ``frame``, ``wall``, ``persons``) and,
right after the frame at which a lift ended, one ``{"lift": ...}`` line for it. The overlay
video of a file is drawn in a second pass over the clip, so each lift's label and angles can
be shown from the bottom of the lift, where the judgement was made; for a live source they
appear when the lift ends.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from edge.analysis import JudgedLift
from edge.pipeline import build_pipeline
from edge.poses import Poses
from edge.progress import Progress
from edge.render import OverlayWriter, lift_caption
from edge.source import FileSource, Prefetch, open_source

CAPTION_HOLD_S = 2.0


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    clip: str
    out: Path
    render: Path | None = None
    model: str = "movenet_multipose"
    refine: str | None = "movenet_lightning"
    fps: float = 10.0
    threads: int = 1
    silhouette: bool = True
    progress: bool = True
    reuse_still: bool = True
    bystander_every: int = 3
    rescue: str | None = "yolox_nano"


@dataclass(frozen=True, slots=True)
class AnalyzeSummary:
    frames: int
    seconds: float
    tracks: int
    max_persons: int
    lifts: list[JudgedLift]
    stage_ms: dict[str, float]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def frame_record(t: float, index: int, wall: float, persons: list[dict[str, Any]]) -> str:
    return json.dumps(
        {"t": round(t, 4), "frame": index, "wall": round(wall, 3), "persons": persons},
        separators=(",", ":"),
    )


def lift_record(judged: JudgedLift) -> dict[str, Any]:
    lift, p = judged.lift, judged.posture
    return {
        "track_id": lift.track_id,
        "start": round(lift.start, 3),
        "bottom": round(lift.bottom, 3),
        "end": round(lift.end, 3),
        "posture": p.label,
        "confidence": round(p.confidence, 3),
        "reason": p.reason,
        "view": p.view,
        "reba_trunk": p.reba_trunk,
        "features": {k: None if v is None else round(v, 4) for k, v in p.features.items()},
    }


def analyze(opts: AnalyzeOptions, log: IO[str] = sys.stderr) -> AnalyzeSummary:
    """Run the pipeline over a clip; raises SourceError / ModelError with clear messages."""
    source = open_source(opts.clip, opts.fps, prefetch=True)
    pipeline = build_pipeline(
        opts.model,
        opts.refine,
        opts.threads,
        opts.silhouette,
        reuse_still=opts.reuse_still,
        bystander_every=opts.bystander_every,
        rescue=opts.rescue,
    )
    is_file = isinstance(source, Prefetch | FileSource)
    live_writer = OverlayWriter(opts.render, opts.fps) if opts.render and not is_file else None
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    bar = _progress(_expected_frames(source, opts.fps), opts.progress, Path(opts.clip).name)
    track_ids: set[int] = set()
    lifts: list[JudgedLift] = []
    per_frame: list[Poses] = []
    max_persons = 0
    start = time.perf_counter()
    try:
        with opts.out.open("w", encoding="utf-8") as out:
            for item in pipeline.run(source):
                t0 = time.perf_counter()
                poses = item.poses
                track_ids.update(int(i) for i in poses.track_ids if i >= 0)
                max_persons = max(max_persons, len(poses))
                f = item.frame
                out.write(frame_record(f.t, f.index, f.wall, poses.to_records()) + "\n")
                _write_lifts(out, item.lifts)
                lifts.extend(item.lifts)
                if opts.render and is_file:
                    per_frame.append(poses)
                if live_writer:
                    live_writer.write(f, poses, _captions(lifts, f.t, at_end=True))
                pipeline.clock.add("write", time.perf_counter() - t0)
                if bar is not None:
                    bar.update(1)
            tail = pipeline.finish()
            _write_lifts(out, tail)
            lifts.extend(tail)
    finally:
        source.close()
        if live_writer:
            live_writer.close()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    if opts.render and is_file:
        render_file(opts, per_frame, lifts)
    summary = AnalyzeSummary(
        frames=pipeline.clock.frames,
        seconds=seconds,
        tracks=len(track_ids),
        max_persons=max_persons,
        lifts=lifts,
        stage_ms=pipeline.clock.ms_per_frame(),
    )
    labels = ", ".join(j.posture.label for j in lifts) or "none"
    print(
        f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), "
        f"{summary.tracks} track(s), up to {summary.max_persons} person(s) per frame; "
        f"{len(lifts)} lift(s): {labels}; ms/frame {summary.stage_ms} -> {opts.out}",
        file=log,
    )
    return summary


def render_file(opts: AnalyzeOptions, per_frame: list[Poses], lifts: list[JudgedLift]) -> None:
    """Second pass over a file: the same frames, with each lift captioned from its bottom."""
    assert opts.render is not None
    writer = OverlayWriter(opts.render, opts.fps)
    try:
        with open_source(opts.clip, opts.fps, prefetch=True) as source:
            for frame, poses in zip(source, per_frame, strict=False):
                writer.write(frame, poses, _captions(lifts, frame.t, at_end=False))
    finally:
        writer.close()


def _captions(lifts: list[JudgedLift], t: float, at_end: bool) -> list[list[str]]:
    """Captions to show at time t: from bottom (or end, live) for the hold period."""
    shown = []
    for j in lifts:
        since = j.lift.end if at_end else j.lift.bottom
        until = j.lift.end + CAPTION_HOLD_S
        if since <= t <= until:
            shown.append(lift_caption(j))
    return shown


def _write_lifts(out: IO[str], lifts: list[JudgedLift]) -> None:
    for j in lifts:
        out.write(json.dumps({"lift": lift_record(j)}, separators=(",", ":")) + "\n")


def _expected_frames(source: Any, fps: float) -> int | None:
    if source.frame_count and source.fps_in:
        return int(source.frame_count * min(1.0, fps / source.fps_in)) + 1
    return None


def _progress(total: int | None, enabled: bool, name: str) -> Progress | None:
    return Progress(total, name, sys.stderr) if enabled else None
