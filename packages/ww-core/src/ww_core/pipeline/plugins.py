"""Adapter discovery through pluggy entry points, and routing a source to its adapter."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Iterable, Iterator, Mapping

import pluggy

from ww_core.platform import hookspecs
from ww_core.platform.adapter_hints import advice
from ww_core.platform.adapter_options import AdapterOptions
from ww_core.platform.protocol import PROTOCOL_VERSION, LayerMatrix
from ww_core.platform.untrusted import special_kind
from ww_core.sources import hf_cache


class UnknownSourceError(TypeError, ValueError):
    """No installed adapter recognizes the source (a ValueError too: for a path it is bad input, one CLI error line)."""


class EmptyModelError(ValueError):
    """The source was recognized but holds no weight matrix (e.g. an empty dict, a file of biases only)."""


#: Environment variable naming plugins (entry-point or distribution names, comma separated) not to load.
DISABLE_ENV = "WW_DISABLE_PLUGINS"
#: The name core's built-in sources are registered under.
BUILTIN = "ww-core"

#: The attributes pluggy's markers set on hook specifications and implementations.
SPEC_MARKER = f"{hookspecs.PROJECT}_spec"
IMPL_MARKER = f"{hookspecs.PROJECT}_impl"

log = logging.getLogger("ww_core")


@dataclass(frozen=True)
class Plugin:
    """One adapter as found: entry-point name, distribution, version, hooks it implements, and whether it loaded.

    ``status`` is "ok", "disabled" (named in WW_DISABLE_PLUGINS) or "broken" (``reason`` says why).
    """

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...] = ()
    status: str = "ok"
    reason: str = ""


@dataclass
class _Registry:
    manager: pluggy.PluginManager
    plugins: list[Plugin] = field(default_factory=list)


@lru_cache(maxsize=1)
def _registry() -> _Registry:
    """Core's built-ins plus every ``ww`` entry point, each loaded and validated on its own."""
    from ww_core.platform.version import __version__
    from ww_core.sources import builtin

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(builtin, name=BUILTIN)
    registry = _Registry(manager, [Plugin(BUILTIN, "ww-core", __version__, _implemented(builtin))])
    disabled = {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}
    for entry in sorted(entry_points(group=hookspecs.PROJECT), key=lambda e: e.name):
        registry.plugins.append(_load_entry_point(manager, entry, disabled))
    return registry


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager: built-in sources plus every installed ``ww`` entry point that loaded cleanly."""
    return _registry().manager


def plugins() -> list[Plugin]:
    """Every plugin found, loaded, disabled or broken (core's built-ins first)."""
    return list(_registry().plugins)


def reload_plugins() -> None:
    """Forget the loaded plugins, so the next use finds them again (after installing one, or changing WW_DISABLE_PLUGINS)."""
    _registry.cache_clear()


def _load_entry_point(manager: pluggy.PluginManager, entry: EntryPoint, disabled: set[str]) -> Plugin:
    """Import, validate and register one entry point; a failure becomes a broken Plugin and one warning."""
    dist = entry.dist
    distribution = dist.name if dist is not None else "?"
    version = dist.version if dist is not None else ""
    if disabled & {entry.name, distribution}:
        return Plugin(entry.name, distribution, version, status="disabled", reason=f"named in {DISABLE_ENV}")
    try:
        module = entry.load()
        problem = plugin_problem(module)
        if problem is None:
            manager.register(module, name=entry.name)
    except Exception as exc:  # any failure of a third party's code must leave ww working
        problem = f"{type(exc).__name__}: {exc}"
        if manager.get_plugin(entry.name) is not None:
            manager.unregister(name=entry.name)
    if problem is not None:
        reason = " ".join(problem.split())
        log.warning("plugin %r from %s %s is broken and was skipped: %s", entry.name, distribution, version, reason)
        return Plugin(entry.name, distribution, version, status="broken", reason=reason)
    return Plugin(entry.name, distribution, version, _implemented(module))


def _hook_names() -> tuple[str, ...]:
    """Every hook the ``ww`` project specifies (found from the spec markers, so new hooks count at once)."""
    return tuple(sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), SPEC_MARKER)))


def _implemented(module: Any) -> tuple[str, ...]:
    return tuple(name for name in _hook_names() if hasattr(getattr(module, name, None), IMPL_MARKER))


def plugin_problem(module: Any) -> str | None:
    """Why ``module`` cannot be a ww plugin (misspelled or unmarked hooks, bad hook arguments), or None.

    Checked in a scratch manager first, so a bad plugin never half-registers in the real one.
    """
    for name in dir(module):
        if not name.startswith("ww_") or not callable(getattr(module, name)):
            continue
        if name not in _hook_names():
            return f"{name} is not a ww hook (known hooks: {', '.join(_hook_names())})"
        if not hasattr(getattr(module, name), IMPL_MARKER):
            return f"{name} is not marked with @ww_core.hookimpl, so it would never be called"
    if not _implemented(module):
        return f"implements no ww hook (known hooks: {', '.join(_hook_names())})"
    scratch = pluggy.PluginManager(hookspecs.PROJECT)
    scratch.add_hookspecs(hookspecs)
    scratch.register(module)
    scratch.check_pending()
    return _protocol_problem(module)


def _protocol_problem(module: Any) -> str | None:
    """A mismatch between the adapter protocol ``module`` declares in ``ww_adapter_info`` and core's, or None.

    An adapter that declares none is taken to speak the current protocol.
    """
    from ww_core.platform.version import __version__

    info = getattr(module, "ww_adapter_info", None)
    declared = info().get("protocol", PROTOCOL_VERSION) if callable(info) else PROTOCOL_VERSION
    if declared == PROTOCOL_VERSION:
        return None
    return (
        f"written for adapter protocol {declared!r}, but ww-core {__version__} speaks protocol {PROTOCOL_VERSION}: "
        "install a release of the plugin made for this ww-core, or a ww-core it supports"
    )


