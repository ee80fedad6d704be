"""Frame sources: video files, RTSP/HTTP cameras and USB devices, at the analysis rate.

Analysis runs at a fixed rate (10 fps by default) whatever the camera delivers, so every
source decodes everything it must but converts and hands over only the frames analysis will
use. Files are read as fast as the consumer asks and time comes from the container. Live
sources never raise on camera faults: a background thread reconnects with exponential
back-off, a watchdog replaces a capture whose read hangs, each outage is logged once, and
the consumer always gets the newest frame, never a queue of stale ones.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from edge.background import Background
from edge.frames import Frame

log = logging.getLogger(__name__)

DEFAULT_FPS = 10.0
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
_DEVICE_PATH = re.compile(r"^/dev/video\d+$")


class SourceError(Exception):
    """A source cannot be opened at all (missing file, not a video, bad spec)."""


@dataclass(frozen=True, slots=True)
class SourceStats:
    """Counters the agent reports in its telemetry."""

    frames_read: int
    frames_delivered: int
    reconnects: int = 0
    outages: int = 0
    connected: bool = True


class FrameSource(ABC):
    """An iterable of `Frame` at the analysis rate; close it (or use ``with``) when done."""

    fps: float
    fps_in: float | None
    frame_count: int | None
    size: tuple[int, int] | None

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def stats(self) -> SourceStats: ...

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_fps(fps: float) -> float:
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"analysis fps must be positive, got {fps}")
    return float(fps)


class RateGate:
    """Decides which timestamps to keep so kept frames are 1/fps apart on average.

    A frame is kept when it is the nearest to the next due time (within half an input
    frame interval, so a camera at exactly the analysis rate is not halved by jitter);
    the due time advances by one period, so rounding errors do not
    accumulate. After a gap longer than a period the grid restarts at the frame. ``start``
    puts the grid's first due time elsewhere than the first frame (earlier frames are
    passed over): the same file sampled at another phase, as another camera clock would.
    """

    def __init__(self, fps: float, fps_in: float | None = None, start: float | None = None) -> None:
        self.period = 1.0 / _check_fps(fps)
        half_in = 0.5 / fps_in if fps_in and fps_in > 0 else 0.25 * self.period
        self.slack = min(half_in, 0.5 * self.period)
        self.due: float | None = start

    def keep(self, t: float) -> bool:
        if self.due is not None and t < self.due - self.slack:
            return False
        if self.due is None or t - self.due >= self.period:
            self.due = t + self.period
        else:
            self.due += self.period
        return True


class FileSource(FrameSource):
    """A video file decoded in full, with only the frames at the analysis rate retrieved."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = DEFAULT_FPS,
        start_wall: float | None = None,
        offset_s: float = 0.0,
    ) -> None:
        """``offset_s`` starts the analysis grid that far into the file (see `RateGate`)."""
        self.path = Path(path)
        self.fps = _check_fps(fps)
        if not (offset_s >= 0 and math.isfinite(offset_s)):
            raise ValueError(f"offset must be a non-negative number of seconds, got {offset_s}")
        self.offset_s = float(offset_s)
        if not self.path.exists():
            raise SourceError(f"video file {self.path}: no such file")
        if not self.path.is_file():
            raise SourceError(f"video file {self.path}: not a regular file")
        if not os.access(self.path, os.R_OK):
            raise SourceError(f"video file {self.path}: not readable (permission denied)")
        # FFmpeg's default is a decoder thread per core, so one of them fights inference for
        # its core: leave one core to inference (one thread by default), the rest decode.
        threads = max(1, cpus_usable() - 1)
        self._cap = cv2.VideoCapture(
            str(self.path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads]
        )
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"video file {self.path}: cannot be decoded as video")
        fps_in = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps_in = fps_in if fps_in > 0 and math.isfinite(fps_in) else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        w, h = (
            int(self._cap.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT)
        )
        self.size = (w, h) if w > 0 and h > 0 else None
        self.start_wall = time.time() if start_wall is None else start_wall
        self._read = 0
        self._delivered = 0
        self._iterated = False

    def __iter__(self) -> Iterator[Frame]:
        if self._iterated:
            raise RuntimeError(f"{self.path} is already being read; open it again to re-read")
        self._iterated = True
        gate = RateGate(self.fps, self.fps_in, self.offset_s or None)
        last_t = -math.inf
        index = 0
        while self._cap.isOpened() and self._cap.grab():
            self._read += 1
            t = self._timestamp(index, last_t)
            last_t = t
            if gate.keep(t):
                ok, image = self._cap.retrieve()
                if not ok or image is None:
                    raise SourceError(f"video file {self.path}: frame {index} cannot be decoded")
                self._delivered += 1
                yield Frame(
                    image=cast("npt.NDArray[np.uint8]", image),
                    t=t,
                    wall=self.start_wall + t,
                    index=index,
                )
            index += 1
        if self._read == 0:
            raise SourceError(f"video file {self.path}: no decodable frames")

    def _timestamp(self, index: int, last_t: float) -> float:
        """Container time of the frame just grabbed; index/fps when the container has none."""
        t = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if math.isfinite(t) and t >= 0 and (index == 0 or t > last_t):
            return t
        if self.fps_in:
            return max(index / self.fps_in, last_t + 1e-6)
        return last_t + 1.0 / self.fps

    def close(self) -> None:
        self._cap.release()

    def stats(self) -> SourceStats:
        return SourceStats(frames_read=self._read, frames_delivered=self._delivered)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial`` doubling up to ``maximum``, each scaled by 1 ± ``jitter``.

    Jitter keeps a site's cameras from reconnecting in lock-step after a switch reboots.
    """

    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * 2.0 ** min(attempt, 32))
        return base * (1.0 + random.uniform(-self.jitter, self.jitter))


class _Connection:
    """One capture and the thread that reads it; abandoned, never joined, if it hangs.

    ``cv2.VideoCapture.read`` can block forever on a dead network peer, so the supervisor
    only watches the time of the last frame and walks away from a stuck connection; the
    thread releases its capture whenever the blocked call finally returns.
    """

    def __init__(
        self,
        open_capture: Callable[[], cv2.VideoCapture],
        on_open: Callable[[cv2.VideoCapture], None],
        on_frame: Callable[[_Connection, np.ndarray | None], bool],
        name: str,
    ) -> None:
        self.started = time.monotonic()
        self.first_frame: float | None = None
        self.last_frame: float | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self.abandoned = threading.Event()
        self._open = open_capture
        self._on_open = on_open
        self._on_frame = on_frame
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def healthy_for(self) -> float:
        """Seconds this connection delivered frames."""
        if self.first_frame is None or self.last_frame is None:
            return 0.0
        return self.last_frame - self.first_frame

    def _run(self) -> None:
        cap: cv2.VideoCapture | None = None
        try:
            cap = self._open()
            if not cap.isOpened():
                self.error = "cannot open stream"
                return
            self._on_open(cap)
            while not self.abandoned.is_set():
                if not cap.grab():
                    self.error = "stream ended or read failed"
                    return
                now = time.monotonic()
                if self.first_frame is None:
                    self.first_frame = now
                self.last_frame = now
                if self._on_frame(self, None):
                    ok, image = cap.retrieve()
                    if not ok or image is None:
                        self.error = "frame cannot be decoded"
                        return
                    self._on_frame(self, image)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if cap is not None:
                cap.release()
            self.done.set()


class LiveSource(FrameSource):
    """A camera that may drop at any time: reconnects forever and never raises.

    A supervisor thread owns the connection life cycle; the reader thread grabs every
    frame (keeping the camera's buffer drained) but retrieves only at the analysis rate
    and keeps just the newest one, so a slow consumer sees fresh frames, not a backlog.
    ``t`` is seconds on a monotonic clock since the source was created.

    OpenCV serialises every FFmpeg open in the process behind one lock, so a hung open
    stalls all other sources too: ``open_timeout`` must stay finite, and the watchdog
    gives an open at least that long before walking away from it.
    """

    def __init__(
        self,
        target: str | int,
        fps: float = DEFAULT_FPS,
        *,
        backoff: Backoff | None = None,
        watchdog: float = 10.0,
        healthy_after: float = 30.0,
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        self.target = target
        self.name = name or _redact(str(target))
        self.fps = _check_fps(fps)
        self.fps_in: float | None = None
        self.frame_count: int | None = None
        self.size: tuple[int, int] | None = None
        self.backoff = backoff or Backoff()
        self.watchdog = watchdog
        self.healthy_after = healthy_after
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._conn: _Connection | None = None
        self._gate = RateGate(self.fps)
        self._read = 0
        self._index = 0
        self._delivered = 0
        self._reconnects = 0
        self._outages = 0
        self._down_since: float | None = None
        self._connected = False
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"source-{self.name}", daemon=True
        )
        self._supervisor.start()

    def _open_capture(self) -> cv2.VideoCapture:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout * 1000),
        ]
        if isinstance(self.target, int) or self.target.startswith("/dev/"):
            backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
            cap = cv2.VideoCapture(self.target, backend, params)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            return cap
        # FFmpeg reads its options from the environment at open time; respect an
        # operator's own setting, otherwise use TCP so a lossy Wi-Fi link gives
        # late frames instead of smeared ones.
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        return cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)

    def _on_open(self, cap: cv2.VideoCapture) -> None:
        fps_in = cap.get(cv2.CAP_PROP_FPS)
        if fps_in > 0 and math.isfinite(fps_in):
            with self._cond:
                self.fps_in = fps_in
                self._gate = RateGate(self.fps, fps_in)

    def _on_frame(self, conn: _Connection, image: np.ndarray | None) -> bool:
        """Called by the reader: with None to ask whether to retrieve, then with the image."""
        with self._cond:
            if conn is not self._conn or conn.abandoned.is_set():
                return False
            now = time.monotonic()
            if image is None:
                self._read += 1
                self._index += 1
                if not self._connected:
                    self._came_up(now)
                return self._gate.keep(now - self._t0)
            h, w = image.shape[:2]
            self.size = (w, h)
            self._latest = Frame(
                image=image, t=now - self._t0, wall=time.time(), index=self._index - 1
            )
            self._cond.notify_all()
            return True

    def _came_up(self, now: float) -> None:
        self._connected = True
        if self._down_since is None:
            log.info("camera %s connected", self.name)
        else:
            log.info(
                "camera %s back after %.1f s outage (%d reconnect attempts so far)",
                self.name,
                now - self._down_since,
                self._reconnects,
            )
            self._down_since = None

    def _went_down(self, reason: str) -> None:
        with self._cond:
            self._connected = False
            self._latest = None
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
            self._outages += 1
        log.warning("camera %s down: %s; reconnecting with back-off", self.name, reason)

    def _supervise(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            conn = _Connection(
                self._open_capture, self._on_open, self._on_frame, f"reader-{self.name}"
            )
            with self._cond:
                self._conn = conn
            reason = self._watch(conn)
            conn.abandoned.set()
            if self._stop.is_set():
                break
            if conn.healthy_for() >= self.healthy_after:
                attempt = 0
            self._went_down(reason)
            if self._stop.wait(self.backoff.delay(attempt)):
                break
            attempt += 1
            with self._cond:
                self._reconnects += 1

    def _watch(self, conn: _Connection) -> str:
        """Wait until the connection fails or stalls; return why."""
        while not self._stop.is_set():
            if conn.done.wait(0.05):
                return conn.error or "stream ended"
            if conn.last_frame is not None:
                if time.monotonic() - conn.last_frame > self.watchdog:
                    return f"no frame for {self.watchdog:g} s"
            elif time.monotonic() - conn.started > max(self.watchdog, self.open_timeout + 1.0):
                return "no frame since connecting"
        return "stopped"

    def __iter__(self) -> Iterator[Frame]:
        """Newest frames not delivered before, across iterators; blocks through outages."""
        while True:
            with self._cond:
                while not self._stop.is_set() and self._latest is None:
                    self._cond.wait(0.5)
                if self._stop.is_set() or self._latest is None:
                    return
                frame, self._latest = self._latest, None
                self._delivered += 1
            yield frame

    def close(self) -> None:
        """Stop promptly; a reader stuck in a blocking read is left to exit on its own."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
            if self._conn is not None:
                self._conn.abandoned.set()
        if threading.current_thread() is not self._supervisor:
            self._supervisor.join(timeout=1.0)

    def stats(self) -> SourceStats:
        with self._cond:
            return SourceStats(
                frames_read=self._read,
                frames_delivered=self._delivered,
                reconnects=self._reconnects,
                outages=self._outages,
                connected=self._connected,
            )


class Prefetch(FrameSource):
    """Decodes the next frames in a background thread while the consumer runs inference.

    An exception in the decoder is re-raised in the consumer. Use it for files: live sources
    already read in the background and a queue would only add latency. Decoding the frames
    behind one analysed frame mostly takes less time than analysing it (3-6 ms against
    8-12 on the MPEG-4 and 720p clips here; 1080p H.264 takes 11-16 ms, as long as the
    analysis), but frames differ: a keyframe takes ~35 ms and a still person's frame ~2 ms,
    so after a run of cheap frames a one-frame queue leaves inference waiting for the
    decoder. The queue holds as many frames as fit in ``ahead_bytes`` (1 to 4; a
    1080p frame is 6 MB), which the expensive frames fill for the cheap ones to drain.
    """

    def __init__(self, source: FrameSource, ahead_bytes: int = 16 << 20) -> None:
        self.source = source
        self.fps = source.fps
        self.fps_in = source.fps_in
        self.frame_count = source.frame_count
        self.size = source.size
        depth = prefetch_depth(source.size, ahead_bytes)
        self._decoder: Background[Frame] = Background(source, depth, name="prefetch")

    def __iter__(self) -> Iterator[Frame]:
        return iter(self._decoder)

    def close(self) -> None:
        """Stop the decoder before closing the source: releasing a capture mid-grab crashes."""
        self._decoder.close()
        self.source.close()

    def stats(self) -> SourceStats:
        return self.source.stats()


def prefetch_depth(size: tuple[int, int] | None, ahead_bytes: int, most: int = 4) -> int:
    """Frames of ``size`` (BGR) that fit in ``ahead_bytes``, between 1 and ``most``."""
    if size is None:
        return 1
    return max(1, min(most, ahead_bytes // (size[0] * size[1] * 3)))


def _redact(url: str) -> str:
    """Drop credentials from a camera URL before it reaches a log line."""
    return re.sub(r"://[^/@]*@", "://***@", url)


def open_source(
    spec: str | int,
    fps: float = DEFAULT_FPS,
    *,
    prefetch: bool = False,
    **options: object,
) -> FrameSource:
    """Open a file path, an ``rtsp://``/``http(s)://`` URL, or a device (``0``, ``/dev/video0``).

    ``options`` go to the chosen class (e.g. ``watchdog``, ``backoff`` for live sources,
    ``start_wall`` for files); ``prefetch`` decodes files in a background thread when this
    process may run on more than one CPU (on one, the thread only adds switching: ~2 %).
    """
    text = str(spec).strip()
    if isinstance(spec, int) or text.isdigit():
        return LiveSource(int(text), fps, **options)  # type: ignore[arg-type]
    if text.lower().startswith(URL_SCHEMES):
        return LiveSource(text, fps, **options)  # type: ignore[arg-type]
    if _DEVICE_PATH.match(text):
        return LiveSource(int(text.removeprefix("/dev/video")), fps, **options)  # type: ignore[arg-type]
    if text.startswith("/dev/") and Path(text).is_char_device():
        return LiveSource(text, fps, **options)  # type: ignore[arg-type]
    if "://" in text:
        raise SourceError(f"source {_redact(text)}: unsupported URL scheme")
    source: FrameSource = FileSource(text, fps, **options)  # type: ignore[arg-type]
    return Prefetch(source) if prefetch and cpus_usable() > 1 else source


def cpus_usable() -> int:
    """CPUs this process may run on (``taskset`` and cgroup cpusets narrow it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
