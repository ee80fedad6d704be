"""Frame sources against a real clip, broken files, a dead camera and a flaky MJPEG camera."""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.frames import Frame
from edge.source import (
    Backoff,
    FileSource,
    FrameSource,
    LiveSource,
    Prefetch,
    RateGate,
    SourceError,
    SourceStats,
    open_source,
    prefetch_depth,
)

CLIP = "deadlift-side-nico_blocked.mp4"
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.1)


@pytest.fixture
def clip(clips_dir: Path) -> Path:
    return clips_dir / CLIP


def _frames_until(source: FrameSource, count: int, timeout: float) -> list[Frame]:
    """Read ``count`` frames from a live source in a thread so a hang fails, not blocks."""
    got: list[Frame] = []

    def run() -> None:
        for frame in source:
            got.append(frame)
            if len(got) >= count:
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return got


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# --- rate selection ---------------------------------------------------------------------


def test_rate_gate_keeps_average_spacing_for_non_multiple_rates() -> None:
    gate = RateGate(10.0, fps_in=25.0)
    kept = [i / 25 for i in range(250) if gate.keep(i / 25)]
    assert len(kept) == 100
    gaps = np.diff(kept)
    assert gaps.mean() == pytest.approx(0.1, abs=1e-3)
    assert set(np.round(gaps, 3)) <= {0.08, 0.12}


def test_rate_gate_keeps_every_frame_when_camera_is_slower_than_analysis() -> None:
    gate = RateGate(10.0, fps_in=8.0)
    assert all(gate.keep(i / 8) for i in range(40))


def test_rate_gate_tolerates_jitter_at_equal_rates() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(100) / 10 + rng.uniform(-0.02, 0.02, 100)
    gate = RateGate(10.0, fps_in=10.0)
    assert sum(gate.keep(float(x)) for x in t) == 100


def test_rate_gate_start_shifts_the_grid() -> None:
    gate = RateGate(10.0, fps_in=30.0, start=1 / 30)
    kept = [i for i in range(30) if gate.keep(i / 30)]
    assert kept == list(range(1, 30, 3))


def test_rate_gate_restarts_after_a_gap_instead_of_bursting() -> None:
    gate = RateGate(10.0, fps_in=30.0)
    before = [gate.keep(i / 30) for i in range(30)]
    after = [gate.keep(5.0 + i / 30) for i in range(30)]
    assert sum(before) == 10
    assert sum(after) == 10


# --- files ------------------------------------------------------------------------------


@pytest.mark.clips
def test_file_at_analysis_rate_yields_a_third_of_a_30fps_clip(clip: Path) -> None:
    with open_source(str(clip), fps=10.0) as source:
        assert isinstance(source, FileSource)
        assert source.fps_in == pytest.approx(30.0)
        assert source.size == (600, 600)
        total = source.frame_count
        frames = list(source)
        stats = source.stats()
    assert total is not None
    assert len(frames) == pytest.approx(total / 3, abs=1)
    assert stats.frames_read == total
    assert stats.frames_delivered == len(frames)
    t = np.array([f.t for f in frames])
    assert t[0] == 0.0
    assert np.diff(t) == pytest.approx(0.1, abs=0.02)
    assert [f.index for f in frames[:4]] == [0, 3, 6, 9]
    assert all(f.image.shape == (600, 600, 3) and f.image.dtype == np.uint8 for f in frames)
    assert frames[-1].wall - frames[0].wall == pytest.approx(t[-1])


@pytest.mark.clips
def test_file_above_native_rate_yields_every_frame(clip: Path) -> None:
    with open_source(str(clip), fps=60.0) as source:
        frames = list(source)
        assert len(frames) == source.frame_count
    assert [f.index for f in frames] == list(range(len(frames)))
    assert np.all(np.diff([f.t for f in frames]) > 0)


@pytest.mark.clips
def test_file_offset_samples_the_same_rate_at_another_phase(clip: Path) -> None:
    with open_source(str(clip), fps=10.0) as plain:
        base = list(plain)
    with FileSource(clip, fps=10.0, offset_s=2 / 30) as shifted:
        later = list(shifted)
    assert [f.index for f in later[:4]] == [2, 5, 8, 11]
    assert len(later) == pytest.approx(len(base), abs=1)
    assert np.array_equal(later[0].image, _decode_frame(clip, 2))


def test_file_offset_must_be_a_time(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="offset"):
        FileSource(path, offset_s=-0.1)


