"""Run by the ``dist`` nox session inside a fresh virtualenv, outside the repository: installed-by-name packages work.

Usage: ``python smoke_installed.py WHEELHOUSE REPO REPORT.json ADAPTER...`` where REPORT is
``pip install --report`` output and ``plot`` among the adapters checks the ``ww-core[plot]``
extra. Checks that every ww package came from the wheelhouse and third-party ones from elsewhere,
that nothing is imported from the repository, then runs ``ww demo``, ``ww plugins`` and a small model through each adapter named.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import ww_core

BIN = Path(sys.executable).parent


def check_origins(report: Path, wheelhouse: Path) -> None:
    """Each ww distribution was installed from a wheel in the wheelhouse; every other one from the registry."""
    for item in json.loads(report.read_text())["install"]:
        name, url = item["metadata"]["name"], item["download_info"]["url"]
        from_wheelhouse = url.startswith(wheelhouse.resolve().as_uri() + "/")
        if name.startswith("ww-"):
            assert from_wheelhouse and url.endswith(".whl"), f"{name} came from {url}, not the wheelhouse"
        else:
            assert not from_wheelhouse, f"third-party {name} came from the wheelhouse"


def check_not_from(repo: Path) -> None:
    """Every imported ww module lives in this virtualenv, none in the repository."""
    for name, module in sorted(sys.modules.items()):
        if name.split(".")[0].startswith("ww_") and getattr(module, "__file__", None):
            where = Path(module.__file__).resolve()
            assert where.is_relative_to(Path(sys.prefix).resolve()), f"{name} imported from {where}, outside the virtualenv"
            assert not where.is_relative_to(repo.resolve()), f"{name} imported from the repository: {where}"


def ww(*args: str) -> str:
    """Run the installed ``ww`` command and return its stdout."""
    done = subprocess.run([str(BIN / "ww"), *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, f"ww {' '.join(args)} failed ({done.returncode}): {done.stderr}"
    return done.stdout


def all_analyzed(source: object, label: str) -> None:
    results = ww_core.analyze(source, min_evals=2)
    statuses = [row["status"] for row in results.details]
    assert statuses and set(statuses) == {"success"}, f"{label}: {statuses}"
    print(f"{label}: {len(statuses)} layers analyzed")


def smoke_jax(folder: Path) -> None:
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.fc1 = nnx.Linear(64, 48, rngs=rngs)
            self.fc2 = nnx.Linear(48, 16, rngs=rngs)

    all_analyzed(Net(nnx.Rngs(0)), "flax nnx module")


def smoke_torch(folder: Path) -> None:
    import torch

    all_analyzed(torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.Linear(48, 16)), "torch module")


def smoke_onnx(folder: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((48, 64)).astype(np.float32), "fc")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "fc"], ["y"], transB=1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 48])],
        [weight],
    )
    path = folder / "net.onnx"
    onnx.save(helper.make_model(graph), str(path))
    all_analyzed(path, "onnx file")


def smoke_keras(folder: Path) -> None:
    import keras

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(48), keras.layers.Dense(16)])
    all_analyzed(model, "keras model")


def smoke_gguf(folder: Path) -> None:
    import gguf

    path = folder / "net.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tensor("blk.0.ffn_up.weight", np.random.default_rng(0).standard_normal((48, 64)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    all_analyzed(path, "gguf file")


def smoke_plot(folder: Path) -> None:
    ww("demo", "--plot", str(folder / "plots"))
    assert (folder / "plots" / "correlation_flow.png").is_file(), "ww demo --plot wrote no correlation_flow.png"
    print("ww-core[plot]: plots written")


SMOKE = {"plot": smoke_plot, "jax": smoke_jax, "torch": smoke_torch, "onnx": smoke_onnx, "keras": smoke_keras, "gguf": smoke_gguf}


def main(wheelhouse: Path, repo: Path, report: Path, adapters: list[str]) -> None:
    check_origins(report, wheelhouse)
    assert "summary" in ww("demo"), "ww demo printed no summary"
    listed = {row["name"] for row in json.loads(ww("plugins", "--json"))}
    assert {"ww-core", *adapters} - {"plot"} <= listed, f"ww plugins lists {sorted(listed)}"
    with tempfile.TemporaryDirectory() as folder:
        for adapter in adapters:
            SMOKE[adapter](Path(folder))
    check_not_from(repo)
    print(f"installed by name from {wheelhouse}: ww-core{''.join(f' ww-{a}' for a in adapters if a != 'plot')} work")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
