"""Weights of a live Keras 3 model or layer, in ``model.weights`` (architecture) order."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ww_keras.keras_internals import child_layers, own_variables
from ww_keras.layouts import KerasWeight, einsum_in_axes


def _owners(source: Any) -> dict[int, tuple[str, Any]]:
    """Each variable's owning layer and that layer's path of names below ``source`` (``inner/d1``).

    Paths are built from layer names, not ``variable.path``, which depends on the scope the
    model was built in (a reloaded model names its variables differently).
    """
    found: dict[int, tuple[str, Any]] = {}

    def visit(layer: Any, path: str) -> None:
        for variable in own_variables(layer):
            found.setdefault(id(variable), (path, layer))
        for child in child_layers(layer):
            visit(child, f"{path}/{child.name}" if path else child.name)

    visit(source, "")
    return found


def _reader(variable: Any) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        import keras

        return np.asarray(keras.ops.convert_to_numpy(variable))

    return read


def _writer(variable: Any) -> Callable[[np.ndarray], None]:
    def write(array: np.ndarray) -> None:
        variable.assign(array.astype(variable.dtype))

    return write


def _in_axes(owner: Any) -> tuple[int, ...] | None:
    """Contracted kernel axes of an EinsumDense (attention projections included), else None."""
    equation = getattr(owner, "equation", None)
    return einsum_in_axes(equation) if isinstance(equation, str) and "->" in equation else None


def reference_positions(source: Any) -> dict[str, int]:
    """Top-level layer name → its position in ``model.layers``, the id weightwatcher 0.7.7 gives it.

    Keras 3 layers have no ``submodules``, so the reference numbers each entry of ``model.layers``
    (an ``InputLayer`` included) once, from 0; a lone layer (no ``layers``) gets no ids.
    """
    return {layer.name: position for position, layer in enumerate(getattr(source, "layers", None) or [])}


def keras_weights(source: Any) -> list[KerasWeight]:
    """Describe every variable of ``source`` (a built ``keras.Layer``/``keras.Model``)."""
    variables = list(source.weights)
    if not variables:
        name = getattr(source, "name", type(source).__name__)
        raise ValueError(f"Keras model {name!r} has no weights yet; build it first (call it on data or model.build(input_shape))")
    owners = _owners(source)
    positions = reference_positions(source)
    described = []
    for variable in variables:
        layer_path, owner = owners.get(id(variable), ("", None))
        described.append(
            KerasWeight(
                layer_path=layer_path or source.name,
                variable=variable.name,
                owner_class=type(owner).__name__ if owner is not None else "",
                shape=tuple(int(d) for d in variable.shape),
                read=_reader(variable),
                in_axes=_in_axes(owner),
                reference_id=positions.get(layer_path.split("/")[0]) if layer_path else None,
                write=_writer(variable),
            )
        )
    return described
