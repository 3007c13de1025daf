"""GGUF layers travel as references: a process-pool worker reads (and dequantizes, un-permutes) its own tensor."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
pytest.importorskip("ww_gguf")

from gguf import GGMLQuantizationType as Q  # noqa: E402

import ww_core  # noqa: E402
from ww_core.platform.toolkit import TensorRef  # noqa: E402
from ww_gguf.tensors import GGUFTensorRef  # noqa: E402

from .gguf_files import llama_permute, write_gguf  # noqa: E402

SPAWN = multiprocessing.get_context("spawn")  # workers do not inherit the read counter below


@pytest.fixture
def model(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(5)
    q = rng.standard_normal((32, 32)).astype(np.float32)
    tensors: dict[str, Any] = {
        "blk.0.attn_q.weight": llama_permute(q, 4),
        "blk.0.ffn_up.weight": (rng.standard_normal((48, 32)).astype(np.float32), Q.Q8_0),
        "blk.0.ffn_down.weight": rng.standard_normal((32, 48)).astype(np.float16),
    }
    meta = {"llama.attention.head_count": 4, "llama.attention.head_count_kv": 4}
    return write_gguf(tmp_path / "m.gguf", tensors, metadata=meta), q


def test_gguf_layers_are_picklable_references(model: tuple[Path, np.ndarray]) -> None:
    path, q = model
    from ww_core.pipeline.analysis import model_layers
    from ww_core.results.options import AnalysisOptions

    layers = list(model_layers(path, AnalysisOptions()).layers)
    assert all(isinstance(layer.load, GGUFTensorRef) for layer in layers)
    [query] = [pickle.loads(pickle.dumps(layer)) for layer in layers if layer.name.endswith("q_proj")]
    np.testing.assert_array_equal(query.weights(), q)  # rotary rows restored on the reading side


def test_process_pool_workers_read_gguf_themselves(model: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = model
    serial = ww_core.analyze(path, workers=1)
    reads: list[int] = []
    real = GGUFTensorRef.read

    def counting(self: TensorRef) -> np.ndarray:
        reads.append(1)
        return real(self)  # type: ignore[arg-type]

    monkeypatch.setattr(GGUFTensorRef, "read", counting)
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        pooled = ww_core.analyze(path, executor=pool)
    assert reads == []
    for a, b in zip(serial.details, pooled.details, strict=True):
        assert a["status"] == b["status"] == "success"
        assert a["alpha"] == pytest.approx(b["alpha"], rel=1e-12)
