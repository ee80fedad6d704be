"""Shared fixtures: where the real clips and weights are (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