def list_adapters() -> list[dict[str, Any]]:
    """Every plugin: name, distribution, version, hooks, status (ok/disabled/broken, with the reason), what it handles."""
    manager = plugin_manager()
    rows = []
    for plugin in plugins():
        loaded = manager.get_plugin(plugin.name)
        impl = getattr(loaded, "ww_adapter_info", None) if loaded is not None else None
        info = dict(impl()) if callable(impl) else {}
        info.update(
            name=plugin.name if plugin.name != BUILTIN else info.get("name", BUILTIN),
            distribution=plugin.distribution,
            version=plugin.version,
            hooks=list(plugin.hooks),
            status=plugin.status,
            reason=plugin.reason,
        )
        info.setdefault("package", plugin.distribution)
        info.setdefault("handles", "")
        rows.append(info)
    for name, loaded in manager.list_name_plugin():  # registered at run time (tests, notebooks), not by entry point
        if loaded is not None and name not in {plugin.name for plugin in plugins()}:
            rows.append(
                {
                    "name": name,
                    "distribution": "",
                    "version": "",
                    "hooks": list(_implemented(loaded)),
                    "status": "ok",
                    "reason": "",
                    "package": "",
                    "handles": "",
                }
            )
    return rows


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
    layers = list(found.layers)
    if not layers:
        raise EmptyModelError(f"{_describe(source)} holds no weight matrix (no tensor of 2 or more dimensions)")
    return SourceLayers(found.adapter, layers)


def collect_layers(source: Any, adapter_options: Mapping[str, Any] | None = None, adapter: str | None = None) -> list[LayerMatrix]:
    """All layers of ``source``; EmptyModelError when it has none."""
    return read_source(source, adapter_options, adapter).layers


def iter_layers(source: Any, adapter_options: Mapping[str, Any] | None = None, adapter: str | None = None) -> Iterable[LayerMatrix]:
    """The layers of ``source`` as its adapter lists them (see ``route``)."""
    return route(source, adapter_options, adapter).layers


@dataclass(frozen=True)
class _Routed:
    adapter: dict[str, str]
    layers: Iterable[LayerMatrix]


def route(source: Any, adapter_options: Mapping[str, Any] | None = None, adapter: str | None = None) -> _Routed:
    """Ask the adapters in routing order; the first whose ``ww_layers`` returns something reads ``source``.

    Routing order: adapters marked ``tryfirst``, then the others by name, core's built-ins
    (``trylast``) last. ``adapter`` (an entry-point or distribution name) asks that one alone.
    A Hugging Face cache repo folder or repo id is first resolved to its snapshot folder (offline).
    """
    source = hf_cache.resolve(source)
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(os.fspath(source)):
        if os.path.islink(os.fspath(source)):
            raise FileNotFoundError(f"{os.fspath(source)!r} is a link that leads nowhere (a loop, or its target is missing)")
        raise FileNotFoundError(f"no such file or directory: {os.fspath(source)!r}")
    found = first_result("ww_layers", adapter_options, adapter, source=source)
    if found is not None:
        return _Routed(_adapter_ref(found[0]), unique_names(found[1]))
    if adapter is not None:
        raise UnknownSourceError(f"adapter {adapter!r} does not recognize {_describe(source)}")
    raise unknown_source_error(source)


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


def first_result(
    hook: str, adapter_options: Mapping[str, Any] | None, adapter: str | None = None, **arguments: Any
) -> tuple[str, Any] | None:
    """Call ``hook`` of each plugin in routing order, each with its own view of the options; the first non-None answer.

    Returns (plugin name, answer), or None when every plugin declined.
    """
    options = AdapterOptions.from_mapping(adapter_options or {})
    _check_namespaces(options)
    for impl in _routing_order(hook, adapter):
        view = options.for_adapter(impl.plugin_name, _adapter_ref(impl.plugin_name)["distribution"]) if options.namespaces else options
        given = {**arguments, "options": view}
        answer = impl.function(*(given[name] for name in impl.argnames))
        if answer is not None:
            return impl.plugin_name, answer
    return None


def _check_namespaces(options: AdapterOptions) -> None:
    """Every namespace in ``extra`` names a plugin found (loaded, disabled or broken) or registered."""
    known = {name for name, _ in plugin_manager().list_name_plugin()}
    known |= {plugin.name for plugin in plugins()} | {plugin.distribution for plugin in plugins()}
    unknown = sorted(set(options.namespaces) - known)
    if unknown:
        raise ValueError(f"extra names no installed adapter: {', '.join(map(repr, unknown))}; adapters: {', '.join(sorted(known))}")


def _routing_order(hook: str, adapter: str | None) -> list[Any]:
    caller = getattr(plugin_manager().hook, hook)
    impls = [impl for impl in caller.get_hookimpls() if not (impl.wrapper or impl.hookwrapper)]
    impls.sort(key=lambda impl: (0 if impl.tryfirst else 2 if impl.trylast else 1, impl.plugin_name))
    if adapter is None:
        return impls
    chosen = [impl for impl in impls if adapter in (impl.plugin_name, _adapter_ref(impl.plugin_name)["distribution"])]
    if not chosen and hook == "ww_layers":
        usable = ", ".join(impl.plugin_name for impl in impls)
        raise UnknownSourceError(f"no installed adapter named {adapter!r}; adapters that read sources: {usable}")
    return chosen


def _adapter_ref(name: str) -> dict[str, str]:
    for plugin in plugins():
        if plugin.name == name:
            return {"name": name, "distribution": plugin.distribution, "version": plugin.version}
    return {"name": name, "distribution": "", "version": ""}
