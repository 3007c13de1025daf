"""State dicts, .pt/.pth/.bin files, checkpoints, pickled-code refusal, TorchScript and shard folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from ww_core import UnknownSourceError


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(30, 8)
        self.conv = nn.Conv2d(3, 8, 3)
        self.norm = nn.BatchNorm2d(8)
        self.attn = nn.MultiheadAttention(8, 2)
        self.head = nn.Linear(8, 4)


EXPECTED = [
    ("embed_tokens", "embedding", (30, 8)),
    ("conv", "conv2d", (8, 3, 3, 3)),
    ("attn.in_proj.q", "dense", (8, 8)),
    ("attn.in_proj.k", "dense", (8, 8)),
    ("attn.in_proj.v", "dense", (8, 8)),
    ("attn.out_proj", "dense", (8, 8)),
    ("head", "dense", (4, 8)),
]


def rows(found: list[Any]) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(layer.name, layer.kind, layer.shape) for layer in found]


def test_state_dict_names_match_the_module_walk(layers: Any) -> None:
    model = Small()
    assert rows(layers(model)) == EXPECTED
    from_state = layers(model.state_dict())
    assert rows(from_state) == EXPECTED
    assert {layer.framework_type for layer in from_state} == {"Tensor"}
    np.testing.assert_array_equal(from_state[-1].weights(), model.head.weight.detach().numpy())


def test_state_dict_fused_qkv_and_non_float_buffers(layers: Any) -> None:
    state = {"ids": torch.arange(12).reshape(3, 4), **Small().state_dict()}
    found = layers(state, fused_qkv=True)
    assert [layer.name for layer in found] == ["ids", "embed_tokens", "conv", "attn.in_proj", "attn.out_proj", "head"]
    assert [bool(layer.skip) for layer in found] == [True, False, False, False, False, False]  # int buffer: a skipped row


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_state_dict_files(tmp_path: Path, layers: Any, suffix: str) -> None:
    model = Small()
    path = tmp_path / f"weights{suffix}"
    torch.save(model.state_dict(), path)
    found = layers(path)
    assert rows(found) == EXPECTED
    assert found[0].origin == str(path)
    np.testing.assert_array_equal(found[1].weights(), model.conv.weight.detach().numpy())


def test_legacy_format_file(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "legacy.pt"
    torch.save(Small().state_dict(), path, _use_new_zipfile_serialization=False)
    assert rows(layers(str(path))) == EXPECTED


def test_checkpoint_dict_with_state_dict_key(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": Small().state_dict(), "lr": 0.1}, path)
    assert rows(layers(path)) == EXPECTED


def _trained_optimizer_state(model: nn.Module) -> dict[str, Any]:
    """An Adam state after one step: its exp_avg/exp_avg_sq are 2-D tensors shaped like the weights."""
    optimizer = torch.optim.Adam(model.parameters())
    model.head(torch.randn(2, 8)).sum().backward()
    optimizer.step()
    return optimizer.state_dict()


@pytest.mark.parametrize("trust_pickle", [False, True])
def test_checkpoint_wrapper_found_by_structure_never_the_optimizer_state(tmp_path: Path, layers: Any, trust_pickle: bool) -> None:
    model = Small()
    path = tmp_path / "ckpt.pt"
    torch.save({"step": 120, "optimizer_state": _trained_optimizer_state(model), "model_state": model.state_dict()}, path)
    found = layers(path, trust_pickle=trust_pickle)
    assert rows(found) == EXPECTED
    np.testing.assert_array_equal(found[-1].weights(), model.head.weight.detach().numpy())


def test_checkpoint_nested_two_levels_and_beside_a_scalar_tensor(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "nested.pt"
    torch.save({"step": torch.tensor(7), "trainer": {"epoch": 2, "weights": Small().state_dict()}}, path)
    assert rows(layers(path)) == EXPECTED


def test_checkpoint_with_two_models_prefers_the_usual_key_else_names_them(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "ema.pt"
    torch.save({"ema": Small().state_dict(), "model": Small().state_dict()}, path)
    assert rows(layers(path)) == EXPECTED
    gan = tmp_path / "gan.pt"
    torch.save({"generator": Small().state_dict(), "discriminator": Small().state_dict()}, gan)
    with pytest.raises(ValueError, match=r"gan\.pt.*several.*'generator'.*'discriminator'"):
        layers(gan)


def test_checkpoint_without_a_state_dict_names_the_keys_found(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "opt_only.pt"
    torch.save({"step": 3, "optimizer_state": _trained_optimizer_state(Small()), "config": {"lr": 0.1}}, path)
    with pytest.raises(ValueError, match=r"opt_only\.pt.*'step' \(int\).*'optimizer_state' \(optimizer state\).*'config' \(dict\)"):
        layers(path)


def test_bf16_file_widened(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "half.pt"
    torch.save({"fc.weight": torch.randn(4, 6, dtype=torch.bfloat16)}, path)
    [layer] = layers(path)
    assert layer.weights().dtype == np.float32


def test_pickled_module_refused_naming_file_and_option(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "whole_model.pt"
    torch.save(Small(), path)
    with pytest.raises(ValueError, match=r"whole_model\.pt.*trust_pickle=True") as info:
        layers(path)
    assert type(info.value).__name__ == "PickledCodeError"
    assert rows(layers(path, trust_pickle=True)) == EXPECTED


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_refused_unless_trusted(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(4, 3))), str(path))
    with pytest.raises(ValueError, match=r"scripted\.pt.*TorchScript.*trust_pickle=True"):
        layers(path)
    assert rows(layers(path, trust_pickle=True)) == [("0", "dense", (3, 4))]


def test_corrupted_file_names_the_file(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "broken.bin"
    path.write_bytes(b"\x80\x02 definitely not a checkpoint")
    with pytest.raises(ValueError, match=r"broken\.bin"):
        layers(path)


def test_file_without_tensors(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "empty.pt"
    torch.save({"epoch": 1}, path)
    with pytest.raises(ValueError, match=r"empty\.pt: holds no model state dict .*'epoch' \(int\)"):
        layers(path)


def save_shards(folder: Path, with_index: bool) -> None:
    """Three shards whose tensor names sort differently from architecture order."""
    shards = {
        "pytorch_model-00001-of-00003.bin": {"z_first.weight": torch.randn(4, 4)},
        "pytorch_model-00002-of-00003.bin": {"m_second.weight": torch.randn(5, 4), "a_third.weight": torch.randn(6, 5)},
        "pytorch_model-00003-of-00003.bin": {"b_last.weight": torch.randn(2, 6)},
    }
    for name, state in shards.items():
        torch.save(state, folder / name)
    if with_index:
        weight_map = {key: name for name, state in shards.items() for key in state}
        (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": dict(sorted(weight_map.items()))}))


@pytest.mark.parametrize("with_index", [True, False])
def test_shard_folder_in_shard_then_stored_order(tmp_path: Path, layers: Any, with_index: bool) -> None:
    save_shards(tmp_path, with_index)
    found = layers(tmp_path)
    assert [layer.name for layer in found] == ["z_first", "m_second", "a_third", "b_last"]
    assert [layer.index for layer in found] == [0, 1, 2, 3]


def test_shard_index_naming_a_missing_shard(tmp_path: Path, layers: Any) -> None:
    save_shards(tmp_path, with_index=True)
    (tmp_path / "pytorch_model-00002-of-00003.bin").unlink()
    with pytest.raises(FileNotFoundError, match="00002-of-00003"):
        layers(tmp_path)


def test_folder_with_safetensors_is_left_to_core(tmp_path: Path) -> None:
    from ww_torch.recognize import source_kind

    torch.save({"w": torch.ones(3, 3)}, tmp_path / "pytorch_model.bin")
    assert source_kind(tmp_path) == "folder"
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert source_kind(tmp_path) is None


def test_other_suffix_not_claimed(tmp_path: Path, layers: Any) -> None:
    path = tmp_path / "weights.ckpt2"
    torch.save({"w": torch.ones(3, 3)}, path)
    with pytest.raises(UnknownSourceError):
        layers(path)


def test_file_tensors_are_memory_mapped_and_read_lazily(
    tmp_path: Path, layers: Any, monkeypatch: pytest.MonkeyPatch, tensor_reads: list[int]
) -> None:
    from ww_torch import files

    path = tmp_path / "big.pt"
    torch.save({"fc.weight": torch.randn(64, 32)}, path)
    mapped: list[bool] = []
    real_load = torch.load

    def recording_load(*args: Any, **kwargs: Any) -> Any:
        mapped.append(kwargs.get("mmap"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(files.torch, "load", recording_load)
    reads = tensor_reads
    [layer] = layers(path)
    assert mapped == [True] and reads == []
    assert layer.weights().shape == (64, 32) and reads == [1]
