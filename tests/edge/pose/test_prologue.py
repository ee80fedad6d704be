"""MoveNet's input prologue cut out of the graph: same outputs bit for bit, or no edit."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from edge.models import resolve
from edge.pose import graph_cache, prologue
from edge.pose.base import make_session
from edge.pose.movenet_multipose import MoveNetMultiPose
from edge.pose.movenet_single import MoveNetSingle

pytestmark = pytest.mark.models


@pytest.fixture(autouse=True)
def _models(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFTWATCH_MODEL_DIR", str(model_dir))
    monkeypatch.setenv(graph_cache.CACHE_ENV, str(tmp_path / "cache"))


def _image(h: int, w: int) -> np.ndarray:
    """A smooth RGB picture: noise would be a poor stand-in for what a camera sees."""
    noise = np.random.default_rng(3).integers(0, 256, (h, w, 3)).astype(np.uint8)
    return cv2.GaussianBlur(noise, (9, 9), 0)[None]


@pytest.mark.parametrize(
    "key,shape",
    [("movenet_lightning", (192, 192)), ("movenet_thunder", (256, 256)),
     ("movenet_multipose", (160, 256))],
)  # fmt: skip
def test_the_edited_graph_gives_the_originals_outputs_bit_for_bit(
    key: str, shape: tuple[int, int]
) -> None:
    path = resolve(key)[1]
    original = make_session(path)
    edited = make_session(path, edit=prologue.strip, edit_tag=prologue.EDIT_TAG)
    assert not prologue.takes_prepared(original)
    assert prologue.takes_prepared(edited)
    rgb = _image(*shape)
    want = original.run(None, {"input": rgb.astype(np.int32)})
    got = edited.run(None, {prologue.INPUT: prologue.prepare(rgb)})
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_the_edited_input_is_float_nchw_with_the_originals_dimensions() -> None:
    edited = make_session(
        resolve("movenet_multipose")[1], edit=prologue.strip, edit_tag=prologue.EDIT_TAG
    )
    (only,) = edited.get_inputs()
    assert only.type == "tensor(float)"
    assert only.shape == [1, 3, "height", "width"]


@pytest.mark.parametrize("key", ["blazepose_full", "yolox_nano", "movenet_lightning_int8"])
def test_graphs_without_the_prologue_are_left_alone(key: str) -> None:
    assert prologue.strip(resolve(key)[1].read_bytes()) is None


def test_a_changed_constant_leaves_the_graph_alone() -> None:
    """The edit is only right for MoveNet's own scaling; anything else keeps its prologue."""
    model = resolve("movenet_lightning")[1].read_bytes()
    scale = np.float32(prologue.SCALE).tobytes()
    assert model.count(scale) >= 1
    other = model.replace(scale, np.float32(0.5).tobytes())
    ort.InferenceSession(other, providers=["CPUExecutionProvider"])  # still a sound model
    assert prologue.strip(other) is None


@pytest.mark.parametrize("junk", [b"", b"\xff\xff\xff", b"\x3a\x05abc", b"not a model at all"])
def test_bytes_that_are_not_a_model_are_left_alone(junk: bytes) -> None:
    assert prologue.strip(junk) is None


def test_the_edited_and_the_original_graph_are_cached_apart(tmp_path: Path) -> None:
    path = resolve("movenet_lightning")[1]
    make_session(path)
    make_session(path, edit=prologue.strip, edit_tag=prologue.EDIT_TAG)
    kept = sorted((tmp_path / "cache").rglob("*.onnx"))
    assert len(kept) == 2
    again = make_session(path, edit=prologue.strip, edit_tag=prologue.EDIT_TAG)
    assert prologue.takes_prepared(again)  # loaded from the cache, still edited
    assert len(sorted((tmp_path / "cache").rglob("*.onnx"))) == 2


@pytest.mark.parametrize("cache", [True, False])
def test_an_edited_graph_onnx_runtime_refuses_gives_way_to_the_file(
    cache: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if not cache:
        monkeypatch.setenv(graph_cache.CACHE_ENV, "")
    path = resolve("movenet_lightning")[1]
    with caplog.at_level(logging.WARNING, logger="edge.pose.base"):
        session = make_session(path, edit=lambda _: b"\x08\x07not a graph", edit_tag="broken")
    assert not prologue.takes_prepared(session)
    assert session.get_inputs()[0].name == "input"
    assert "edited graph" in caplog.text and path.name in caplog.text


def test_estimators_give_the_same_poses_on_either_graph(clips_dir: Path) -> None:
    cap = cv2.VideoCapture(str(clips_dir / "deadlift-good-000001.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    single = MoveNetSingle(*resolve("movenet_lightning"))
    multi = MoveNetMultiPose(*resolve("movenet_multipose"))
    assert single.prepared and multi.prepared
    found = multi(frame)
    squares = np.array([[960, 540, 900]], np.float32)
    crops = single.on_squares(frame, squares)
    single.session, single.prepared = make_session(resolve("movenet_lightning")[1]), False
    multi.session, multi.prepared = make_session(resolve("movenet_multipose")[1]), False
    np.testing.assert_array_equal(multi(frame).xy, found.xy)
    np.testing.assert_array_equal(single.on_squares(frame, squares).xy, crops.xy)
    assert len(found) >= 1
