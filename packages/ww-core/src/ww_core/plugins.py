"""Adapter discovery through pluggy entry points, and routing a source to its adapter."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Iterable

import pluggy

from ww_core import hookspecs
from ww_core.protocol import LayerMatrix
from ww_core.sources import hf_cache


class UnknownSourceError(TypeError, ValueError):
    """No installed adapter recognizes the source (a ValueError too: for a path it is bad input, one CLI error line)."""


class EmptyModelError(ValueError):
    """The source was recognized but holds no weight matrix (e.g. an empty dict, a file of biases only)."""


#: Where a source that no installed adapter claims most likely belongs.
_PACKAGE_BY_MODULE = {
    "torch": "ww-torch",
    "transformers": "ww-torch",
    "peft": "ww-torch",
    "keras": "ww-keras",
    "tensorflow": "ww-keras",
    "tf_keras": "ww-keras",
    "flax": "ww-jax",
    "jax": "ww-jax",
    "jaxlib": "ww-jax",
    "onnx": "ww-onnx",
}
_PACKAGE_BY_SUFFIX = {
    ".pt": "ww-torch",
    ".pth": "ww-torch",
    ".bin": "ww-torch",
    ".keras": "ww-keras",
    ".h5": "ww-keras",
    ".hdf5": "ww-keras",
    ".msgpack": "ww-jax",
    ".onnx": "ww-onnx",
    ".gguf": "ww-gguf",
}


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager: built-in sources plus every installed ``ww`` entry point."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    from ww_core.sources import builtin

    manager.register(builtin, name="ww-core")
    manager.load_setuptools_entrypoints(hookspecs.PROJECT)
    return manager


def list_adapters() -> list[dict[str, str]]:
    """Name, distribution, version and handled sources of every adapter (core's built-ins first)."""
    manager = plugin_manager()
    versions = {id(plugin): str(dist.version) for plugin, dist in manager.list_plugin_distinfo()}
    rows = []
    for plugin in manager.get_plugins():
        impl = getattr(plugin, "ww_adapter_info", None)
        info = dict(impl()) if callable(impl) else {}
        info.setdefault("name", manager.get_name(plugin) or "?")
        info.setdefault("package", "?")
        info.setdefault("handles", "?")
        info.setdefault("version", versions.get(id(plugin), ""))
        rows.append(info)
    rows.sort(key=lambda row: (row["name"] != "ww-core", row["name"]))
    return rows


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"path {os.fspath(source)!r}"
    return f"object of type {type(source).__module__}.{type(source).__qualname__}"


def _suggested_package(source: Any) -> str | None:
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        suffix = os.path.splitext(path)[1].lower()
        if os.path.isdir(path):
            names = os.listdir(path)
            for name in names:
                found = _PACKAGE_BY_SUFFIX.get(os.path.splitext(name)[1].lower())
                if found:
                    return found
        return _PACKAGE_BY_SUFFIX.get(suffix)
    root = type(source).__module__.split(".")[0]
    return _PACKAGE_BY_MODULE.get(root)


def unknown_source_error(source: Any) -> UnknownSourceError:
    """An error listing the installed adapters and the package that would read ``source``."""
    installed = ", ".join(a.get("name", "?") for a in list_adapters())
    hint = _suggested_package(source)
    advice = f" Install it with: pip install {hint}" if hint else " No known adapter package handles it."
    return UnknownSourceError(f"no installed adapter recognizes {_describe(source)}. Installed adapters: {installed}.{advice}")


def collect_layers(source: Any, adapter_options: dict[str, Any] | None = None) -> list[LayerMatrix]:
    """All layers of ``source``; EmptyModelError when it has none, so no one mistakes it for a model."""
    layers = list(iter_layers(source, adapter_options))
    if not layers:
        raise EmptyModelError(f"{_describe(source)} holds no weight matrix (no tensor of 2 or more dimensions)")
    return layers


def iter_layers(source: Any, adapter_options: dict[str, Any] | None = None) -> Iterable[LayerMatrix]:
    """Route ``source`` to the first adapter that recognizes it and return its layers.

    A Hugging Face cache repo folder or repo id is first resolved to its snapshot folder (offline).
    """
    source = hf_cache.resolve(source)
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(os.fspath(source)):
        raise FileNotFoundError(f"no such file or directory: {os.fspath(source)!r}")
    layers = plugin_manager().hook.ww_layers(source=source, options=dict(adapter_options or {}))
    if layers is None:
        raise unknown_source_error(source)
    return layers
