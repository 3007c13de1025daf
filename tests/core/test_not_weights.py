"""Integer, bool and empty tensors: one rule on every route — a skipped row with the reason, never analyzed or dropped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ww_core
from ww_core.platform.protocol import LayerMatrix, unanalyzable_reason


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "fc.weight": rng.standard_t(3, (60, 30)).astype(np.float32),
        "ids": rng.integers(0, 100, (60, 30)).astype(np.int32),
        "codes": rng.integers(0, 255, (60, 30)).astype(np.uint8),
        "big_ids": rng.integers(0, 100, (60, 30)).astype(np.int64),
        "mask": rng.random((60, 30)) > 0.5,
        "empty.weight": np.zeros((0, 30), dtype=np.float32),
        "head.weight": rng.standard_t(3, (40, 30)).astype(np.float32),
    }


EXPECTED = {
    "fc": ("success", ""),
    "ids": ("skipped", "integer dtype int32"),
    "codes": ("skipped", "integer dtype uint8"),
    "big_ids": ("skipped", "integer dtype int64"),
    "mask": ("skipped", "bool dtype"),
    "empty": ("skipped", "empty tensor, shape (0, 30)"),
    "head": ("success", ""),
}


def _npz(tmp_path: Path) -> Path:
    path = tmp_path / "model.npz"
    np.savez(path, **_arrays())
    return path


def _safetensors(tmp_path: Path) -> Path:
    from safetensors.numpy import save_file

    path = tmp_path / "model.safetensors"
    save_file(_arrays(), str(path))
    return path


ROUTES = {"dict": lambda tmp_path: _arrays(), "npz": _npz, "safetensors": _safetensors}


def _outcome(results: Any) -> dict[str, tuple[str, str]]:
    return {row["name"]: (row["status"], row.get("error") or "") for row in results.details}


@pytest.mark.parametrize("route", list(ROUTES))
def test_every_route_gives_the_same_skipped_rows(route: str, tmp_path: Path) -> None:
    found = _outcome(ww_core.analyze(ROUTES[route](tmp_path)))
    assert set(found) == set(EXPECTED)
    for name, (status, reason) in EXPECTED.items():
        assert found[name][0] == status and reason in found[name][1], (name, found[name])
    described = _outcome(ww_core.describe(ROUTES[route](tmp_path)))
    assert {name: status for name, (status, _) in described.items() if status == "skipped"} == {
        name: "skipped" for name, (status, _) in EXPECTED.items() if status == "skipped"
    }


def test_rows_are_identical_across_routes(tmp_path: Path) -> None:
    tables = [ww_core.analyze(make(tmp_path)).details for make in ROUTES.values()]
    outcomes = [sorted((row["name"], row["status"], row.get("error") or "") for row in table) for table in tables]
    assert outcomes[0] == outcomes[1] == outcomes[2]  # (safetensors orders layers by name, a dict as given)


def test_get_esd_of_a_skipped_tensor_says_why() -> None:
    with pytest.raises(ValueError, match="integer dtype int32"):
        ww_core.get_esd(_arrays(), "ids")


def test_the_rule_is_public_for_adapters() -> None:
    assert unanalyzable_reason("float32", (3, 4)) == ""
    assert unanalyzable_reason("bfloat16", (3, 4)) == ""
    assert "integer dtype int8" in unanalyzable_reason("int8", (3, 4))
    assert "bool dtype" in unanalyzable_reason("bool", (3, 4))
    assert "empty tensor" in unanalyzable_reason("float32", (3, 0))
    layer = LayerMatrix("x", 0, "dense", (3, 4), lambda: np.zeros((3, 4)), skip="integer dtype int8: not a weight")
    assert layer.skip.startswith("integer")


@pytest.mark.parametrize("dtype", ["complex64", "<U1", "S2", "f4,f4"])
def test_complex_text_and_record_tensors_are_skipped_saying_why(tmp_path: Path, dtype: str) -> None:
    """Such a .npz member failed with a message for adapter authors ('load() must return floating-point ...')."""
    rng = np.random.default_rng(0)
    odd = np.zeros((40, 30), dtype=np.dtype(dtype))
    np.savez(tmp_path / "m.npz", odd=odd, fc=rng.standard_normal((40, 30)))
    for results in (ww_core.analyze(tmp_path / "m.npz"), ww_core.analyze({"odd": odd, "fc": rng.standard_normal((40, 30))})):
        row = results.details[0]
        assert row["name"] == "odd" and row["status"] == "skipped", row
        assert "not a real floating-point" in row["error"] and "load()" not in row["error"]
