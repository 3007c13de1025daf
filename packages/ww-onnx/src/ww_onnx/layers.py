"""Canonical layouts per op: one WeightUse → its LayerMatrix records (no data read).

Recurrent weights (LSTM/GRU/RNN ``W`` and ``R``, (directions, gates·hidden, in)) give one
(gates·hidden, in) row per direction by default, or one (hidden, in) row per gate with
``split_gates``; a torch-style 2-D weight re-stacked on its way to the node is one row.
A weight torch's exporter renamed (``onnx::MatMul_122``, ``const_fold_opt__680``) is named by its node's scope
(``/fc/MatMul`` → ``fc``; ``/lstm/LSTM_1`` → ``lstm.ih_l1``/``lstm.hh_l1``), as the module names it.
A ``MultiheadAttention`` ``in_proj`` it fused into one (E, 3E) MatMul, recognised by the ``Add`` of
``<scope>.in_proj_bias`` that follows, gives ``<scope>.in_proj.q/.k/.v`` rows (one ``<scope>.in_proj``
with ``fused_qkv``), as the module does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import onnx

from ww_core.platform.toolkit import CONV_KIND_BY_RANK, LayerKind, LayerMatrix, TensorRef, module_path, printable, unanalyzable_reason
from ww_onnx.graph import WeightUse, weight_uses
from ww_onnx.tensors import loader

GATES = {"LSTM": ("i", "o", "f", "c"), "GRU": ("z", "r", "h"), "RNN": ("",)}
#: ONNX gate blocks in torch's order (LSTM i,f,g,o; GRU r,z,n), so W − W' pairs the same gates across routes.
TORCH_GATE_ORDER = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2)}
DIRECTIONS = {1: ("",), 2: (".forward", ".reverse")}
#: torch's exporter: anonymous weight names (``onnx::MatMul_122``; ``const_fold_opt__680`` for a weight it constant-folded,
#: e.g. a Linear's transpose), and node names ``/<module path>/<Op>[_<count>]``.
EXPORTER_WEIGHT = ("onnx::", "const_fold_opt__")
EXPORTER_NODE = re.compile(r"^/(?P<scope>[^/]+(?:/[^/]+)*)/[A-Za-z]+(?:_(?P<count>\d+))?$")


@dataclass(frozen=True)
class Row:
    """One layer cut from a weight tensor: ``index`` picks from it, ``transpose`` swaps its first two axes."""

    name: str
    kind: LayerKind
    shape: tuple[int, ...]
    transpose: bool = False
    index: tuple[int | slice, ...] = ()
    gate_order: tuple[int, ...] = ()


def _restacked(array: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Stacked gate blocks in ``order``."""
    blocks = np.split(np.asarray(array), len(order), axis=0)
    return np.concatenate([blocks[block] for block in order], axis=0)


@dataclass(frozen=True)
class GateOrder:
    """Loads stacked gate blocks and restacks them in ``order``."""

    load: Any
    order: tuple[int, ...]

    def __call__(self) -> Any:
        return _restacked(self.load(), self.order)


@dataclass(frozen=True)
class GateOrderRef(TensorRef):
    """``GateOrder`` over a file reference: picklable, so a worker reads and restacks the gates itself."""

    path: str
    load: TensorRef
    order: tuple[int, ...]

    def read(self) -> np.ndarray:
        return _restacked(self.load.read(), self.order)


