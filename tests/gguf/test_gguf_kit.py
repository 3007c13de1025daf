"""ww_gguf against the conformance kit's checks for common adapter mistakes."""

from __future__ import annotations

import ww_gguf
from ww_core import testing

SUFFIXES = [".gguf"]


def test_registers_as_a_valid_plugin() -> None:
    testing.check_plugin(ww_gguf)


def test_declines_foreign_sources_without_importing_a_framework() -> None:
    testing.check_declines(ww_gguf.ww_layers, suffixes=SUFFIXES)
    testing.check_declines_quietly("ww_gguf")
