"""ww-torch: PyTorch modules, state dicts, ``.pt``/``.pth``/``.bin`` files and shard folders for ww.

Registered under the ``ww`` entry-point group. Importing this module does not import torch:
sources are recognized by ``sys.modules``, type and file suffix first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ww_core.platform.toolkit import AdapterOptions, LayerMatrix, hookimpl
from ww_torch.recognize import source_kind, wants_torch_spectra


@hookimpl
def ww_adapter_info() -> dict[str, Any]:
    """Describe this adapter for ``ww plugins``."""
    return {
        "name": "torch",
        "package": "ww-torch",
        "handles": "torch.nn.Module, state dict of tensors, .pt/.pth/.bin files, folders of .bin/.pt shards",
        "suffixes": [".pt", ".pth", ".bin", ".bin.index.json"],
        "modules": ["torch", "transformers", "peft"],
        "protocol": 1,
        "options": [
            {"name": "split_gates", "type": "bool", "default": False, "help": "LSTM/GRU/RNN weights as one row per gate"},
            {"name": "torch_spectra", "type": "bool", "default": False, "help": "compute eigenvalues with torch on the CPU"},
            {"name": "torch_device", "type": "str", "default": None, "help": "compute eigenvalues with torch on this device"},
            {"name": "torch_precision", "type": "str", "default": "float64", "help": "torch spectra dtype: float64 or float32"},
        ],
    }


@hookimpl
def ww_layers(source: Any, options: AdapterOptions) -> Iterable[LayerMatrix] | None:
    """The layers of a torch source in architecture order, or None when ``source`` is not one."""
    kind = source_kind(source)
    if kind is None:
        return None
    from ww_torch import sources

    return sources.layers(source, kind, options)


@hookimpl
def ww_eigenvalues(layer: LayerMatrix, matrices: Sequence[Any], options: AdapterOptions) -> list[np.ndarray] | None:
    """Spectra with torch: on ``torch_device``, on the layer's GPU, or (``torch_spectra``) on the CPU; else None (core computes).

    Also None when ``exact`` asks for a full SVD: this Gram + eigvalsh route is not one.
    """
    if options.get("exact") or not wants_torch_spectra(layer.device, options):
        return None
    from ww_torch import spectra

    return spectra.eigenvalues(matrices, spectra.target_device(layer.device, options), spectra.precision(options))


@hookimpl
def ww_write_weights(source: Any, weights: Mapping[str, np.ndarray], output: Path | None, options: AdapterOptions) -> Any | None:
    """Modules and state dicts change in place (returned); files and shard folders are saved anew to ``output``."""
    kind = source_kind(source)
    if kind is None:
        return None
    from ww_torch import write_back

    return write_back.write(source, kind, weights, output, options)
