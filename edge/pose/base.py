"""The one interface every pose back-end implements, and shared ONNX Runtime plumbing."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge.pose import graph_cache
from edge.poses import Poses

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]

GraphEdit = Callable[[bytes], "bytes | None"]
"""Rewrites a serialised model before ONNX Runtime optimises it; None leaves it as it is."""


class PoseEstimator(Protocol):
    """Turns one BGR frame into `Poses` in that frame's pixel coordinates."""

    name: str

    def __call__(self, image: Image) -> Poses: ...


def make_session(
    path: Path,
    threads: int = 1,
    mem_pattern: bool = True,
    edit: GraphEdit | None = None,
    edit_tag: str = "",
) -> Any:
    """An ONNX Runtime CPU session pinned to ``threads`` intra-op threads.

    Inter-op parallelism is off: these graphs are a single chain, and on a 4-core Pi the
    spare cores are better spent decoding the next frame. The fully optimised graph is kept
    on disk the first time (`edge.pose.graph_cache`) and loaded as is after that; the first
    time too, once written, so that the session optimising it (the source model, ONNX
    Runtime's working copies) does not stay resident: ~7 MB less at a first run's peak.

    ``mem_pattern=False`` suits a model run only now and then (keyframes, lift bottoms).
    ONNX Runtime's memory pattern plans one block for a whole run and allocates it at the
    second run, on top of the first run's tensors, which its arena keeps: 5-20 MB more
    resident per model and a second run as slow as the first. It pays back ~2 % per run
    only over many runs, as the per-frame model makes.

    ``edit`` (named by ``edit_tag`` in the cache key) rewrites the graph before it is
    optimised, e.g. `edge.pose.prologue.strip`; callers read the session's inputs to learn
    whether it applied.
    """
    import onnxruntime as ort

    def options(level: Any) -> Any:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = level
        opts.log_severity_level = 3
        opts.enable_mem_pattern = mem_pattern
        return opts

    providers = ["CPUExecutionProvider"]
    optimised = graph_cache.optimised_path(path, ort.__version__, edit_tag if edit else "")
    disabled = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if optimised is not None and optimised.is_file():
        try:
            return ort.InferenceSession(str(optimised), options(disabled), providers=providers)
        except Exception as exc:  # a truncated or foreign file: rebuild it below
            log.warning("optimised graph %s unusable (%s); rebuilding it", optimised, exc)
    full = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    model: str | bytes = str(path)
    if edit is not None:
        model = edit(path.read_bytes()) or model

    def unsaved(model: str | bytes) -> Any:
        """A session that keeps nothing; an edited graph it refuses gives way to the file."""
        try:
            return ort.InferenceSession(model, options(full), providers=providers)
        except Exception as exc:
            if isinstance(model, str):
                raise
            log.warning("edited graph of %s refused (%s); using the file as it is", path, exc)
            return ort.InferenceSession(str(path), options(full), providers=providers)

    staging = graph_cache.staging_path(optimised) if optimised is not None else None
    if staging is None or optimised is None:
        return unsaved(model)
    opts = options(full)
    opts.optimized_model_filepath = str(staging)
    # Weights in a file of their own, which ONNX Runtime maps (see graph_cache.LAYOUT).
    weights = staging.with_name(graph_cache.weights_name(optimised))
    prefix = "session.optimized_model_external_initializers_"
    opts.add_session_config_entry(prefix + "file_name", weights.name)
    opts.add_session_config_entry(prefix + "min_size_in_bytes", "1024")
    try:
        session = ort.InferenceSession(model, opts, providers=providers)
    except Exception as exc:  # e.g. a full disk; without saving, the model itself decides
        log.debug("could not write optimised graph %s: %s", staging, exc)
        staging.unlink(missing_ok=True)
        weights.unlink(missing_ok=True)
        return unsaved(model)
    try:
        os.replace(staging, optimised)
    except OSError as exc:
        log.debug("could not keep optimised graph %s: %s", optimised, exc)
        return session
    try:
        kept = ort.InferenceSession(str(optimised), options(disabled), providers=providers)
    except Exception:
        return session
    del session
    return kept
