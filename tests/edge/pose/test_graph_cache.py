"""Optimised ONNX graphs kept on disk: same outputs as a fresh session, rebuilt when broken."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge.models import resolve
from edge.pose import graph_cache
from edge.pose.base import make_session


@pytest.fixture
def lightning(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIFTWATCH_MODEL_DIR", str(model_dir))
    return resolve("movenet_lightning")[1]


def _keypoints(session: object) -> np.ndarray:
    image = np.random.default_rng(7).integers(0, 256, (1, 192, 192, 3)).astype(np.int32)
    return session.run(None, {"input": image})[0]  # type: ignore[attr-defined]


def _uncached(lightning: Path, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    monkeypatch.setenv(graph_cache.CACHE_ENV, "")
    return _keypoints(make_session(lightning))


@pytest.mark.models
def test_first_session_keeps_the_optimised_graph_and_the_next_loads_it_unchanged(
    lightning: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _uncached(lightning, monkeypatch)
    assert not list(tmp_path.rglob("*.onnx"))
    monkeypatch.setenv(graph_cache.CACHE_ENV, str(tmp_path))
    first_session = make_session(lightning)
    first = _keypoints(first_session)
    kept = list(tmp_path.rglob("*.onnx"))
    assert len(kept) == 1 and kept[0].name.startswith("movenet_singlepose_lightning_v4-")
    assert first_session._model_path == str(kept[0])  # the kept graph, already this time
    weights = list(tmp_path.rglob("*.weights"))  # kept apart, so ONNX Runtime maps them
    assert len(weights) == 1 and weights[0].stat().st_size > 1_000_000
    assert not list(tmp_path.rglob("*.tmp"))
    second = _keypoints(make_session(lightning))
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected)


@pytest.mark.models
def test_a_broken_cached_graph_is_rebuilt_with_a_warning(
    lightning: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    expected = _uncached(lightning, monkeypatch)
    monkeypatch.setenv(graph_cache.CACHE_ENV, str(tmp_path))
    target = graph_cache.optimised_path(lightning, ort.__version__)
    assert target is not None
    target.parent.mkdir(parents=True)
    target.write_bytes(b"half a download")
    with caplog.at_level(logging.WARNING):
        keypoints = _keypoints(make_session(lightning))
    np.testing.assert_array_equal(keypoints, expected)
    assert "rebuilding" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        np.testing.assert_array_equal(_keypoints(make_session(lightning)), expected)
    assert "rebuilding" not in caplog.text  # the rebuilt graph and its weights load as kept


@pytest.mark.models
def test_truncated_kept_weights_are_rebuilt_with_a_warning(
    lightning: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    expected = _uncached(lightning, monkeypatch)
    monkeypatch.setenv(graph_cache.CACHE_ENV, str(tmp_path))
    make_session(lightning)
    (weights,) = tmp_path.rglob("*.weights")
    weights.write_bytes(weights.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        keypoints = _keypoints(make_session(lightning))
    np.testing.assert_array_equal(keypoints, expected)
    assert "rebuilding" in caplog.text


def test_the_key_follows_the_model_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(graph_cache.CACHE_ENV, str(tmp_path / "cache"))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"one")
    before = graph_cache.optimised_path(model, "1.0")
    assert graph_cache.optimised_path(model, "1.0") == before
    assert graph_cache.optimised_path(model, "2.0") != before
    model.write_bytes(b"other")
    assert graph_cache.optimised_path(model, "1.0") != before


def test_an_empty_cache_setting_turns_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(graph_cache.CACHE_ENV, "")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"one")
    assert graph_cache.optimised_path(model, "1.0") is None


def test_no_home_means_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(graph_cache.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert graph_cache.cache_dir() is None
