"""Keras 3 ``.keras`` archives: architecture from ``config.json``, weights read lazily from ``model.weights.h5``.

Nothing is deserialized, so no code stored in the file can run (stricter than ``safe_mode``).
The weights file names variables by position (``vars/0``); their meaning comes from the
owning layer's class, per ``VARIABLES``; a class ww-keras does not know is read by rank.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ww_core.platform.toolkit import check_inflation, open_regular, parse_json_object, read_limited
from ww_keras import hdf5
from ww_keras.config import Architecture, architecture
from ww_keras.file_refs import KerasFileRef
from ww_keras.layouts import ATTENTION_CLASSES, CONV_CLASSES, CONV_TRANSPOSE_CLASSES, KerasWeight, is_unknown_class

WEIGHTS_MEMBER = "model.weights.h5"
CONFIG_MEMBER = "config.json"
#: Largest ``config.json`` read (decompressed); real configs are well under a few MiB.
MAX_CONFIG_BYTES = 16 * 1024 * 1024
_RECURRENT = ("kernel", "recurrent_kernel", "bias")
#: Top-level groups of ``model.weights.h5`` that hold training state, not the model's weights.
TRAINING_STATE = frozenset({"optimizer", "metrics"})
#: Variable names by position in ``vars/`` for each owning class.
VARIABLES: dict[str, tuple[str, ...]] = {
    **{name: ("kernel", "bias") for name in ("Dense", "EinsumDense", *CONV_CLASSES, *CONV_TRANSPOSE_CLASSES)},
    "Embedding": ("embeddings",),
    "DepthwiseConv1D": ("kernel", "bias"),
    "DepthwiseConv2D": ("kernel", "bias"),
    "SeparableConv1D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    **{name: _RECURRENT for name in ("LSTM", "GRU", "SimpleRNN", "LSTMCell", "GRUCell", "SimpleRNNCell")},
}


def _reader(path: Path, dataset: str) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        with open_regular(path) as file, zipfile.ZipFile(file) as archive, archive.open(WEIGHTS_MEMBER) as member:
            with hdf5.open_file(member, path, WEIGHTS_MEMBER) as handle:
                return np.asarray(hdf5.dataset(handle, dataset, path)[()])

    return read


def _variable_names(arch: Architecture, layer_path: str, count: int) -> tuple[str, ...]:
    """Names of a layer's ``vars/0..count-1``: by its class, or for a class ww-keras does not know
    (a custom layer, any layer of a subclassed model) ``kernel`` then ``var1``, ``var2``, ... (read by rank)."""
    found, class_name = arch.owner(layer_path)
    if class_name in ATTENTION_CLASSES and found != layer_path:
        return ("kernel", "bias")
    if class_name in VARIABLES or not is_unknown_class(class_name):
        return VARIABLES.get(class_name, ())
    return ("kernel", *(f"var{position}" for position in range(1, count)))


#: Weight groups nest at most this deep (real models: a few levels); deeper, or a cycle of links, is refused.
MAX_GROUP_DEPTH = 64


def _collect(path: Path, group: Any, prefix: str, arch: Architecture, out: list[tuple[int, KerasWeight]], depth: int = 0) -> None:
    """Depth-first over sub-objects; a group with a named ``vars`` child is a layer."""
    if depth > MAX_GROUP_DEPTH:
        raise RecursionError  # reported as nesting too deep (or a cycle), before Python's own limit strikes inside h5py
    for key in group:
        if key == "vars" or (group.name == "/" and key in TRAINING_STATE):
            continue
        child = hdf5.member(group, key, path)
        if not hasattr(child, "keys"):
            continue
        layer_prefix = prefix
        if "vars" in child:
            name = child["vars"].attrs.get("name")
            if name is None:
                raise ValueError(
                    f"{path}: weights group {child.name!r} has no layer name (written by an older Keras 3); "
                    "load the model with keras.saving.load_model(path, safe_mode=True) and pass the model"
                )
            layer_path = prefix + hdf5.text(name, path, f"the layer name of weights group {child.name!r}")
            names = _variable_names(arch, layer_path, len(child["vars"]))
            odd = [key for key in child["vars"] if not key.isdigit()]
            if odd:
                raise ValueError(
                    f"{path}: weights group {child.name!r} holds variable {odd[0]!r}; Keras names them by position (0, 1, ...)"
                )
            for position in sorted(child["vars"], key=int):
                if int(position) >= len(names):
                    continue
                dataset = hdf5.member(child["vars"], position, path)
                shape = tuple(int(d) for d in dataset.shape)
                weight = KerasWeight(
                    layer_path,
                    names[int(position)],
                    arch.owner(layer_path)[1],
                    shape,
                    _reader(path, dataset.name),
                    arch.in_axes(layer_path, len(shape)),
                    file_ref=KerasFileRef(str(path.absolute()), dataset.name, shape, WEIGHTS_MEMBER),
                )
                out.append((int(position), weight))
            layer_prefix = layer_path + "/"
        _collect(path, child, layer_prefix, arch, out, depth + 1)


_SUBLAYER_RANK = {"query": 0, "key": 1, "value": 2, "attention_output": 3}


def _order(arch: Architecture, item: tuple[int, KerasWeight]) -> tuple[int, int, str, int]:
    position, weight = item
    last = weight.layer_path.rsplit("/", 1)[-1]
    return arch.position(weight.layer_path), _SUBLAYER_RANK.get(last, len(_SUBLAYER_RANK)), weight.layer_path, position


def read_config(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    """``config.json`` as a JSON object, read with at most MAX_CONFIG_BYTES decompressed (a zip bomb stops there)."""
    what = f"{path}: {CONFIG_MEMBER}"
    if archive.getinfo(CONFIG_MEMBER).file_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{what}: larger than the {MAX_CONFIG_BYTES // (1024 * 1024)} MiB cap, refused")
    with archive.open(CONFIG_MEMBER) as handle:
        return parse_json_object(read_limited(handle, MAX_CONFIG_BYTES, what), what)


def keras_file_weights(path: Path) -> list[KerasWeight]:
    """Every weight of a ``.keras`` archive in architecture order, without reading tensor data."""
    try:
        with open_regular(path) as file, zipfile.ZipFile(file) as archive:
            config = read_config(archive, path)
            arch = architecture(config)
            check_inflation(archive.getinfo(WEIGHTS_MEMBER), str(path))
            with archive.open(WEIGHTS_MEMBER) as member, hdf5.open_file(member, path, WEIGHTS_MEMBER) as handle:
                found: list[tuple[int, KerasWeight]] = []
                _collect(path, handle, "", arch, found)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{path}: not a Keras 3 .keras archive with {CONFIG_MEMBER} and {WEIGHTS_MEMBER} ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path}: layers or weight groups nested too deeply (or in a cycle)") from None
    return [weight for _, weight in sorted(found, key=lambda item: _order(arch, item))]
