"""Eigenvalues of WᵀW computed by torch on the layer's own device (GPU), batched over same-shape matrices.

``torch_precision`` "float64" (default) accumulates the Gram matrix and its eigenvalues in
float64: equal to core's numpy path within 1e-10 of the largest eigenvalue. "float32" computes
in float32 (fast on GPUs): within 1e-4 of the largest eigenvalue. Never below float32.
``torch_device`` ("cuda", "cuda:1", "mps", "cpu") computes every layer's spectra there, whatever the
source: a safetensors checkpoint or a CPU model analyzed on a GPU.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections import defaultdict
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ww_torch.recognize import ACCELERATORS

PRECISIONS = {"float64": torch.float64, "float32": torch.float32}
#: The complex dtype of each precision, for complex matrices (``conv2d_fft``): a cast to real would drop the imaginary part.
_COMPLEX = {torch.float64: torch.complex128, torch.float32: torch.complex64}

#: torch's accelerator linear algebra is loaded lazily, and that load is not thread-safe: layers on worker
#: threads calling eigvalsh at once failed with "lazy wrapper should be called at most once" (pytorch#90613).
#: The device runs one solver at a time anyway, so they take turns.
_linalg_lock = threading.Lock()


def precision(options: Mapping[str, Any]) -> torch.dtype:
    """The accumulation dtype named by ``torch_precision``; anything but float32/float64 is an error."""
    name = str(options.get("torch_precision", "float64"))
    if name not in PRECISIONS:
        raise ValueError(f"torch_precision must be one of {sorted(PRECISIONS)}, got {name!r}")
    return PRECISIONS[name]


def target_device(layer_device: str, options: Mapping[str, Any]) -> torch.device:
    """Where to compute: ``torch_device`` when given (checked to exist), else the layer's accelerator, else the CPU."""
    asked = options.get("torch_device")
    if not asked:
        return torch.device(layer_device if layer_device.split(":")[0] in ACCELERATORS else "cpu")
    try:
        device = torch.device(str(asked))
        if device.type == "meta":
            raise RuntimeError("meta tensors hold no values")
        kind, _, index = str(asked).partition(":")  # torch wraps large indices ('cuda:4096' is cuda:0): read it here
        if kind == "cuda" and index.isdigit() and int(index) >= torch.cuda.device_count():
            raise RuntimeError(f"this machine has {torch.cuda.device_count()} CUDA device(s)")
        torch.zeros(1, device=device)  # allocates: an absent device index fails here, not in the first layer
    except Exception as exc:  # an unknown name, or a backend this torch was built without or cannot see
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"torch_device {asked!r} is not usable here: {reason}") from None
    return device


def eigenvalues(matrices: Sequence[Any], target: torch.device, dtype: torch.dtype) -> list[np.ndarray]:
    """One ascending float64 numpy array of squared singular values per matrix (min(out, in) values); complex ones too."""
    result: list[np.ndarray] = [np.empty(0)] * len(matrices)
    groups: dict[tuple[tuple[int, ...], bool], list[int]] = defaultdict(list)
    for i, matrix in enumerate(matrices):
        groups[(tuple(np.shape(matrix)), bool(np.iscomplexobj(matrix)))].append(i)
    for (shape, is_complex), members in groups.items():
        with warnings.catch_warnings():  # read-only (memory-mapped) arrays: never written, stack() copies them
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            stack = (
                torch.stack([torch.as_tensor(np.asarray(matrices[i])) for i in members])
                .to(target)
                .to(_COMPLEX[dtype] if is_complex else dtype)
            )
        adjoint = stack.mH  # conjugate transpose: conv2d_fft's matrices are complex, and their Gram matrix is Hermitian
        grams = adjoint @ stack if shape[0] >= shape[1] else stack @ adjoint
        with _linalg_lock if target.type != "cpu" else contextlib.nullcontext():
            evals = torch.linalg.eigvalsh(grams).clamp_min(0).to(torch.float64).cpu().numpy()
        for i, values in zip(members, evals):
            result[i] = values
    return result
