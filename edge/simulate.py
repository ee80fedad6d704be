"""Plausible lift events without a camera: for dashboard tests, benches and the demo fleet.

Not a model of lifting (that is `edge.synth`, which goes through the real analysis); this
draws events straight in their wire form, fast enough for a million of them, with a chosen
share of rounded and unscorable lifts and the metrics a judged lift of each kind carries.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge.events import LiftEvent, LiftMetrics, PostureLabel, ViewLabel, new_event_id

MODEL_SHA256 = "0" * 64


@dataclass(frozen=True)
class Mix:
    """Shares of each posture among simulated lifts."""

    rounded: float = 0.2
    unscorable: float = 0.1


def simulated_event(
    rng: random.Random,
    *,
    site: str,
    camera: str,
    seq: int,
    bottom: datetime,
    posture: PostureLabel | None = None,
    mix: Mix = Mix(),
    track_id: str | None = None,
    agent_version: str = "0.1.0",
) -> LiftEvent:
    """One event whose lift bottomed out at ``bottom`` (aware UTC)."""
    if posture is None:
        u = rng.random()
        posture = (
            "rounded"
            if u < mix.rounded
            else "unscorable"
            if u < mix.rounded + mix.unscorable
            else "hinge"
        )
    down, up = rng.uniform(0.6, 1.6), rng.uniform(0.6, 1.8)
    view: ViewLabel = (
        "front"
        if posture == "unscorable" and rng.random() < 0.6
        else rng.choice(("side", "side", "oblique"))
    )
    flex = rng.gauss(72.0, 9.0) if posture == "rounded" else rng.gauss(58.0, 10.0)
    metrics = LiftMetrics(
        trunk_flexion_deg=round(flex - rng.uniform(0, 6), 1),
        trunk_flexion_max_deg=round(flex, 1),
        hip_angle_deg=round(rng.gauss(95.0, 12.0), 1),
        knee_angle_deg=round(rng.gauss(140.0 if posture != "rounded" else 120.0, 15.0), 1),
        hip_shift=round(rng.gauss(0.25 if posture == "hinge" else 0.1, 0.05), 3),
        neck_drop_deg=round(rng.gauss(18.0 if posture == "rounded" else 6.0, 4.0), 1),
        spine_flexion_deg=None
        if posture == "unscorable"
        else round(rng.gauss(16.0 if posture == "rounded" else 5.0, 3.0), 1),
        duration_s=round(down + up, 2),
        reba_trunk=4 if flex > 60 else 3,
    )
    return LiftEvent(
        event_id=new_event_id(bottom.timestamp(), rng.getrandbits(74)),
        seq=seq,
        site=site,
        camera=camera,
        track_id=track_id or f"{rng.getrandbits(32):08x}",
        start=bottom - timedelta(seconds=down),
        bottom=bottom,
        end=bottom + timedelta(seconds=up),
        posture=posture,
        confidence=round(rng.uniform(0.55, 0.95), 2) if posture != "unscorable" else 0.0,
        reason="front view"
        if posture == "unscorable" and view == "front"
        else "hips hidden"
        if posture == "unscorable"
        else None,
        view=view,
        metrics=metrics,
        model="movenet_multipose",
        model_sha256=MODEL_SHA256,
        agent_version=agent_version,
    )


def event_stream(
    rng: random.Random,
    *,
    site: str,
    camera: str,
    start: datetime,
    every_s: float,
    mix: Mix = Mix(),
    first_seq: int = 0,
) -> Iterator[LiftEvent]:
    """Endless events of one camera, about ``every_s`` apart, ``seq`` rising by one."""
    at, seq = start, first_seq
    while True:
        at += timedelta(seconds=rng.expovariate(1.0 / every_s))
        yield simulated_event(rng, site=site, camera=camera, seq=seq, bottom=at, mix=mix)
        seq += 1
