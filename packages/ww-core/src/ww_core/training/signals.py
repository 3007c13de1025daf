"""Training signals from a History: when layers leave the 2–6 alpha band, and early-warning rules.

These are heuristics built on HT-SR's empirical claims (Martin & Mahoney): well-trained layers
mostly have 2 ≤ alpha ≤ 6, alpha tends to fall as a layer learns, and alpha < 2 has been seen in
over-trained or over-fit layers. The papers do not claim a rule that predicts the best stopping
step for a given run; a fired rule is a reason to look, not proof (docs/monitor.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

from ww_core.spectra.constants import ALPHA_HIGH, ALPHA_LOW
from ww_core.training.history import History

#: The HT-SR range of a well-trained layer's alpha.


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
class FractionBelow:
    """Fires when at least ``fraction`` of the fitted layers have alpha below ``alpha`` (HT-SR's over-training sign)."""

    fraction: float = 0.5
    alpha: float = ALPHA_LOW
    name: str = "fraction_below"

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"FractionBelow: fraction must be in (0, 1], got {self.fraction}")

    def scan(self, history: History) -> EarlyWarning | None:
        """The first step where the share of fitted layers with alpha < ``alpha`` reaches ``fraction``."""
        for step in history.steps:
            alphas = [float(row["alpha"]) for row in history.rows[step] if _finite(row.get("alpha"))]
            below = sum(alpha < self.alpha for alpha in alphas)
            if alphas and below / len(alphas) >= self.fraction:
                message = f"{below} of {len(alphas)} layers have alpha < {self.alpha:g} (threshold {self.fraction:.0%})"
                return EarlyWarning(step, self.name, message)
        return None


@dataclass(frozen=True)
class SummaryTurnsUp:
    """Fires when the summary ``metric`` has stayed more than ``min_rise`` above its running minimum for ``patience`` snapshots."""

    metric: str = "alpha"
    patience: int = 2
    min_rise: float = 0.05
    name: str = "summary_turns_up"

    def __post_init__(self) -> None:
        if self.patience < 1 or self.min_rise < 0:
            raise ValueError(f"SummaryTurnsUp: need patience >= 1 and min_rise >= 0, got {self.patience}, {self.min_rise}")

    def scan(self, history: History) -> EarlyWarning | None:
        """The step that completes ``patience`` consecutive rises above the lowest value so far."""
        lowest, lowest_step, rises = math.inf, 0, 0
        for step, value in zip(*history.summary_series(self.metric)):
            if math.isnan(value):
                continue
            if value < lowest:
                lowest, lowest_step, rises = float(value), int(step), 0
            elif value > lowest + self.min_rise:
                rises += 1
                if rises >= self.patience:
                    message = f"summary {self.metric} rose from its minimum {lowest:.4g} (step {lowest_step}) to {value:.4g}"
                    return EarlyWarning(int(step), self.name, message)
            else:
                rises = 0
        return None


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def first_warning(history: History, rules: Sequence[Rule]) -> EarlyWarning | None:
    """The earliest warning any of ``rules`` gives on ``history`` (the first rule listed wins a tie)."""
    found = [warning for warning in (rule.scan(history) for rule in rules) if warning is not None]
    return min(found, key=lambda warning: warning.step) if found else None
