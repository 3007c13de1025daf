"""Keras kernel layouts → ww's canonical layouts (docs/layouts.md); pure numpy, no Keras import.

Every reader (live model, ``.keras``, legacy ``.h5``) describes a weight as a
``KerasWeight``; ``to_layer`` decides its kind and canonical shape from the owning layer's
class and the variable's name and shape alone, and puts the conversion inside ``load``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np

from ww_core.platform.toolkit import CONV_KIND_BY_RANK, LayerKind, LayerMatrix

if TYPE_CHECKING:
    from ww_keras.file_refs import KerasFileRef

#: Owner classes whose ``kernel`` is (*k, in, out).
CONV_CLASSES = frozenset({"Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D"})
#: Owner classes whose ``kernel`` is (*k, out, in).
CONV_TRANSPOSE_CLASSES = frozenset({"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "Convolution2DTranspose"})
#: Owner classes whose ``kernel`` (Keras 3) or ``depthwise_kernel`` (Keras 2) is (*k, in, multiplier).
DEPTHWISE_CLASSES = frozenset({"DepthwiseConv1D", "DepthwiseConv2D"})
#: Attention layers whose projections are EinsumDense sublayers.
ATTENTION_CLASSES = frozenset({"MultiHeadAttention", "GroupedQueryAttention"})
#: Variables that hold a weight matrix; biases, norms and states are not analyzed.
MATRIX_VARIABLES = frozenset({"kernel", "recurrent_kernel", "embeddings", "depthwise_kernel", "pointwise_kernel"})
#: Classes ww-keras reads by their own layout; any other class's weights are read by rank.
KNOWN_CLASSES = (
    CONV_CLASSES
    | CONV_TRANSPOSE_CLASSES
    | DEPTHWISE_CLASSES
    | ATTENTION_CLASSES
    | frozenset(
        {"Dense", "EinsumDense", "Embedding", "SeparableConv1D", "SeparableConv2D", "LSTM", "GRU", "SimpleRNN", "LSTMCell", "GRUCell"}
        | {"SimpleRNNCell", "Bidirectional", "TimeDistributed"}
    )
)
#: GRU layers, whose stacked gate blocks Keras keeps as z, r, h and torch (ww's canonical order) as r, z, n.
GRU_CLASSES = frozenset({"GRU", "GRUCell"})
#: Built-in classes whose rank-2+ variables are no weight matrices (PReLU's slopes, normalization statistics).
NON_MATRIX_CLASSES = frozenset({"PReLU", "Normalization", "BatchNormalization", "LayerNormalization", "GroupNormalization"})


@dataclass(frozen=True)
class KerasWeight:
    """One Keras variable: owning layer path and class, variable name, stored shape and reader.

    ``in_axes`` lists the kernel axes an EinsumDense contracts with its input (None for
    other layers); ``reference_id`` is the id weightwatcher 0.7.7 gives its layer;
    ``write`` assigns a stored-layout array (live models only); ``file_ref`` says where a file keeps it, so a
    worker process can read it itself (ww_keras.file_refs).
    """

    layer_path: str
    variable: str
    owner_class: str
    shape: tuple[int, ...]
    read: Callable[[], np.ndarray]
    in_axes: tuple[int, ...] | None = None
    reference_id: int | None = None
    write: Callable[[np.ndarray], None] | None = None
    file_ref: KerasFileRef | None = None


Transform = Callable[[np.ndarray], np.ndarray]
Operation = Literal["as_is", "transpose", "permute", "einsum", "depthwise", "gru"]


@dataclass(frozen=True)
class KerasLayout:
    """Stored → canonical as plain values (picklable): ``op`` with its ``axes`` (a permutation) and canonical ``shape``."""

    op: Operation = "as_is"
    axes: tuple[int, ...] = ()
    shape: tuple[int, ...] = ()

    def apply(self, array: np.ndarray) -> np.ndarray:
        """``array`` in the canonical layout."""
        if self.op == "transpose":
            return np.transpose(array)
        if self.op == "permute":
            return np.transpose(array, self.axes)
        if self.op == "einsum":
            return np.transpose(array, self.axes).reshape(self.shape)
        if self.op == "depthwise":  # (*k, in, mult) → (in·mult, 1, *k): torch's grouped-conv layout, channel c·mult + m
            kernel = self.shape[2:]
            return np.moveaxis(array.reshape(*kernel, self.shape[0]), len(kernel), 0)[:, None]
        if self.op == "gru":
            return _gru_in_torch_gate_order(array)
        return np.asarray(array)


def einsum_in_axes(equation: str) -> tuple[int, ...]:
    """Kernel axes of an EinsumDense equation (``"abc,cde->abde"``) that are summed with the input."""
    inputs, output = equation.replace("...", "").split("->")
    input_spec, kernel_spec = inputs.split(",")
    return tuple(i for i, label in enumerate(kernel_spec) if label in input_spec and label not in output)


def attention_in_axes(sublayer: str, ndim: int) -> tuple[int, ...]:
    """Input axes of a MultiHeadAttention projection: q/k/v are (in, heads, dim), the output (heads, dim, *out)."""
    return (0, 1) if sublayer in ("attention_output", "output_dense") and ndim >= 3 else (0,)


def _einsum(shape: tuple[int, ...], in_axes: tuple[int, ...]) -> tuple[tuple[int, ...], KerasLayout]:
    out_axes = tuple(i for i in range(len(shape)) if i not in in_axes)
    canonical = (prod(shape[i] for i in out_axes), prod(shape[i] for i in in_axes))
    return canonical, KerasLayout("einsum", out_axes + in_axes, canonical)


def _conv(shape: tuple[int, ...], out_axis: int, in_axis: int) -> tuple[tuple[int, ...], KerasLayout]:
    order = (out_axis, in_axis, *range(len(shape) - 2))
    return tuple(shape[i] for i in order), KerasLayout("permute", order)


def _depthwise(shape: tuple[int, ...]) -> tuple[tuple[int, ...], KerasLayout]:
    """(*k, in, mult) → (in·mult, 1, *k): torch's grouped-conv layout, channel c·mult + m."""
    *kernel, channels, mult = shape
    canonical = (channels * mult, 1, *kernel)
    return canonical, KerasLayout("depthwise", shape=canonical)


