"""The model manifest and where the weights live on this machine.

Weights are never shipped with the code. They are looked up in ``$LIFTWATCH_MODEL_DIR``, then
``./models/``, and verified against the manifest's sha256 so a truncated download or a
swapped file fails loudly at start-up instead of producing wrong poses. A file verified once is
not hashed again at start-up until it changes; `liftwatch-edge models` always hashes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge import local_cache

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


MANIFEST_RECORD = "manifest.json"
VERIFIED_RECORD = "verified-models.json"


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, ModelSpec]:
    """The manifest's entries; read once per process (per path and modification time)."""
    st = path.stat()
    return dict(_load_manifest(path, st.st_mtime_ns, st.st_size))


def _parse_manifest(path: Path) -> Any:
    """The manifest as YAML parses it. Importing PyYAML costs ~9 ms of every start, so the
    parsed form is kept as JSON per version of the file (`edge.local_cache`)."""
    st = path.stat()
    where, version = str(path.resolve()), _file_version(st)
    record = local_cache.read_record(MANIFEST_RECORD)
    if record.get("path") == where and record.get("version") == version and "entries" in record:
        return record["entries"]
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10 ms faster a read
    with path.open(encoding="utf-8") as fh:
        raw = yaml.load(fh, Loader=loader)
    try:
        if json.loads(json.dumps(raw)) == raw:  # e.g. a YAML date would not come back the same
            local_cache.write_record(
                MANIFEST_RECORD, {"path": where, "version": version, "entries": raw}
            )
    except (TypeError, ValueError):
        pass
    return raw


@functools.lru_cache(maxsize=8)
def _load_manifest(path: Path, mtime_ns: int, size: int) -> dict[str, ModelSpec]:
    raw = _parse_manifest(path)
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


def _file_version(st: os.stat_result) -> list[int]:
    """Size, modification and change times, inode: any rewrite, copy or rename-over of a
    file changes its change time, which only the clock sets."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


_hashed: dict[tuple[str, tuple[int, ...]], str] = {}
"""This process's hashes by file and version: the agent and the bench resolve twice."""


def _sha256_once(path: Path, expected: str) -> str:
    """sha256 of ``path``, hashed once per version of the file on this machine.

    Hashing the three default models costs ~14 ms of every start. A version that matched
    ``expected`` is kept in `edge.local_cache`, so the next start finds it verified; a
    version that did not match is hashed every time, so its error names its real hash.
    """
    where = str(path.resolve())
    version = _file_version(path.stat())
    key = (where, tuple(version))
    if key in _hashed:
        return _hashed[key]
    record = local_cache.read_record(VERIFIED_RECORD)
    if record.get(where) == {"version": version, "sha256": expected}:
        _hashed[key] = expected
        return expected
    actual = _hashed[key] = sha256_of(path)
    if actual == expected:
        kept = {k: v for k, v in record.items() if Path(k).is_file()}
        kept[where] = {"version": version, "sha256": actual}
        local_cache.write_record(VERIFIED_RECORD, kept)
    return actual


def check(spec: ModelSpec, dirs: list[Path] | None = None, recheck: bool = False) -> ModelStatus:
    """Find ``spec``'s file and verify it; ``recheck`` hashes it even if verified before."""
    dirs = search_dirs() if dirs is None else dirs
    for d in dirs:
        candidate = d / spec.file
        if candidate.is_file():
            actual = sha256_of(candidate) if recheck else _sha256_once(candidate, spec.sha256)
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
