"""ONNX Runtime graphs optimised once per machine and kept on disk, so start-up skips it.

Creating a session with every graph optimisation on costs 25-120 ms per model, about 0.1 s of
a whole `analyze` run with its three models; loading the graph ONNX Runtime already optimised,
with optimisation off, costs 10-15 ms and runs at the same speed. An optimised graph can hold
kernels laid out for this CPU's vector width, so it is keyed by the CPU's feature flags and
the ONNX Runtime version as well as by the model file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from functools import cache
from pathlib import Path

from edge.local_cache import CACHE_ENV as CACHE_ENV
from edge.local_cache import cache_dir

log = logging.getLogger(__name__)

LAYOUT = "weights-apart"
"""How a kept graph is stored, part of its key: the graph in the ``.onnx`` and its weights
in a file beside it. ONNX Runtime maps such a weights file instead of parsing and copying
the weights out of the graph: the three default models start in ~15 ms instead of ~45 ms
and hold ~40 MB less private memory, with the same outputs and speed."""


@cache
def _cpu_signature() -> str:
    """The CPU's feature flags (Linux x86 ``flags``, Arm ``Features``), or the machine name."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def optimised_path(model: Path, ort_version: str, edit: str = "") -> Path | None:
    """Where the optimised graph of ``model`` lives (whether or not it exists yet).

    ``edit`` names a change made to the graph before optimising it (see `edge.pose.prologue`):
    the same model edited or not gives two different graphs.
    """
    root = cache_dir()
    if root is None:
        return None
    st = model.stat()
    identity = f"{model.resolve()}|{st.st_size}|{st.st_mtime_ns}|{ort_version}|"
    identity += f"{platform.machine()}|{_cpu_signature()}|{LAYOUT}"
    if edit:
        identity += f"|{edit}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:20]
    return root / "ort" / f"{model.stem}-{key}.onnx"


def weights_name(target: Path) -> str:
    """File name, beside ``target``, for the weights of the graph being written to it.

    Unique to this process, so two processes building at once never write the same file;
    the graph that wins the rename names its own weights file inside it.
    """
    return f"{target.stem}.{os.getpid()}.weights"


def staging_path(target: Path) -> Path | None:
    """A private file name beside ``target`` to write to before renaming; None if unwritable."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.debug("no graph cache at %s: %s", target.parent, exc)
        return None
    if not os.access(target.parent, os.W_OK):
        return None
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")
