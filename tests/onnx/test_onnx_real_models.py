"""Real exported models shipped in packages: rapidocr (weights in Constant nodes) and silero-vad (If subgraphs, LSTM)."""

from __future__ import annotations

from collections import Counter
from importlib.util import find_spec
from pathlib import Path

import pytest

import ww_core

from .onnx_graphs import layers_of


def package_file(package: str, *parts: str) -> Path:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed")
    return Path(next(iter(spec.submodule_search_locations)), *parts)


RAPIDOCR = {
    "ch_PP-OCRv4_det_infer.onnx": (64, Counter({("conv2d", "Conv"): 62, ("conv2d", "ConvTranspose"): 2})),
    "ch_PP-OCRv4_rec_infer.onnx": (47, Counter({("conv2d", "Conv"): 38, ("dense", "MatMul"): 9})),
    "ch_ppocr_mobile_v2.0_cls_infer.onnx": (54, Counter({("conv2d", "Conv"): 53, ("dense", "MatMul"): 1})),
}


@pytest.mark.parametrize("name", sorted(RAPIDOCR))
def test_rapidocr_layer_lists(name: str) -> None:
    found = layers_of(package_file("rapidocr_onnxruntime", "models", name))
    count, kinds = RAPIDOCR[name]
    assert len(found) == count and Counter((layer.kind, layer.framework_type) for layer in found) == kinds
    assert [layer.index for layer in found] == list(range(count))
    assert all(layer.weights().shape == layer.shape for layer in found[:5])


def test_rapidocr_known_layers() -> None:
    rec = {layer.name: layer for layer in layers_of(package_file("rapidocr_onnxruntime", "models", "ch_PP-OCRv4_rec_infer.onnx"))}
    assert (rec["linear_85.w_0"].shape, rec["linear_85.w_0"].kind) == ((6625, 120), "dense")  # MatMul (in, out) → (out, in)
    assert rec["conv2d_183.w_0"].shape == (480, 1, 5, 5)  # depthwise: stored (out, in/groups, kh, kw)
    det = {layer.name: layer for layer in layers_of(package_file("rapidocr_onnxruntime", "models", "ch_PP-OCRv4_det_infer.onnx"))}
    assert det["conv2d_transpose_1.w_0"].shape == (1, 24, 2, 2)  # stored (24, 1, 2, 2) = (in, out)


SILERO_16K = [
    ("stft.forward_basis_buffer", "conv1d", (258, 1, 256), "Conv"),
    ("encoder.0.reparam_conv", "conv1d", (128, 129, 3), "Conv"),
    ("encoder.1.reparam_conv", "conv1d", (64, 128, 3), "Conv"),
    ("encoder.2.reparam_conv", "conv1d", (64, 64, 3), "Conv"),
    ("encoder.3.reparam_conv", "conv1d", (128, 64, 3), "Conv"),
    ("decoder.rnn.weight_ih", "dense", (512, 128), "LSTM"),
    ("decoder.rnn.weight_hh", "dense", (512, 128), "LSTM"),
    ("decoder.decoder.2", "conv1d", (1, 128, 1), "Conv"),
]


@pytest.mark.parametrize(("file", "prefix"), [("silero_vad_16k_op15.onnx", "model."), ("silero_vad_half.onnx", "")])
def test_silero_initializers_and_lstm_through_subgraphs(file: str, prefix: str) -> None:
    found = layers_of(package_file("silero_vad", "data", file))
    assert [(layer.name, layer.kind, layer.shape, layer.framework_type) for layer in found] == [
        (prefix + name, kind, shape, op) for name, kind, shape, op in SILERO_16K
    ]
    assert all(layer.weights().dtype.name == "float32" for layer in found)  # the half model is widened


def test_silero_if_branches_hold_both_sample_rates_in_constants() -> None:
    found = layers_of(package_file("silero_vad", "data", "silero_vad.onnx"))
    names = [layer.name for layer in found]
    assert len(found) == 16 and len(set(names)) == 16
    by_branch = {
        branch: [layer for layer in found if layer.name.startswith(f"If_0_{branch}_branch__Inline_0__")] for branch in ("then", "else")
    }
    assert [layer.shape for layer in by_branch["then"]] == [shape for _, _, shape, _ in SILERO_16K]
    assert by_branch["else"][1].shape == (128, 65, 3)  # the 8 kHz model


def test_silero_analyzed() -> None:
    results = ww_core.analyze(package_file("silero_vad", "data", "silero_vad_16k_op15.onnx"))
    statuses = {row["name"]: row["status"] for row in results.details}
    assert statuses["model.decoder.rnn.weight_hh"] == "success" and statuses["model.encoder.1.reparam_conv"] == "success"
