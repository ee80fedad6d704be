"""Lifts with chosen posture, flexion and time, stored the way ingest stores them.

Metric tests need events whose numbers they can work out by hand; `lift` draws one with
`edge.simulate` and pins what the test cares about. `seed` places each event with the
organisation (zone, team, shift, shift day) and stores it through `add_lifts`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import datetime, timezone

from dashboard.org import Directory, Organisation
from dashboard.store import open_store
from dashboard.store.lifts import add_lifts
from dashboard.store.organisation import replace_organisation
from edge.events import LiftEvent, LiftMetrics, PostureLabel
from edge.simulate import simulated_event

ORG = Organisation.model_validate(
    {
        "sites": [
            {
                "id": "s1",
                "name": "Site one",
                "timezone": "Europe/Berlin",
                "shifts": [
                    {"name": "early", "start": "06:00", "end": "14:00"},
                    {"name": "late", "start": "14:00", "end": "22:00"},
                    {"name": "night", "start": "22:00", "end": "06:00"},
                ],
                "zones": [{"id": "dock"}, {"id": "aisle"}],
                "teams": [{"id": "red", "name": "Red team"}, {"id": "blue", "name": "Blue team"}],
                "cameras": [
                    {"id": "c1", "zone": "dock", "team": "red"},
                    {"id": "c2", "zone": "aisle", "team": "red"},
                    {"id": "c3", "zone": "dock", "team": "blue"},
                ],
            }
        ]
    }
)

MONDAY_START = datetime(2026, 3, 2, tzinfo=timezone.utc)
MONDAY_END = datetime(2026, 3, 3, tzinfo=timezone.utc)
"""Berlin is UTC+1 then: 08:10 UTC is 09:10, in the early shift (06-14 local)."""

_rng = random.Random(11)
_seq = itertools.count()


def lift(
    bottom: datetime,
    posture: PostureLabel = "hinge",
    *,
    flex: float | None = 50.0,
    camera: str = "c1",
    site: str = "s1",
    seq: int | None = None,
) -> LiftEvent:
    """One event of ``camera`` bottoming out at ``bottom`` with max trunk flexion ``flex``."""
    seq = next(_seq) if seq is None else seq
    event = simulated_event(_rng, site=site, camera=camera, seq=seq, bottom=bottom, posture=posture)
    return event.model_copy(update={"metrics": LiftMetrics(trunk_flexion_max_deg=flex)})


def seed(url: str, events: Sequence[LiftEvent], org: Organisation = ORG) -> None:
    """Migrate the database at ``url``, make ``org`` the organisation and store ``events``."""
    store = open_store(url)
    directory = Directory(org)
    try:
        with store.engine.begin() as conn:
            replace_organisation(conn, org)
            items = [(e, directory.place(e.site, e.camera, e.bottom)) for e in events]
            add_lifts(conn, items, datetime.now(timezone.utc))
    finally:
        store.close()


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


def week() -> list[LiftEvent]:
    """Monday: red 6 lifts (risky 2/5), blue 3 (hidden); Sunday: red 5 (risky 1/5)."""
    return [
        # Monday, red team (c1 dock, c2 aisle)
        lift(_utc(2026, 3, 2, 8, 10), "hinge", flex=42, camera="c1"),
        lift(_utc(2026, 3, 2, 8, 40), "hinge", flex=47, camera="c1"),
        lift(_utc(2026, 3, 2, 9, 5), "hinge", flex=52, camera="c2"),
        lift(_utc(2026, 3, 2, 10, 0), "rounded", flex=58, camera="c1"),
        lift(_utc(2026, 3, 2, 10, 59), "rounded", flex=61, camera="c2"),
        lift(_utc(2026, 3, 2, 13, 0), "unscorable", flex=63, camera="c1"),
        # 01:00 Tuesday in Berlin: Monday's night shift, but outside the UTC window
        lift(_utc(2026, 3, 3, 0, 0), "rounded", flex=70, camera="c1"),
        # Monday, blue team: too few lifts to show ratios
        lift(_utc(2026, 3, 2, 9, 0), "rounded", flex=80, camera="c3"),
        lift(_utc(2026, 3, 2, 9, 30), "hinge", flex=40, camera="c3"),
        lift(_utc(2026, 3, 2, 11, 0), "hinge", flex=45, camera="c3"),
        # Sunday, red team: the previous period, risky ratio 1/5
        *(lift(_utc(2026, 3, 1, 8 + i), "hinge", camera="c1") for i in range(4)),
        lift(_utc(2026, 3, 1, 12), "rounded", camera="c1"),
    ]