def _gru_in_torch_gate_order(kernel: np.ndarray) -> np.ndarray:
    """A GRU kernel (in, 3·hidden) as (3·hidden, in) with its gate blocks in torch's order, so W − W' pairs the same gates."""
    update, reset, candidate = np.split(np.transpose(kernel), 3)
    return np.concatenate([reset, update, candidate])


def is_unknown_class(owner: str) -> bool:
    """A layer class ww-keras has no layout for (a custom layer, or any layer of a subclassed model's file)."""
    return owner not in KNOWN_CLASSES and owner not in NON_MATRIX_CLASSES


def layout(weight: KerasWeight) -> tuple[LayerKind, tuple[int, ...], Transform, str] | None:
    """Kind, canonical shape, conversion (a function) and skip reason ("" when analyzed) of a weight, or None when it is no matrix."""
    found = keras_layout(weight)
    if found is None:
        return None
    kind, canonical, converts, skip = found
    return kind, canonical, converts.apply, skip


def keras_layout(weight: KerasWeight) -> tuple[LayerKind, tuple[int, ...], KerasLayout, str] | None:
    """Kind, canonical shape, conversion and skip reason ("" when analyzed) of a weight, or None when it is no matrix.

    A layer of an unknown class is read by the rank of its variables, as core reads named arrays:
    2-D as Dense (in, out), 4-D/5-D as a Keras conv kernel (*k, in, out); a 3-D one (Conv1D or an
    attention projection, which its shape cannot tell apart) and any kernel whose layout is
    unknown get a skipped row saying so, never no row.
    """
    shape, var, owner = weight.shape, weight.variable, weight.owner_class
    unknown = is_unknown_class(owner)
    if len(shape) < 2 and var in MATRIX_VARIABLES and not unknown:  # listed as a matrix, stored as none: a row saying so
        why = f"rank-{len(shape)} {var!r} of layer class {owner!r} (shape {shape}): a weight matrix of fewer than 2 dimensions"
        return "dense", (*shape, 1, 1)[:2], KerasLayout(), why
    if len(shape) < 2 or (var not in MATRIX_VARIABLES and not unknown):
        return None
    if var == "embeddings" and len(shape) == 2:
        return "embedding", shape, KerasLayout(), ""
    depthwise = var == "depthwise_kernel" or (var == "kernel" and owner in DEPTHWISE_CLASSES)
    if depthwise and len(shape) in CONV_KIND_BY_RANK:
        return (CONV_KIND_BY_RANK[len(shape)], *_depthwise(shape), "")
    if weight.in_axes is not None:
        return ("dense", *_einsum(shape, weight.in_axes), "")
    if len(shape) == 2 and owner in GRU_CLASSES and var in ("kernel", "recurrent_kernel"):
        return "dense", (shape[1], shape[0]), KerasLayout("gru"), ""
    if len(shape) == 2:
        return "dense", (shape[1], shape[0]), KerasLayout("transpose"), ""
    nd = len(shape)
    if nd not in CONV_KIND_BY_RANK:
        return None
    if owner in CONV_TRANSPOSE_CLASSES:
        return (CONV_KIND_BY_RANK[nd], *_conv(shape, out_axis=nd - 2, in_axis=nd - 1), "")
    if owner in CONV_CLASSES or var == "pointwise_kernel" or (unknown and nd > 3):
        return (CONV_KIND_BY_RANK[nd], *_conv(shape, out_axis=nd - 1, in_axis=nd - 2), "")
    what = f"layer class {owner!r}" if owner else "a layer whose class the file does not record (a subclassed model)"
    why = "a Conv1D kernel (k, in, out) and a projection (in, heads, dim) look alike" if nd == 3 else "its layout is unknown"
    return CONV_KIND_BY_RANK[nd], shape, KerasLayout(), f"rank-{nd} {var!r} of {what}: not analyzed, {why}"


