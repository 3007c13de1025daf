"""The plugin registry: core's built-ins and every ``ww`` entry point, each loaded and validated on its own.

Loading, the WW_PLUGINS allowlist and WW_DISABLE_PLUGINS, entry-point name collisions (kept apart by
distribution), plugins registered at run time, and which plugins are broken for this run. Plugin code
runs only through ``plugin_calls.guarded``.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Mapping

import pluggy

from ww_core.pipeline.plugin_calls import PluginError, checked_info, describe_exception, guarded, hook_times
from ww_core.pipeline.routing import Declaration
from ww_core.platform import hookspecs
from ww_core.platform.adapter_hints import FIRST_PARTY
from ww_core.platform.adapter_options import OptionSpec, option_specs
from ww_core.platform.protocol import PROTOCOL_VERSION

#: Environment variable naming plugins (entry-point or distribution names, comma separated) not to load.
DISABLE_ENV = "WW_DISABLE_PLUGINS"
#: Environment variable (and ``--plugins``) naming the only plugins to load: names, ``first-party``, or ``none``.
ALLOW_ENV = "WW_PLUGINS"
#: The name core's built-in sources are registered under.
BUILTIN = "ww-core"
#: The distributions ``WW_PLUGINS=first-party`` loads.
FIRST_PARTY_DISTRIBUTIONS = frozenset(hint.package for hint in FIRST_PARTY)
#: The attributes pluggy's markers set on hook specifications and implementations.
SPEC_MARKER = f"{hookspecs.PROJECT}_spec"
IMPL_MARKER = f"{hookspecs.PROJECT}_impl"

log = logging.getLogger("ww_core")


@dataclass(frozen=True)
class Plugin:
    """One adapter as found: entry-point name, distribution, version, hooks it implements, and whether it works.

    ``status`` is "ok", "disabled" (named in WW_DISABLE_PLUGINS, or left out by WW_PLUGINS) or "broken"
    (``reason`` says why: at load, or when a call failed in this run). ``key`` is its name in the plugin
    manager (the entry-point name, or ``name@distribution`` when two distributions use one name); ``info``
    is its ``ww_adapter_info`` answer, asked once.
    """

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...] = ()
    status: str = "ok"
    reason: str = ""
    key: str = ""
    info: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        """``'name' (distribution version)``, how messages name the plugin."""
        where = " ".join(part for part in (self.distribution, self.version) if part)
        return f"{self.name!r} ({where})" if where else repr(self.name)

    @property
    def declaration(self) -> Declaration:
        """The sources it asks to be asked about (``routing``)."""
        return Declaration.of(self.info)

    @property
    def specs(self) -> tuple[OptionSpec, ...] | None:
        """The options it declares (None: it declares none, and any key reaches it)."""
        return option_specs(self.info["options"]) if "options" in self.info else None


@dataclass
class _Registry:
    manager: pluggy.PluginManager
    plugins: list[Plugin] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)
    no_spectra: dict[str, str] = field(default_factory=dict)
    runtime: dict[int, Plugin] = field(default_factory=dict)  # id(object) → record, for plugins registered at run time
    lock: threading.Lock = field(default_factory=threading.Lock)


@lru_cache(maxsize=1)
def _registry() -> _Registry:
    """Core's built-ins plus every ``ww`` entry point, each loaded and validated on its own."""
    from ww_core.platform.version import __version__
    from ww_core.sources import builtin

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(builtin, name=BUILTIN)
    core = Plugin(BUILTIN, "ww-core", __version__, _implemented(builtin), key=BUILTIN, info=builtin.ww_adapter_info())
    registry = _Registry(manager, [core])
    disabled = {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}
    for entry in sorted(entry_points(group=hookspecs.PROJECT), key=lambda e: (e.name, e.dist.name if e.dist else "")):
        registry.plugins.append(_load_entry_point(manager, entry, disabled))
    _warn_unknown_names(registry.plugins)
    return registry


