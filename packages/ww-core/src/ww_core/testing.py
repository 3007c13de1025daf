"""Conformance kit for adapters: call these from an adapter's own tests (pure numpy, no framework).

Each ``check_*`` raises ``AssertionError`` with a message naming the layer and the problem,
so it reads well under pytest. Typical use in an adapter's test suite::

    from ww_core import testing
    import my_adapter

    layers = testing.check_layers(my_adapter.ww_layers(model, {}))
    testing.check_lazy(lambda: my_adapter.ww_layers(path, {}), mutate=lambda: rewrite_weights(path))
    testing.check_declines(my_adapter.ww_layers)
    testing.assert_rows_close(ww_core.analyze(model).details, ww_core.analyze(reference).details)
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ww_core.platform.adapter_options import option_specs
from ww_core.platform.protocol import KIND_NDIM, PROTOCOL_VERSION, LayerMatrix

__all__ = [
    "HEAVY_MODULES",
    "NAMING_COLUMNS",
    "assert_rows_close",
    "check_adapter_info",
    "check_clear_error",
    "check_cli_error",
    "check_declines",
    "check_declines_quietly",
    "check_description",
    "check_eigenvalues",
    "check_layer",
    "check_layers",
    "check_lazy",
    "check_lists_without_reading",
    "check_plugin",
    "check_write_back",
    "foreign_sources",
]

LayersHook = Callable[[Any, dict[str, Any]], Iterable[LayerMatrix] | None]
WriteHook = Callable[..., Any]

#: Columns that name a row rather than measure it; ignored by ``assert_rows_close`` by default.
NAMING_COLUMNS = ("name", "longname", "framework_type", "origin", "error")


def check_description(layer: LayerMatrix) -> str:
    """Check what a layer says of itself without loading it (kind, canonical shape, name); returns its label for messages.

    A skipped tensor (``skip`` set) may have an empty axis: that is one reason to skip it.
    """
    label = f"layer {layer.index} {layer.name!r}" + (f" in {layer.origin}" if layer.origin else "")
    assert isinstance(layer, LayerMatrix), f"{label}: adapters must yield ww_core.LayerMatrix, got {type(layer).__name__}"
    assert layer.kind in KIND_NDIM, f"{label}: unknown kind {layer.kind!r}; expected one of {sorted(KIND_NDIM)}"
    ndim = KIND_NDIM[layer.kind]
    assert len(layer.shape) == ndim, f"{label}: kind {layer.kind!r} needs {ndim} dims, shape is {layer.shape}"
    smallest = 0 if layer.skip else 1
    assert all(isinstance(d, int) and d >= smallest for d in layer.shape), (
        f"{label}: shape {layer.shape} must be Python ints of at least {smallest}"
    )
    assert layer.name, f"{label}: empty name"
    return label


def check_layer(layer: LayerMatrix) -> np.ndarray:
    """Check one layer against the protocol and return its loaded canonical array."""
    label = check_description(layer)
    raw = layer.load()
    assert isinstance(raw, np.ndarray), f"{label}: load() must return a numpy array, got {type(raw).__module__}.{type(raw).__name__}"
    assert tuple(raw.shape) == tuple(layer.shape), f"{label}: load() gave shape {tuple(raw.shape)} but the canonical shape is {layer.shape}"
    floating = np.issubdtype(raw.dtype, np.floating) or raw.dtype.name == "bfloat16"
    assert floating, f"{label}: load() gave dtype {raw.dtype}; weights must be floating point (dequantize quantized tensors in load)"
    assert np.all(np.isfinite(raw)), f"{label}: weights contain NaN or inf"
    return raw


def check_layers(layers: Iterable[LayerMatrix] | None, *, min_layers: int = 1) -> list[LayerMatrix]:
    """Check an adapter's whole layer stream: protocol per layer, indices 0..n-1 in order, unique names.

    A skipped tensor (``skip`` set, docs/writing-adapters.md) is checked without loading it: core never loads it.
    """
    assert layers is not None, "the adapter returned None: it did not recognize a source it should handle"
    listed = list(layers)
    assert len(listed) >= min_layers, f"expected at least {min_layers} layer(s), got {len(listed)}"
    indices = [layer.index for layer in listed]
    assert indices == list(range(len(listed))), f"layer indices must be 0..{len(listed) - 1} in order, got {indices}"
    seen: dict[str, int] = {}
    for layer in listed:
        assert layer.name not in seen, f"layer name {layer.name!r} is used by layers {seen[layer.name]} and {layer.index}"
        seen[layer.name] = layer.index
        if layer.skip:
            check_description(layer)
        else:
            check_layer(layer)
    return listed


def check_lazy(iterate: Callable[[], Iterable[LayerMatrix] | None], mutate: Callable[[], None]) -> None:
    """Check that weights are read at ``load()`` time, not while the layers are listed.

    ``iterate`` lists the layers of a source; ``mutate`` changes every weight of that source
    in place (rewrite the file, assign new values to the model). Layers listed *before* the
    change must load the *changed* weights, as freshly listed layers do.
    """
    before = [np.array(layer.load()) for layer in _listed(iterate)]  # copies: a memory map would follow the file
    listed = _listed(iterate)
    mutate()
    fresh = [layer.load() for layer in _listed(iterate)]
    assert len(fresh) == len(listed), f"the source listed {len(listed)} layers before mutate() and {len(fresh)} after"
    for layer, old, new in zip(listed, before, fresh, strict=True):
        assert not np.array_equal(old, new), f"layer {layer.name!r}: mutate() did not change its weights, so laziness cannot be judged"
        loaded = layer.load()
        assert np.array_equal(loaded, new), f"layer {layer.name!r}: weights were captured while listing layers, not read in load()"


def _listed(iterate: Callable[[], Iterable[LayerMatrix] | None]) -> list[LayerMatrix]:
    layers = iterate()
    assert layers is not None, "the adapter returned None for its own source"
    return list(layers)


#: Frameworks an adapter must not import just to decline a source that is not its own.
HEAVY_MODULES = ("torch", "tensorflow", "keras", "jax", "flax", "onnx", "onnxruntime", "gguf", "transformers")


@contextlib.contextmanager
def foreign_sources(suffixes: Sequence[str] = ()) -> Iterator[list[tuple[str, Any]]]:
    """(what, source) pairs no adapter should claim, in a temporary folder removed afterwards.

    Plain objects, numbers, numpy data, unrelated paths; and for each of ``suffixes`` a file
    with the right suffix but random content, and a folder named like the suffix.
    """
    with tempfile.TemporaryDirectory(prefix="ww-foreign-") as folder:
        plain = os.path.join(folder, "plain")
        os.mkdir(plain)
        text_file = os.path.join(plain, "notes.txt")
        with open(text_file, "w", encoding="utf-8") as handle:
            handle.write("not a model\n")
        sources: list[tuple[str, Any]] = [
            ("foreign", source) for source in (object(), 42, "no-such-model-file.xyz", text_file, plain, [1, 2, 3], np.zeros(3))
        ]
        sources.append(("foreign", {"w": np.zeros((4, 4))}))
        for suffix in suffixes:
            wrong = os.path.join(folder, f"random{suffix}")
            with open(wrong, "wb") as handle:
                handle.write(np.random.default_rng(0).bytes(4096))
            named = os.path.join(folder, f"folder{suffix}")
            os.mkdir(named)
            with open(os.path.join(named, "notes.txt"), "w", encoding="utf-8") as handle:
                handle.write("a folder, not a model file\n")
            sources += [("right suffix, wrong content", wrong), ("folder named like the suffix", named)]
        yield sources


def check_declines(ww_layers: LayersHook, sources: Sequence[Any] | None = None, *, suffixes: Sequence[str] = ()) -> None:
    """Check that the adapter's ``ww_layers`` returns None (lets others try) for sources that are not its own.

    Give the file ``suffixes`` your adapter reads: a file with that suffix but random content must
    be declined or refused with an error naming it (never read as layers), and a folder named like
    the suffix must be declined.
    """
    with foreign_sources(suffixes) as made:
        cases = made if sources is None else [("foreign", source) for source in sources] + made[len(made) - 2 * len(suffixes) :]
        for what, source in cases:
            try:
                claimed = ww_layers(source, {})
                if claimed is not None and what == "right suffix, wrong content":
                    claimed = list(claimed)  # a lazy listing may refuse the file only when iterated
            except Exception as exc:  # raising blocks every other adapter, unless the file is yours and broken
                if what == "right suffix, wrong content" and str(source) in str(exc):
                    continue
                raise AssertionError(f"ww_layers raised {type(exc).__name__} for a {what} source {source!r}: {exc}") from exc
            assert claimed is None, f"ww_layers claimed a {what} source {source!r}; return None for sources that are not yours"


def check_declines_quietly(module: str, heavy: Sequence[str] = HEAVY_MODULES) -> None:
    """Check, in a fresh interpreter, that importing adapter ``module`` and declining foreign sources imports none of ``heavy``.

    (A file with your suffix is yours to open, with your framework if need be: it is not among the sources here.)
    """
    script = (
        "import importlib, json, sys\n"
        "from ww_core import testing\n"
        f"adapter = importlib.import_module({module!r})\n"
        "testing.check_declines(adapter.ww_layers)\n"
        f"print(json.dumps([name for name in {list(heavy)!r} if name in sys.modules]))\n"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=environment)
    assert done.returncode == 0, f"declining foreign sources failed in a fresh interpreter: {done.stderr.strip()[-2000:]}"
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert not imported, f"{module} imported {imported} while declining sources that are not its own; check the source before importing"


def check_lists_without_reading(iterate: Callable[[], Iterable[LayerMatrix] | None], weight_bytes: int, fraction: float = 0.25) -> None:
    """Check that listing layers reads no tensor data: memory allocated while listing stays under ``fraction`` of the weights.

    Give a source whose weights total ``weight_bytes`` (a few MiB, so metadata is negligible beside them).
    """
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        listed = _listed(iterate)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if started:
            tracemalloc.stop()
    assert listed, "the adapter listed no layers"
    assert peak < fraction * weight_bytes, (
        f"{peak} bytes were allocated while listing layers whose weights hold {weight_bytes}: "
        "tensors are read or decoded while listing; read only shapes and dtypes there, the data in load()"
    )


def check_eigenvalues(
    ww_eigenvalues: Callable[..., Any], layers: Iterable[LayerMatrix], rtol: float = 1e-8, extra: Mapping[str, Any] | None = None
) -> None:
    """Check an adapter's ``ww_eigenvalues`` against core's spectra (relative to the largest eigenvalue), exact=True included.

    ``extra`` are your adapter's own options (e.g. the one that turns the hook on). A hook may
    decline (return None) any call, and must decline ``exact=True`` unless it computes a full SVD.
    """
    from ww_core.platform.adapter_options import AdapterOptions
    from ww_core.spectra.matrices import layer_matrices
    from ww_core.spectra.spectrum import eigenvalues

    for layer in layers:
        matrices = layer_matrices(layer.weights(), layer.kind, pool=True, conv2d_norm=True)
        for exact in (False, True):
            found = ww_eigenvalues(layer=layer, matrices=matrices, options=AdapterOptions(exact=exact, extra=dict(extra or {})))
            if found is None:
                continue
            expected = eigenvalues(matrices, exact=exact)
            assert len(found) == len(expected), f"layer {layer.name!r}: {len(found)} spectra for {len(expected)} matrices"
            for got, want in zip(found, expected, strict=True):
                got = np.sort(np.asarray(got, dtype=np.float64))
                assert got.shape == want.shape, f"layer {layer.name!r}: {got.shape[0]} eigenvalues, core has {want.shape[0]}"
                gap = float(np.max(np.abs(got - np.sort(want)))) / max(float(np.max(want)), np.finfo(float).tiny)
                assert gap <= rtol, f"layer {layer.name!r} (exact={exact}): eigenvalues differ from core's by {gap:.2e} of the largest"


def check_plugin(module: Any) -> None:
    """Check that ``module`` registers with pluggy as a ww plugin: every ``ww_*`` function a marked hook with valid arguments."""
    from ww_core.pipeline.plugins import plugin_problem

    try:
        problem = plugin_problem(module)
    except Exception as exc:  # pluggy's validation errors
        problem = " ".join(str(exc).split())
    assert problem is None, f"{getattr(module, '__name__', module)} is not a valid ww plugin: {problem}"


def check_write_back(
    ww_layers: LayersHook, ww_write_weights: WriteHook, source: Any, options: dict[str, Any] | None = None, output: Any = None
) -> Any:
    """Check ``ww_write_weights`` round trips: each layer's own weights read back identical, doubled ones doubled.

    Doubling is exact in every float dtype, so a hook that writes nothing fails. Returns the doubled model.

    ``options`` is passed to both hooks; give ``output`` (a new path) for a file source. The hook may
    change ``source`` in place or return a new object or path: the returned value is read again.
    """
    given = dict(options or {})
    layers = _listed(lambda: ww_layers(source, given))
    original = {layer.name: np.array(layer.load()) for layer in layers}
    updated: Any = None
    for label, factor in (("unchanged", 1.0), ("doubled", 2.0)):
        written = {name: array * factor for name, array in original.items()}
        arguments = {"source": source, "weights": written, "output": None if output is None else Path(output), "options": given}
        accepted = inspect.signature(ww_write_weights).parameters
        updated = ww_write_weights(**{name: value for name, value in arguments.items() if name in accepted})
        assert updated is not None, "ww_write_weights returned None for a source its ww_layers reads"
        reread = ww_layers(updated, given)
        assert reread is not None, "ww_layers does not read the model ww_write_weights returned"
        again = {layer.name: layer.load() for layer in reread}
        assert list(again) == list(original), f"layers after writing {label} weights: {list(again)} instead of {list(original)}"
        for name, array in written.items():
            assert np.array_equal(again[name], array), f"layer {name!r}: written {label} weights read back different"
    return updated


def check_clear_error(action: Callable[[], Any], *needles: str, error: type[BaseException] = Exception) -> BaseException:
    """Check that ``action`` fails with ``error`` whose message mentions every needle (a file, a layer, the problem)."""
    try:
        action()
    except error as exc:
        message = str(exc)
        missing = [needle for needle in needles if needle not in message]
        assert not missing, f"error message {message!r} does not mention {missing}"
        return exc
    raise AssertionError(f"expected {error.__name__} mentioning {list(needles)}, but nothing was raised")


def check_adapter_info(info: dict[str, Any]) -> None:
    """Check an adapter's ``ww_adapter_info()``: the keys ``ww plugins`` shows, and well-formed hints.

    ``suffixes`` must be a list of lower-case suffixes with their dot, ``modules`` a list of top-level module names,
    ``catch_all`` a bool, ``options`` a list of {name, type, default, help}, ``protocol`` (when given) the adapter
    protocol this ww-core speaks.
    """
    missing = [key for key in ("name", "package", "handles") if not info.get(key)]
    assert not missing, f"ww_adapter_info() lacks {missing}: {info}"
    suffixes, modules = info.get("suffixes", []), info.get("modules", [])
    assert isinstance(suffixes, list) and all(isinstance(s, str) and s.startswith(".") and s == s.lower() for s in suffixes), (
        f"ww_adapter_info()['suffixes'] must be a list like ['.pt', '.pth'], got {suffixes!r}"
    )
    assert isinstance(modules, list) and all(isinstance(m, str) and m.isidentifier() for m in modules), (
        f"ww_adapter_info()['modules'] must be a list of top-level module names like ['torch'], got {modules!r}"
    )
    catch_all = info.get("catch_all", False)
    assert isinstance(catch_all, bool), f"ww_adapter_info()['catch_all'] must be True or False, got {catch_all!r}"
    if "options" in info:
        try:
            option_specs(info["options"])
        except ValueError as exc:
            raise AssertionError(f"ww_adapter_info()['options']: {exc}") from None
    protocol = info.get("protocol", PROTOCOL_VERSION)
    assert protocol == PROTOCOL_VERSION, (
        f"ww_adapter_info()['protocol'] is {protocol!r}; this ww-core speaks adapter protocol {PROTOCOL_VERSION} (write it as a literal)"
    )


def assert_rows_close(
    rows: Sequence[dict[str, Any]],
    expected: Sequence[dict[str, Any]],
    *,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    columns: Iterable[str] | None = None,
    ignore: Iterable[str] = NAMING_COLUMNS,
) -> None:
    """Check two analyses' rows agree: same count, same non-numeric values, numbers within tolerance (NaN equals NaN).

    ``columns`` restricts the comparison; by default every column of ``expected`` except ``ignore``.
    """
    assert len(rows) == len(expected), f"got {len(rows)} rows, expected {len(expected)}"
    skipped = set(ignore)
    for position, (row, want) in enumerate(zip(rows, expected, strict=True)):
        label = f"row {position} ({row.get('name')!r} vs {want.get('name')!r})"
        for column in columns if columns is not None else [c for c in want if c not in skipped]:
            assert column in row, f"{label}: column {column!r} is missing"
            got, ref = row[column], want[column]
            if _is_number(got) and _is_number(ref):
                if math.isnan(float(ref)) or math.isnan(float(got)):
                    assert math.isnan(float(ref)) and math.isnan(float(got)), f"{label}: {column} = {got}, expected {ref}"
                else:
                    assert math.isclose(float(got), float(ref), rel_tol=rtol, abs_tol=atol), (
                        f"{label}: {column} = {got!r}, expected {ref!r} (difference {float(got) - float(ref):.3g})"
                    )
            else:
                assert got == ref, f"{label}: {column} = {got!r}, expected {ref!r}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_cli_error(path: str | os.PathLike[str], *needles: str, commands: Sequence[str] = ("analyze", "describe")) -> list[str]:
    """Check that ``ww analyze PATH`` and ``ww describe PATH`` refuse a bad file as the README promises.

    Exit code 2, exactly one line ``ww: error: ...`` on stderr mentioning the file's name and every
    needle, nothing on stdout, no traceback. Returns the error lines.
    """
    from ww_core.cli import main

    lines = []
    for command in commands:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([command, os.fspath(path)])
            except BaseException as exc:  # anything escaping main would be a traceback
                raise AssertionError(f"ww {command} {path}: {type(exc).__name__} escaped: {exc}") from exc
        text = err.getvalue()
        assert code == 2, f"ww {command} {path}: exit code {code}, stderr {text!r}"
        assert text.count("\n") == 1 and text.startswith("ww: error: "), f"ww {command} {path}: not one error line: {text!r}"
        assert "Traceback" not in text and not out.getvalue(), f"ww {command} {path}: printed more than one line"
        missing = [needle for needle in (os.path.basename(os.fspath(path)), *needles) if needle not in text]
        assert not missing, f"ww {command} {path}: error {text!r} does not mention {missing}"
        lines.append(text.rstrip("\n"))
    return lines