def keras_path(weight: KerasWeight) -> str:
    """Keras' own ``/``-joined layer path; a variable other than the main kernel is appended (``lstm/lstm_cell/recurrent_kernel``)."""
    return weight.layer_path if weight.variable in ("kernel", "embeddings") else f"{weight.layer_path}/{weight.variable}"


def layer_name(weight: KerasWeight) -> str:
    """The canonical name: Keras' path joined by dots like every other route (``head/fc1`` → ``head.fc1``).

    A recurrent cell's kernels are ``<layer>.ih_l0`` / ``<layer>.hh_l0`` as torch names them
    (``lstm/lstm_cell`` → ``lstm.ih_l0``); a ``Bidirectional`` layer's backward cell adds ``_reverse``.
    """
    *scopes, last = weight.layer_path.split("/")
    if not (scopes and last.endswith("_cell") and weight.variable in ("kernel", "recurrent_kernel")):
        return keras_path(weight).replace("/", ".")
    direction = scopes[-1].split("_", 1)[0] if len(scopes) > 1 else ""
    if direction in ("forward", "backward"):
        scopes = scopes[:-1]
    matrix = "ih" if weight.variable == "kernel" else "hh"
    return ".".join(scopes) + f".{matrix}_l0" + ("_reverse" if direction == "backward" else "")


def to_layers(weights: list[KerasWeight], origin: str, framework_type: str | None = None) -> list[LayerMatrix]:
    """LayerMatrix records for the analyzable weights, indexed in the given (architecture) order.

    A weight with a ``file_ref`` loads through it (a picklable reference a process-pool or cluster worker reads itself).
    """
    layers: list[LayerMatrix] = []
    for weight in weights:
        found = keras_layout(weight)
        if found is None:
            continue
        kind, canonical, converts, skip = found
        load = weight.file_ref.laid_out(converts) if weight.file_ref is not None else _converted(weight.read, converts.apply)
        layers.append(
            LayerMatrix(
                name=layer_name(weight),
                framework_path=keras_path(weight),
                index=len(layers),
                kind=kind,
                shape=tuple(int(d) for d in canonical),
                load=load,
                origin=origin,
                framework_type=framework_type or weight.owner_class,
                reference_id=weight.reference_id,
                skip=skip,
            )
        )
    return layers


def _converted(read: Callable[[], np.ndarray], transform: Transform) -> Callable[[], np.ndarray]:
    return lambda: np.ascontiguousarray(transform(np.asarray(read())))