def _warn_unknown_names(found: list[Plugin]) -> None:
    """One warning per plugin list naming no plugin found: a typo would load every plugin but the one meant, or none."""
    known = {plugin.name for plugin in found} | {plugin.distribution for plugin in found} | {"first-party", "none"}
    for variable, label in ((ALLOW_ENV, f"--plugins/{ALLOW_ENV}"), (DISABLE_ENV, DISABLE_ENV)):
        names = [name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown:
            installed = ", ".join(sorted(plugin.name for plugin in found))
            log.warning("%s names no installed plugin: %s (installed: %s)", label, ", ".join(map(repr, unknown)), installed)


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager: built-in sources plus every installed ``ww`` entry point that loaded cleanly."""
    return _registry().manager


def plugins() -> list[Plugin]:
    """Every plugin found by entry point, loaded, disabled or broken (core's built-ins first), as it stands in this run."""
    return [_as_run(p) for p in _registry().plugins]


def _as_run(plugin: Plugin) -> Plugin:
    """``plugin`` marked broken when one of its calls failed in this run."""
    registry = _registry()
    with registry.lock:
        reason = registry.broken.get(plugin.key) if plugin.key else None
    return replace(plugin, status="broken", reason=reason) if reason else plugin


def reload_plugins() -> None:
    """Forget the loaded plugins, so the next use finds them again (after installing one, or changing WW_PLUGINS)."""
    _registry.cache_clear()


def _not_allowed(entry: str, distribution: str) -> str:
    """Why WW_PLUGINS leaves this plugin out, or "" (unset: every plugin loads)."""
    value = os.environ.get(ALLOW_ENV, "").strip()
    if not value:
        return ""
    allowed = {name.strip() for name in value.split(",") if name.strip()}
    if {entry, distribution} & allowed or ("first-party" in allowed and distribution in FIRST_PARTY_DISTRIBUTIONS):
        return ""
    return f"not in --plugins/{ALLOW_ENV}={value}"


def _load_entry_point(manager: pluggy.PluginManager, entry: EntryPoint, disabled: set[str]) -> Plugin:
    """Import, validate and register one entry point; a failure becomes a broken Plugin and one warning."""
    dist = entry.dist
    found = Plugin(entry.name, dist.name if dist is not None else "?", dist.version if dist is not None else "")
    if disabled & {entry.name, found.distribution}:
        return replace(found, status="disabled", reason=f"named in {DISABLE_ENV}")
    left_out = _not_allowed(entry.name, found.distribution)
    if left_out:
        return replace(found, status="disabled", reason=left_out)
    key = entry.name if manager.get_plugin(entry.name) is None else f"{entry.name}@{found.distribution}"
    try:
        module = guarded(found.label, "import", entry.load)
        problem = structure_problem(module)
        info: dict[str, Any] = {}
        if problem is None and callable(getattr(module, "ww_adapter_info", None)):
            info = checked_info(found.label, guarded(found.label, "ww_adapter_info", module.ww_adapter_info))
            problem = _protocol_problem(info)
        if problem is None:
            manager.register(module, name=key)
    except PluginError as exc:
        problem = exc.reason if exc.hook == "import" else f"{exc.hook}: {exc.reason}"
    except Exception as exc:  # pluggy's own refusals (the same module under two names, ...)
        problem = describe_exception(exc)
    if problem is not None:
        reason = " ".join(problem.split())
        log.warning("plugin %s is broken and was skipped: %s", found.label, reason)
        return replace(found, status="broken", reason=reason)
    return replace(found, hooks=_implemented(module), key=key, info=info)


def _hook_names() -> tuple[str, ...]:
    """Every hook the ``ww`` project specifies (found from the spec markers, so new hooks count at once)."""
    return tuple(sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), SPEC_MARKER)))


def _implemented(module: Any) -> tuple[str, ...]:
    return tuple(name for name in _hook_names() if hasattr(getattr(module, name, None), IMPL_MARKER))


def structure_problem(module: Any) -> str | None:
    """Why ``module`` cannot be a ww plugin (misspelled or unmarked hooks, bad hook arguments), or None; calls nothing of it.

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
    return None


def plugin_problem(module: Any) -> str | None:
    """Why ``module`` cannot be a ww plugin: its structure, a ``ww_adapter_info`` that fails or is malformed, its protocol."""
    problem = structure_problem(module)
    if problem is not None or not callable(getattr(module, "ww_adapter_info", None)):
        return problem
    label = repr(getattr(module, "__name__", "plugin"))
    try:
        return _protocol_problem(checked_info(label, guarded(label, "ww_adapter_info", module.ww_adapter_info)))
    except PluginError as exc:
        return f"{exc.hook}: {exc.reason}"


def _protocol_problem(info: Mapping[str, Any]) -> str | None:
    """A mismatch between the adapter protocol ``info`` declares and core's, or None (none declared: the current one)."""
    from ww_core.platform.version import __version__

    declared = info.get("protocol", PROTOCOL_VERSION)
    if declared == PROTOCOL_VERSION:
        return None
    return (
        f"written for adapter protocol {declared!r}, but ww-core {__version__} speaks protocol {PROTOCOL_VERSION}: "
        "install a release of the plugin made for this ww-core, or a ww-core it supports"
    )


