"""Routing a source to the adapter that reads it, by declaration, and asking that adapter's other hooks.

Only adapters whose ``ww_adapter_info`` declaration matches a source are asked about it (``routing``); a
plugin that fails when called is broken for the rest of the run (one warning naming it and its
distribution) and the others go on. The registry of plugins is ``plugin_registry``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ww_core.pipeline.plugin_calls import PluginError, checked_layers, checked_spectra, guarded
from ww_core.pipeline.plugin_registry import (
    ALLOW_ENV,
    BUILTIN,
    DISABLE_ENV,
    FIRST_PARTY_DISTRIBUTIONS,
    Plugin,
    adapter_ref,
    hook_impl,
    hook_seconds,
    list_adapters,
    mark_broken,
    plugin_manager,
    plugin_problem,
    plugins,
    reader_key,
    refuse_spectra,
    registered,
    reload_plugins,
    spectra_refused,
    with_hook,
)
from ww_core.platform.adapter_hints import advice
from ww_core.platform.adapter_options import AdapterOptions, checked_extras
from ww_core.platform.protocol import LayerMatrix
from ww_core.platform.untrusted import special_kind
from ww_core.sources import hf_cache

__all__ = [
    "ALLOW_ENV",
    "BUILTIN",
    "DISABLE_ENV",
    "AmbiguousSourceError",
    "EmptyModelError",
    "PluginError",
    "SourceLayers",
    "UnknownSourceError",
    "collect_layers",
    "hook_seconds",
    "iter_layers",
    "list_adapters",
    "plugin_eigenvalues",
    "plugin_manager",
    "plugin_problem",
    "plugins",
    "read_source",
    "reader_key",
    "reload_plugins",
    "route",
    "unique_names",
    "unknown_source_error",
    "write_weights",
]


class UnknownSourceError(TypeError, ValueError):
    """No installed adapter recognizes the source (a ValueError too: for a path it is bad input, one CLI error line)."""


class AmbiguousSourceError(ValueError):
    """Two adapters with equally specific declarations both claim the source, or ``adapter=`` names two plugins."""


class EmptyModelError(ValueError):
    """The source was recognized but holds no weight matrix (e.g. an empty dict, a file of biases only)."""


VERDICTS: tuple[type[BaseException], ...] = (OSError, ValueError, ImportError)


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"path {os.fspath(source)!r}"
    return f"object of type {type(source).__module__}.{type(source).__qualname__}"


def unknown_source_error(source: Any) -> UnknownSourceError:
    """An error listing the installed adapters and the package that would read ``source``; for a FIFO or a device, that only
    regular files are read (no adapter opens one)."""
    kind = special_kind(source) if isinstance(source, (str, os.PathLike)) and not os.path.isdir(source) else None
    if kind is not None:
        return UnknownSourceError(f"{os.fspath(source)}: not a regular file ({kind}): only regular files are read")
    adapters = list_adapters()
    installed = ", ".join(str(a.get("name", "?")) for a in adapters if a.get("status") == "ok")
    what = f"no installed adapter recognizes {_describe(source)}"
    return UnknownSourceError(f"{what}. Installed adapters: {installed}.{advice(source, adapters)}")


@dataclass(frozen=True)
class SourceLayers:
    """A source's layers and the adapter that read them: ``adapter`` holds its name, distribution and version."""

    adapter: dict[str, str]
    layers: list[LayerMatrix]


def read_source(source: Any, adapter_options: Mapping[str, Any] | None = None, adapter: str | None = None) -> SourceLayers:
    """All layers of ``source`` and who read them; EmptyModelError when there are none, so no one mistakes it for a model."""
    found = route(source, adapter_options, adapter)
    if not found.layers:
        raise EmptyModelError(f"{_describe(source)} holds no weight matrix (no tensor of 2 or more dimensions)")
    return found


def collect_layers(source: Any, adapter_options: Mapping[str, Any] | None = None, adapter: str | None = None) -> list[LayerMatrix]:
    """All layers of ``source``; EmptyModelError when it has none."""
    return read_source(source, adapter_options, adapter).layers


def iter_layers(source: Any, adapter_options: Mapping[str, Any] | None = None, adapter: str | None = None) -> Iterable[LayerMatrix]:
    """The layers of ``source`` as its adapter lists them (see ``route``)."""
    return route(source, adapter_options, adapter).layers


