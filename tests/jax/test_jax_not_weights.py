"""Integer and empty kernels in Flax trees and msgpack checkpoints: a skipped row with core's reason, as on every route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ww_core

serialization = pytest.importorskip("flax.serialization")


def _params() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "params": {
            "Dense_0": {"kernel": rng.standard_t(3, (30, 60)).astype(np.float32)},
            "Dense_1": {"kernel": rng.integers(0, 9, (60, 40)).astype(np.int32)},
            "Dense_2": {"kernel": np.zeros((40, 0), np.float32)},
        }
    }


def _outcome(source: Any) -> list[tuple[str, str]]:
    return [(row["status"], (row.get("error") or "").split(":")[0]) for row in ww_core.analyze(source).details]


EXPECTED = [("success", ""), ("skipped", "integer dtype int32"), ("skipped", "empty tensor, shape (0, 40)")]


def test_a_linen_tree_lists_integer_and_empty_kernels_as_skipped() -> None:
    assert _outcome(_params()) == EXPECTED


def test_a_msgpack_checkpoint_lists_them_alike(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.msgpack"
    path.write_bytes(serialization.to_bytes(_params()))
    assert _outcome(path) == EXPECTED
