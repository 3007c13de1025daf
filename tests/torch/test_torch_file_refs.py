"""Torch files travel as references: a process-pool worker reopens the .pt/.bin itself (weights only, memory-mapped)."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import torch

import ww_core
from ww_core.platform.toolkit import TensorRef

SPAWN = multiprocessing.get_context("spawn")  # workers do not inherit the tensor_reads counter


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    torch.save({"enc.attn.in_proj_weight": torch.randn(3 * 24, 24), "enc.fc.weight": torch.randn(40, 24)}, tmp_path / "pytorch_model-1.bin")
    torch.save(
        {"dec.fc.weight": torch.randn(30, 40).to(torch.bfloat16), "dec.out.weight": torch.randn(16, 30)}, tmp_path / "pytorch_model-2.bin"
    )
    return tmp_path


def test_torch_file_layers_are_picklable_references(folder: Path) -> None:
    layers = list(ww_core.describe(folder).details)
    assert [row["name"] for row in layers] == [
        "enc.attn.in_proj.q",
        "enc.attn.in_proj.k",
        "enc.attn.in_proj.v",
        "enc.fc",
        "dec.fc",
        "dec.out",
    ]
    from ww_core.pipeline.analysis import model_layers
    from ww_core.results.options import AnalysisOptions

    found = list(model_layers(folder, AnalysisOptions()).layers)
    assert all(isinstance(layer.load, TensorRef) for layer in found)
    k = pickle.loads(pickle.dumps(found[1]))
    full = torch.load(folder / "pytorch_model-1.bin", weights_only=True)["enc.attn.in_proj_weight"]
    assert (k.weights() == full[24:48].numpy()).all()


def test_process_pool_workers_read_torch_files_themselves(folder: Path, tensor_reads: list[int]) -> None:
    serial = ww_core.analyze(folder, workers=1)
    assert len(tensor_reads) == 6
    tensor_reads.clear()
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        pooled = ww_core.analyze(folder, executor=pool)
    assert tensor_reads == []
    for a, b in zip(serial.details, pooled.details, strict=True):
        assert a["status"] == b["status"] == "success"
        for column in ("alpha", "D", "log_norm", "lambda_max"):
            assert a[column] == pytest.approx(b[column], rel=1e-12, abs=1e-12)