def route(source: Any, adapter_options: Mapping[str, Any] | None = None, adapter: str | None = None) -> SourceLayers:
    """The adapter that reads ``source`` and its layers (listed and checked), chosen by declaration.

    Only adapters whose ``ww_adapter_info`` declaration matches the source are asked, the most specific
    first (``routing``); within one level core's built-ins (``trylast``) yield to the others, and two
    others claiming the source is an AmbiguousSourceError naming both. ``adapter`` (an entry-point or
    distribution name) asks that one alone. A Hugging Face cache repo folder or repo id is first
    resolved to its snapshot folder (offline).
    """
    source = hf_cache.resolve(source)
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(os.fspath(source)):
        if os.path.islink(os.fspath(source)):
            raise FileNotFoundError(f"{os.fspath(source)!r} is a link that leads nowhere (a loop, or its target is missing)")
        raise FileNotFoundError(f"no such file or directory: {os.fspath(source)!r}")
    options = AdapterOptions.from_mapping(adapter_options or {})
    _check_namespaces(options)
    if adapter is not None:
        chosen = _chosen(adapter, "ww_layers")
        layers = _ask_layers(chosen, source, options, explicit=True)
        if layers is None:
            raise UnknownSourceError(f"adapter {adapter!r} does not recognize {_describe(source)}")
        return SourceLayers(adapter_ref(chosen), list(unique_names(layers)))
    for level_plugins in _candidates(source):
        for group in (level_plugins[0], level_plugins[1]):  # the others first, then core's built-ins (trylast)
            claims = [(p, layers) for p in group if (layers := _ask_layers(p, source, options, explicit=False)) is not None]
            if len(claims) > 1:
                names = " and ".join(_ref_words(p) for p, _ in claims)
                raise AmbiguousSourceError(
                    f"{names} both read {_describe(source)} with equally specific declarations; "
                    f"choose one with adapter=NAME (--adapter NAME)"
                )
            if claims:
                plugin, layers = claims[0]
                return SourceLayers(adapter_ref(plugin), list(unique_names(layers)))
    raise unknown_source_error(source)


def _candidates(source: Any) -> list[tuple[list[Plugin], list[Plugin]]]:
    """The plugins whose declaration matches ``source``, by level (most specific first): (others, built-ins) per level."""
    levels: dict[int, tuple[list[Plugin], list[Plugin]]] = {}
    for plugin in with_hook("ww_layers"):
        level = plugin.declaration.level(source)
        if level is not None:
            others, fallbacks = levels.setdefault(level, ([], []))
            (fallbacks if _is_trylast(plugin) else others).append(plugin)
    return [levels[level] for level in sorted(levels)]


def _is_trylast(plugin: Plugin) -> bool:
    return bool(hook_impl(plugin, "ww_layers").trylast)


def _call(plugin: Plugin, hook: str, options: AdapterOptions, passthrough: tuple[type[BaseException], ...], **arguments: Any) -> Any:
    """``plugin``'s ``hook`` with its own view of the options, guarded."""
    impl = hook_impl(plugin, hook)
    specs = plugin.specs
    view = options.for_adapter(plugin.key, plugin.name, plugin.distribution, specs=specs) if options.namespaces or specs else options
    given = {**arguments, "options": view}
    return guarded(plugin.label, hook, lambda: impl.function(*(given[name] for name in impl.argnames)), passthrough)


def _ask_layers(plugin: Plugin, source: Any, options: AdapterOptions, *, explicit: bool) -> list[LayerMatrix] | None:
    """``plugin``'s layers of ``source`` (listed and checked), or None when it declines or failed (it is then broken)."""
    try:
        answer = _call(plugin, "ww_layers", options, VERDICTS, source=source)
        return None if answer is None else checked_layers(plugin.label, answer)
    except PluginError as exc:
        if explicit or plugin.key == BUILTIN:  # core's own reader is never switched off by one file
            raise
        mark_broken(plugin, exc)
        return None
    except VERDICTS as exc:
        raise _named(exc, plugin) from exc


def _named(verdict: BaseException, plugin: Plugin) -> BaseException:
    """A third-party plugin's verdict on the source, its message naming the plugin (a catch-all refusing everything
    would otherwise be anonymous); core's and the first-party adapters' verdicts name their file already."""
    if plugin.key == BUILTIN or plugin.distribution in FIRST_PARTY_DISTRIBUTIONS:
        return verdict
    message = f"{verdict} (said by plugin {plugin.label})"
    try:
        return type(verdict)(message)
    except Exception:  # an exception type that takes other arguments
        return ValueError(message)


