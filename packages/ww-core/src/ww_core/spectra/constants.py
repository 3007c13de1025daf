"""Thresholds shared by several modules, defined once; the values are weightwatcher 0.7.7's (docs/metrics.md)."""

from __future__ import annotations

#: Eigenvalues at or below this (absolute) are left out of power-law fits and ESD plots (the reference's EVALS_THRESH).
EVALS_THRESH = 1e-5

#: The HT-SR band of a well-trained layer: alpha below ALPHA_LOW is flagged over-trained, above ALPHA_HIGH under-trained.
ALPHA_LOW = 2.0
ALPHA_HIGH = 6.0

#: The reference's guard against log(0) and division by zero (spectral entropy, eigenvector localization).
EPSILON = 1e-10

#: clip_xmax's bound on how many top eigenvalues it may drop, unless asked for at least half of them.
DEFAULT_MAX_FINGERS = 10
