"""Find the weight tensors of an ONNX graph and the node that uses each as a weight, in node order.

Weights are initializers or ``Constant`` node values, in the main graph or any subgraph
(If/Loop/Scan bodies, which see outer-scope names). A weight reaches its node directly, via
layout-keeping ops (Identity, Cast), or — for LSTM/GRU/RNN only — via the Slice/Concat/
Unsqueeze/Squeeze chain torch exports use to re-stack gate blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import onnx

KEEP_LAYOUT = frozenset({"Identity", "Cast"})
RESTACK = frozenset({"Slice", "Concat", "Unsqueeze", "Squeeze"})
RECURRENT = frozenset({"LSTM", "GRU", "RNN"})

#: Which inputs of each op are weights.
WEIGHT_INPUTS: dict[str, tuple[int, ...]] = {
    "Gemm": (0, 1),
    "MatMul": (0, 1),
    "Conv": (1,),
    "ConvTranspose": (1,),
    "Gather": (0,),
    "LSTM": (1, 2),
    "GRU": (1, 2),
    "RNN": (1, 2),
}


@dataclass(frozen=True)
class WeightUse:
    """A constant (by its graph name), the node reading it as input ``input_index``, and whether gate blocks were re-stacked.

    ``added`` names the constants an ``Add`` right after the node adds to its output (a bias, e.g. ``attn.in_proj_bias``).
    """

    name: str
    tensor: onnx.TensorProto
    node: onnx.NodeProto
    input_index: int
    restacked: bool
    added: frozenset[str] = frozenset()


def flatten(graph: onnx.GraphProto) -> tuple[list[onnx.NodeProto], dict[str, onnx.TensorProto]]:
    """All nodes in order (a subgraph's nodes right after the node holding it) and all constant tensors.

    Constants are keyed by the name the graph uses: an initializer's name, a Constant node's output.
    """
    nodes: list[onnx.NodeProto] = []
    constants: dict[str, onnx.TensorProto] = {}

    def visit(current: onnx.GraphProto) -> None:
        constants.update((tensor.name, tensor) for tensor in current.initializer)
        for node in current.node:
            nodes.append(node)
            for attribute in node.attribute:
                if node.op_type == "Constant" and attribute.name == "value" and node.output:
                    constants[node.output[0]] = attribute.t
                if attribute.type == onnx.AttributeProto.GRAPH:
                    visit(attribute.g)
                for subgraph in attribute.graphs:
                    visit(subgraph)

    visit(graph)
    return nodes, constants


def _aliases(nodes: list[onnx.NodeProto], constants: dict[str, onnx.TensorProto]) -> dict[str, tuple[str, bool]]:
    """Output name → (constant it carries, re-stacked?) for pass-through ops fed by exactly one constant."""
    aliases: dict[str, tuple[str, bool]] = {}
    for node in nodes:
        if node.op_type not in KEEP_LAYOUT | RESTACK or not node.output:
            continue
        data = [name for name in (node.input if node.op_type == "Concat" else node.input[:1]) if name]
        resolved = [aliases.get(name, (name, False)) for name in data]
        sources = {source for source, _ in resolved}
        if len(sources) == 1 and next(iter(sources)) in constants:
            restacked = node.op_type in RESTACK or any(flag for _, flag in resolved)
            aliases[node.output[0]] = (next(iter(sources)), restacked)
    return aliases


def _added_constants(nodes: list[onnx.NodeProto], constants: dict[str, onnx.TensorProto]) -> dict[str, frozenset[str]]:
    """Output name → the constants an ``Add`` node adds to it."""
    added: dict[str, frozenset[str]] = {}
    for node in nodes:
        if node.op_type == "Add":
            for name in node.input:
                added[name] = added.get(name, frozenset()) | {other for other in node.input if other != name and other in constants}
    return added


def weight_uses(graph: onnx.GraphProto) -> Iterator[WeightUse]:
    """The first weight use of every constant tensor, in node order; other constants are not weights."""
    nodes, constants = flatten(graph)
    aliases = _aliases(nodes, constants)
    added = _added_constants(nodes, constants)
    seen: set[str] = set()
    for node in nodes:
        for index in WEIGHT_INPUTS.get(node.op_type, ()):
            if index >= len(node.input) or not node.input[index]:
                continue
            source, restacked = aliases.get(node.input[index], (node.input[index], False))
            if source not in constants or source in seen or (restacked and node.op_type not in RECURRENT):
                continue
            seen.add(source)
            biases = added.get(node.output[0], frozenset()) if node.output else frozenset()
            yield WeightUse(source, constants[source], node, index, restacked, biases)
