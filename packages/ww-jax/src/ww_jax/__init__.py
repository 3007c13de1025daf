"""ww adapter for JAX/Flax: NNX modules, Linen variables, plain pytrees of arrays, msgpack and Orbax checkpoints.

Importing this module imports neither JAX nor Flax: objects are recognized only when
``jax``/``flax`` are already in ``sys.modules``, checkpoints by the ``.msgpack`` suffix or an Orbax ``_METADATA`` file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ww_core.platform.toolkit import AdapterOptions, LayerMatrix, hookimpl

FILE_SUFFIXES = (".msgpack",)


@hookimpl
def ww_adapter_info() -> dict[str, Any]:
    """Describe this adapter for ``ww plugins``."""
    return {
        "name": "jax",
        "package": "ww-jax",
        "handles": "flax.nnx.Module, Linen variables {'params': ...}, pytrees of jax arrays, .msgpack and Orbax checkpoints",
        "suffixes": [".msgpack", ".ocdbt"],  # .ocdbt: the manifest inside an Orbax checkpoint folder
        "modules": ["flax", "jax", "jaxlib"],
        "catch_all": True,  # Linen variables {'params': ...} restored as numpy arrays hold no jax object
        "protocol": 1,
        "options": [],
    }


@hookimpl
def ww_layers(source: Any, options: AdapterOptions) -> Iterable[LayerMatrix] | None:
    """Layers of a Flax/JAX model or checkpoint in module order; None if it is not one."""
    from ww_jax.records import to_layers

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir() and ((path / "_METADATA").is_file() or (path / "_CHECKPOINT_METADATA").is_file()):
            from ww_jax.orbax_checkpoint import item_folder, orbax_weights

            item = item_folder(path)
            return None if item is None else to_layers(orbax_weights(item), origin=str(item))
        if path.suffix.lower() not in FILE_SUFFIXES or not path.is_file():
            return None
        from ww_jax.msgpack_file import msgpack_weights

        return to_layers(msgpack_weights(path), origin=str(path))
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(source, nnx.Module):
        from ww_jax.nnx_modules import module_weights

        return to_layers(module_weights(source), origin=f"flax.nnx {type(source).__name__}")
    if nnx is not None and isinstance(source, nnx.State):
        raise TypeError("an nnx.State loses module classes and order; pass the module itself (nnx.merge(graphdef, state))")
    if _is_params_tree(source):
        from ww_jax.pytrees import tree_weights

        return to_layers(tree_weights(source, "pytree"), origin=f"pytree {type(source).__name__}")
    return None


def _is_params_tree(source: Any) -> bool:
    """Linen variables (a mapping with ``params``) or a nested dict/list holding jax arrays."""
    if isinstance(source, Mapping) and isinstance(source.get("params"), Mapping):
        return True
    jax = sys.modules.get("jax")
    if jax is None or not isinstance(source, (Mapping, list, tuple)):
        return False
    from ww_jax.pytrees import contains_jax_array

    return contains_jax_array(source, jax.Array)


@hookimpl
def ww_write_weights(source: Any, weights: Mapping[str, np.ndarray], output: Path | None) -> Any | None:
    """NNX modules change in place (returned); pytrees come back as a new pytree; msgpack files as a new file."""
    from ww_jax import write_back

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix.lower() not in FILE_SUFFIXES or not path.is_file():
            return None
        return write_back.write_msgpack(path, weights, output)
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(source, nnx.Module):
        return write_back.write_module(source, weights)
    if _is_params_tree(source):
        return write_back.write_tree(source, weights)
    return None
