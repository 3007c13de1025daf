"""The ``xmax`` option's two meanings, kept apart so that neither is silently read as the other.

An integer N (5 or -5) drops each layer's N largest eigenvalues before the fit, as weightwatcher 0.7.7;
a float is an eigenvalue bound (ww's extension; the reference refuses floats): the fit keeps the
eigenvalues at or below it, as ``powerlaw.Fit(xmax=...)``. ``'force'`` and None clip nothing.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ww_core.spectra.constants import EVALS_THRESH

Xmax = int | float | str | None

HELP = (
    "an integer N (5 or -5) drops each layer's N largest eigenvalues before the fit, as weightwatcher 0.7.7; "
    "a number written with a decimal point or exponent (5.0, 2e3) is an eigenvalue bound: the fit keeps "
    "the eigenvalues at or below it; 'force' clips nothing"
)

#: The row column saying how many of a layer's eigenvalues xmax left out of the fit.
CLIPPED = "xmax_clipped"

#: Layers named in a warning before the rest are counted.
NAMED = 5


def checked(value: Any) -> Xmax:
    """``value`` as the option holds it (numpy integers as int, numpy floats as float); ValueError when it means nothing."""
    usage = "xmax must be an integer N (drop each layer's N largest eigenvalues), a float > 0 (an eigenvalue bound), 'force' or None"
    if value is None or (isinstance(value, str) and value == "force"):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value == 0:
            raise ValueError(f"{usage}; got 0, which drops nothing (weightwatcher 0.7.7 refuses it too)")
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        bound = float(value)
        if not (math.isfinite(bound) and bound > 0):
            raise ValueError(f"{usage}; got {value!r}, which bounds no eigenvalue")
        return bound
    raise ValueError(f"{usage}; got {value!r}")


def _integer_spelling(bound: float, num_evals: int | None = None) -> str:
    """How to ask for dropping eigenvalues instead, when ``bound`` reads like a count (at most half of ``num_evals``)."""
    if not bound.is_integer() or bound < 1 or (num_evals is not None and bound > num_evals / 2):
        return ""
    count = int(bound)
    return f"; an integer xmax={count} drops each layer's {count} largest eigenvalues instead"


def meaning(value: Xmax) -> str:
    """What ``xmax`` does, in words (results metadata, the CLI's line above the table); "" when unset."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'force': the fit runs up to the largest eigenvalue (nothing is clipped)"
    if isinstance(value, int):
        count = abs(value)
        return f"drop each layer's {count} largest eigenvalues before the fit (an integer; xmax={count}.0 would be an eigenvalue bound)"
    return f"fit only eigenvalues up to {value:g} (a float: an eigenvalue bound{_integer_spelling(value)})"


def fit_range(evals: np.ndarray, value: Xmax) -> tuple[np.ndarray, str]:
    """The ascending ``evals`` the fit may use under ``xmax`` (a prefix of them), or why none (the layer's row fails with it)."""
    if value is None or isinstance(value, str):
        return evals, ""
    if isinstance(value, int):
        count = abs(value)
        if count > len(evals) / 2:
            return evals, (
                f"xmax={value} (an integer) drops the {count} largest eigenvalues, more than half of the layer's {len(evals)}; "
                f"for an eigenvalue bound write xmax={count}.0"
            )
        return evals[:-count], ""
    fitted = evals[evals > EVALS_THRESH]
    if len(fitted) and value < fitted[0]:
        return evals, (
            f"xmax={value:g} (a float: an eigenvalue bound) lies below every eigenvalue of the layer (smallest {fitted[0]:.6g}), "
            f"leaving nothing to fit{_integer_spelling(value, len(evals))}"
        )
    return evals[: int(np.searchsorted(evals, value, side="right"))], ""


def unclipped_warning(value: Xmax, rows: Iterable[Mapping[str, Any]]) -> str:
    """A warning when an eigenvalue bound clipped nothing in any fitted layer (they were fit as without xmax); else ""."""
    if not isinstance(value, float):
        return ""
    fitted = [row for row in rows if CLIPPED in row]
    if not fitted or any(row[CLIPPED] for row in fitted):
        return ""
    names = ", ".join(repr(row.get("name")) for row in fitted[:NAMED])
    more = f" and {len(fitted) - NAMED} more" if len(fitted) > NAMED else ""
    return (
        f"xmax={value:g} is an eigenvalue bound above every eigenvalue of {names}{more}: nothing was clipped, "
        f"so their fits are those without xmax{_integer_spelling(value, max(int(row.get('num_evals', 0)) for row in fitted))}"
    )