def _decode_frame(path: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    for _ in range(index + 1):
        ok, image = cap.read()
        assert ok
    cap.release()
    return image


@pytest.mark.clips
def test_file_start_wall_stamps_frames(clip: Path) -> None:
    with FileSource(clip, fps=10.0, start_wall=1_700_000_000.0) as source:
        frames = [f for f, _ in zip(source, range(3), strict=False)]
    assert [f.wall for f in frames] == [1_700_000_000.0 + f.t for f in frames]
    assert frames[0].wall == 1_700_000_000.0


@pytest.mark.clips
def test_file_cannot_be_iterated_twice(clip: Path) -> None:
    with FileSource(clip) as source:
        list(source)
        with pytest.raises(RuntimeError):
            list(source)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=r"nope\.mp4.*no such file"):
        open_source(str(path))


def test_text_file_named_mp4_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    with pytest.raises(SourceError, match=r"notes\.mp4.*cannot be decoded"):
        open_source(str(path))


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a regular file"):
        open_source(str(tmp_path))


def test_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(SourceError, match="unsupported URL scheme"):
        open_source("ftp://user:secret@example.com/cam")


def test_bad_fps_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        RateGate(0.0)


# --- prefetch ---------------------------------------------------------------------------


@pytest.mark.clips
def test_prefetch_yields_the_same_frames(clip: Path) -> None:
    with open_source(str(clip), fps=10.0) as plain:
        expected = list(plain)
    with open_source(str(clip), fps=10.0, prefetch=True) as fetched:
        assert isinstance(fetched, Prefetch)
        assert fetched.frame_count is not None
        got = list(fetched)
    assert [f.index for f in got] == [f.index for f in expected]
    assert [f.t for f in got] == [f.t for f in expected]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, expected, strict=True))


@pytest.mark.clips
def test_prefetch_close_midway_stops_the_decoder(clip: Path) -> None:
    source = Prefetch(FileSource(clip, fps=30.0))
    it = iter(source)
    next(it)
    source.close()
    assert not source._decoder.running


@pytest.mark.parametrize(
    ("size", "depth"),
    [((1920, 1080), 2), ((1280, 720), 4), ((600, 600), 4), ((7680, 4320), 1), (None, 1)],
)
def test_prefetch_holds_what_fits_in_its_budget(size: tuple[int, int] | None, depth: int) -> None:
    assert prefetch_depth(size, 16 << 20) == depth


class _Exploding(FrameSource):
    fps, fps_in, frame_count, size = 10.0, None, None, None

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(image=np.zeros((4, 4, 3), np.uint8), t=0.0, wall=0.0, index=0)
        raise SourceError("decoder broke")

    def close(self) -> None:
        self.closed = True

    def stats(self) -> SourceStats:
        raise NotImplementedError


def test_prefetch_reraises_decoder_errors_in_the_consumer() -> None:
    inner = _Exploding()
    with Prefetch(inner) as source:
        it = iter(source)
        assert next(it).index == 0
        with pytest.raises(SourceError, match="decoder broke"):
            next(it)
    assert inner.closed


# --- live sources -----------------------------------------------------------------------


