"""Helpers for the ww-torch tests: layers of a source through the plugin route core uses."""

from __future__ import annotations

from typing import Any

import pytest

from ww_core import LayerMatrix
from ww_core.plugins import iter_layers


def layers_of(source: Any, **options: Any) -> list[LayerMatrix]:
    """Every layer the installed adapters give for ``source``."""
    return list(iter_layers(source, options))


@pytest.fixture
def layers() -> Any:
    return layers_of
