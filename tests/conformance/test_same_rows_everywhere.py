"""The same weights give identical rows (to 1e-10) through every adapter and file format."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import ww_core
from ww_core import testing
from ww_core.models.write_back import model_folder

from . import network

Builder = Callable[[dict[str, np.ndarray], Path], Any]

#: source label → (modules it needs, builder)
SOURCES: dict[str, tuple[tuple[str, ...], Builder]] = {
    "numpy dict": ((), lambda w, _: dict(w)),
    ".npz": ((), network.npz),
    ".safetensors": (("safetensors",), network.safetensors),
    "torch nn.Module": (("torch", "ww_torch"), lambda w, _: network.torch_module(w)),
    "torch .pt state dict": (("torch", "ww_torch"), network.torch_file),
    "keras Model": (("keras", "ww_keras"), lambda w, _: network.keras_model(w)),
    "keras .keras": (("keras", "ww_keras"), lambda w, d: network.keras_file(w, d, ".keras")),
    "keras .h5": (("keras", "h5py", "ww_keras"), lambda w, d: network.keras_file(w, d, ".h5")),
    "flax nnx.Module": (("flax", "ww_jax"), lambda w, _: network.nnx_module(w)),
    "flax linen variables": (("flax", "ww_jax"), lambda w, _: network.linen_variables(w)),
    "flax .msgpack": (("flax", "ww_jax"), network.msgpack_file),
    "onnx ModelProto": (("onnx", "ww_onnx"), lambda w, _: network.onnx_model(w)),
    "onnx .onnx": (("onnx", "ww_onnx"), network.onnx_file),
}


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return network.weights()


@pytest.fixture(scope="module")
def expected(weights: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    rows = ww_core.analyze(weights).details
    assert [row["layer_type"] for row in rows] == ["embedding", "conv1d", "dense", "dense"]
    assert all(row["status"] == "success" for row in rows), rows
    return rows


@pytest.mark.parametrize("label", list(SOURCES))
def test_identical_rows(label: str, weights: dict[str, np.ndarray], expected: list[dict[str, Any]], tmp_path: Path) -> None:
    needs, build = SOURCES[label]
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{label}: {', '.join(missing)} not installed")
    source = build(weights, tmp_path)
    rows = ww_core.analyze(source).details
    testing.assert_rows_close(rows, expected, rtol=1e-10, atol=1e-10)


#: Routes that carry the network's module names (the numpy ones use ordering prefixes as keys).
NAMED = [label for label in SOURCES if label not in ("numpy dict", ".npz", ".safetensors")]


@pytest.mark.parametrize("label", NAMED)
def test_one_canonical_name_per_layer_on_every_route(label: str, weights: dict[str, np.ndarray], tmp_path: Path) -> None:
    """Module path, dots, no leaf suffix (``.weight``, ``/kernel``, ``/embedding``): the same on every route."""
    needs, build = SOURCES[label]
    if any(importlib.util.find_spec(name) is None for name in needs):
        pytest.skip(f"{label}: {needs} not all installed")
    rows = ww_core.describe(build(weights, tmp_path)).details
    assert [row["name"] for row in rows] == ["embedding", "conv", "fc1", "fc2"]


def _attention_net() -> Any:
    import torch

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = torch.nn.Embedding(64, 32)
            self.attn = torch.nn.MultiheadAttention(32, 4)
            self.fc = torch.nn.Linear(32, 16)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            x = self.embedding(tokens)
            return self.fc(self.attn(x, x, x)[0])

    return Net()


def test_an_onnx_export_splits_multihead_attention_in_proj_into_q_k_v_rows_as_the_module_does(tmp_path: Path) -> None:
    """torch's exporter fuses ``in_proj`` into one MatMul followed by an Add of ``attn.in_proj_bias``: read as q/k/v rows."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("ww_onnx")
    import ww_onnx

    net = _attention_net()
    torch.onnx.export(net, (torch.zeros(5, 1, dtype=torch.long),), str(tmp_path / "net.onnx"), dynamo=False)
    expected = {row["name"]: row for row in ww_core.analyze(net).details}
    exported = {row["name"]: row for row in ww_core.analyze(tmp_path / "net.onnx").details}
    assert sorted(exported) == sorted(expected)
    for name, row in expected.items():
        testing.assert_rows_close([exported[name]], [row], rtol=1e-6, atol=1e-6, ignore=(*testing.NAMING_COLUMNS, "layer_id"))
    fused = [row["name"] for row in ww_core.describe(tmp_path / "net.onnx", fused_qkv=True).details]
    assert "attn.in_proj" in fused and "attn.in_proj.q" not in fused
    assert all(row["frobenius"] == 0.0 for row in ww_core.distances(net, tmp_path / "net.onnx").details)
    testing.check_write_back(ww_onnx.ww_layers, ww_onnx.ww_write_weights, tmp_path / "net.onnx", output=tmp_path / "new.onnx")


