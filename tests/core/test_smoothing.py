"""SVD smoothing and sharpening: keep counts as the reference picks them, exact truncations, write-back of core's sources."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core import testing
from ww_core.models.smoothing import low_rank, truncated
from ww_core.sources import builtin


def _model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "a.weight": rng.standard_t(3, size=(100, 50)),
        "b.weight": rng.standard_normal((64, 64)),
        "c.weight": rng.standard_normal((16, 8, 3, 3)),
        "c.bias": rng.standard_normal(16),
    }


def _ranks(array: np.ndarray) -> list[int]:
    flat = array.reshape(array.shape[0], array.shape[1], -1)
    return [int(np.linalg.matrix_rank(flat[:, :, k])) for k in range(flat.shape[2])]


def test_low_rank_keeps_or_removes_the_top_components_exactly() -> None:
    matrix = np.random.default_rng(0).standard_normal((30, 20))
    left, values, right = np.linalg.svd(matrix, full_matrices=False)
    np.testing.assert_allclose(low_rank(matrix, 5), (left[:, :5] * values[:5]) @ right[:5], atol=1e-12)
    np.testing.assert_allclose(low_rank(matrix, -3), (left[:, 3:] * values[3:]) @ right[3:], atol=1e-12)
    np.testing.assert_array_equal(low_rank(matrix, 0), matrix)
    assert low_rank(matrix.astype(np.float32), 5).dtype == np.float32


def test_conv_slices_each_keep_ceil_of_keep_over_rf() -> None:
    conv = np.random.default_rng(1).standard_normal((16, 8, 3, 3))
    assert _ranks(truncated(conv, "conv2d", 20)) == [math.ceil(20 / 9)] * 9
    assert _ranks(truncated(conv, "conv2d", -5)) == [8] * 9  # ceil(-5/9) = 0: nothing removed, as in the reference


@pytest.mark.parametrize(("method", "column"), [("detX", "detX_num"), ("rmt", "num_spikes"), ("alpha_min", "num_pl_spikes")])
def test_keep_counts_are_the_analysis_columns(method: str, column: str) -> None:
    model = _model()
    rows = {row["name"]: row for row in ww_core.analyze(model, detX=True, mp_fit=True).details}
    smoothed = ww_core.svd_smoothing(model, method=method)
    for name in ("a", "b"):
        keep = rows[name][column]
        expected = model[f"{name}.weight"] if keep == 0 else low_rank(model[f"{name}.weight"], keep)
        np.testing.assert_allclose(smoothed[f"{name}.weight"], expected, atol=1e-12)
    assert _ranks(smoothed["c.weight"]) == [min(8, math.ceil(rows["c"][column] / 9))] * 9 or rows["c"][column] == 0


def test_svd_method_keeps_percent_of_components_and_leaves_the_input_alone() -> None:
    model = _model()
    before = {key: value.copy() for key, value in model.items()}
    smoothed = ww_core.svd_smoothing(model, method="svd", percent=0.5)
    assert _ranks(smoothed["a.weight"]) == [25] and _ranks(smoothed["b.weight"]) == [32]
    assert _ranks(smoothed["c.weight"]) == [math.ceil(int(0.5 * 8 * 9) / 9)] * 9
    np.testing.assert_array_equal(smoothed["c.bias"], model["c.bias"])
    for key, value in before.items():
        np.testing.assert_array_equal(model[key], value)


def test_auto_picks_rmt_above_alpha_6_else_detx() -> None:
    model = _model()
    rows = {row["name"]: row for row in ww_core.analyze(model, detX=True, mp_fit=True).details}
    auto = ww_core.svd_smoothing(model, method="auto")
    for name in ("a", "b"):
        column = "num_spikes" if rows[name]["alpha"] > 6 else "detX_num"
        np.testing.assert_allclose(auto[f"{name}.weight"], low_rank(model[f"{name}.weight"], rows[name][column]), atol=1e-12)


def test_layers_filter_limits_the_change() -> None:
    model = _model()
    smoothed = ww_core.svd_smoothing(model, method="svd", percent=0.5, layers=[0])
    assert _ranks(smoothed["a.weight"]) == [25]
    np.testing.assert_array_equal(smoothed["b.weight"], model["b.weight"])


def test_sharpness_removes_the_correlation_traps_of_heavy_entries() -> None:
    rng = np.random.default_rng(5)
    weights = rng.standard_normal((200, 100))
    weights[rng.integers(0, 200, 6), rng.integers(0, 100, 6)] = 60.0  # a few huge entries: spikes even when shuffled
    sharpened = ww_core.svd_sharpness({"w": weights})["w"]
    from ww_core.models.smoothing import trap_count

    layer = next(iter(builtin.ww_layers({"w": weights}, {})))
    traps = trap_count(layer, weights, ww_core.AnalysisOptions())
    assert traps > 0
    np.testing.assert_allclose(sharpened, low_rank(weights, -traps), atol=1e-10)
    assert np.linalg.norm(sharpened, 2) < np.linalg.norm(weights, 2)


def test_reanalysis_of_the_smoothed_model_shows_the_kept_rank() -> None:
    model = _model()
    smoothed = ww_core.svd_smoothing(model, method="svd", percent=0.5)
    esd = ww_core.get_esd(smoothed, "a")
    assert np.count_nonzero(esd > 1e-9 * esd.max()) == 25


@pytest.mark.parametrize("bad", [{"method": "nope"}, {"pool": False}, {"intra": True}, {"peft": True}])
def test_bad_arguments_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ww_core.svd_smoothing(_model(), **bad)


def test_npz_write_back_makes_a_new_file_beside_the_input(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    np.savez(path, **{k: v.astype(np.float32) for k, v in _model().items()})
    before = path.read_bytes()
    new = ww_core.svd_smoothing(path, method="svd", percent=0.5)
    assert Path(new) == tmp_path / "model-smoothed.npz" and path.read_bytes() == before
    with np.load(new) as archive:
        assert archive["a.weight"].dtype == np.float32 and _ranks(archive["a.weight"]) == [25]
        np.testing.assert_array_equal(archive["c.bias"], _model()["c.bias"].astype(np.float32))
    with pytest.raises(ValueError, match="overwrite the input"):
        ww_core.svd_smoothing(path, output=path)


def _write_safetensors(path: Path, arrays: dict[str, np.ndarray]) -> None:
    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}, str(path), metadata={"format": "pt"})


def test_safetensors_write_back_keeps_other_tensors_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "model" / "model.safetensors"
    path.parent.mkdir()
    _write_safetensors(path, _model())
    new = Path(ww_core.svd_sharpness(path, output=tmp_path / "out.safetensors"))  # never into the model's folder
    from safetensors import safe_open

    with safe_open(str(new), "numpy") as handle:
        assert handle.metadata() == {"format": "pt"}
        np.testing.assert_array_equal(handle.get_tensor("c.bias"), _model()["c.bias"].astype(np.float32))
        assert set(handle.keys()) == set(_model())


def test_kit_write_back_round_trip_for_core_sources(tmp_path: Path) -> None:
    testing.check_write_back(builtin.ww_layers, builtin.ww_write_weights, _model())
    npz = tmp_path / "m.npz"
    np.savez(npz, **_model())
    testing.check_write_back(builtin.ww_layers, builtin.ww_write_weights, npz, output=tmp_path / "m2.npz")
    st = tmp_path / "m.safetensors"
    _write_safetensors(st, _model())
    testing.check_write_back(builtin.ww_layers, builtin.ww_write_weights, st, output=tmp_path / "m2.safetensors")


def test_kit_catches_a_hook_that_writes_nothing() -> None:
    with pytest.raises(AssertionError, match="doubled"):
        testing.check_write_back(builtin.ww_layers, lambda source, weights, options: source, _model())


def test_to_stored_inverts_any_transpose_and_reshape_layout() -> None:
    from ww_core.platform.toolkit import to_stored

    stored = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)

    def forward(a: np.ndarray) -> np.ndarray:
        return np.transpose(a, (3, 2, 0, 1)).reshape(20, 6)

    np.testing.assert_array_equal(to_stored(forward(stored), forward, stored.shape), stored)
    with pytest.raises(ValueError, match="shape"):
        to_stored(np.zeros((6, 20)), forward, stored.shape)


@pytest.mark.parametrize("method", ["svd", "detX"])
def test_a_bad_layer_is_left_unchanged_with_a_warning_and_the_others_smoothed(method: str) -> None:
    model = _model()
    model["b.weight"][0, 0] = np.nan
    with pytest.warns(UserWarning, match="'b' left unchanged: weights contain NaN"):
        smoothed = ww_core.svd_smoothing(model, method=method, percent=0.5)
    np.testing.assert_array_equal(smoothed["b.weight"], model["b.weight"])
    assert not np.array_equal(smoothed["a.weight"], model["a.weight"])


def _bf16_safetensors(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A safetensors file of bfloat16 tensors, written by hand (numpy has no bfloat16)."""
    import json
    import struct

    header, blobs, offset = {}, [], 0
    for name, array in arrays.items():
        bits = (np.ascontiguousarray(array, dtype=np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(array.shape), "data_offsets": [offset, offset + len(bits)]}
        offset += len(bits)
        blobs.append(bits)
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


def test_bfloat16_safetensors_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "bf16.safetensors"
    _bf16_safetensors(path, {k: v for k, v in _model().items() if v.ndim > 1})
    testing.check_write_back(builtin.ww_layers, builtin.ww_write_weights, path, output=tmp_path / "out.safetensors")
    smoothed = ww_core.svd_smoothing(path, method="svd", percent=0.5)
    esd = ww_core.get_esd(smoothed, "a")
    assert np.count_nonzero(esd > 1e-3 * esd.max()) == 25  # bfloat16 keeps 3 significant digits


def test_fused_in_proj_rows_are_written_back_block_by_block(tmp_path: Path) -> None:
    """A fused ``in_proj_weight`` is analyzed as q/k/v rows; each block is smoothed as that matrix alone would be."""
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(4)
    fused = rng.standard_t(3, size=(48, 16))
    model = {"attn.in_proj_weight": fused, "fc.weight": rng.standard_t(3, size=(30, 20))}
    alone = [ww_core.svd_smoothing({"w.weight": fused[i * 16 : (i + 1) * 16]})["w.weight"] for i in range(3)]
    np.testing.assert_allclose(ww_core.svd_smoothing(model)["attn.in_proj_weight"], np.concatenate(alone), rtol=1e-10, atol=1e-12)
    (tmp_path / "model").mkdir()
    save_file({key: value.astype(np.float32) for key, value in model.items()}, str(tmp_path / "model" / "m.safetensors"))
    written = ww_core.svd_smoothing(str(tmp_path / "model" / "m.safetensors"), output=str(tmp_path / "out.safetensors"))
    blocks = load_file(str(written))["attn.in_proj_weight"]
    assert blocks.shape == (48, 16) and np.linalg.matrix_rank(blocks[:16]) < 16
