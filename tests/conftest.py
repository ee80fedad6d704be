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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server (skipped without one, except in CI)."""
    from tests.support.db import postgres_database, server_available

    problem = server_available()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {problem}")
        pytest.skip(f"no PostgreSQL server: {problem}")
    with postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'liftwatch.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on both databases."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))
