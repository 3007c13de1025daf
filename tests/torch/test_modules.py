"""nn.Module layer types: names, order, kinds, canonical shapes and values, options."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from ww_core import LayerMatrix


def summary(layers: list[LayerMatrix]) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(layer.name, layer.kind, layer.shape) for layer in layers]


def test_linear_is_out_in_and_values_match(layers: Any) -> None:
    model = nn.Sequential(nn.Linear(5, 3))
    [layer] = layers(model)
    assert (layer.name, layer.index, layer.kind, layer.shape, layer.framework_type, layer.device) == (
        "0",
        0,
        "dense",
        (3, 5),
        "Linear",
        "cpu",
    )
    np.testing.assert_array_equal(layer.weights(), model[0].weight.detach().numpy())


@pytest.mark.parametrize(
    ("conv", "kind", "shape"),
    [
        (nn.Conv1d(4, 6, 3), "conv1d", (6, 4, 3)),
        (nn.Conv2d(4, 6, (3, 2)), "conv2d", (6, 4, 3, 2)),
        (nn.Conv3d(4, 6, (1, 2, 3)), "conv3d", (6, 4, 1, 2, 3)),
    ],
)
def test_convs_keep_torch_layout(layers: Any, conv: nn.Module, kind: str, shape: tuple[int, ...]) -> None:
    [layer] = layers(nn.Sequential(conv))
    assert (layer.kind, layer.shape) == (kind, shape)
    np.testing.assert_array_equal(layer.weights(), conv.weight.detach().numpy())


@pytest.mark.parametrize(
    ("conv", "kind", "shape"),
    [
        (nn.ConvTranspose1d(4, 6, 3), "conv1d", (6, 4, 3)),
        (nn.ConvTranspose2d(4, 6, (3, 2)), "conv2d", (6, 4, 3, 2)),
        (nn.ConvTranspose3d(4, 6, (1, 2, 3)), "conv3d", (6, 4, 1, 2, 3)),
    ],
)
def test_transposed_convs_swap_first_two_axes(layers: Any, conv: nn.Module, kind: str, shape: tuple[int, ...]) -> None:
    stored = conv.weight.detach().numpy()
    assert stored.shape[:2] == (4, 6)  # torch keeps (in, out, *k)
    [layer] = layers(nn.Sequential(conv))
    assert (layer.kind, layer.shape, layer.framework_type) == (kind, shape, type(conv).__name__)
    np.testing.assert_array_equal(layer.weights(), np.swapaxes(stored, 0, 1))
    np.testing.assert_array_equal(layer.weights()[5, 3], stored[3, 5])


def test_grouped_conv_reports_the_stored_weight(layers: Any) -> None:
    conv = nn.Conv2d(8, 12, 3, groups=4)
    [layer] = layers(nn.Sequential(conv))
    assert layer.shape == (12, 2, 3, 3)
    np.testing.assert_array_equal(layer.weights(), conv.weight.detach().numpy())


def test_embedding(layers: Any) -> None:
    model = nn.Sequential(nn.Embedding(50, 8), nn.EmbeddingBag(20, 4))
    assert summary(layers(model)) == [("0", "embedding", (50, 8)), ("1", "embedding", (20, 4))]


def test_attention_in_proj_split_into_q_k_v_by_default(layers: Any) -> None:
    attention = nn.MultiheadAttention(6, 2)
    found = layers(nn.Sequential(attention))
    assert summary(found) == [
        ("0.in_proj.q", "dense", (6, 6)),
        ("0.in_proj.k", "dense", (6, 6)),
        ("0.in_proj.v", "dense", (6, 6)),
        ("0.out_proj", "dense", (6, 6)),
    ]
    fused = attention.in_proj_weight.detach().numpy()
    for i, layer in enumerate(found[:3]):
        np.testing.assert_array_equal(layer.weights(), fused[6 * i : 6 * (i + 1)])


def test_attention_fused_qkv_gives_one_row(layers: Any) -> None:
    attention = nn.MultiheadAttention(6, 2)
    found = layers(nn.Sequential(attention), fused_qkv=True)
    assert summary(found) == [("0.in_proj", "dense", (18, 6)), ("0.out_proj", "dense", (6, 6))]
    np.testing.assert_array_equal(found[0].weights(), attention.in_proj_weight.detach().numpy())


def test_attention_with_separate_kdim_vdim(layers: Any) -> None:
    attention = nn.MultiheadAttention(6, 2, kdim=4, vdim=5)
    assert summary(layers(nn.Sequential(attention))) == [
        ("0.q_proj", "dense", (6, 6)),
        ("0.k_proj", "dense", (6, 4)),
        ("0.v_proj", "dense", (6, 5)),
        ("0.out_proj", "dense", (6, 6)),
    ]


class Conv1D(nn.Module):
    """Hugging Face ``transformers.pytorch_utils.Conv1D``, reproduced: weight stored (in, out)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))


