"""The ingest's writer: validate, place and store one batch of messages in one transaction.

It runs in a thread of the ingest or in a process of its own (`dashboard.ingest_process`),
so it takes and returns plain data: messages as ``(topic, payload, received)`` and an
`Outcome` saying what was stored, refused and counted. Acknowledging, counting and logging
stay with the caller, which holds the broker connection.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError

from dashboard.org import Placement
from dashboard.store.cameras import record_stats, record_status
from dashboard.store.lifts import add_lifts
from dashboard.store.organisation import CurrentOrganisation
from edge.events import TOPIC_ROOT, AgentStats, AgentStatus, LiftEvent

MAX_PAYLOAD_BYTES = 16 * 1024
"""Far above any real message (a lift is under 1 KiB); larger ones are refused unparsed."""
MAX_DB_INT = 2**31 - 1

LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class Histogram:
    """Cumulative-bucket histogram (Prometheus semantics) without a registry behind it."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s observations (same buckets): one batch's lags into the totals."""
        if other.bounds != self.bounds:
            raise ValueError("histograms with different buckets")
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum += other.sum
        self.count += other.count

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs ending with ``+Inf``, as an exposition wants them."""
        out, total = [], 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class Invalid(ValueError):
    """A payload refused at the boundary; ``reason`` is the counter label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


Message = LiftEvent | AgentStatus | AgentStats
_KINDS: dict[str, type[LiftEvent] | type[AgentStatus] | type[AgentStats]] = {
    "lift": LiftEvent,
    "status": AgentStatus,
    "stats": AgentStats,
}


def parse(topic: str, payload: bytes) -> Message:
    """The validated message on ``topic``; raises `Invalid` naming why it was refused."""
    parts = topic.split("/")
    root = "/".join(parts[:2])
    if len(parts) != 5 or root != TOPIC_ROOT or parts[4] not in _KINDS:
        raise Invalid("topic", f"not a liftwatch topic: {topic[:200]!r}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Invalid("oversized", f"{len(payload)} bytes (limit {MAX_PAYLOAD_BYTES})")
    model = _KINDS[parts[4]]
    try:
        message: Message = model.model_validate_json(payload)
    except ValidationError as exc:
        raise _refusal(exc) from None
    if (message.site, message.camera) != (parts[2], parts[3]):
        raise Invalid(
            "topic_mismatch",
            f"payload says {message.site}/{message.camera}, topic {parts[2]}/{parts[3]}",
        )
    if isinstance(message, LiftEvent) and message.seq > MAX_DB_INT:
        raise Invalid("schema", f"seq {message.seq} beyond {MAX_DB_INT}")
    return message


def _refusal(exc: ValidationError) -> Invalid:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"type": "", "loc": (), "msg": str(exc)}
    detail = f"{'.'.join(map(str, first['loc'])) or 'payload'}: {first['msg']}"[:200]
    if first["type"] in ("json_invalid", "json_type") or (
        first["type"] == "model_type" and not first["loc"]
    ):  # a nested object of the wrong type is a schema error, not malformed JSON
        return Invalid("json", detail)
    if any(e["loc"][:1] == ("schema_version",) for e in errors):
        return Invalid("version", detail)
    return Invalid("schema", detail)


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, timezone.utc)


Item = tuple[str, bytes, float]
"""One message: topic, payload and when it was received (``time.time()``)."""


@dataclass
class Outcome:
    """What writing one batch did. Indices point into the batch as it was given."""

    refused: list[tuple[int, str, str]] = field(default_factory=list)
    """(index, reason, detail) of each message dropped without being stored."""
    stored: list[int] = field(default_factory=list)
    """Indices of the lifts newly stored (not duplicates)."""
    redelivered: list[int] = field(default_factory=list)
    """Indices of rounded lifts that were already stored: a crash between a commit and the
    alert rules leaves them unevaluated, so the hooks see them again (rules are idempotent)."""
    events: list[LiftEvent] | None = None
    """The stored and redelivered rounded lifts themselves (in that order), when the writer
    runs in the caller's process."""
    ingested: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    duplicates: int = 0
    status_messages: int = 0
    stats_messages: int = 0
    lag_s: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS))
    db_write_s: list[float] = field(default_factory=list)
    """One duration per committed transaction (a batch is split when a value is refused)."""
    sizes: list[int] = field(default_factory=list)


