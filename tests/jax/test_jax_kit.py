"""ww-jax against the conformance kit's checks for common adapter mistakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flax import serialization

import ww_jax
from ww_core import testing


def test_registers_as_a_valid_plugin() -> None:
    testing.check_plugin(ww_jax)


def test_declines_foreign_sources_without_importing_a_framework() -> None:
    testing.check_declines(ww_jax.ww_layers, suffixes=[".msgpack"])
    testing.check_declines_quietly("ww_jax")


def test_msgpack_listing_decodes_no_leaf(tmp_path: Path) -> None:
    kernel = np.random.default_rng(0).standard_normal((1024, 512)).astype(np.float32)
    path = tmp_path / "ckpt.msgpack"
    path.write_bytes(serialization.to_bytes({"params": {"Dense_0": {"kernel": kernel, "bias": np.zeros(512, np.float32)}}}))
    testing.check_lists_without_reading(lambda: ww_jax.ww_layers(path, {}), kernel.nbytes)
    (layer,) = ww_jax.ww_layers(path, {})
    np.testing.assert_array_equal(layer.load(), kernel.T)