def test_hf_conv1d_is_transposed_to_out_in(layers: Any) -> None:
    block = nn.Module()
    block.c_attn = Conv1D(nf=12, nx=4)
    [layer] = layers(block)
    assert (layer.name, layer.kind, layer.shape, layer.framework_type) == ("c_attn", "dense", (12, 4), "Conv1D")
    np.testing.assert_array_equal(layer.weights(), block.c_attn.weight.detach().numpy().T)


class LoraLinear(nn.Module):
    """The structure of ``peft.tuners.lora.layer.Linear``: base_layer plus lora_A/lora_B module dicts."""

    def __init__(self, base: nn.Linear, rank: int) -> None:
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.ModuleDict({"default": nn.Linear(base.in_features, rank, bias=False)})
        self.lora_B = nn.ModuleDict({"default": nn.Linear(rank, base.out_features, bias=False)})
        self.lora_dropout = nn.ModuleDict({"default": nn.Identity()})


def test_lora_reports_base_under_wrapper_path_then_a_and_b(layers: Any) -> None:
    model = nn.Sequential(LoraLinear(nn.Linear(10, 7), rank=2), nn.Linear(7, 3))
    found = layers(model)
    assert summary(found) == [
        ("0", "dense", (7, 10)),
        ("0.lora_A.default", "dense", (2, 10)),
        ("0.lora_B.default", "dense", (7, 2)),
        ("1", "dense", (3, 7)),
    ]
    np.testing.assert_array_equal(found[0].weights(), model[0].base_layer.weight.detach().numpy())


def test_recurrent_gates_whole_or_split(layers: Any) -> None:
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    whole = layers(nn.Sequential(lstm))
    assert [layer.name for layer in whole][:4] == ["0.ih_l0", "0.hh_l0", "0.ih_l0_reverse", "0.hh_l0_reverse"]
    assert whole[0].shape == (20, 3) and whole[4].shape == (20, 10)
    split = layers(nn.Sequential(nn.GRU(3, 5)), split_gates=True)
    assert summary(split) == [(f"0.{w}_l0.{g}", "dense", (5, 3 if w == "ih" else 5)) for w in ("ih", "hh") for g in "rzn"]


def test_registration_order_full_paths_and_no_math_layers(layers: Any) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.zeta = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)
            self.blocks = nn.ModuleList([nn.Sequential(nn.Conv1d(4, 4, 1), nn.ReLU()) for _ in range(11)])
            self.alpha = nn.Linear(4, 2)

    names = [layer.name for layer in layers(Net())]
    assert names == ["zeta", *[f"blocks.{i}.0" for i in range(11)], "alpha"]
    assert [layer.index for layer in layers(Net())] == list(range(13))


def test_shared_module_reported_once_and_root_layer_named_by_class(layers: Any) -> None:
    shared = nn.Linear(4, 4)
    assert [layer.name for layer in layers(nn.Sequential(shared, nn.ReLU(), shared))] == ["0"]
    assert [layer.name for layer in layers(nn.Linear(3, 2))] == ["Linear"]


def test_lazy_uninitialized_layers_are_left_out(layers: Any) -> None:
    assert [layer.name for layer in layers(nn.Sequential(nn.LazyLinear(3), nn.Linear(3, 3)))] == ["1"]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_widened_to_float32(layers: Any, dtype: torch.dtype) -> None:
    model = nn.Sequential(nn.Linear(4, 3)).to(dtype)
    [layer] = layers(model)
    weights = layer.weights()
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, model[0].weight.detach().float().numpy())


def test_float64_kept(layers: Any) -> None:
    [layer] = layers(nn.Sequential(nn.Linear(4, 3)).double())
    assert layer.weights().dtype == np.float64


def test_weights_are_read_at_load_time_not_when_listed(layers: Any, tensor_reads: list[int]) -> None:
    calls = tensor_reads
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    found = layers(model)
    assert calls == []
    with torch.no_grad():
        model[1].weight.fill_(7.0)  # type: ignore[operator]
    assert (found[1].weights() == 7.0).all() and calls == [1]


def test_meta_tensors_fail_with_the_layer_named(layers: Any) -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 3))
    [layer] = layers(model)
    assert layer.device == "meta"
    with pytest.raises(ValueError, match=r"layer '0'.*meta"):
        layer.weights()