def _chosen(adapter: str, hook: str) -> Plugin:
    """The one working plugin ``adapter`` names (entry-point, manager or distribution name)."""
    usable = with_hook(hook)
    chosen = [p for p in usable if adapter in (p.name, p.key, p.distribution)]
    if len(chosen) > 1:
        named = " and ".join(_ref_words(p) for p in chosen)
        raise AmbiguousSourceError(f"adapter {adapter!r} names {named}: choose one by its distribution name")
    if not chosen:
        broken = [p for p in plugins() if adapter in (p.name, p.distribution) and p.status != "ok"]
        if broken:
            raise UnknownSourceError(f"adapter {adapter!r} is {broken[0].status}: {broken[0].reason}")
        names = ", ".join(p.name for p in usable)
        raise UnknownSourceError(f"no installed adapter named {adapter!r}; adapters that read sources: {names}")
    return chosen[0]


def _ref_words(plugin: Plugin) -> str:
    where = " ".join(part for part in (plugin.distribution, plugin.version) if part)
    return f"{plugin.name} ({where})" if where else plugin.name


def unique_names(layers: Iterable[LayerMatrix]) -> Iterator[LayerMatrix]:
    """``layers`` with every name unique: rows, ESDs, base models and comparisons are matched by name.

    Two tensors can normalize to one name (``fc.weight`` and ``fc``); a later one keeps its stored
    path (``framework_path``) when that is free, else gets ``#2``, ``#3``, ...
    """
    seen: set[str] = set()
    for layer in layers:
        name = layer.name
        if name in seen:
            name = layer.framework_path if layer.framework_path and layer.framework_path not in seen else name
            count = 2
            while name in seen:
                name, count = f"{layer.name}#{count}", count + 1
            layer = replace(layer, name=name)
        seen.add(name)
        yield layer


def write_weights(reader: str, adapter_options: Mapping[str, Any] | None, **arguments: Any) -> Any | None:
    """The reader's ``ww_write_weights`` answer (None when it has no such hook or declines); its failures name it."""
    plugin = next((p for p in with_hook("ww_write_weights") if p.key == reader or p.name == reader), None)
    if plugin is None:
        return None
    options = AdapterOptions.from_mapping(adapter_options or {})
    return _call(plugin, "ww_write_weights", options, (*VERDICTS, KeyError), **arguments)


def plugin_eigenvalues(
    reader: str | None, layer: LayerMatrix, matrices: Sequence[np.ndarray], options: AdapterOptions
) -> list[np.ndarray] | None:
    """Spectra of ``matrices`` from the adapter that read the source (``reader``), or from an adapter the user gave
    options to in ``extra`` (``torch.torch_device=cuda`` on a safetensors file); None when none offers them.

    No other adapter is asked. Each answer is checked (``checked_spectra``): a wrong one, or a failure, is one
    warning naming the plugin, and core computes the spectra from then on. A ValueError, OSError or ImportError
    is the adapter's verdict on the options the user gave it (``torch_device='nonsense'``): it fails the layer's row.
    """
    asked = [name for name in (reader, *options.namespaces) if name]
    for plugin in with_hook("ww_eigenvalues"):
        if spectra_refused(plugin) or not {plugin.key, plugin.name, plugin.distribution} & set(asked):
            continue
        try:
            answer = _call(plugin, "ww_eigenvalues", options, VERDICTS, layer=layer, matrices=matrices)
            if answer is not None:
                return checked_spectra(plugin.label, list(matrices), answer)
        except PluginError as exc:
            refuse_spectra(plugin, exc)
    return None


def _check_namespaces(options: AdapterOptions) -> None:
    """Every namespace in ``extra`` names a plugin found (loaded, disabled or broken) or registered."""
    known = {name for name, _ in plugin_manager().list_name_plugin()}
    known |= {plugin.name for plugin in plugins()} | {plugin.distribution for plugin in plugins()}
    unknown = sorted(set(options.namespaces) - known)
    if unknown:
        raise ValueError(f"extra names no installed adapter: {', '.join(map(repr, unknown))}; adapters: {', '.join(sorted(known))}")
    for plugin in registered():
        given = {
            key: value for name in (plugin.key, plugin.name, plugin.distribution) for key, value in options.namespaces.get(name, {}).items()
        }
        specs = plugin.specs
        if specs is not None and given:
            checked_extras(plugin.name, given, specs)
