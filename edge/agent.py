"""`liftwatch-edge run`: one camera in, one MQTT lift event per judged lift out, until stopped.

Every lift is written to the outbox before anything else happens to it, so from that moment
a crash, a broker outage or a reboot cannot lose it; the publisher drains the outbox to the
broker on its own thread. The loop never waits for the network: a slow or absent broker
only grows the outbox. SIGTERM or SIGINT finishes the frame in hand, gives the broker a few
seconds to take what is pending, publishes ``offline`` and exits 0; so does the end of a
video file or a finite replay.

Telemetry: an `AgentStats` message every ``stats_interval_s`` and, with ``metrics_port``, a
Prometheus endpoint. Camera-free sources (``replay:``, ``synthetic:``) are described in
`edge.replay`. "Inference" time is the whole per-frame analysis (pose model, tracker,
lift detection and posture; for camera-free sources only the last two).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, cast

from edge import __version__
from edge.analysis import JudgedLift, LiftAnalyzer
from edge.backlog import Backlog
from edge.config import AgentConfig, ConfigError, load_config
from edge.events import AgentStats, PostureLabel, lift_event, lift_topic, utc_time
from edge.frames import Frame
from edge.models import ModelError, load_manifest
from edge.outbox import Outbox, OutboxError
from edge.pipeline import PosePipeline, build_pipeline
from edge.publish import Publisher
from edge.replay import PoseFrame, PoseSource, open_pose_source
from edge.sdnotify import Watchdog
from edge.source import LiveSource, SourceError, open_source

log = logging.getLogger("edge.agent")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
FLUSH_TIMEOUT_S = 5.0
POSTURES = ("hinge", "rounded", "unscorable")
MAX_TRACK_KEYS = 256
"""Keys of tracks not seen in a while are forgotten (camera-free sources have no tracker to
say a track ended), so a long run keeps no history of who was seen."""
MAX_STEP_S = 30.0
"""One frame's analysis taking longer than this is a hang: the systemd watchdog stops."""


