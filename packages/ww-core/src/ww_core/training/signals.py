"""Training signals from a History: divergence, when layers leave the 2–6 alpha band, and early-warning rules.

``Divergence`` (NaN/Inf or overflowing weights, a norm grown by orders of magnitude, every layer
failed) is a fact about the weights; ``Monitor`` checks it by default. The alpha rules are
heuristics built on HT-SR's empirical claims (Martin & Mahoney): they look only at layers with at
least ``MIN_EVALS`` eigenvalues, and docs/monitor.md gives, per rule, what it caught and its
false alarms on runs trained to check them (benchmarks/monitor_rules.py). A fired alpha rule
is a reason to look, not proof.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from ww_core.pipeline.layer_analysis import NONFINITE_WEIGHTS, OVERFLOWING_WEIGHTS
from ww_core.results.rows import esd_key
from ww_core.spectra.constants import ALPHA_HIGH, ALPHA_LOW
from ww_core.training.history import DIVERGENCE, History

#: The alpha rules skip layers with fewer eigenvalues: the tail fit of a 10-class output layer (10 eigenvalues)
#: uses a handful of points and jumps between snapshots.
MIN_EVALS = 50
#: A singular value above this has a square beyond float32's range: the layer's Gram matrix, and its outputs
#: for typical inputs, overflow in float32.
FLOAT32_SV_LIMIT = math.sqrt(float(np.finfo(np.float32).max))


def band_exits(history: History, low: float = ALPHA_LOW, high: float = ALPHA_HIGH) -> dict[str, int | None]:
    """Per layer, the first step whose alpha is outside [low, high] right after a fitted step inside it; None if never.

    A layer that starts outside the band (random layers often have alpha > 6) and enters it
    has not left it; failed fits (NaN) are passed over.
    """
    exits: dict[str, int | None] = {}
    for name, series in history.layer_series("alpha").items():
        exits[name] = None
        inside = False
        for step, alpha in zip(series.steps, series.values):
            if math.isnan(alpha):
                continue
            if low <= alpha <= high:
                inside = True
            elif inside:
                exits[name] = int(step)
                break
    return exits


@dataclass(frozen=True)
class EarlyWarning:
    """A rule that fired: the step, the rule's name, and what it saw."""

    step: int
    rule: str
    message: str


class Rule(Protocol):
    """An early-warning rule: ``scan`` returns the first step at which it fires, or None."""

    name: str

    def scan(self, history: History) -> EarlyWarning | None: ...


@dataclass(frozen=True)
class Divergence:
    """Fires at the first step where training has blown up: a layer's weights hold NaN/Inf or have squares beyond
    float32's range, a layer's Frobenius norm grew ``orders`` orders of magnitude over its first analyzed value,
    or every analyzed layer failed."""

    orders: float = 3.0
    name: str = DIVERGENCE

    def __post_init__(self) -> None:
        if not self.orders > 0:
            raise ValueError(f"Divergence: orders must be positive, got {self.orders}")

    def scan(self, history: History) -> EarlyWarning | None:
        """The first step at which any of the three signs shows, with what it saw."""
        first_log_norm: dict[str, float] = {}
        for step in history.steps:
            reason = self.check(history.rows[step], first_log_norm)
            if reason:
                return EarlyWarning(step, self.name, reason)
        return None

    def check(self, rows: list[dict[str, Any]], first_log_norm: dict[str, float]) -> str:
        """What blew up in one step's rows, or ""; ``first_log_norm`` collects each layer's first log_norm over the
        steps checked so far (the monitor checks each new snapshot once, without rescanning the history)."""
        failed = [row for row in rows if row.get("status") == "failed"]
        for row in failed:
            error = str(row.get("error", ""))
            if NONFINITE_WEIGHTS in error or OVERFLOWING_WEIGHTS in error:
                return error
        for row in rows:
            if row.get("status") != "success":
                continue
            name = esd_key(row)
            sv_max = _number(row.get("sv_max"))
            if sv_max >= FLOAT32_SV_LIMIT:
                return f"layer {name!r}: largest singular value {sv_max:.3g}: its square is beyond float32's range"
            log_norm = _number(row.get("log_norm"))  # log10 of the squared Frobenius norm
            if math.isfinite(log_norm):
                grown = (log_norm - first_log_norm.setdefault(name, log_norm)) / 2
                if grown >= self.orders:
                    return f"layer {name!r}: Frobenius norm grew {10**grown:.3g}-fold since its first analyzed step"
        if rows and len(failed) == len(rows):
            return f"every analyzed layer failed ({len(rows)}); first: {failed[0].get('error', '')}"
        return ""


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _large_enough(row: Mapping[str, Any], min_evals: int) -> bool:
    return _number(row.get("num_evals")) >= min_evals


