"""Built-in sources: numpy mappings, .npz and .safetensors read with numpy alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from ww_core.pipeline.plugins import UnknownSourceError, iter_layers, list_adapters
from ww_core.platform.tensor_refs import bf16_to_float32
from ww_core.sources.safetensors_file import SafetensorsError


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "embed_tokens.weight": rng.standard_normal((50, 16)).astype(np.float32),
        "layers.2.fc.weight": rng.standard_normal((24, 16)).astype(np.float32),
        "layers.10.fc.weight": rng.standard_normal((16, 24)).astype(np.float32),
        "layers.10.fc.bias": rng.standard_normal(16).astype(np.float32),
        "conv.weight": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
        "conv1d.weight": rng.standard_normal((8, 4, 5)).astype(np.float32),
    }


def test_names_are_module_paths() -> None:
    from ww_core.platform.named_arrays import module_path

    assert module_path("encoder.0.weight") == "encoder.0"
    assert module_path("attn.in_proj_weight") == "attn.in_proj"
    assert module_path("dense/kernel") == "dense/kernel"


def test_mapping_keeps_insertion_order_and_infers_kinds() -> None:
    layers = list(iter_layers(_weights()))
    assert [layer.name for layer in layers] == ["embed_tokens", "layers.2.fc", "layers.10.fc", "conv", "conv1d"]
    assert [layer.kind for layer in layers] == ["embedding", "dense", "dense", "conv2d", "conv1d"]
    assert [layer.index for layer in layers] == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(layers[1].weights(), _weights()["layers.2.fc.weight"])


def test_safetensors_natural_order_and_exact_values(tmp_path: Path) -> None:
    weights = _weights()
    path = tmp_path / "model.safetensors"
    save_file(weights, str(path))
    layers = list(iter_layers(path))
    names = [layer.name for layer in layers]
    assert names.index("layers.2.fc") < names.index("layers.10.fc")
    assert "layers.10.fc.bias" not in names
    for layer in layers:
        np.testing.assert_array_equal(layer.weights(), weights[layer.name + ".weight"])
        assert layer.origin == str(path)


def test_safetensors_half_precisions_are_widened_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    half = rng.standard_normal((12, 10)).astype(np.float16)
    path = tmp_path / "half.safetensors"
    save_file({"w": half}, str(path))
    loaded = next(iter(iter_layers(path))).weights()
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, half.astype(np.float32))


def test_bf16_widening_matches_bit_truncation() -> None:
    values = np.array([1.0, -2.5, 3.140625, 1e-3], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype(np.uint16)
    widened = bf16_to_float32(bits)
    expected = (bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(widened, expected)
    np.testing.assert_allclose(widened, values, rtol=1e-2)


def test_bf16_safetensors_file(tmp_path: Path) -> None:
    values = np.random.default_rng(2).standard_normal((9, 11)).astype(np.float32)
    bits = (values.view(np.uint32) >> 16).astype(np.uint16)
    header = json.dumps({"w": {"dtype": "BF16", "shape": [9, 11], "data_offsets": [0, bits.nbytes]}}).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bits.tobytes())
    loaded = next(iter(iter_layers(path))).weights()
    np.testing.assert_array_equal(loaded, (bits.astype(np.uint32) << 16).view(np.float32).reshape(9, 11))


def test_sharded_folder_follows_index(tmp_path: Path) -> None:
    weights = _weights()
    first = {k: v for k, v in weights.items() if k.startswith("layers")}
    second = {k: v for k, v in weights.items() if not k.startswith("layers")}
    save_file(first, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file(second, str(tmp_path / "model-00002-of-00002.safetensors"))
    weight_map = {k: "model-00001-of-00002.safetensors" for k in first} | {k: "model-00002-of-00002.safetensors" for k in second}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    layers = list(iter_layers(tmp_path))
    assert {layer.name + ".weight" for layer in layers} == {k for k, v in weights.items() if v.ndim >= 2}
    assert [layer.index for layer in layers] == list(range(len(layers)))


def test_missing_shard_is_named(tmp_path: Path) -> None:
    save_file({"a": np.ones((4, 4), np.float32)}, str(tmp_path / "one.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "one.safetensors", "b": "two.safetensors"}}))
    with pytest.raises(FileNotFoundError, match=r"two\.safetensors"):
        list(iter_layers(tmp_path))


def test_header_lying_about_sizes_is_refused(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}).encode()
    path = tmp_path / "liar.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 64)
    with pytest.raises(SafetensorsError, match=r"liar\.safetensors.*'w'"):
        list(iter_layers(path))


def test_npz_lazy_members(tmp_path: Path) -> None:
    weights = _weights()
    path = tmp_path / "model.npz"
    np.savez(path, **weights)
    layers = list(iter_layers(path))
    assert [layer.name + ".weight" for layer in layers] == [k for k, v in weights.items() if v.ndim >= 2]
    for layer in layers:
        np.testing.assert_array_equal(layer.weights(), weights[layer.name + ".weight"])


def test_unknown_source_names_installed_adapters_and_package(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not really")

    class FakeTorchModule:
        pass

    FakeTorchModule.__module__ = "torch.nn.modules.module"
    with pytest.raises(UnknownSourceError, match=r"ww-core.*(pip install ww-torch|ww-torch is installed but did not recognize it)"):
        iter_layers(FakeTorchModule())
    if any("onnx" in adapter["name"] for adapter in list_adapters()):
        pytest.skip("ww-onnx is installed here, so it claims .onnx files")
    with pytest.raises(UnknownSourceError, match=r"model\.onnx.*pip install ww-onnx"):
        iter_layers(path)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.safetensors"):
        iter_layers(tmp_path / "nope.safetensors")


def test_integer_tensors_are_listed_as_skipped_not_layers(tmp_path: Path) -> None:
    path = tmp_path / "ids.safetensors"
    ids = np.arange(512, dtype=np.int64).reshape(1, 512)
    save_file({"embeddings.position_ids": ids, "w.weight": np.ones((9, 9), np.float32)}, str(path))
    assert [(layer.name, layer.skip.split(":")[0]) for layer in iter_layers(path)] == [
        ("embeddings.position_ids", "integer dtype int64"),
        ("w", ""),
    ]
