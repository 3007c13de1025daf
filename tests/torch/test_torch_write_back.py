"""ww-torch's ww_write_weights: modules and state dicts in place, files and shard folders as new files; SVD smoothing end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import ww_core
import ww_torch
from ww_core import testing
from ww_core.models.smoothing import low_rank


class Conv1D(nn.Module):
    """Hugging Face GPT-2 style dense layer storing its weight as (in, out)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf))


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Module()
    net.fc = nn.Linear(20, 30)
    net.conv = nn.Conv2d(3, 8, 3)
    net.up = nn.ConvTranspose2d(8, 4, 3)
    net.attn = nn.MultiheadAttention(16, 2)
    net.rnn = nn.LSTM(10, 12)
    net.emb = nn.Embedding(50, 16)
    net.gpt = Conv1D(24, 16)
    return net


@pytest.mark.parametrize("fused_qkv", [False, True])
def test_kit_round_trip_on_a_module(fused_qkv: bool) -> None:
    net = _net()
    assert testing.check_write_back(ww_torch.ww_layers, ww_torch.ww_write_weights, net, {"fused_qkv": fused_qkv}) is net


def test_kit_round_trip_on_state_dict_and_half_precision() -> None:
    state = {key: value.clone() for key, value in _net().state_dict().items()}
    testing.check_write_back(ww_torch.ww_layers, ww_torch.ww_write_weights, state)
    half = nn.Linear(16, 8).to(torch.float16)
    testing.check_write_back(ww_torch.ww_layers, ww_torch.ww_write_weights, half)
    assert half.weight.dtype == torch.float16


def test_kit_round_trip_on_a_file_and_shard_folder(tmp_path: Path) -> None:
    path = tmp_path / "net.pt"
    torch.save({"model": _net().state_dict(), "step": 3}, path)
    before = path.read_bytes()
    out = testing.check_write_back(ww_torch.ww_layers, ww_torch.ww_write_weights, path, output=tmp_path / "new.pt")
    assert path.read_bytes() == before
    assert torch.load(out, weights_only=True)["step"] == 3  # the checkpoint keeps its other entries
    folder = tmp_path / "shards"
    folder.mkdir()
    state = _net().state_dict()
    keys = list(state)
    torch.save({k: state[k] for k in keys[: len(keys) // 2]}, folder / "a.bin")
    torch.save({k: state[k] for k in keys[len(keys) // 2 :]}, folder / "b.bin")
    testing.check_write_back(ww_torch.ww_layers, ww_torch.ww_write_weights, folder, output=tmp_path / "shards-new")


def test_unknown_layer_is_named() -> None:
    with pytest.raises(KeyError, match="nope"):
        ww_torch.ww_write_weights(_net(), {"nope": np.zeros((2, 2))}, None, ww_core.AdapterOptions())


def test_svd_smoothing_changes_the_module_in_place_and_reanalysis_sees_it() -> None:
    net = _net()
    before = net.fc.weight.detach().numpy().astype(np.float64)
    assert ww_core.svd_smoothing(net, method="svd", percent=0.5) is net
    np.testing.assert_allclose(net.fc.weight.detach().numpy(), low_rank(before, 10), atol=1e-5)
    esd = ww_core.get_esd(net, "fc")
    assert np.count_nonzero(esd > 1e-6 * esd.max()) == 10


def test_svd_smoothing_of_a_file_writes_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "net.pt"
    torch.save(_net().state_dict(), path)
    new = ww_core.svd_smoothing(path, method="svd", percent=0.5)
    assert new == tmp_path.with_name(f"{tmp_path.name}-smoothed") / "net.pt"  # beside the folder, which a torch reader reads
    assert np.linalg.matrix_rank(torch.load(new, weights_only=True)["fc.weight"].numpy()) == 10
    assert np.linalg.matrix_rank(torch.load(path, weights_only=True)["fc.weight"].numpy()) == 20


#: svd_smoothing of a .pt file in its own process under a file-size limit (EFBIG, as ENOSPC on a full disk)
FULL_DISK = r"""
import resource, signal, sys
import ww_core

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    ww_core.svd_smoothing(sys.argv[1], output=sys.argv[2], method="svd", percent=0.5)
except (OSError, ValueError) as exc:  # torch.save says "unexpected pos" (a PluginError naming ww-torch)
    print("refused:", exc)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="RLIMIT_FSIZE is POSIX")
def test_write_back_on_a_full_disk_leaves_no_half_written_file(tmp_path: Path) -> None:
    """torch.save straight onto the output left a truncated .pt where the new model was to be."""
    import subprocess
    import sys

    (tmp_path / "src").mkdir()
    source, output = tmp_path / "src" / "model.pt", tmp_path / "out" / "model.pt"
    torch.save(_net().state_dict(), source)
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(source), str(output)], capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith("refused:"), (done.stdout, done.stderr)
    assert not output.exists() and [path.name for path in output.parent.iterdir()] == []
