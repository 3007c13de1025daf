"""Flax recurrent cells → torch's stacked recurrent matrices ``<layer>.ih_l0`` / ``<layer>.hh_l0`` (docs/layouts.md).

Flax's ``LSTMCell`` and ``GRUCell`` (Linen, and NNX ``LSTMCell``) keep one (in, hidden) kernel per gate;
they are concatenated along the output axis in torch's gate order (LSTM i, f, g, o; GRU r, z, n), so
the canonical (gates·hidden, in) matrix and its name are torch's. NNX's ``OptimizedLSTMCell``,
``GRUCell`` and ``SimpleCell`` already hold one fused ``dense_i``/``dense_h`` kernel in that order.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ww_jax.layouts import JaxWeight, as_float_array

LeafPath = tuple[str, ...]

#: Per cell kind: the input-kernel and hidden-kernel module names, each in torch's gate order.
CELL_GATES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("ii", "if", "ig", "io"), ("hi", "hf", "hg", "ho")),  # Linen LSTMCell / OptimizedLSTMCell
    (("ii", "if_", "ig", "io"), ("hi", "hf", "hg", "ho")),  # NNX LSTMCell
    (("ir", "iz", "in"), ("hr", "hz", "hn")),  # Linen GRUCell
    (("dense_i",), ("dense_h",)),  # NNX OptimizedLSTMCell, GRUCell, SimpleCell: already fused
)


def _kernels_by_cell(weights: list[JaxWeight]) -> dict[LeafPath, dict[str, JaxWeight]]:
    """Dense ``kernel`` leaves grouped by the module two levels up (the candidate cell)."""
    cells: dict[LeafPath, dict[str, JaxWeight]] = {}
    for weight in weights:
        if weight.role == "dense" and len(weight.path) >= 2 and weight.path[-1] == "kernel":
            cells.setdefault(weight.path[:-2], {})[weight.path[-2]] = weight
    return cells


def _stacked(cell: LeafPath, label: str, gates: list[JaxWeight]) -> JaxWeight:
    """One (in, Σ hidden) kernel: the gates' kernels side by side, read lazily; ``parts`` keeps where each came from.

    Gates read from one file give one reference to all their leaves, so a worker reads the stacked matrix itself.
    """
    layer = cell[:-1] if cell and cell[-1] == "cell" else cell  # nn.RNN / nnx.RNN hold the cell as ``cell``
    shape = (gates[0].shape[0], sum(gate.shape[1] for gate in gates))
    reads = [gate.read for gate in gates]
    refs = [gate.file_ref for gate in gates if gate.file_ref is not None]
    return replace(
        gates[0],
        path=(*layer, label),
        shape=shape,
        read=lambda: np.concatenate([as_float_array(read()) for read in reads], axis=1),
        write=None,
        parts=tuple((gate.path, gate.shape[1]) for gate in gates),
        stored_path="/".join(cell) + "/" + "+".join(gate.path[-2] for gate in gates),
        file_ref=refs[0].beside(refs[1:]) if len(refs) == len(gates) else None,
    )


def _cell_layers(cell: LeafPath, kernels: dict[str, JaxWeight]) -> tuple[JaxWeight, JaxWeight] | None:
    """The stacked input and hidden kernels of a recognised cell; None when ``kernels`` is not one."""
    for input_gates, hidden_gates in CELL_GATES:
        if set(kernels) != {*input_gates, *hidden_gates}:
            continue
        inputs, hiddens = [kernels[g] for g in input_gates], [kernels[g] for g in hidden_gates]
        if len({w.shape[0] for w in inputs}) == 1 and len({w.shape[0] for w in hiddens}) == 1:
            return _stacked(cell, "ih_l0", inputs), _stacked(cell, "hh_l0", hiddens)
    return None


def stack_cells(weights: list[JaxWeight]) -> list[JaxWeight]:
    """``weights`` with every recognised cell's gate kernels replaced by its two stacked matrices, where its first kernel was."""
    replaced: dict[LeafPath, tuple[JaxWeight, ...]] = {}
    for cell, kernels in _kernels_by_cell(weights).items():
        found = _cell_layers(cell, kernels)
        if found is None:
            continue
        members = [w.path for w in weights if w.path[:-2] == cell and w.path[-2] in kernels and w.path[-1] == "kernel"]
        replaced[members[0]] = found
        replaced.update({path: () for path in members[1:]})
    return [new for weight in weights for new in replaced.get(weight.path, (weight,))]


def split_stored(weight: JaxWeight, stored: np.ndarray) -> dict[LeafPath, np.ndarray]:
    """Leaf path → its slice of a stored-layout (in, Σ hidden) array; a plain weight maps to itself."""
    if not weight.parts:
        return {weight.path: stored}
    widths = [width for _, width in weight.parts]
    pieces = np.split(stored, np.cumsum(widths)[:-1], axis=1)
    return {path: np.ascontiguousarray(piece) for (path, _), piece in zip(weight.parts, pieces)}
