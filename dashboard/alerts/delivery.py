"""The durable delivery queue: one row per alert and channel, sent until it is taken.

A row is written in the transaction that creates the alert, so an alert cannot exist
without its deliveries. A dispatcher thread per channel claims due rows atomically (on
PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers), which makes several
dashboard processes safe on one database. Claiming pushes ``next_at`` forward by a lease:
a process that dies mid-send leaves the row due again after the lease, never lost. A
failed send is retried with doubling back-off up to a cap, its attempts and last error on
record, until it succeeds or is too old. One thread per channel keeps a channel that is
down (or slow to time out) from delaying the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, func, select, update

from dashboard.alerts.channels import Channel
from dashboard.alerts.store import get_alert, utcnow
from dashboard.store import schema

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
"""Longer than any channel's timeout: a claimed row is not sent twice while in hand."""


@dataclass(frozen=True)
class RetryPolicy:
    first_s: float = 1.0
    max_s: float = 60.0
    give_up: timedelta = timedelta(hours=24)

    def delay_s(self, attempts: int) -> float:
        """Wait after the ``attempts``-th failed attempt: first_s, 2×, 4×, … capped at max_s."""
        return float(min(self.first_s * 2 ** max(attempts - 1, 0), self.max_s))


@dataclass(frozen=True)
class Claimed:
    id: int
    alert_id: int
    attempts: int
    created_at: datetime


def claim(
    conn: Connection, channel: str, now: datetime, *, limit: int = 10, lease: timedelta = LEASE
) -> list[Claimed]:
    """Take up to ``limit`` due rows of ``channel``; no other dispatcher gets them."""
    d = schema.alert_deliveries
    due = (
        select(d.c.id)
        .where(d.c.channel == channel, d.c.status == "pending", d.c.next_at <= now)
        .order_by(d.c.next_at, d.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(d)
        .where(d.c.id.in_(due.scalar_subquery()))
        .values(attempts=d.c.attempts + 1, next_at=now + lease)
        .returning(d.c.id, d.c.alert_id, d.c.attempts, d.c.created_at)
    )
    rows = conn.execute(stmt).all()
    return sorted((Claimed(r.id, r.alert_id, r.attempts, r.created_at) for r in rows), key=_id)


def _id(c: Claimed) -> int:
    return c.id


def record_delivered(conn: Connection, delivery_id: int, now: datetime) -> None:
    d = schema.alert_deliveries
    conn.execute(
        update(d)
        .where(d.c.id == delivery_id)
        .values(status="delivered", delivered_at=now, last_error=None)
    )


def record_failed(
    conn: Connection, c: Claimed, now: datetime, error: str, policy: RetryPolicy
) -> bool:
    """Schedule the next attempt, or give up on a delivery older than the policy allows;
    True when it will be retried."""
    d = schema.alert_deliveries
    retry = now - c.created_at < policy.give_up
    values: dict[str, object] = {"last_error": error[:500]}
    if retry:
        values["next_at"] = now + timedelta(seconds=policy.delay_s(c.attempts))
    else:
        values["status"] = "failed"
    conn.execute(update(d).where(d.c.id == c.id).values(**values))
    return retry


def next_due(conn: Connection, channel: str) -> datetime | None:
    d = schema.alert_deliveries
    return conn.execute(
        select(func.min(d.c.next_at)).where(d.c.channel == channel, d.c.status == "pending")
    ).scalar()


class Dispatcher:
    """Sends queued deliveries, one thread per channel; `wake` when an alert is created."""

    def __init__(
        self,
        engine: Engine,
        channels: Sequence[Channel],
        policy: RetryPolicy = RetryPolicy(),
        *,
        clock: Callable[[], datetime] = utcnow,
        poll_s: float = 2.0,
    ) -> None:
        self.engine = engine
        self.channels = list(channels)
        self.policy = policy
        self.clock = clock
        self.poll_s = poll_s
        """Rows queued by another process are found within this time."""
        self._wake = {ch.name: threading.Event() for ch in self.channels}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._down: dict[str, bool] = {}

    @property
    def channel_names(self) -> list[str]:
        return [ch.name for ch in self.channels]

    def start(self) -> None:
        for ch in self.channels:
            thread = threading.Thread(
                target=self._loop, args=(ch,), name=f"alerts-{ch.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        for event in self._wake.values():
            event.set()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stopping.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()
        for ch in self.channels:
            try:
                ch.close()
            except Exception:
                log.exception("closing the %s channel failed", ch.name)

    def run_once(self, channel: Channel) -> int:
        """Claim and send what is due on ``channel`` now; how many rows were tried."""
        with self.engine.begin() as conn:
            claimed = claim(conn, channel.name, self.clock())
        for c in claimed:
            self._send(channel, c)
        return len(claimed)

    def _send(self, channel: Channel, c: Claimed) -> None:
        with self.engine.connect() as conn:
            alert = get_alert(conn, c.alert_id)
        try:
            if alert is None:
                raise LookupError(f"alert {c.alert_id} no longer exists")
            channel.send(alert)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
            with self.engine.begin() as conn:
                retry = record_failed(conn, c, self.clock(), error, self.policy)
            self._state(channel.name, down=True, detail=error, retry=retry)
            return
        with self.engine.begin() as conn:
            record_delivered(conn, c.id, self.clock())
        self._state(channel.name, down=False)

    def _state(self, name: str, *, down: bool, detail: str = "", retry: bool = True) -> None:
        """One log line per change (down, back), not one per attempt."""
        if not retry:
            log.error("alert delivery on %s given up after %s: %s", name, self.policy.give_up,
                      detail)  # fmt: skip
        if self._down.get(name, False) == down:
            return
        self._down[name] = down
        if down:
            log.warning("alert channel %s failing (%s); retrying with back-off", name, detail)
        else:
            log.info("alert channel %s delivers again", name)

    def _loop(self, channel: Channel) -> None:
        wake = self._wake[channel.name]
        while not self._stopping.is_set():
            wake.clear()
            try:
                if self.run_once(channel):
                    continue
                with self.engine.connect() as conn:
                    due = next_due(conn, channel.name)
            except Exception:
                log.exception("alert dispatcher for %s: database error", channel.name)
                due = None
            wait = self.poll_s
            if due is not None:
                wait = min(max((due - self.clock()).total_seconds(), 0.05), self.poll_s)
            wake.wait(wait)
