"""Shared fixtures: where the real clips and weights are (never copied into the repo)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mqtt import Broker, Subscriber, mosquitto_binary


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    value = os.environ.get("LIFTWATCH_CLIPS")
    if not value:
        pytest.skip("LIFTWATCH_CLIPS is not set (point it at the labelled clips folder)")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"LIFTWATCH_CLIPS={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def model_dir() -> Path:
    value = os.environ.get("LIFTWATCH_MODEL_DIR")
    if not value:
        pytest.skip("LIFTWATCH_MODEL_DIR is not set (point it at the ONNX weights)")
    return Path(value)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto on a free 127.0.0.1 port, anonymous, persistence in tmp_path."""
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (.ci/run installs the Debian package)")
    with Broker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def subscriber(broker: Broker) -> Iterator[Subscriber]:
    """Subscribed to everything on ``broker`` before the test body runs."""
    with Subscriber(broker, "#") as sub:
        yield sub
