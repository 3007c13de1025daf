"""LoRA updates B·A of factors in a file travel as references: a process-pool worker reads both factors itself."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import ww_core
from ww_core import testing
from ww_core.pipeline.analysis import model_layers
from ww_core.platform.toolkit import TensorRef
from ww_core.results.options import AnalysisOptions

safetensors_numpy = pytest.importorskip("safetensors.numpy")

SPAWN = multiprocessing.get_context("spawn")  # workers start clean: the client-side read counter below is not inherited


@pytest.fixture
def adapter_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(21)
    tensors = {}
    for name in ("q", "k", "v"):
        tensors[f"{name}.base_layer.weight"] = rng.standard_normal((64, 48)).astype(np.float32)
        tensors[f"{name}.lora_A.default.weight"] = rng.standard_t(3, size=(8, 48)).astype(np.float32)
        tensors[f"{name}.lora_B.default.weight"] = rng.standard_t(3, size=(64, 8)).astype(np.float32)
    path = tmp_path / "adapter_model.safetensors"
    safetensors_numpy.save_file(tensors, str(path))
    return path


@pytest.fixture
def client_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Bytes of tensor data read through the toolkit's references in this (the client) process."""
    counted: list[int] = []

    def patch(cls: type) -> None:
        for sub in cls.__subclasses__():
            if "read" in vars(sub):
                real = sub.read  # type: ignore[attr-defined]

                def read(self: Any, _real: Any = real) -> np.ndarray:
                    array = _real(self)
                    counted.append(array.nbytes)
                    return array

                monkeypatch.setattr(sub, "read", read)
            patch(sub)

    patch(TensorRef)
    yield counted


def test_lora_products_of_file_factors_are_picklable_references(adapter_file: Path) -> None:
    products = [layer for layer in model_layers(adapter_file, AnalysisOptions(peft=True)).layers if layer.name.endswith("lora_BA.default")]
    assert [layer.name for layer in products] == ["k.lora_BA.default", "q.lora_BA.default", "v.lora_BA.default"]
    tensors = safetensors_numpy.load_file(str(adapter_file))
    for layer in products:
        assert isinstance(layer.load, TensorRef) and layer.load.path == str(adapter_file), layer.name
        stem = layer.name.split(".")[0]
        expected = tensors[f"{stem}.lora_B.default.weight"].astype(np.float64) @ tensors[f"{stem}.lora_A.default.weight"].astype(np.float64)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(layer)).weights(), expected, err_msg=layer.name)


@pytest.mark.parametrize("peft", [True, "with_base"])
def test_process_pool_rows_equal_serial_and_the_client_reads_no_tensor_bytes(
    adapter_file: Path, client_reads: list[int], peft: Any
) -> None:
    serial = ww_core.analyze(adapter_file, workers=1, peft=peft, min_evals=4)
    assert client_reads
    client_reads.clear()
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        pooled = ww_core.analyze(adapter_file, executor=pool, workers=2, peft=peft, min_evals=4)
    assert client_reads == []
    assert [row["name"] for row in serial.analyzed][-3:] == ["k.lora_BA.default", "q.lora_BA.default", "v.lora_BA.default"]
    testing.assert_rows_close(pooled.details, serial.details, rtol=1e-12, atol=1e-12, ignore=())
