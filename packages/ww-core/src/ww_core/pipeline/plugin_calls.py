"""The one guarded call site of plugin code: a plugin that raises, exits, prints or answers wrongly never breaks ww.

Every hook call (and every plugin import) goes through ``guarded``: its stdout goes to stderr (so
``--csv -`` stays clean), its time is counted per plugin and hook (``ww plugins --timing``, ``-v``), and
anything it raises except Ctrl-C becomes a ``PluginError`` naming the plugin and its distribution; a
plugin's ``sys.exit`` ends the call, never ww. The ``checked_*`` functions refuse malformed answers the
same way. What a failure means (broken for the run, fall back to core) is the caller's choice.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np

from ww_core.platform.adapter_options import option_specs
from ww_core.platform.plugin_stdout import stdout_to_stderr
from ww_core.platform.protocol import KIND_NDIM, LayerMatrix

T = TypeVar("T")

#: Relative tolerances of the checks on a plugin's eigenvalues: the smallest may be this far below zero
#: (relative to the largest), and their sum this far from ‖W‖²_F (a float32 Gram on a GPU stays far inside).
NEGATIVE_RTOL = 1e-4
TRACE_RTOL = 1e-3


class PluginError(ValueError):
    """A plugin failed when called or answered malformed data; the message names it, its distribution and the hook."""

    def __init__(self, plugin: str, hook: str, reason: str) -> None:
        super().__init__(f"plugin {plugin} failed in {hook}: {reason}")
        self.plugin, self.hook, self.reason = plugin, hook, reason


@dataclass
class HookTime:
    """How often a plugin's hook was called in this process, and the seconds it took in all."""

    calls: int = 0
    seconds: float = 0.0


_times: dict[tuple[str, str], HookTime] = defaultdict(HookTime)
_times_lock = threading.Lock()


def hook_times() -> dict[tuple[str, str], HookTime]:
    """(plugin, hook) → calls and seconds so far in this process."""
    with _times_lock:
        return {key: HookTime(value.calls, value.seconds) for key, value in _times.items()}


def _count(plugin: str, hook: str, seconds: float) -> None:
    with _times_lock:
        entry = _times[(plugin, hook)]
        entry.calls += 1
        entry.seconds += seconds


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def guarded(plugin: str, hook: str, call: Callable[[], T], passthrough: tuple[type[BaseException], ...] = ()) -> T:
    """``call()``, plugin code, with its stdout on stderr and its time counted; any failure a PluginError.

    Ctrl-C (KeyboardInterrupt) still interrupts. ``passthrough`` exceptions are the plugin's own verdict
    on the input (a corrupt file, an option it refuses) and pass unchanged.
    """
    started = time.perf_counter()
    try:
        with stdout_to_stderr():
            return call()
    except (KeyboardInterrupt, PluginError):
        raise
    except passthrough:
        raise
    except BaseException as exc:  # SystemExit too: a plugin's sys.exit must not end ww
        raise PluginError(plugin, hook, describe_exception(exc)) from exc
    finally:
        _count(plugin, hook, time.perf_counter() - started)


def checked_info(plugin: str, answer: Any) -> dict[str, Any]:
    """A ``ww_adapter_info`` answer as a plain dict, or a PluginError saying what is wrong with it."""
    if not isinstance(answer, Mapping):
        raise PluginError(plugin, "ww_adapter_info", f"returned {type(answer).__name__}, not a dict")
    info = dict(answer)
    for key in ("suffixes", "modules"):
        value = info.get(key, ())
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise PluginError(plugin, "ww_adapter_info", f"{key!r} must be a list of strings, got {value!r}")
    for suffix in info.get("suffixes", ()):
        if not (suffix.startswith(".") and len(suffix) > 1):  # "" would match every file at the most specific level
            raise PluginError(plugin, "ww_adapter_info", f"'suffixes' must start with a dot, like '.pt'; got {suffix!r}")
    for module in info.get("modules", ()):
        if not module.isidentifier() or module == "builtins":  # every class derives from builtins' object
            raise PluginError(plugin, "ww_adapter_info", f"'modules' must be top-level framework modules, like 'torch'; got {module!r}")
    if "options" in info:
        try:
            option_specs(info["options"])
        except ValueError as exc:
            raise PluginError(plugin, "ww_adapter_info", str(exc)) from None
    if not isinstance(info.get("catch_all", False), bool):
        raise PluginError(plugin, "ww_adapter_info", f"'catch_all' must be True or False, got {info['catch_all']!r}")
    return info


