"""A Monitor's own arguments are checked when it is made: a wrong one never becomes a failure at every snapshot.

Found by trying them: ``warn=["divergence"]`` and ``divergence="off"`` were taken, and then every snapshot's analysis
"failed" with an AttributeError while training went on unwatched; ``every=np.int64(5)`` was refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ww_core
from ww_core.training.signals import Divergence, FractionBelow

MODEL = {"fc": np.random.default_rng(0).standard_normal((60, 30))}


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("warn", ["divergence"]),
        ("warn", "divergence"),
        ("warn", [FractionBelow(), 3]),
        ("divergence", "off"),
        ("on_warning", "print"),
        ("every", True),
    ],
)
def test_a_wrong_monitor_argument_is_refused_when_made(keyword: str, value: Any) -> None:
    with pytest.raises(ValueError, match=keyword):
        ww_core.Monitor(**{"every": 1, "log": None, keyword: value})


def test_numpy_integers_and_real_rules_are_taken() -> None:
    with ww_core.Monitor(every=np.int64(1), log=None, warn=[FractionBelow()], divergence=Divergence(), on_warning=print) as monitor:
        monitor.observe(MODEL, step=1)
    assert list(monitor.history.steps) == [1] and not monitor.errors


@pytest.mark.parametrize("step", [True, False, 2.5, "3"])
def test_a_step_that_is_no_whole_number_is_refused(step: object) -> None:
    """observe(step=True) was taken as step 1 and 2.5 as 2: a step is a whole number of training steps."""
    with ww_core.Monitor(every=1) as monitor, pytest.raises(TypeError, match="step"):
        monitor.observe({"fc": np.ones((8, 4))}, step=step)  # type: ignore[arg-type]
