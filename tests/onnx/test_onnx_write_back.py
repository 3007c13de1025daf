"""ww-onnx's ww_write_weights: a ModelProto comes back as a new one, an .onnx file as a new file (external data too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import ww_core
import ww_onnx
from ww_core import testing
from ww_core.models.smoothing import low_rank

from .onnx_graphs import constant, model, weight


def _zoo() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Gemm", ["x", "G"], ["g"], transB=0),
        helper.make_node("MatMul", ["g", "M"], ["m"]),
        constant("C", weight(3, 6, 4)),
        helper.make_node("MatMul", ["m", "C"], ["c"]),
        helper.make_node("Conv", ["x", "K"], ["k"]),
        helper.make_node("ConvTranspose", ["k", "T"], ["t"]),
        helper.make_node("Gather", ["E", "x"], ["e"]),
        helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=3, direction="bidirectional"),
    ]
    initializers = {
        "G": weight(0, 5, 7),
        "M": weight(1, 7, 6),
        "K": weight(2, 8, 3, 3, 3),
        "T": weight(4, 8, 2, 3, 3),
        "E": weight(5, 20, 6),
        "W": weight(6, 2, 12, 5),
        "R": weight(7, 2, 12, 3),
    }
    return model(nodes, initializers)


@pytest.mark.parametrize("split_gates", [False, True])
def test_kit_round_trip_on_a_model_proto_leaves_the_input_alone(split_gates: bool) -> None:
    proto = _zoo()
    before = proto.SerializeToString()
    updated = testing.check_write_back(ww_onnx.ww_layers, ww_onnx.ww_write_weights, proto, {"split_gates": split_gates})
    assert isinstance(updated, onnx.ModelProto) and updated is not proto and proto.SerializeToString() == before


def test_kit_round_trip_on_files_with_and_without_external_data(tmp_path: Path) -> None:
    plain = tmp_path / "plain.onnx"
    onnx.save_model(_zoo(), str(plain))
    testing.check_write_back(ww_onnx.ww_layers, ww_onnx.ww_write_weights, plain, output=tmp_path / "plain-new.onnx")
    external = tmp_path / "ext.onnx"
    onnx.save_model(_zoo(), str(external), save_as_external_data=True, location="ext.data", size_threshold=0)
    before = (tmp_path / "ext.data").read_bytes()
    testing.check_write_back(ww_onnx.ww_layers, ww_onnx.ww_write_weights, external, output=tmp_path / "ext-new.onnx")
    assert (tmp_path / "ext.data").read_bytes() == before


def test_svd_smoothing_of_a_model_proto_returns_a_new_one() -> None:
    proto = _zoo()
    smoothed = ww_core.svd_smoothing(proto, method="svd", percent=0.5, min_evals=0)
    [gemm] = [layer for layer in ww_onnx.ww_layers(smoothed, {}) if layer.name == "G"]
    original = onnx.numpy_helper.to_array(proto.graph.initializer[0]).astype(np.float64)  # (in, out)
    np.testing.assert_allclose(gemm.load(), low_rank(original.T, 2), atol=1e-5)


def test_unknown_layer_is_named() -> None:
    with pytest.raises(KeyError, match="nope"):
        ww_onnx.ww_write_weights(_zoo(), {"nope": np.zeros((2, 2))}, None, ww_core.AdapterOptions())


#: svd_smoothing of an .onnx file in its own process under a file-size limit (EFBIG, as ENOSPC on a full disk)
FULL_DISK = r"""
import resource, signal, sys
import ww_core

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    ww_core.svd_smoothing(sys.argv[1], output=sys.argv[2], method="svd", percent=0.5)
except (OSError, ValueError) as exc:
    print("refused:", exc)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("external", [False, True])
def test_write_back_on_a_full_disk_leaves_no_half_written_file(tmp_path: Path, external: bool) -> None:
    """onnx.save_model straight onto the output left a truncated .onnx (and .data) where the new model was to be."""
    import subprocess
    import sys

    (tmp_path / "src").mkdir()
    source, output = tmp_path / "src" / "net.onnx", tmp_path / "out" / "net.onnx"
    big = model([helper.make_node("MatMul", ["x", "M"], ["m"])], {"M": weight(1, 60, 40)})
    if external:
        onnx.save_model(big, str(source), save_as_external_data=True, location="net.data", size_threshold=0)
    else:
        onnx.save_model(big, str(source))
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(source), str(output)], capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith("refused:"), (done.stdout, done.stderr)
    assert not output.parent.exists() or [path.name for path in output.parent.iterdir()] == []