def gates_restored(array: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Undo ``GateOrder``: canonical (torch-order) gate blocks back in the stored ONNX order."""
    if not order:
        return array
    blocks = np.split(array, len(order), axis=0)
    return np.concatenate([blocks[order.index(position)] for position in range(len(order))], axis=0)


def _int_attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return int(attribute.i)
    return default


def _swapped(dims: tuple[int, ...]) -> tuple[int, ...]:
    return (dims[1], dims[0], *dims[2:])


def rows(use: WeightUse, options: Mapping[str, Any]) -> list[Row]:
    """The rows one weight use gives, with canonical shapes; none when the tensor's rank does not fit the op."""
    name, op, dims = module_path(use.name), use.node.op_type, tuple(use.tensor.dims)
    scope = EXPORTER_NODE.match(use.node.name) if use.name.startswith(EXPORTER_WEIGHT) else None
    if scope:
        name = scope["scope"].replace("/", ".")
    if scope and _is_exported_in_proj(use, name, dims):
        return _in_proj_rows(name, dims[0], bool(options.get("fused_qkv")))
    if op in ("Gemm", "MatMul") and len(dims) == 2:
        # Gemm/MatMul compute A·B: a weight B is (in, out) unless transB; a weight A is (out, in) unless transA.
        trans = _int_attribute(use.node, "transB" if use.input_index == 1 else "transA", 0) if op == "Gemm" else 0
        transpose = (use.input_index == 1) != bool(trans)
        return [Row(name, "dense", _swapped(dims) if transpose else dims, transpose)]
    if op == "Conv" and len(dims) in CONV_KIND_BY_RANK:
        return [Row(name, CONV_KIND_BY_RANK[len(dims)], dims)]
    if op == "ConvTranspose" and len(dims) in CONV_KIND_BY_RANK:
        return [Row(name, CONV_KIND_BY_RANK[len(dims)], _swapped(dims), transpose=True)]
    if op == "Gather" and len(dims) == 2 and _int_attribute(use.node, "axis", 0) == 0:
        return [Row(name, "embedding", dims)]
    if op in GATES and len(dims) == 2 and use.restacked:
        return [Row(name, "dense", dims)]
    if op in GATES and len(dims) == 3 and dims[0] in DIRECTIONS:
        split_gates = bool(options.get("split_gates"))
        if scope:  # torch's names: <module>.ih_l<k> (W) / .hh_l<k> (R), _reverse backward
            matrix = f"{name}.{'ih' if use.input_index == 1 else 'hh'}_l{scope['count'] or 0}"
            return _recurrent_rows(matrix, op, dims, split_gates, {1: ("",), 2: ("", "_reverse")})
        return _recurrent_rows(name, op, dims, split_gates)
    return []


def _is_exported_in_proj(use: WeightUse, scope: str, dims: tuple[int, ...]) -> bool:
    """torch's export of a fused q/k/v projection: ``x · W`` with W (E, 3E), then ``+ <scope>.in_proj_bias``."""
    shaped = len(dims) == 2 and dims[1] == 3 * dims[0]
    return use.node.op_type == "MatMul" and use.input_index == 1 and shaped and f"{scope}.in_proj_bias" in use.added


def _in_proj_rows(scope: str, embed: int, fused: bool) -> list[Row]:
    """(E, E) q, k, v rows from the stored (E, 3E) (in, out) weight, or the whole (3E, E) one when ``fused``."""
    if fused:
        return [Row(f"{scope}.in_proj", "dense", (3 * embed, embed), transpose=True)]
    return [
        Row(f"{scope}.in_proj.{part}", "dense", (embed, embed), transpose=True, index=(slice(None), slice(k * embed, (k + 1) * embed)))
        for k, part in enumerate("qkv")
    ]


def _recurrent_rows(
    name: str, op: str, dims: tuple[int, ...], split_gates: bool, directions: dict[int, tuple[str, ...]] = DIRECTIONS
) -> list[Row]:
    count, stacked, width = dims
    gates = GATES[op] if split_gates else ("",)
    size = stacked // len(gates)
    order = () if split_gates else TORCH_GATE_ORDER.get(op, ())
    return [
        Row(
            f"{name}{suffix}{'.' + gate if gate else ''}",
            "dense",
            (size, width),
            index=(d, slice(g * size, (g + 1) * size)),
            gate_order=order,
        )
        for d, suffix in enumerate(directions[count])
        for g, gate in enumerate(gates)
    ]


def model_layers(model: onnx.ModelProto, base_dir: Path | None, origin: str, options: Mapping[str, Any]) -> Iterator[LayerMatrix]:
    """Every weight matrix of ``model`` in graph node order, indexed from 0, loaded lazily.

    Integer, bool and empty initializers are marked skipped with core's reason, as on every route.
    A weight's reference id is its position in ``graph.initializer``, as weightwatcher 0.7.7
    numbers ONNX layers (Constant-node and subgraph weights have none).
    """
    positions: dict[str, int] = {}
    for position, tensor in enumerate(model.graph.initializer):
        if tensor.name in positions:  # which of the two is the weight would be a silent choice
            raise ValueError(f"{origin}: initializer {printable(tensor.name)!r} appears twice in the graph (ONNX names are unique)")
        positions[tensor.name] = position
    model_file = Path(origin).absolute() if base_dir is not None else None  # the .onnx file, which a reference reads again if changed
    index = 0
    for use in weight_uses(model.graph):
        if any(dim < 0 for dim in use.tensor.dims):  # else listed with a made-up size
            raise ValueError(f"{origin}: tensor {use.name!r} has an invalid shape {list(use.tensor.dims)}")
        skip = _unreadable_type(use.tensor.data_type)
        dtype = "" if skip else onnx.TensorProto.DataType.Name(use.tensor.data_type).lower()
        for row in rows(use, options):
            yield LayerMatrix(
                name=row.name,
                index=index,
                kind=row.kind,
                shape=row.shape,
                load=_gates_reordered(loader(use.tensor, base_dir, row.transpose, row.index, model_file), row.gate_order),
                origin=origin,
                framework_type=use.node.op_type,
                skip=skip or unanalyzable_reason(dtype, row.shape),
                reference_id=positions.get(use.name),
                framework_path=use.name,
            )
            index += 1


def _unreadable_type(data_type: int) -> str:
    """Why an element type ONNX does not define (999) gives a skipped row, or "" for a defined one: one row, never the whole model."""
    if data_type in onnx.TensorProto.DataType.values():
        return ""
    return f"element type {data_type} is no ONNX data type: not read"


def _gates_reordered(load: Any, order: tuple[int, ...]) -> Any:
    if not order:
        return load
    return GateOrderRef(load.path, load, order) if isinstance(load, TensorRef) else GateOrder(load, order)
