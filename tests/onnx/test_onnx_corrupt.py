"""Corrupted ONNX files: a clear error naming the file (or a failed row naming the layer), no crash, no blow-up."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("ww_onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import ww_core  # noqa: E402
from ww_core.cli import main  # noqa: E402


def _model(weights: dict[str, np.ndarray] | None = None, raw: dict[str, tuple[list[int], bytes]] | None = None) -> onnx.ModelProto:
    """x → Gemm(fc1) → Gemm(fc2): two dense layers whose weights are initializers."""
    rng = np.random.default_rng(0)
    weights = weights or {"fc1": rng.standard_normal((32, 16)).astype(np.float32), "fc2": rng.standard_normal((8, 32)).astype(np.float32)}
    inits = [numpy_helper.from_array(value, name) for name, value in weights.items()]
    for tensor in inits:
        if tensor.name in (raw or {}):  # make the initializer lie: dims and bytes that disagree
            dims, data = (raw or {})[tensor.name]
            del tensor.dims[:]
            tensor.dims.extend(dims)
            tensor.raw_data = data
    nodes = [
        helper.make_node("Gemm", ["x", "fc1"], ["h"], transB=1),
        helper.make_node("Gemm", ["h", "fc2"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        inits,
    )
    return helper.make_model(graph)


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def test_the_intact_model_is_analyzed(tmp_path: Path) -> None:
    results = ww_core.analyze(_save(_model(), tmp_path / "ok.onnx"))
    assert [row["status"] for row in results.details] == ["success", "success"]


@pytest.mark.parametrize("keep", [1, 7, 0.25, 0.5, 0.9])
def test_truncated_protobuf_names_the_file(tmp_path: Path, keep: float) -> None:
    raw = _model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(raw[: int(len(raw) * keep) if isinstance(keep, float) else keep])
    try:
        results = ww_core.analyze(path)
    except ValueError as exc:
        assert "cut.onnx" in str(exc)
        return
    assert all(row["status"] in ("success", "failed", "skipped") for row in results.details)


def test_garbage_bytes_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(ValueError, match=r"noise\.onnx"):
        ww_core.analyze(path)
    assert main(["analyze", str(path)]) == 2
    assert "noise.onnx" in capsys.readouterr().err


def test_initializer_whose_data_disagrees_with_its_dims(tmp_path: Path) -> None:
    path = _save(_model(raw={"fc1": ([32, 16], b"\0" * 40)}), tmp_path / "short.onnx")
    try:
        results = ww_core.analyze(path)
    except ValueError as exc:
        assert "short.onnx" in str(exc) and "fc1" in str(exc)
        return
    failed = [row for row in results.details if row["status"] == "failed"]
    assert len(failed) == 1 and "fc1" in failed[0]["error"]
    assert [row["status"] for row in results.details].count("success") == 1


def test_negative_dims_are_refused_naming_the_tensor(tmp_path: Path) -> None:
    """dims [-32, 16] were listed as a layer with M = -32 and num_evals = -32 (a skipped row showing a made-up size)."""
    path = _save(_model(raw={"fc1": ([-32, 16], b"\0" * 64)}), tmp_path / "neg.onnx")
    for run in (ww_core.analyze, ww_core.describe):
        with pytest.raises(ValueError, match=r"neg\.onnx.*'fc1'.*invalid shape"):
            run(path)


def test_an_initializer_named_twice_is_refused_naming_it(tmp_path: Path) -> None:
    """Two initializers named ``fc1`` (ONNX names are unique): one of them was analyzed, a silent choice."""
    model = _model()
    twin = numpy_helper.from_array(np.random.default_rng(5).standard_normal((32, 16)).astype(np.float32), "fc1")
    model.graph.initializer.append(twin)
    path = _save(model, tmp_path / "twice.onnx")
    for run in (ww_core.analyze, ww_core.describe):
        with pytest.raises(ValueError, match=r"twice\.onnx.*'fc1'.*twice"):
            run(path)


def test_dims_claiming_terabytes_do_not_allocate(tmp_path: Path) -> None:
    path = _save(_model(raw={"fc1": ([1 << 20, 1 << 20], b"\0" * 64)}), tmp_path / "huge.onnx")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        results = ww_core.analyze(path)
    except ValueError as exc:
        assert "huge.onnx" in str(exc)
    else:
        assert any(row["status"] in ("failed", "skipped") for row in results.details)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB


def test_external_data_outside_the_folder_or_missing_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(32 * 16, np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    for location, name in (("../secret.bin", "escape.onnx"), ("missing.bin", "missing.onnx")):
        model = _model()
        tensor = next(t for t in model.graph.initializer if t.name == "fc1")
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(32 * 16 * 4))):
            tensor.external_data.add(key=key, value=value)
        path = _save(model, folder / name)
        try:
            results = ww_core.analyze(path)
        except (ValueError, FileNotFoundError) as exc:
            assert name in str(exc) or location in str(exc)
            continue
        row = next(row for row in results.details if "fc1" in row["name"])
        assert row["status"] == "failed" and location.split("/")[-1] in row["error"]


def _external(model: onnx.ModelProto, location: str) -> onnx.ModelProto:
    tensor = next(t for t in model.graph.initializer if t.name == "fc1")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(32 * 16 * 4))):
        tensor.external_data.add(key=key, value=value)
    return model


def test_external_data_through_a_link_into_a_blob_folder_is_followed(tmp_path: Path) -> None:
    """Hugging Face cache snapshots hold links into ../../blobs: the name is confined, the link is followed."""
    fc1 = np.random.default_rng(1).standard_normal((32, 16)).astype(np.float32)
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "5e1f").write_bytes(fc1.tobytes())
    snapshot = tmp_path / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "model.onnx_data").symlink_to("../../blobs/5e1f")
    path = _save(_external(_model(), "model.onnx_data"), snapshot / "model.onnx")
    row = next(row for row in ww_core.analyze(path, workers=1).details if "fc1" in row["name"])
    assert row["status"] == "success", row.get("error")
    assert row["alpha"] == ww_core.analyze({"fc1": fc1}, workers=1).details[0]["alpha"]


def test_external_data_named_outside_the_folder_is_refused_even_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "secret.bin").write_bytes(np.ones(32 * 16, np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "up").symlink_to("..")
    for location in ("../secret.bin", "up/../../secret.bin", str(tmp_path / "secret.bin")):
        path = _save(_external(_model(), location), folder / "escape.onnx")
        row = next(row for row in ww_core.analyze(path, workers=1).details if "fc1" in row["name"])
        assert row["status"] == "failed" and "outside the model folder" in row["error"], location


@pytest.mark.parametrize("case", ["empty", "random", "truncated", "text"])
def test_hostile_onnx_file_is_one_cli_error_line_naming_it(tmp_path: Path, case: str) -> None:
    from ww_core.testing import check_cli_error

    whole = _model().SerializeToString()
    payload = {
        "empty": b"",
        "random": np.random.default_rng(0).bytes(2048),
        "truncated": whole[: len(whole) // 2],
        "text": b"root:x:0:0:root:/root:/bin/bash\n",
    }[case]
    path = tmp_path / f"{case}.onnx"
    path.write_bytes(payload)
    check_cli_error(path)