class Agent:
    """Runs one source through lift analysis into the outbox, with a publisher draining it.

    Give ``frames`` (camera or video, analysed by ``pipeline``, built from ``cfg`` when
    omitted) or ``replay`` (tracked poses without images). Sources with a ``close`` are
    owned and closed by the agent.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        frames: Iterable[Frame] | None = None,
        pipeline: PosePipeline | None = None,
        replay: Iterable[PoseFrame] | None = None,
        *,
        model: str | None = None,
        model_sha256: str | None = None,
        flush_timeout_s: float = FLUSH_TIMEOUT_S,
    ) -> None:
        if (frames is None) == (replay is None):
            raise ValueError("give exactly one of frames or replay")
        self.cfg = cfg
        self.source: Iterable[Frame] | Iterable[PoseFrame] = (
            frames if frames is not None else replay  # type: ignore[assignment]
        )
        self.pipeline: PosePipeline | None = None
        self.analyzer: LiftAnalyzer | None = None
        if frames is not None:
            self.pipeline = pipeline or build_pipeline(
                cfg.model,
                cfg.refine,
                cfg.threads,
                cfg.silhouette,
                cfg.lift_config(),
                reuse_still=cfg.reuse_still,
                bystander_every=cfg.bystander_every,
                rescue=cfg.rescue,
            )
        else:
            self.analyzer = LiftAnalyzer(cfg.lift_config())
        self.model = model or cfg.model
        self.model_sha256 = model_sha256 or load_manifest()[cfg.model].sha256
        self.flush_timeout_s = flush_timeout_s
        self.topic = lift_topic(cfg.site, cfg.camera)
        self.outbox = Outbox(cfg.outbox.path, cfg.outbox.max_events)
        try:
            self.publisher = Publisher(cfg, self.outbox, model=self.model)
            self.backlog = Backlog(self.outbox)
        except BaseException:
            self.outbox.close()
            raise
        self.frames = 0
        self.lifts: Counter[str] = Counter(dict.fromkeys(POSTURES, 0))
        self.process_s = 0.0
        self.fps = 0.0
        self.inference_ms = 0.0
        self._last = (time.time(), 0.0)
        self._keys: OrderedDict[int, str] = OrderedDict()
        self._stop = threading.Event()
        self._signal: str | None = None
        self._metrics: _Metrics | None = None
        self._step_started: float | None = None

    def stop(self) -> None:
        """Ask the loop to finish the frame in hand and shut down (safe from any thread)."""
        self._stop.set()

    def run(self) -> int:
        cfg = self.cfg
        restore = self._install_signals()
        if cfg.metrics_port is not None:
            try:
                self._metrics = _Metrics(self, cfg.metrics_port)
            except OSError as exc:  # metrics are optional; delivering events is not
                log.error("no Prometheus endpoint on port %d: %s", cfg.metrics_port, exc)
        log.info(
            "agent %s/%s started: source %s, model %s, outbox %s (%d pending)",
            cfg.site,
            cfg.camera,
            _redact(cfg.source),
            self.model,
            cfg.outbox.path,
            self.outbox.depth(),
        )
        self.publisher.start()
        threads = [
            threading.Thread(target=self._report_stats, name="agent-stats", daemon=True),
            threading.Thread(target=self._close_on_stop, name="agent-stop", daemon=True),
        ]
        for th in threads:
            th.start()
        watchdog = Watchdog(self._not_stuck)
        watchdog.start()
        ended = False
        try:
            for item in self.source:
                self._step(item)
                if self._stop.is_set():
                    break
            else:
                ended = not self._stop.is_set()
            tail = self.pipeline.finish() if self.pipeline else self.analyzer.flush()  # type: ignore[union-attr]
            self._emit(tail, *self._last)
        finally:
            if ended:
                log.info("source ended after %d frames; flushing the outbox", self.frames)
            elif self._signal:
                log.info("%s: stopping after %d frames", self._signal, self.frames)
            self._stop.set()
            watchdog.stop()
            _close(self.source)
            for th in threads:
                th.join(timeout=2.0)
            self.backlog.flush()
            self.publisher.stop(self.flush_timeout_s)
            self.backlog.close()
            left = self.outbox.depth()
            self.outbox.close()
            if self._metrics is not None:
                self._metrics.close()
            restore()
            log.info(
                "agent stopped: %d frames, %d lifts, %d left in the outbox for the next run",
                self.frames,
                sum(self.lifts.values()),
                left,
            )
        return EXIT_OK

    @property
    def lost(self) -> int:
        """Lifts judged but never stored: held in memory beyond its limit, or at exit."""
        return self.backlog.lost

    def _not_stuck(self) -> bool:
        started = self._step_started
        return started is None or time.monotonic() - started < MAX_STEP_S

    def _step(self, item: Frame | PoseFrame) -> None:
        self._step_started = time.monotonic()
        t0 = time.perf_counter()
        if isinstance(item, PoseFrame):
            assert self.analyzer is not None
            lifts = self.analyzer.update(item.t, item.poses)
            ended: list[int] = []
        else:
            assert self.pipeline is not None
            lifts = self.pipeline.process(item).lifts
            ended = self.pipeline.tracker.ended
        dt = time.perf_counter() - t0
        self.frames += 1
        self.process_s += dt
        if self._metrics is not None:
            self._metrics.inference.observe(dt)
        self._last = (item.wall, item.t)
        self._emit(lifts, item.wall, item.t)
        for track_id in ended:
            self._keys.pop(track_id, None)
        self._step_started = None

    def _emit(self, lifts: list[JudgedLift], wall: float, t: float) -> None:
        """Store each lift in the outbox (that is the commitment), then wake the publisher.

        While the outbox refuses (disk full) lifts wait in the backlog; each frame retries."""
        if not lifts:
            if self.backlog.held and self.backlog.flush():
                self.publisher.notify()
            return
        cfg = self.cfg

        def wall_of(x: float) -> float:
            return wall - (t - x)

        for judged in lifts:
            key = self._track_key(judged.lift.track_id)

            def payload(seq: int, judged: JudgedLift = judged, key: str = key) -> bytes:
                event = lift_event(
                    judged,
                    site=cfg.site,
                    camera=cfg.camera,
                    seq=seq,
                    track_key=key,
                    wall_of=wall_of,
                    model=self.model,
                    model_sha256=self.model_sha256,
                    agent_version=__version__,
                )
                return event.to_payload()

            self.backlog.add(self.topic, payload)
            self.lifts[judged.posture.label] += 1
        self.publisher.notify()

    def _track_key(self, track_id: int) -> str:
        """A random stand-in for the tracker's number: nothing on the wire can be joined up."""
        import secrets

        key = self._keys.get(track_id)
        if key is None:
            key = self._keys[track_id] = secrets.token_hex(4)
            while len(self._keys) > MAX_TRACK_KEYS:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(track_id)
        return key

    def stats(self) -> AgentStats:
        return AgentStats(
            site=self.cfg.site,
            camera=self.cfg.camera,
            at=utc_time(time.time()),
            fps=round(self.fps, 2),
            inference_ms=round(self.inference_ms, 2),
            outbox_depth=self._outbox_depth(),
            outbox_dropped=self.outbox.dropped,
            published=self.publisher.published,
            publish_failures=self.publisher.publish_failures,
            camera_reconnects=self.camera_reconnects(),
            mqtt_reconnects=self.publisher.reconnects,
            frames=self.frames,
            lifts=cast("dict[PostureLabel, int]", dict(self.lifts)),
        )

    def camera_reconnects(self) -> int:
        stats = getattr(self.source, "stats", None)
        return int(stats().reconnects) if callable(stats) else 0

    def _outbox_depth(self) -> int:
        try:
            return self.outbox.depth()
        except OutboxError:
            return 0

    def _report_stats(self) -> None:
        """Every ``stats_interval_s``: rates over the interval, then one stats message."""
        interval = self.cfg.stats_interval_s
        last = (time.monotonic(), self.frames, self.process_s)
        while not self._stop.wait(interval):
            now, frames, process_s = time.monotonic(), self.frames, self.process_s
            n = frames - last[1]
            self.fps = n / max(now - last[0], 1e-9)
            self.inference_ms = (process_s - last[2]) * 1000 / n if n else 0.0
            last = (now, frames, process_s)
            self.publisher.publish_stats(self.stats())

    def _close_on_stop(self) -> None:
        """Unblock a source waiting for a camera or pacing a replay; files end by themselves."""
        self._stop.wait()
        if isinstance(self.source, LiveSource | PoseSource):
            self.source.close()

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self._signal = signal.Signals(signum).name
            self._stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for s, handler in previous.items():
                signal.signal(s, handler)

        return restore