@dataclass(frozen=True)
class FractionBelow:
    """Fires when at least ``fraction`` of the fitted layers with ``min_evals`` or more eigenvalues have alpha below
    ``alpha``: very heavy tails, which HT-SR has seen in over-trained layers and docs/monitor.md's runs also in a
    healthy weight-decay run, so not proof of over-training."""

    fraction: float = 0.5
    alpha: float = ALPHA_LOW
    min_evals: int = MIN_EVALS
    name: str = "fraction_below"

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"FractionBelow: fraction must be in (0, 1], got {self.fraction}")

    def scan(self, history: History) -> EarlyWarning | None:
        """The first step where the share of looked-at layers with alpha < ``alpha`` reaches ``fraction``."""
        for step in history.steps:
            rows = [row for row in history.rows[step] if _large_enough(row, self.min_evals)]
            alphas = [float(row["alpha"]) for row in rows if _finite(row.get("alpha"))]
            below = sum(alpha < self.alpha for alpha in alphas)
            if alphas and below / len(alphas) >= self.fraction:
                message = (
                    f"{below} of {len(alphas)} layers (those with >= {self.min_evals} eigenvalues) have alpha < {self.alpha:g} "
                    f"(threshold {self.fraction:.0%})"
                )
                return EarlyWarning(step, self.name, message)
        return None


@dataclass(frozen=True)
class SummaryTurnsUp:
    """Fires when the mean ``metric`` over the layers with ``min_evals`` or more eigenvalues has stayed more than
    ``min_rise`` above its running minimum for ``patience`` snapshots (in docs/monitor.md's runs it fired on a healthy
    run at the same epoch as on an over-fit one)."""

    metric: str = "alpha"
    patience: int = 2
    min_rise: float = 0.05
    min_evals: int = MIN_EVALS
    name: str = "summary_turns_up"

    def __post_init__(self) -> None:
        if self.patience < 1 or self.min_rise < 0:
            raise ValueError(f"SummaryTurnsUp: need patience >= 1 and min_rise >= 0, got {self.patience}, {self.min_rise}")

    def scan(self, history: History) -> EarlyWarning | None:
        """The step that completes ``patience`` consecutive rises above the lowest value so far."""
        lowest, lowest_step, rises = math.inf, 0, 0
        for step in history.steps:
            values = [_number(row.get(self.metric)) for row in history.rows[step] if _large_enough(row, self.min_evals)]
            finite = [value for value in values if math.isfinite(value)]
            if not finite:
                continue
            value = sum(finite) / len(finite)
            if value < lowest:
                lowest, lowest_step, rises = value, step, 0
            elif value > lowest + self.min_rise:
                rises += 1
                if rises >= self.patience:
                    message = f"mean {self.metric} rose from its minimum {lowest:.4g} (step {lowest_step}) to {value:.4g}"
                    return EarlyWarning(step, self.name, message)
            else:
                rises = 0
        return None


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def divergence_of(history: History) -> EarlyWarning | None:
    """The run's divergence: the one its log records, else what ``Divergence()`` finds in its rows (a log written
    with ``divergence=None``, or before the rule existed)."""
    for record in history.warnings:
        if record.get("rule") == DIVERGENCE:
            return EarlyWarning(int(record["step"]), DIVERGENCE, str(record.get("message", "")))
    return Divergence().scan(history)


def warnings_of(history: History) -> list[EarlyWarning]:
    """The warnings the log records, plus the divergence its rows show when the log records none, by step."""
    logged = [EarlyWarning(int(record["step"]), str(record["rule"]), str(record.get("message", ""))) for record in history.warnings]
    found = divergence_of(history)
    if found is not None and found not in logged:
        logged.append(found)
    return sorted(logged, key=lambda warning: warning.step)


def first_warning(history: History, rules: Sequence[Rule]) -> EarlyWarning | None:
    """The earliest warning any of ``rules`` gives on ``history`` (the first rule listed wins a tie)."""
    found = [warning for warning in (rule.scan(history) for rule in rules) if warning is not None]
    return min(found, key=lambda warning: warning.step) if found else None
