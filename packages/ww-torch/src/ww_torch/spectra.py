"""Eigenvalues of WᵀW computed by torch on the layer's own device (GPU), batched over same-shape matrices.

``torch_precision`` "float64" (default) accumulates the Gram matrix and its eigenvalues in
float64: equal to core's numpy path within 1e-10 of the largest eigenvalue. "float32" computes
in float32 (fast on GPUs): within 1e-4 of the largest eigenvalue. Never below float32.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np
import torch

from ww_torch.recognize import ACCELERATORS

PRECISIONS = {"float64": torch.float64, "float32": torch.float32}


def precision(options: dict[str, Any]) -> torch.dtype:
    """The accumulation dtype named by ``torch_precision``; anything but float32/float64 is an error."""
    name = str(options.get("torch_precision", "float64"))
    if name not in PRECISIONS:
        raise ValueError(f"torch_precision must be one of {sorted(PRECISIONS)}, got {name!r}")
    return PRECISIONS[name]


def eigenvalues(matrices: Sequence[Any], device: str, dtype: torch.dtype) -> list[np.ndarray]:
    """One ascending float64 numpy array of squared singular values per matrix (min(out, in) values)."""
    target = torch.device(device if device.split(":")[0] in ACCELERATORS else "cpu")
    result: list[np.ndarray] = [np.empty(0)] * len(matrices)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, matrix in enumerate(matrices):
        groups[tuple(np.shape(matrix))].append(i)
    for shape, members in groups.items():
        stack = torch.stack([torch.as_tensor(np.asarray(matrices[i])) for i in members]).to(target).to(dtype)
        adjoint = stack.transpose(-1, -2)
        grams = adjoint @ stack if shape[0] >= shape[1] else stack @ adjoint
        evals = torch.linalg.eigvalsh(grams).clamp_min(0).to(torch.float64).cpu().numpy()
        for i, values in zip(members, evals):
            result[i] = values
    return result
