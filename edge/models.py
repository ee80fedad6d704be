"""The model manifest and where the weights live on this machine.

Weights are never shipped with the code. They are looked up in ``$LIFTWATCH_MODEL_DIR``, then
``./models/``, and verified against the manifest's sha256 so a truncated download or a
swapped file fails loudly at start-up instead of producing wrong poses.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MANIFEST_PATH = Path(__file__).parent / "manifest.yaml"
"""A link to ``models/manifest.yaml`` in a checkout; a copy of it in an installed wheel."""
MODEL_DIR_ENV = "LIFTWATCH_MODEL_DIR"


class ModelError(RuntimeError):
    """A model file is missing, corrupt or unknown; the message says how to fix it."""


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry. A plain dataclass: the agent's start-up should not pay for a
    validation library to read eight known fields."""

    key: str
    file: str
    sha256: str
    role: str
    backend: str
    licence: str
    source: str
    input: dict[str, Any]
    output: str
    keypoints: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_FIELDS = {"file", "sha256", "role", "backend", "licence", "source", "input", "output", "keypoints"}
_REQUIRED = _FIELDS - {"keypoints"}


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where PyYAML has it: the pure-Python one costs ~10 ms per read at start-up."""


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, ModelSpec]:
    """The manifest's entries; read once per process (per path and modification time)."""
    st = path.stat()
    return dict(_load_manifest(path, st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=8)
def _load_manifest(path: Path, mtime_ns: int, size: int) -> dict[str, ModelSpec]:
    with path.open(encoding="utf-8") as fh:
        raw = yaml.load(fh, Loader=_Loader)
    specs = {}
    for key, entry in raw.items():
        missing = _REQUIRED - set(entry)
        if missing:
            raise ModelError(f"{path}: model {key} lacks {', '.join(sorted(missing))}")
        known = {k: v for k, v in entry.items() if k in _FIELDS}
        extra = {k: v for k, v in entry.items() if k not in _FIELDS}
        specs[key] = ModelSpec(key=key, extra=extra, **known)
    return specs


def search_dirs() -> list[Path]:
    """Where weights are looked for, in order."""
    dirs = []
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path.cwd() / "models")
    return dirs


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    path: Path | None
    ok: bool
    problem: str | None


def _hash_cached(path: Path, _cache: dict[tuple[str, float, int], str] = {}) -> str:  # noqa: B006
    """Hash once per (path, mtime, size) per process: the agent and the bench resolve twice."""
    st = path.stat()
    key = (str(path), st.st_mtime, st.st_size)
    if key not in _cache:
        _cache[key] = sha256_of(path)
    return _cache[key]


def check(spec: ModelSpec, dirs: list[Path] | None = None) -> ModelStatus:
    dirs = search_dirs() if dirs is None else dirs
    for d in dirs:
        candidate = d / spec.file
        if candidate.is_file():
            actual = _hash_cached(candidate)
            if actual != spec.sha256:
                return ModelStatus(
                    spec,
                    candidate,
                    False,
                    f"{candidate} is corrupt or a different file: sha256 {actual}, "
                    f"expected {spec.sha256}",
                )
            return ModelStatus(spec, candidate, True, None)
    where = ", ".join(str(d) for d in dirs)
    return ModelStatus(
        spec,
        None,
        False,
        f"{spec.file} not found (looked in {where}); expected sha256 {spec.sha256}. "
        f"Set {MODEL_DIR_ENV} to the folder holding the weights.",
    )


def resolve(key: str, manifest: dict[str, ModelSpec] | None = None) -> tuple[ModelSpec, Path]:
    """Return a verified model's spec and path, or raise `ModelError` saying what is wrong."""
    manifest = load_manifest() if manifest is None else manifest
    if key not in manifest:
        raise ModelError(f"unknown model {key!r}; known: {', '.join(sorted(manifest))}")
    status = check(manifest[key])
    if not status.ok or status.path is None:
        raise ModelError(status.problem or f"model {key} unavailable")
    return status.spec, status.path
