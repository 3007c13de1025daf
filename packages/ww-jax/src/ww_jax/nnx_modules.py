"""Flax NNX modules: ``nnx.Param`` leaves in attribute-assignment (module) order, roles from the owning class."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable

import numpy as np

from ww_jax.layouts import JaxWeight, Role, role_from_names
from ww_jax.pytrees import dtype_name, is_matrix

_ROLE_BY_CLASS: dict[str, Role] = {
    "Linear": "dense",
    "LinearGeneral": "general",
    "Conv": "conv",
    "ConvTranspose": "conv",
    "Embed": "embedding",
}


def _params(node: Any, path: tuple[str, ...], owner: Any, nnx: Any) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    if isinstance(node, nnx.Param):
        yield path, node, owner
    elif isinstance(node, nnx.Pytree):
        for key, value in vars(node).items():
            if not str(key).startswith("_"):
                yield from _params(value, (*path, str(key)), node, nnx)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _params(value, (*path, str(key)), owner, nnx)
    elif isinstance(node, (list, tuple)):
        for position, value in enumerate(node):
            yield from _params(value, (*path, str(position)), owner, nnx)


def _reader(param: Any) -> Callable[[], np.ndarray]:
    return lambda: np.asarray(param.get_value())


def _writer(param: Any) -> Callable[[np.ndarray], None]:
    def write(array: np.ndarray) -> None:
        import jax.numpy as jnp

        param.set_value(jnp.asarray(array, dtype=param.get_value().dtype))

    return write


def _role(path: tuple[str, ...], owner: Any, ndim: int) -> tuple[Role, int] | None:
    """Known Flax layers by class (kernel/embedding leaves only); anything else by path names."""
    role = _ROLE_BY_CLASS.get(type(owner).__name__)
    if role is None or path[-1] not in ("kernel", "embedding"):
        return role_from_names(path, ndim)
    if role == "general":
        return role, len(tuple(owner.in_features)) if isinstance(owner.in_features, (tuple, list)) else 1
    return role, 1


def module_weights(module: Any) -> list[JaxWeight]:
    """Describe every matrix ``nnx.Param`` of ``module``."""
    from flax import nnx

    weights = []
    for path, param, owner in _params(module, (), module, nnx):
        value = param.get_value()
        if not is_matrix(value):
            continue
        shape = tuple(int(d) for d in value.shape)
        found = _role(path, owner, len(shape))
        if found is not None:
            owner_class = type(owner).__name__
            weights.append(JaxWeight(path, found[0], shape, _reader(param), found[1], owner_class, dtype_name(value), write=_writer(param)))
    return weights