class _Metrics:
    """The Prometheus endpoint: live counters read from the agent at scrape time."""

    def __init__(self, agent: Agent, port: int) -> None:
        from prometheus_client import CollectorRegistry, Histogram, start_http_server

        self.registry = CollectorRegistry()
        self.agent = agent
        self.inference = Histogram(
            "liftwatch_edge_inference_seconds",
            "Per-frame analysis time (pose model, tracker, lifts, posture)",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
            registry=self.registry,
        )
        self.registry.register(self)
        self.server, _ = start_http_server(port, registry=self.registry)
        log.info("Prometheus metrics on port %d", port)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        a, p = self.agent, self.agent.publisher
        yield CounterMetricFamily("liftwatch_edge_frames", "Frames analysed", a.frames)
        yield GaugeMetricFamily("liftwatch_edge_analysis_fps", "Frames analysed per second", a.fps)
        lifts = CounterMetricFamily("liftwatch_edge_lifts", "Lifts judged", labels=["posture"])
        for label in POSTURES:
            lifts.add_metric([label], a.lifts[label])
        yield lifts
        yield GaugeMetricFamily(
            "liftwatch_edge_outbox_depth", "Events awaiting PUBACK", a._outbox_depth()
        )
        yield CounterMetricFamily(
            "liftwatch_edge_outbox_dropped", "Events dropped, outbox full", a.outbox.dropped
        )
        yield GaugeMetricFamily(
            "liftwatch_edge_events_held", "Events held in memory, the outbox refusing (disk full)",
            a.backlog.held,
        )  # fmt: skip
        yield CounterMetricFamily(
            "liftwatch_edge_events_lost", "Events judged but never stored (see the log)", a.lost
        )
        yield CounterMetricFamily(
            "liftwatch_edge_publish_failures", "Failed publishes", p.publish_failures
        )
        yield CounterMetricFamily(
            "liftwatch_edge_camera_reconnects", "Camera reconnect attempts", a.camera_reconnects()
        )
        yield GaugeMetricFamily(
            "liftwatch_edge_mqtt_connected", "1 when connected to the broker", int(p.connected)
        )

    def close(self) -> None:
        self.server.shutdown()


def build_agent(cfg: AgentConfig) -> Agent:
    """The agent for ``cfg.source``; raises SourceError / ModelError / OutboxError."""
    poses = open_pose_source(cfg.source, cfg.fps)
    if poses is not None:
        kind = cfg.source.partition(":")[0].split("-")[0].lower()
        digest = hashlib.sha256(cfg.source.encode()).hexdigest()
        return Agent(cfg, replay=poses, model=kind, model_sha256=digest)
    frames = open_source(cfg.source, cfg.fps, prefetch=True)
    try:
        return Agent(cfg, frames=frames)
    except BaseException:
        frames.close()
        raise


def main_run(config_path: Path) -> int:
    """`liftwatch-edge run --config CAMERA.yaml`; exit 2 when it cannot start as configured."""
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        agent = build_agent(cfg)
    except (SourceError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:  # the broker's TLS files: missing, unreadable or not PEM
        print(f"error: {_tls_problem(cfg, exc)}", file=sys.stderr)
        return EXIT_CONFIG
    except OutboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return agent.run()
    except SourceError as exc:  # a file that stops decoding, a malformed replay line
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _tls_problem(cfg: AgentConfig, exc: OSError) -> str:
    """paho's TLS errors do not say which file; name the first one that cannot be read."""
    tls = cfg.broker.tls
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(tls, name, None)
        if path is not None and not os.access(path, os.R_OK):
            why = "no such file" if not path.exists() else "not readable"
            return f"broker.tls.{name}: {path}: {why}"
    return f"broker.tls: cannot load the certificates or key: {exc}"


def _close(source: object) -> None:
    close = getattr(source, "close", None)
    if callable(close):
        close()


def _redact(spec: str) -> str:
    from edge.source import _redact as redact

    return redact(spec)


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sys.exit(main_run(Path(sys.argv[1])))
