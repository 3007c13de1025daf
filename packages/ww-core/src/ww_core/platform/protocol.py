"""The layer-matrix protocol: what an adapter hands to ww-core for each weight matrix.

An adapter never computes anything; it only says which weights a layer has, in which
canonical layout (docs/layouts.md), and how to load them when core asks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Literal, Mapping

import numpy as np

from ww_core.platform.plugin_stdout import stdout_to_stderr
from ww_core.spectra.shapes import KIND_NDIM, widen_to_float

LayerKind = Literal["dense", "conv1d", "conv2d", "conv3d", "embedding"]

#: The version of the adapter protocol (hooks, LayerMatrix, AdapterOptions) this ww-core speaks. Adapters state
#: the version they were written for as a literal in ``ww_adapter_info()["protocol"]``; core skips, as broken,
#: an adapter written for another one. It changes only when a change would make old adapters silently wrong.
PROTOCOL_VERSION = 1

#: Fewest eigenvalues a layer needs to be analyzed by default (``min_evals``); adapters use it to list a stack of
#: matrices smaller than that (a million 1x1 experts) as one skipped row instead of one row each.
DEFAULT_MIN_EVALS = 8

#: The conv kind of a canonical (out, in, *kernel) tensor, by its rank.
CONV_KIND_BY_RANK: Mapping[int, LayerKind] = MappingProxyType({3: "conv1d", 4: "conv2d", 5: "conv3d"})


def _is_core(load: object) -> bool:
    """Whether ``load`` is ww-core's own (a monitor snapshot's copy, core's readers): it prints nothing, and swapping
    ``sys.stdout`` for it would divert other threads' prints (a training loop's) to stderr meanwhile."""
    module = getattr(load, "__module__", None) or type(load).__module__
    return isinstance(module, str) and module.split(".")[0] == "ww_core"


def unanalyzable_reason(dtype: str, shape: tuple[int, ...]) -> str:
    """Why a tensor that looks like a weight matrix (by rank) is not analyzed, or "" when it is: the one rule of every route.

    ``dtype`` is the dtype's name ("int32", "bool", "bfloat16"; a "torch." prefix is ignored).
    Integer and bool tensors are ids, masks or quantized codes without their scales, not weights;
    complex, text and record tensors are no real weight matrix; a tensor with a zero-size axis has no
    spectrum. Adapters set ``LayerMatrix.skip`` to the result.
    """
    name = dtype.removeprefix("torch.")
    if 0 in shape:
        return f"empty tensor, shape {tuple(shape)}: no spectrum"
    if name == "bool":
        return "bool dtype: a mask, not a weight matrix"
    if name.startswith(("int", "uint", "qint", "quint")):
        return f"integer dtype {name}: ids or quantized codes, not a floating-point weight matrix"
    if name.startswith(("complex", "str", "bytes", "void", "<U", "|S", "|V")):
        return f"dtype {name}: not a real floating-point weight matrix"
    return ""


class LayerLoadError(ValueError):
    """Raised when a layer's weights cannot be loaded or are not in the promised layout."""


@dataclass(frozen=True)
class LayerMatrix:
    """One analyzable weight tensor, described without loading it.

    ``shape`` is the canonical shape: (out, in) for dense, (vocab, dim) for embedding,
    (out, in, *kernel) for convs. ``load`` returns the canonical array in a floating-point dtype
    (float16, bfloat16, float32 or float64; quantized tensors dequantized there); core widens
    to float32/float64. ``origin`` names the file or object it came from,
    for error messages; ``framework_type`` is the framework's own class name; ``device``
    is where the tensor lives (e.g. "cuda:0"), so an adapter's ``ww_eigenvalues`` hook
    can compute the spectrum there. ``skip``, when not empty, says why core must not analyze
    this tensor although it looks like a weight (``unanalyzable_reason``): it gets a skipped
    row with that reason and is never loaded. ``reference_id`` is the id weightwatcher 0.7.7
    gives this layer when it reads the same source (its framework enumeration index; None when
    it does not enumerate the layer or the source): ``WeightWatcher`` selects by it.
    ``name`` is the canonical name (module path, dots, no leaf suffix such as ``.weight``,
    ``/kernel``), the same through every route; ``framework_path`` keeps the framework's own
    path of the tensor (``fc1.weight``, ``Dense_0/kernel``) for the ``longname`` column.
    """

    name: str
    index: int
    kind: LayerKind
    shape: tuple[int, ...]
    load: Callable[[], np.ndarray] = field(repr=False, compare=False)
    origin: str = ""
    framework_type: str = ""
    device: str = "cpu"
    skip: str = ""
    reference_id: int | None = None
    framework_path: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KIND_NDIM:
            raise ValueError(f"layer {self.name!r}: unknown kind {self.kind!r}; expected one of {sorted(KIND_NDIM)}")
        if len(self.shape) != KIND_NDIM[self.kind]:
            raise ValueError(f"layer {self.name!r}: kind {self.kind!r} needs a {KIND_NDIM[self.kind]}-D canonical shape, got {self.shape}")

    def weights(self) -> np.ndarray:
        """Load the canonical weights, widened to float32/float64 and checked against ``shape``."""
        where = f" in {self.origin}" if self.origin else ""
        redirect = stdout_to_stderr() if not _is_core(self.load) else contextlib.nullcontext()
        try:
            with redirect:  # an adapter's code: its prints never reach --csv -
                array = np.asarray(self.load())
        except (LayerLoadError, KeyboardInterrupt):
            raise
        except SystemExit as exc:  # a loader's sys.exit fails its layer, never ends ww
            raise LayerLoadError(f"layer {self.name!r}{where}: cannot load weights: SystemExit: {exc.code}") from exc
        except Exception as exc:  # an adapter's loader failed: name the layer, keep the cause
            raise LayerLoadError(f"layer {self.name!r}{where}: cannot load weights: {exc}") from exc
        if tuple(array.shape) != tuple(self.shape):
            raise LayerLoadError(f"layer {self.name!r}{where}: loaded shape {tuple(array.shape)} differs from declared {self.shape}")
        if array.dtype.kind != "f" and array.dtype.name != "bfloat16":
            raise LayerLoadError(
                f"layer {self.name!r}{where}: weights have dtype {array.dtype}; load() must return floating-point weights "
                "(dequantize there; an integer tensor is listed with skip=unanalyzable_reason(...))"
            )
        return widen_to_float(array)
