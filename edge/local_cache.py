"""What this machine keeps between runs so the next one starts faster, and where.

Everything here can be deleted at any time: it is rebuilt on the next run. Writes are
atomic (a private file, then a rename), so processes starting together at worst each redo
the work once; an unreadable or foreign file counts as empty.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_ENV = "LIFTWATCH_CACHE_DIR"
"""Where the cache goes; default ``$XDG_CACHE_HOME/liftwatch`` (``~/.cache/liftwatch``).
Set it to an empty string to turn the cache off."""


def cache_dir() -> Path | None:
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no passwd entry, e.g. a bare service account
            return None
    return Path(base) / "liftwatch"


def read_record(name: str) -> dict[str, Any]:
    """The JSON object kept under ``name``; empty when absent, unreadable or not an object."""
    root = cache_dir()
    if root is None:
        return {}
    try:
        data = json.loads((root / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_record(name: str, data: dict[str, Any]) -> None:
    """Keep ``data`` under ``name``; a cache that cannot be written is skipped, not an error."""
    root = cache_dir()
    if root is None:
        return
    target = root / name
    staging = target.with_name(f".{name}.{os.getpid()}.tmp")
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(staging, target)
    except OSError as exc:
        log.debug("could not keep %s: %s", target, exc)
        with contextlib.suppress(OSError):
            staging.unlink()
