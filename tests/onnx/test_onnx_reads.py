"""docs/bad-input.md "Reads", for ww-onnx (the ``.onnx`` file and its external data files).

A hostile ``.onnx`` file is one error line naming it; hostile external data fails the row of the one
tensor stored there, naming its data file, and the other layers are analyzed. Every case runs in a
child process with bounded memory and time (tests/bounded_cli.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.bounded_cli import OutsideWatch, analyzed_rows, check_refused

FC1 = np.random.default_rng(1).standard_normal((32, 16)).astype(np.float32)
FC2 = np.random.default_rng(2).standard_normal((16, 24)).astype(np.float32)


def _model(fc1_location: str | None = None, fc1_type: int = TensorProto.FLOAT, length: int = FC1.nbytes) -> onnx.ModelProto:
    """x @ fc1 @ fc2; ``fc1`` stored in external file ``fc1_location`` when given, with element type ``fc1_type``."""
    fc1 = numpy_helper.from_array(FC1, "fc1")
    if fc1_location is not None:
        fc1.ClearField("raw_data")
        fc1.data_location = TensorProto.EXTERNAL
        for key, value in (("location", fc1_location), ("offset", "0"), ("length", str(length))):
            fc1.external_data.add(key=key, value=value)
    fc1.data_type = fc1_type
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "fc1"], ["h"], name="/fc1/MatMul"),
            helper.make_node("MatMul", ["h", "fc2"], ["y"], name="/fc2/MatMul"),
        ],
        "reads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[fc1, numpy_helper.from_array(FC2, "fc2")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _save(model: onnx.ModelProto, root: Path) -> Path:
    folder = root / "model"
    folder.mkdir(exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def fifo_as_the_model(root: Path) -> Path:
    os.mkfifo(root / "model.onnx")
    return root / "model.onnx"


def test_a_fifo_as_the_model_is_refused(tmp_path: Path) -> None:
    check_refused(fifo_as_the_model(tmp_path), "not a regular file", "FIFO")


# External data: the row of the tensor stored there fails naming the data file; fc2 is analyzed.


def fifo_as_external_data(root: Path) -> Path:
    path = _save(_model("fc1.bin"), root)
    os.mkfifo(path.parent / "fc1.bin")
    return path


def external_data_linked_outside(root: Path) -> Path:
    path = _save(_model("fc1.bin"), root)
    (path.parent / "fc1.bin").symlink_to(root / "outside" / "secret.bin")
    return path


def external_data_claiming_more_than_the_file(root: Path) -> Path:
    path = _save(_model("fc1.bin"), root)
    (path.parent / "fc1.bin").write_bytes(FC1.tobytes()[:64])
    return path


EXTERNAL: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "a FIFO as external data": (fifo_as_external_data, ("fc1.bin", "not a regular file")),
    "external data linked outside the model": (external_data_linked_outside, ("fc1.bin", "outside")),
    "external data shorter than the tensor": (external_data_claiming_more_than_the_file, ("fc1.bin", "present")),
}


@pytest.mark.parametrize("case", sorted(EXTERNAL))
def test_hostile_external_data_fails_its_row_only(tmp_path: Path, case: str) -> None:
    build, needles = EXTERNAL[case]
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.bin").write_bytes(FC1.tobytes())
    path = build(tmp_path)
    with OutsideWatch(tmp_path / "outside") as watch:
        rows = {row["name"]: row for row in analyzed_rows(path, tmp_path / "rows.json")}
    assert watch.touched == []
    assert rows["fc2"]["status"] == "success"
    assert rows["fc1"]["status"] == "failed" and all(needle in str(rows["fc1"]["error"]) for needle in needles), rows["fc1"]


def test_an_unknown_element_type_is_one_skipped_row(tmp_path: Path) -> None:
    """Element type 999 ("Enum DataType has no name") refused the whole model; it is one row saying so."""
    rows = {row["name"]: row for row in analyzed_rows(_save(_model(fc1_type=999), tmp_path), tmp_path / "rows.json")}
    assert rows["fc2"]["status"] == "success"
    assert rows["fc1"]["status"] == "skipped" and "999" in str(rows["fc1"]["error"]), rows["fc1"]
