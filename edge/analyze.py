"""`liftwatch-edge analyze`: a clip (or camera) in, a POSES.jsonl and an overlay video out."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from edge.pipeline import PosePipeline, StageClock
from edge.pose import create_estimator
from edge.render import OverlayWriter
from edge.source import open_source


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    clip: str
    out: Path
    render: Path | None = None
    model: str = "movenet_multipose"
    refine: str | None = "movenet_lightning"
    fps: float = 10.0
    threads: int = 1
    progress: bool = True


@dataclass(frozen=True, slots=True)
class AnalyzeSummary:
    frames: int
    seconds: float
    tracks: int
    max_persons: int
    stage_ms: dict[str, float]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def frame_record(t: float, index: int, wall: float, persons: list[dict[str, Any]]) -> str:
    return json.dumps(
        {"t": round(t, 4), "frame": index, "wall": round(wall, 3), "persons": persons},
        separators=(",", ":"),
    )


def analyze(opts: AnalyzeOptions, log: IO[str] = sys.stderr) -> AnalyzeSummary:
    """Run pose + tracking over a clip; raises SourceError / ModelError with clear messages."""
    source = open_source(opts.clip, opts.fps, prefetch=True)
    estimator = create_estimator(opts.model, threads=opts.threads, refine=opts.refine)
    pipeline = PosePipeline(estimator)
    writer = OverlayWriter(opts.render, opts.fps) if opts.render else None
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    total = None
    if source.frame_count and source.fps_in:
        total = int(source.frame_count * min(1.0, opts.fps / source.fps_in)) + 1
    bar = _progress(total, opts.progress, Path(opts.clip).name)
    track_ids: set[int] = set()
    max_persons = 0
    start = time.perf_counter()
    try:
        with opts.out.open("w", encoding="utf-8") as out:
            for item in pipeline.run(source):
                t0 = time.perf_counter()
                poses = item.poses
                track_ids.update(int(i) for i in poses.track_ids)
                max_persons = max(max_persons, len(poses))
                out.write(
                    frame_record(
                        item.frame.t, item.frame.index, item.frame.wall, poses.to_records()
                    )
                    + "\n"
                )
                if writer:
                    writer.write(item.frame, poses)
                pipeline.clock.add("write", time.perf_counter() - t0)
                if bar is not None:
                    bar.update(1)
    finally:
        source.close()
        if writer:
            writer.close()
        if bar is not None:
            bar.close()
    clock: StageClock = pipeline.clock
    summary = AnalyzeSummary(
        frames=clock.frames,
        seconds=time.perf_counter() - start,
        tracks=len(track_ids),
        max_persons=max_persons,
        stage_ms=clock.ms_per_frame(),
    )
    print(
        f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), "
        f"{summary.tracks} track(s), up to {summary.max_persons} person(s) per frame; "
        f"ms/frame {summary.stage_ms} -> {opts.out}",
        file=log,
    )
    return summary


def _progress(total: int | None, enabled: bool, name: str):  # type: ignore[no-untyped-def]
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=name, file=sys.stderr, leave=False)
