"""The one interface every pose back-end implements, and shared ONNX Runtime plumbing."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge.poses import Poses

Image = npt.NDArray[np.uint8]


class PoseEstimator(Protocol):
    """Turns one BGR frame into `Poses` in that frame's pixel coordinates."""

    name: str

    def __call__(self, image: Image) -> Poses: ...


def make_session(path: Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session pinned to ``threads`` intra-op threads.

    Inter-op parallelism is off: these graphs are a single chain, and on a 4-core Pi the
    spare cores are better spent decoding the next frame.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
