"""Camera-free pose sources: recorded or synthetic poses for demos, tests and load tests.

They yield `PoseFrame` (stream time, wall time, tracked `Poses`) without images, so the
agent skips the pose model and the tracker and feeds the poses straight to lift analysis
(keypoints only, no silhouette). Source specs, usable in an agent's YAML ``source:``::

    replay:PATH            POSES.jsonl from `liftwatch-edge analyze`, paced in real time, once
    replay-fast:PATH       the same as fast as the consumer takes it
    replay-loop:PATH       real time, forever: each pass continues the clock and gets new
                           track ids, so lifts repeat as new events
    replay-fast-loop:PATH  forever, unpaced (load tests)
    synthetic:SEED         endless `edge.synth` random scenarios (two people, mostly lifts)
                           at the analysis rate in real time; the same seed, the same stream
    synthetic-fast:SEED    the same, unpaced

Modifiers after the kind (``-fast``, ``-loop``) may come in any order. Wall times are
stamped when a frame is handed over, as a camera would; the recorded ``wall`` is ignored.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edge.poses import UNTRACKED, Poses
from edge.source import SourceError

KINDS = ("replay", "synthetic")
MODIFIERS = ("fast", "loop")
SYNTH_CHUNK_S = 60.0
SYNTH_PEOPLE = 2
SYNTH_LIFT_SHARE = 0.6
MAX_LAG_S = 1.0


class PoseFrame(NamedTuple):
    """One analysed instant without its image: ``t`` stream seconds, ``wall`` UTC epoch s."""

    t: float
    wall: float
    poses: Poses


class SourceSpec(NamedTuple):
    kind: str
    arg: str
    fast: bool
    loop: bool


def parse_spec(spec: str) -> SourceSpec | None:
    """The camera-free source a spec names, None for anything else (a file, URL, device)."""
    head, sep, arg = spec.strip().partition(":")
    if not sep:
        return None
    kind, *mods = head.lower().split("-")
    if kind not in KINDS:
        return None
    unknown = [m for m in mods if m not in MODIFIERS]
    if unknown or len(set(mods)) != len(mods):
        raise SourceError(
            f"source {spec!r}: unknown or repeated modifier {unknown or mods}; "
            f"use {kind}[-fast][-loop]:..."
        )
    if not arg:
        raise SourceError(f"source {spec!r}: missing {'PATH' if kind == 'replay' else 'SEED'}")
    return SourceSpec(kind, arg, "fast" in mods, "loop" in mods)


class _Pacer:
    """Waits until stream time ``t`` is due on the wall clock; falls behind gracefully.

    When the consumer is more than ``MAX_LAG_S`` late the clock is re-anchored instead of
    bursting to catch up, as a live camera would simply drop the frames.
    """

    def __init__(self, stop: threading.Event, enabled: bool) -> None:
        self.stop = stop
        self.enabled = enabled
        self._anchor: tuple[float, float] | None = None

    def wait(self, t: float) -> bool:
        """False once the source is closed."""
        if not self.enabled:
            return not self.stop.is_set()
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (now, t)
        due = self._anchor[0] + (t - self._anchor[1])
        if now - due > MAX_LAG_S:
            self._anchor = (now, t)
            due = now
        return not self.stop.wait(max(0.0, due - now))


class PoseSource:
    """Base of the camera-free sources: iterate once; ``close`` ends iteration promptly."""

    def __init__(self, fast: bool) -> None:
        self._stop = threading.Event()
        self._pacer = _Pacer(self._stop, enabled=not fast)
        self.delivered = 0

    def __iter__(self) -> Iterator[PoseFrame]:
        for t, poses in self._frames():
            if not self._pacer.wait(t):
                return
            self.delivered += 1
            yield PoseFrame(t, time.time(), poses)

    def _frames(self) -> Iterator[tuple[float, Poses]]:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> PoseSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReplaySource(PoseSource):
    """Frames of a POSES.jsonl; its ``{"lift": ...}`` lines are skipped (lifts are re-judged)."""

    def __init__(self, path: str | Path, *, fast: bool = False, loop: bool = False) -> None:
        super().__init__(fast)
        self.path = Path(path)
        self.loop = loop
        if not self.path.is_file():
            raise SourceError(f"replay file {self.path}: no such file")

    def _frames(self) -> Iterator[tuple[float, Poses]]:
        offset_t, offset_id = 0.0, 0
        while True:
            first_t = last_t = None
            max_id, step = -1, 0.1
            for t, poses in read_poses(self.path):
                if len(poses):
                    max_id = max(max_id, int(poses.track_ids.max()))
                if offset_id:
                    ids = poses.track_ids
                    poses = poses.with_track_ids(np.where(ids == UNTRACKED, ids, ids + offset_id))
                t += offset_t
                if last_t is not None and t > last_t:
                    step = t - last_t
                first_t = t if first_t is None else first_t
                last_t = t
                yield t, poses
            if not self.loop or first_t is None or last_t is None:
                return
            offset_t += last_t + step - first_t
            offset_id += max_id + 1


def read_poses(path: Path) -> Iterator[tuple[float, Poses]]:
    """(t, Poses) of each frame line of a POSES.jsonl; a malformed line names itself."""
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if "lift" in record:
                    continue
                yield float(record["t"]), Poses.from_records(record["persons"])
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise SourceError(
                    f"replay file {path}, line {number}: not a frame ({exc})"
                ) from exc


class SyntheticSource(PoseSource):
    """Endless `edge.synth` scenarios, one after another, each with new track ids."""

    def __init__(self, seed: int, fps: float = 10.0, *, fast: bool = False) -> None:
        super().__init__(fast)
        self.seed = seed
        self.fps = fps

    def _frames(self) -> Iterator[tuple[float, Poses]]:
        from edge.synth import random_scenario, synth_stream

        offset_t, chunk = 0.0, 0
        while not self._stop.is_set():
            rng = np.random.default_rng([self.seed, chunk])
            scenario = random_scenario(
                rng, duration_s=SYNTH_CHUNK_S, n_people=SYNTH_PEOPLE, lift_share=SYNTH_LIFT_SHARE
            )
            stream = synth_stream(scenario, fps=self.fps, seed=int(rng.integers(2**31)))
            first_id = chunk * 1000
            for t, poses in zip(stream.t, stream.poses, strict=True):
                yield offset_t + float(t), poses.with_track_ids(poses.track_ids + first_id)
            offset_t += float(stream.t[-1]) + 1.0 / self.fps if len(stream.t) else SYNTH_CHUNK_S
            chunk += 1


def open_pose_source(spec: str, fps: float = 10.0) -> PoseSource | None:
    """The camera-free source for ``spec``, or None when it names a camera or a video file."""
    parsed = parse_spec(spec)
    if parsed is None:
        return None
    if parsed.kind == "replay":
        return ReplaySource(parsed.arg, fast=parsed.fast, loop=parsed.loop)
    try:
        seed = int(parsed.arg)
    except ValueError:
        raise SourceError(f"source {spec!r}: SEED must be an integer") from None
    return SyntheticSource(seed, fps, fast=parsed.fast)
