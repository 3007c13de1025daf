"""Helpers for the ww-torch tests: layers of a source through the plugin route core uses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ww_core import LayerMatrix
from ww_core.pipeline.plugins import iter_layers


def layers_of(source: Any, **options: Any) -> list[LayerMatrix]:
    """Every layer the installed adapters give for ``source``."""
    return list(iter_layers(source, options))


@pytest.fixture
def layers() -> Any:
    return layers_of


@pytest.fixture
def tensor_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time ww-torch turns a tensor into numpy (a weight read)."""
    from ww_torch import tensors

    reads: list[int] = []
    real = tensors.to_numpy

    def counting(tensor: Any) -> np.ndarray:
        reads.append(1)
        return real(tensor)

    monkeypatch.setattr(tensors, "to_numpy", counting)
    return reads
