"""Legacy HDF5 model files (``model.save("x.h5")``, Keras 2 and 3): weights read lazily with h5py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ww_core.platform.toolkit import parse_json_object
from ww_keras import hdf5
from ww_keras.config import Architecture, architecture
from ww_keras.file_refs import KerasFileRef
from ww_keras.layouts import KerasWeight


def _reader(path: Path, dataset: str) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        with hdf5.open_file(path, path) as handle:
            return np.asarray(hdf5.dataset(handle, dataset, path)[()])

    return read


def _layer_path(layer_name: str, weight_name: str) -> tuple[str, str]:
    """(layer path, variable) of a stored weight name, which may carry the model's scope (``net/fc1/kernel``)."""
    *scopes, variable = weight_name.removesuffix(":0").split("/")
    start = scopes.index(layer_name) if layer_name in scopes else 0
    return "/".join(scopes[start:]) or layer_name, variable


def model_architecture(path: Path, stored: Any) -> Architecture:
    """The architecture in a ``model_config`` attribute: a JSON object, else a ValueError naming the file."""
    config = parse_json_object(hdf5.text(stored, path, "model_config").encode("utf-8"), f"{path}: model_config")
    try:
        return architecture(config)
    except RecursionError:
        raise ValueError(f"{path}: model_config: layers nested too deeply") from None


def legacy_weights(path: Path) -> list[KerasWeight]:
    """Every weight of a legacy ``.h5`` model, in the file's layer order, without reading tensor data."""
    with hdf5.open_file(path, path) as handle:
        if "model_config" not in handle.attrs or "model_weights" not in handle:
            raise ValueError(
                f"{path}: HDF5 file is not a saved Keras model (no model_config/model_weights); "
                "weights-only files carry no architecture: save the whole model (model.save) instead"
            )
        arch = model_architecture(path, handle.attrs["model_config"])
        group = hdf5.member(handle, "model_weights", path)
        weights = []
        for layer_name in (hdf5.text(n, path, "a name in layer_names") for n in group.attrs.get("layer_names", [])):
            layer_group = hdf5.member(group, layer_name, path)
            for weight_name in (
                hdf5.text(n, path, f"a weight name of layer {layer_name!r}") for n in layer_group.attrs.get("weight_names", [])
            ):
                dataset = hdf5.dataset(layer_group, weight_name, path)
                layer_path, variable = _layer_path(layer_name, weight_name)
                shape = tuple(int(d) for d in dataset.shape)
                weights.append(
                    KerasWeight(
                        layer_path=layer_path,
                        variable=variable,
                        owner_class=arch.owner(layer_path)[1],
                        shape=shape,
                        read=_reader(path, dataset.name),
                        in_axes=arch.in_axes(layer_path, len(shape)),
                        file_ref=KerasFileRef(str(path.absolute()), dataset.name, shape),
                    )
                )
    return weights