class Stopped(Exception):
    """The caller asked to stop while the database was failing: nothing may be acknowledged."""


class BatchWriter:
    """Stores batches through one engine; retries a failing database with back-off.

    ``on_db_error(exc, messages)`` is told of every failed attempt; ``wait(seconds)`` sleeps
    between attempts and returns True when the caller wants to stop instead.
    """

    def __init__(
        self,
        engine: Engine,
        org: CurrentOrganisation,
        *,
        retry_max_s: float,
        on_db_error: Callable[[Exception, int], None],
        wait: Callable[[float], bool],
        keep_events: bool,
    ) -> None:
        self.engine = engine
        self.org = org
        self.retry_max_s = retry_max_s
        self.on_db_error = on_db_error
        self.wait = wait
        self.keep_events = keep_events

    def write(self, items: Sequence[Item]) -> Outcome | None:
        """The outcome once every message is stored or refused; None when stopped first."""
        outcome = Outcome(events=[] if self.keep_events else None)
        valid: list[tuple[int, Message]] = []
        for i, (topic, payload, _) in enumerate(items):
            try:
                valid.append((i, parse(topic, payload)))
            except Invalid as exc:
                outcome.refused.append((i, exc.reason, str(exc)))
        try:
            if valid:
                self._commit(items, valid, outcome)
        except Stopped:
            return None
        outcome.refused.sort()
        return outcome

    def _commit(
        self, items: Sequence[Item], valid: list[tuple[int, Message]], outcome: Outcome
    ) -> None:
        """Store ``valid``, retrying while the database is unavailable.

        A value the database refuses (out of range, constraint) fails every retry, so such a
        batch is split and the one message it cannot take is dropped like an invalid one."""
        delay = 0.1
        while True:
            try:
                self._write(items, valid, outcome)
            except (DataError, IntegrityError, ValueError, OverflowError) as exc:
                if len(valid) == 1:
                    detail = f"database refused it: {exc}"[:300]
                    outcome.refused.append((valid[0][0], "rejected", detail))
                else:
                    for one in valid:
                        self._commit(items, [one], outcome)
                return
            except Exception as exc:
                self.on_db_error(exc, len(valid))
                if self.wait(delay):
                    raise Stopped from None
                delay = min(delay * 2, self.retry_max_s)
                continue
            return

    def _write(
        self, items: Sequence[Item], valid: list[tuple[int, Message]], outcome: Outcome
    ) -> None:
        directory = self.org.directory()
        lifts: list[tuple[LiftEvent, Placement]] = []
        index: dict[int, int] = {}
        health: list[tuple[float, AgentStatus | AgentStats]] = []
        for i, m in valid:
            if isinstance(m, LiftEvent):
                lifts.append((m, directory.place(m.site, m.camera, m.bottom)))
                index.setdefault(id(m), i)
            else:
                health.append((items[i][2], m))
        received_at = _utc(max(items[i][2] for i, _ in valid))
        t0 = time.perf_counter()
        with self.engine.begin() as conn:
            result = add_lifts(conn, lifts, received_at) if lifts else None
            for received, m in health:
                if isinstance(m, AgentStatus):
                    record_status(conn, m, _utc(received))
                else:
                    record_stats(conn, m, _utc(received))
        outcome.db_write_s.append(time.perf_counter() - t0)
        committed = time.time()
        outcome.sizes.append(len(valid))
        outcome.status_messages += sum(isinstance(m, AgentStatus) for _, m in health)
        outcome.stats_messages += sum(isinstance(m, AgentStats) for _, m in health)
        if result is None:
            return
        outcome.duplicates += result.duplicates
        for event in result.stored:
            outcome.stored.append(index[id(event)])
            outcome.ingested[(event.site, event.camera, event.posture)] += 1
            outcome.lag_s.observe(max(0.0, committed - event.end.timestamp()))
        again: list[LiftEvent] = []
        if result.duplicates:
            new = {e.event_id for e in result.stored}
            again = [m for m, _ in lifts if m.posture == "rounded" and m.event_id not in new]
            outcome.redelivered.extend(index[id(m)] for m in again)
        if outcome.events is not None:
            outcome.events.extend(result.stored)
            outcome.events.extend(again)