@pytest.fixture
def dead_server() -> Iterator[int]:
    """A TCP port that accepts connections and drops them at once: a camera gone mad."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_dead_camera_retries_with_backoff_and_logs_the_outage_once(
    dead_server: int, scheme: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.source")
    url = f"{scheme}://user:secret@127.0.0.1:{dead_server}/stream"
    source = open_source(url, fps=10.0, backoff=FAST, open_timeout=1.0, read_timeout=1.0)
    assert isinstance(source, LiveSource)
    try:
        assert _wait_for(lambda: source.stats().reconnects >= 4, timeout=5.0)
        assert _frames_until(source, 1, timeout=0.3) == []
    finally:
        started = time.monotonic()
        source.close()
        close_took = time.monotonic() - started
    stats = source.stats()
    assert stats.outages == 1
    assert not stats.connected
    assert stats.frames_read == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "down" in warnings[0].getMessage()
    assert all("secret" not in r.getMessage() for r in caplog.records)
    assert close_took < 2.0


def test_backoff_doubles_up_to_the_maximum_with_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, jitter=0.2)
    for attempt, base in [(0, 0.5), (1, 1.0), (3, 4.0), (6, 30.0), (100, 30.0)]:
        delays = [backoff.delay(attempt) for _ in range(50)]
        assert all(0.8 * base <= d <= 1.2 * base for d in delays)
        assert len(set(delays)) > 1


class _MjpegCamera:
    """A local HTTP MJPEG camera (synthetic images) that can be switched off and on."""

    def __init__(self, fps: float = 30.0, size: tuple[int, int] = (160, 120)) -> None:
        self.up = threading.Event()
        self.up.set()
        self.generation = 0
        camera = self
        w, h = size

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if not camera.up.is_set():
                    self.close_connection = True
                    return
                generation = camera.generation
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                n = 0
                while camera.up.is_set() and camera.generation == generation:
                    image = np.full((h, w, 3), (n * 7) % 256, np.uint8)
                    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
                    head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                    try:
                        self.wfile.write(head % len(jpeg) + jpeg + b"\r\n")
                    except OSError:
                        return
                    n += 1
                    time.sleep(1.0 / fps)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"

    def drop(self) -> None:
        self.up.clear()
        self.generation += 1

    def restore(self) -> None:
        self.up.set()

    def shutdown(self) -> None:
        self.drop()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mjpeg_camera() -> Iterator[_MjpegCamera]:
    camera = _MjpegCamera()
    yield camera
    camera.shutdown()


def test_mjpeg_camera_delivers_reconnects_after_a_drop_and_delivers_again(
    mjpeg_camera: _MjpegCamera, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.source")
    with open_source(
        mjpeg_camera.url, fps=10.0, backoff=FAST, open_timeout=2.0, read_timeout=2.0
    ) as source:
        first = _frames_until(source, 3, timeout=10.0)
        assert len(first) == 3
        assert source.size == (160, 120)
        assert all(f.image.shape == (120, 160, 3) for f in first)

        mjpeg_camera.drop()
        assert _wait_for(lambda: source.stats().reconnects >= 2, timeout=10.0)
        assert not source.stats().connected
        mjpeg_camera.restore()

        again = _frames_until(source, 3, timeout=10.0)
        assert len(again) == 3
        stats = source.stats()
    assert again[0].index > first[-1].index
    assert again[0].t > first[-1].t
    assert stats.connected and stats.outages == 1
    assert stats.frames_read > stats.frames_delivered >= 6
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [m for level, m in messages if level == logging.WARNING and "down" in m] != []
    assert len([m for level, m in messages if level >= logging.WARNING]) == 1
    assert len([m for _, m in messages if "back after" in m]) == 1


def test_live_source_drops_stale_frames_for_a_slow_consumer(
    mjpeg_camera: _MjpegCamera,
) -> None:
    with open_source(mjpeg_camera.url, fps=30.0, backoff=FAST) as source:
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 3:
                break
            time.sleep(0.4)
        read = source.stats().frames_read
    assert np.all(np.diff([f.index for f in frames]) > 3)
    assert read > len(frames)


def test_watchdog_replaces_a_camera_that_stops_sending_without_closing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The read timeout is long, so only the watchdog can notice the stall.

    Each connection delivers a few frames and then hangs, so every cycle is a real
    outage: up, stalled, replaced.
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()
    jpeg = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
    head = b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"
    part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
    reply = head + (part + jpeg + b"\r\n") * 3

    def stall() -> None:
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except TimeoutError:
                continue
            conn.recv(4096)
            conn.sendall(reply)
            held.append(conn)

    thread = threading.Thread(target=stall, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/stream.mjpg"
    source = LiveSource(url, watchdog=0.3, backoff=FAST, open_timeout=5.0, read_timeout=30.0)
    try:
        assert _wait_for(lambda: len(held) >= 3, timeout=8.0)
        stats = source.stats()
    finally:
        source.close()
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()
    assert stats.reconnects >= 2
    assert stats.outages >= 2
    assert stats.frames_read >= 3
    assert any("no frame for 0.3 s" in r.getMessage() for r in caplog.records)


@pytest.mark.clips
@pytest.mark.parametrize(("cpus", "kind"), [(1, FileSource), (2, Prefetch)])
def test_prefetch_only_with_a_spare_cpu(
    clip: Path, monkeypatch: pytest.MonkeyPatch, cpus: int, kind: type
) -> None:
    """On one CPU a decoder thread cannot overlap inference; it would only add switching."""
    monkeypatch.setattr("edge.source.cpus_usable", lambda: cpus)
    with open_source(str(clip), prefetch=True) as source:
        assert type(source) is kind