def _runtime_plugin(key: str, module: Any) -> Plugin:
    """A plugin registered at run time (tests, notebooks), not by entry point: its info is asked once, guarded."""
    registry = _registry()
    with registry.lock:
        known = registry.runtime.get(id(module))
    if known is not None and known.key == key:
        return known
    found = Plugin(key, "", "", _implemented(module), key=key)
    try:
        if callable(getattr(module, "ww_adapter_info", None)):
            found = replace(found, info=checked_info(found.label, guarded(found.label, "ww_adapter_info", module.ww_adapter_info)))
    except PluginError as exc:
        mark_broken(found, exc)
    with registry.lock:
        registry.runtime[id(module)] = found
    return found


def registered() -> list[Plugin]:
    """Every plugin registered now (entry points that loaded, and any registered at run time), as it stands in this run."""
    registry = _registry()
    by_key = {p.key: p for p in registry.plugins if p.key}
    found = []
    for key, module in registry.manager.list_name_plugin():
        if module is not None:
            found.append(_as_run(by_key.get(key) or _runtime_plugin(key, module)))
    return found


def mark_broken(plugin: Plugin, error: PluginError) -> None:
    """Mark ``plugin`` broken for the rest of the run, with one warning naming it, its distribution and the failure."""
    registry = _registry()
    with registry.lock:
        if plugin.key in registry.broken:
            return
        registry.broken[plugin.key] = f"{error.hook}: {error.reason}"
    log.warning("%s; ww goes on without it for this run", error)


def refuse_spectra(plugin: Plugin, error: PluginError) -> None:
    """Stop asking ``plugin`` for spectra for the rest of the run (it still reads its sources), with one warning."""
    registry = _registry()
    with registry.lock:
        if plugin.key in registry.no_spectra:
            return
        registry.no_spectra[plugin.key] = error.reason
    log.warning("%s; core computes the spectra instead for the rest of this run", error)


def spectra_refused(plugin: Plugin) -> bool:
    """Whether ``plugin``'s spectra were refused earlier in this run (``refuse_spectra``)."""
    registry = _registry()
    with registry.lock:
        return plugin.key in registry.no_spectra


def list_adapters() -> list[dict[str, Any]]:
    """Every plugin: name, distribution, version, hooks, status (ok/disabled/broken, with the reason), what it handles and reads."""
    rows = []
    listed = plugins()
    keys = {plugin.key for plugin in listed if plugin.key}
    for plugin in listed + [p for p in registered() if p.key not in keys]:
        row = dict(plugin.info)
        row.update(
            name=plugin.name if plugin.name != BUILTIN else str(plugin.info.get("name", BUILTIN)),
            distribution=plugin.distribution,
            version=plugin.version,
            hooks=list(plugin.hooks),
            status=plugin.status,
            reason=plugin.reason,
            declares=plugin.declaration.words(),
        )
        row.setdefault("package", plugin.distribution)
        row.setdefault("handles", "")
        rows.append(row)
    return rows


def with_hook(hook: str) -> list[Plugin]:
    """Working plugins implementing ``hook``, by name."""
    return sorted((p for p in registered() if p.status == "ok" and hook in p.hooks), key=lambda p: (p.name, p.key))


def hook_impl(plugin: Plugin, hook: str) -> Any:
    caller = getattr(plugin_manager().hook, hook)
    return next(impl for impl in caller.get_hookimpls() if impl.plugin_name == plugin.key)


def adapter_ref(plugin: Plugin) -> dict[str, str]:
    """What results record of the adapter that read a source: its name, distribution and version."""
    return {"name": plugin.name if plugin.key != BUILTIN else BUILTIN, "distribution": plugin.distribution, "version": plugin.version}


def reader_key(adapter: Mapping[str, str]) -> str | None:
    """The manager key of the plugin an ``adapter_ref`` names (None when it is no longer registered)."""
    for plugin in registered():
        if (plugin.name, plugin.distribution) == (adapter.get("name"), adapter.get("distribution")):
            return plugin.key
    return None


def hook_seconds() -> list[tuple[str, str, int, float]]:
    """(plugin, hook, calls, seconds) for every plugin hook called in this process, the slowest first."""
    found = [(plugin, hook, t.calls, t.seconds) for (plugin, hook), t in hook_times().items()]
    return sorted(found, key=lambda item: -item[3])