def test_attention_gets_the_same_q_k_v_rows_through_module_state_dict_pt_safetensors_and_numpy(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("ww_torch")
    from safetensors.torch import save_file

    net = _attention_net()
    state = net.state_dict()
    torch.save(state, tmp_path / "net.pt")
    save_file({key: value.contiguous() for key, value in state.items()}, str(tmp_path / "net.safetensors"))
    routes = {
        "module": net,
        "state dict": state,
        ".pt": tmp_path / "net.pt",
        ".safetensors": tmp_path / "net.safetensors",
        "numpy dict": {key: value.numpy() for key, value in state.items()},
    }
    expected = ww_core.analyze(net).details
    names = ["embedding", "attn.in_proj.q", "attn.in_proj.k", "attn.in_proj.v", "attn.out_proj", "fc"]
    assert [row["name"] for row in expected] == names
    for label, source in routes.items():
        rows = ww_core.analyze(source).details
        assert sorted(row["name"] for row in rows) == sorted(names), label
        by_name = {row["name"]: row for row in rows}
        ordered = [by_name[name] for name in names]  # safetensors keeps keys sorted: compare by name, not position
        testing.assert_rows_close(ordered, expected, rtol=1e-10, atol=1e-10, ignore=(*testing.NAMING_COLUMNS, "layer_id"))
        fused = [row["name"] for row in ww_core.describe(source, fused_qkv=True).details]
        assert "attn.in_proj" in fused and "attn.in_proj.q" not in fused, label
        # base_model pairs every layer by name across routes: W - W_base is exactly zero for each, none unpaired
        errors = [row.get("error", "") for row in ww_core.analyze(net, base_model=source).details]
        assert len(errors) == len(names) and all("weights are all zero" in error for error in errors), (label, errors)


def test_every_adapter_is_installed_in_the_conformance_session() -> None:
    names = {adapter["name"] for adapter in ww_core.list_adapters()}
    assert {"ww-core", "torch", "keras", "jax", "onnx"} <= names, names


@pytest.fixture(scope="module")
def smoothed_expected(weights: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return ww_core.analyze(ww_core.svd_smoothing(weights, method="detX")).details


@pytest.mark.parametrize("label", list(SOURCES))
def test_svd_smoothing_writes_back_the_same_weights_everywhere(
    label: str, weights: dict[str, np.ndarray], smoothed_expected: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Smoothed through each adapter's ww_write_weights and read again, every route gives the numpy dict's rows."""
    needs, build = SOURCES[label]
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{label}: {', '.join(missing)} not installed")
    source = build(weights, tmp_path)
    if label.startswith("keras ."):  # Keras files are refused: load the model, then smooth it
        testing.check_clear_error(lambda: ww_core.svd_smoothing(source), "load_model", error=ValueError)
        return
    folder = model_folder(source) if isinstance(source, Path) else None  # where a reader reads the model from
    before = sorted(os.listdir(folder)) if folder is not None else []
    updated = ww_core.svd_smoothing(source, method="detX")
    if isinstance(source, Path):
        assert Path(updated) != source
    if folder is not None:
        assert sorted(os.listdir(folder)) == before, "new weights were written into the model's folder"
    testing.assert_rows_close(ww_core.analyze(updated).details, smoothed_expected, rtol=1e-10, atol=1e-10)


def _lstm_routes(tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """A torch LSTM + Linear and the same weights through every route that reads a recurrent layer by name."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("ww_torch")
    from safetensors.torch import save_file

    torch.manual_seed(1)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(12, 16, batch_first=True)
            self.fc = torch.nn.Linear(16, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.lstm(x)[0])

    net = Net()
    state = net.state_dict()
    torch.save(state, tmp_path / "net.pt")
    save_file({key: value.contiguous() for key, value in state.items()}, str(tmp_path / "net.safetensors"))
    routes: dict[str, Any] = {
        "module": net,
        "state dict": state,
        ".pt": tmp_path / "net.pt",
        ".safetensors": tmp_path / "net.safetensors",
    }
    if importlib.util.find_spec("ww_onnx") is not None:
        # torch's exporter renames the weights (onnx::LSTM_117, onnx::MatMul_122, pre-transposed)
        torch.onnx.export(net, (torch.zeros(1, 5, 12),), str(tmp_path / "net.onnx"), dynamo=False)
        routes["onnx export"] = tmp_path / "net.onnx"
    if importlib.util.find_spec("ww_keras") is not None:
        import keras

        model = keras.Sequential([keras.Input((5, 12)), keras.layers.LSTM(16, name="lstm"), keras.layers.Dense(10, name="fc")], name="net")
        # Keras stacks the gates i, f, c, o like torch's i, f, g, o; kernels are (in, 4·hidden)
        model.get_layer("lstm").set_weights(
            [state["lstm.weight_ih_l0"].numpy().T, state["lstm.weight_hh_l0"].numpy().T, np.zeros(64, np.float32)]
        )
        model.get_layer("fc").set_weights([state["fc.weight"].numpy().T, np.zeros(10, np.float32)])
        routes["keras Model"] = model
    if importlib.util.find_spec("ww_jax") is not None and importlib.util.find_spec("flax") is not None:
        routes.update(_flax_lstm_routes({key: value.numpy() for key, value in state.items()}))
    return net, routes


def _flax_lstm_routes(state: dict[str, np.ndarray]) -> dict[str, Any]:
    """The same LSTM in Flax cells: Linen ``LSTMCell`` (one kernel per gate), NNX ``LSTMCell`` and ``OptimizedLSTMCell``."""
    import jax.numpy as jnp
    from flax import nnx

    gates = dict(zip("ifgo", np.split(state["lstm.weight_ih_l0"], 4)))  # torch's (4·hidden, in), gates i, f, g, o
    hidden = dict(zip("ifgo", np.split(state["lstm.weight_hh_l0"], 4)))
    cell = {f"i{g}": {"kernel": gates[g].T} for g in "ifgo"} | {f"h{g}": {"kernel": hidden[g].T, "bias": np.zeros(16)} for g in "ifgo"}
    fc = {"kernel": state["fc.weight"].T, "bias": state["fc.bias"]}
    routes: dict[str, Any] = {"flax linen LSTMCell": {"params": {"lstm": {"cell": cell}, "fc": fc}}}

    def module(make_cell: Any, set_cell: Any) -> Any:
        class Net(nnx.Module):
            def __init__(self, rngs: nnx.Rngs) -> None:
                self.lstm = nnx.RNN(make_cell(rngs))
                self.fc = nnx.Linear(16, 10, rngs=rngs)

        net = Net(nnx.Rngs(0))
        set_cell(net.lstm.cell)
        net.fc.kernel.set_value(jnp.asarray(fc["kernel"]))
        return net

    def set_per_gate(c: Any) -> None:
        for g in "ifgo":
            getattr(c, "if_" if g == "f" else f"i{g}").kernel.set_value(jnp.asarray(gates[g].T))
            getattr(c, f"h{g}").kernel.set_value(jnp.asarray(hidden[g].T))

    def set_fused(c: Any) -> None:
        c.dense_i.kernel.set_value(jnp.asarray(state["lstm.weight_ih_l0"].T))
        c.dense_h.kernel.set_value(jnp.asarray(state["lstm.weight_hh_l0"].T))

    routes["flax nnx LSTMCell"] = module(lambda rngs: nnx.LSTMCell(12, 16, rngs=rngs), set_per_gate)
    routes["flax nnx OptimizedLSTMCell"] = module(lambda rngs: nnx.OptimizedLSTMCell(12, 16, rngs=rngs), set_fused)
    return routes


def test_lstm_gets_the_same_canonical_names_and_rows_through_torch_onnx_export_keras_and_flax(tmp_path: Path) -> None:
    """Recurrent matrices are ``<layer>.ih_l<k>`` (input) and ``<layer>.hh_l<k>`` (recurrent) on every route."""
    net, routes = _lstm_routes(tmp_path)
    expected = ww_core.analyze(net).details
    names = ["lstm.ih_l0", "lstm.hh_l0", "fc"]
    assert [row["name"] for row in expected] == names
    for label, source in routes.items():
        rows = ww_core.analyze(source).details
        by_name = {row["name"]: row for row in rows}
        assert sorted(by_name) == sorted(names), label
        ordered = [by_name[name] for name in names]
        testing.assert_rows_close(ordered, expected, rtol=1e-6, atol=1e-6, ignore=(*testing.NAMING_COLUMNS, "layer_id"))


def test_an_onnx_export_names_stacked_bidirectional_lstms_and_linears_as_the_module_does(tmp_path: Path) -> None:
    """Weights the exporter renames get their name from the node's scope (``/lstm/LSTM_1`` → ``lstm.*_l1``)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("ww_onnx")
    torch.manual_seed(2)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q_proj = torch.nn.Linear(12, 12)
            self.lstm = torch.nn.LSTM(12, 8, num_layers=2, bidirectional=True, batch_first=True)
            self.fc = torch.nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.lstm(self.q_proj(x))[0])

    net = Net()
    torch.onnx.export(net, (torch.zeros(1, 5, 12),), str(tmp_path / "net.onnx"), dynamo=False)
    expected = {row["name"]: row for row in ww_core.analyze(net).details}
    exported = {row["name"]: row for row in ww_core.analyze(tmp_path / "net.onnx").details}
    assert sorted(exported) == sorted(expected)
    for name, row in expected.items():
        testing.assert_rows_close([exported[name]], [row], rtol=1e-6, atol=1e-6, ignore=(*testing.NAMING_COLUMNS, "layer_id"))
    assert exported["fc"]["longname"].startswith("onnx::MatMul_")


@pytest.fixture(scope="module")
def named_sources(weights: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every installed route that carries module names, built once."""
    built = {}
    for label in NAMED:
        needs, build = SOURCES[label]
        if all(importlib.util.find_spec(name) is not None for name in needs):
            built[label] = build(weights, tmp_path_factory.mktemp("route"))
    return built


def test_compare_and_distances_match_every_layer_between_every_pair_of_routes(named_sources: dict[str, Any]) -> None:
    """Across any two routes every layer pairs by name: no unmatched layer, every delta and distance exactly 0."""
    assert len(named_sources) >= 2
    results = {label: ww_core.analyze(source) for label, source in named_sources.items()}
    labels = list(named_sources)
    for position, a in enumerate(labels):
        for b in labels[position + 1 :]:
            deltas = ww_core.compare(results[a], results[b], names=["a", "b"]).layer_deltas()
            assert [row["layer"] for row in deltas] == ["embedding", "conv", "fc1", "fc2"], (a, b)
            assert all(row["delta_b"] == 0.0 for row in deltas), (a, b, deltas)
            distances = ww_core.distances(named_sources[a], named_sources[b]).details
            assert [(row["name"], row["status"]) for row in distances] == [
                (name, "success") for name in ("embedding", "conv", "fc1", "fc2")
            ], (a, b, distances)
            assert all(row["frobenius"] == 0.0 and row["spectral"] == 0.0 for row in distances), (a, b, distances)


def test_compare_and_distances_match_every_lstm_layer_between_every_pair_of_routes(tmp_path: Path) -> None:
    _, routes = _lstm_routes(tmp_path)
    labels = list(routes)
    for position, a in enumerate(labels):
        for b in labels[position + 1 :]:
            distances = ww_core.distances(routes[a], routes[b]).details
            assert sorted((row["name"], row["status"]) for row in distances) == [
                ("fc", "success"),
                ("lstm.hh_l0", "success"),
                ("lstm.ih_l0", "success"),
            ], (a, b, distances)
            assert all(row["frobenius"] == 0.0 for row in distances), (a, b, distances)
