"""ww_onnx against the conformance kit's checks for common adapter mistakes."""

from __future__ import annotations

import ww_onnx
from ww_core import testing

SUFFIXES = [".onnx"]


def test_registers_as_a_valid_plugin() -> None:
    testing.check_plugin(ww_onnx)


def test_declines_foreign_sources_without_importing_a_framework() -> None:
    testing.check_declines(ww_onnx.ww_layers, suffixes=SUFFIXES)
    testing.check_declines_quietly("ww_onnx")