def checked_layers(plugin: str, answer: Any) -> list[LayerMatrix]:
    """Every layer a ``ww_layers`` answer lists (the listing runs guarded), each checked, or a PluginError."""
    if isinstance(answer, (str, bytes, Mapping)) or not isinstance(answer, Iterable):
        raise PluginError(plugin, "ww_layers", f"returned {type(answer).__name__}, not an iterable of LayerMatrix")
    listed = guarded(plugin, "ww_layers", lambda: list(answer), passthrough=(OSError, ValueError, ImportError))
    holders: dict[int, str] = {}
    for position, layer in enumerate(listed):
        problem = layer_problem(layer)
        if not problem and int(layer.index) in holders:  # one of the two rows would be lost
            problem = f"layer {layer.name!r}: index {layer.index} is also layer {holders[int(layer.index)]!r}'s"
        if problem:
            raise PluginError(plugin, "ww_layers", f"item {position}: {problem}")
        holders[int(layer.index)] = layer.name
    return listed


def layer_problem(layer: Any) -> str:
    """What is malformed about a listed layer (types, shape, loader), or ""."""
    if not isinstance(layer, LayerMatrix):
        return f"{type(layer).__name__} {layer!r:.40} is not a LayerMatrix"
    label = f"layer {layer.name!r}"
    if not isinstance(layer.name, str) or not layer.name:
        return f"layer name {layer.name!r} is not a non-empty string"
    if not isinstance(layer.index, (int, np.integer)) or isinstance(layer.index, bool) or layer.index < 0:
        return f"{label}: index {layer.index!r} is not a non-negative int"
    if not isinstance(layer.shape, tuple) or len(layer.shape) != KIND_NDIM[layer.kind]:
        return f"{label}: shape {layer.shape!r} is not a {KIND_NDIM[layer.kind]}-tuple"
    smallest = 0 if layer.skip else 1
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= smallest for d in layer.shape):
        return f"{label}: shape {layer.shape!r} needs integer sizes of at least {smallest}"
    if not callable(layer.load):
        return f"{label}: load is not callable"
    for attribute in ("origin", "framework_type", "device", "skip", "framework_path"):
        if not isinstance(getattr(layer, attribute), str):
            return f"{label}: {attribute} is {type(getattr(layer, attribute)).__name__}, not a string"
    return ""


def checked_spectra(plugin: str, matrices: list[np.ndarray], answer: Any) -> list[np.ndarray]:
    """A ``ww_eigenvalues`` answer as float64 arrays, after cheap checks against each matrix; a PluginError when wrong.

    Per matrix: min(N, M) values, finite, non-negative within round-off (then clipped at 0, as core
    does), summing to ‖W‖²_F (the trace of WᵀW).
    """
    if isinstance(answer, (str, bytes)) or not isinstance(answer, (list, tuple)):
        raise PluginError(plugin, "ww_eigenvalues", f"returned {type(answer).__name__}, not a list of arrays")
    if len(answer) != len(matrices):
        raise PluginError(plugin, "ww_eigenvalues", f"returned {len(answer)} spectra for {len(matrices)} matrices")
    checked = []
    for number, (matrix, found) in enumerate(zip(matrices, answer)):
        where = f"matrix {number} ({matrix.shape[0]}×{matrix.shape[1]})"
        try:
            evals = np.asarray(found, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise PluginError(plugin, "ww_eigenvalues", f"{where}: not real numbers ({describe_exception(exc)})") from None
        expected = min(matrix.shape)
        if evals.shape != (expected,):
            raise PluginError(plugin, "ww_eigenvalues", f"{where}: {evals.size} eigenvalues, expected {expected}")
        if not np.all(np.isfinite(evals)):
            raise PluginError(plugin, "ww_eigenvalues", f"{where}: eigenvalues not finite")
        scale = float(np.max(np.abs(evals))) if evals.size else 0.0
        if evals.size and float(np.min(evals)) < -NEGATIVE_RTOL * scale:
            raise PluginError(plugin, "ww_eigenvalues", f"{where}: negative eigenvalue {float(np.min(evals)):.6g}")
        trace = float(np.linalg.norm(matrix)) ** 2
        total = float(np.sum(evals))
        if not math.isclose(total, trace, rel_tol=TRACE_RTOL, abs_tol=1e-12):
            raise PluginError(plugin, "ww_eigenvalues", f"{where}: eigenvalues sum to {total:.6g}, but the trace ‖W‖²_F is {trace:.6g}")
        checked.append(np.sort(np.clip(evals, 0.0, None)))
    return checked
