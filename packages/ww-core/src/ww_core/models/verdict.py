"""What a comparison of models may claim: the kind of series, the metric that ranks it and whether its best is clear.

The rules follow what ww's benchmark (benchmarks/verdict_series.py, docs/verdicts.md) and the HT-SR
literature support: within one architecture (hyper-parameter sweeps, checkpoints of a run) a lower
mean alpha tracks better held-out accuracy; across sizes or depths no metric held on the benchmark,
and nothing compares unrelated architectures, so those series are shown, not ranked.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ww_core.spectra.metrics import OVER_TRAINED_THRESH

SAME_ARCHITECTURE = "same architecture"
DIFFERENT_SIZES = "one family, different sizes"
UNRELATED = "unrelated architectures"
NEAR_COPIES = "near copies"
REFERENCE = "distances to a reference"

#: The ranking metric within one architecture (lower is better) and the robust check that must agree on the best.
RANK_METRIC = "alpha"
CHECK_METRIC = "alpha_median"
#: A best is named only when its mean alpha is lower than the runner-up's by more than this many standard errors.
NOISE_SIGMAS = 2.0
#: Same-architecture models whose every layer's Frobenius norm is within this fraction of the first model's are near copies.
COPY_NORM_TOLERANCE = 0.05
#: Below this share of the first model's layer names, a model is taken as another architecture.
SHARED_NAMES_FAMILY = 0.5

Rows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Verdict:
    """The series' kind, the metric that ranked it (None: not ranked), the order, the best (None: no clear best) and why."""

    kind: str
    metric: str | None
    ranking: tuple[str, ...]
    best: str | None
    reason: str

    def __str__(self) -> str:
        return self.reason


def _value(row: Mapping[str, Any], column: str) -> float:
    value = row.get(column)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def _success(rows: Rows) -> dict[str, Mapping[str, Any]]:
    return {str(row["name"]): row for row in rows if row.get("status") == "success"}


def _shapes(rows: Rows) -> dict[str, tuple[Any, Any]]:
    """Layer name -> (N, M) over the rows whose spectrum was computed."""
    return {str(row["name"]): (row.get("N"), row.get("M")) for row in rows if row.get("status") in ("success", "failed")}


def series_kind(names: Sequence[str], rows: Sequence[Rows]) -> tuple[str, str]:
    """The kind of series and a clause saying why: identical layer names and shapes, shared names, or too few shared."""
    first = _shapes(rows[0])
    kind, why = SAME_ARCHITECTURE, f"all models have the layer names and shapes of {names[0]} ({len(first)} layers)"
    for name, model_rows in zip(names[1:], rows[1:]):
        shapes = _shapes(model_rows)
        shared = len(first.keys() & shapes.keys())
        if shared < SHARED_NAMES_FAMILY * min(len(first), len(shapes)) or not shared:
            return UNRELATED, f"{name} shares {shared} of its {len(shapes)} layer names with {names[0]}"
        if shapes != first and kind == SAME_ARCHITECTURE:
            differ = sorted(n for n in first.keys() & shapes.keys() if first[n] != shapes[n])
            what = f"layer {differ[0]} is {shapes[differ[0]]} vs {first[differ[0]]}" if differ else f"{len(shapes)} layers vs {len(first)}"
            kind, why = DIFFERENT_SIZES, f"{name} differs from {names[0]} in size or depth ({what})"
    return kind, why


def near_copies(rows: Sequence[Rows]) -> bool:
    """Whether every model's every layer has a Frobenius norm within COPY_NORM_TOLERANCE of the first model's layer."""
    first = _success(rows[0])
    for model_rows in rows[1:]:
        layers = _success(model_rows)
        if layers.keys() != first.keys() or not layers:
            return False
        for name, row in layers.items():
            reference = _value(first[name], "norm")
            if not math.isfinite(reference) or abs(_value(row, "norm") - reference) > COPY_NORM_TOLERANCE * reference:
                return False
    return True


def alpha_noise(a: Rows, b: Rows) -> float:
    """Standard error of the difference of two models' mean alpha over their shared fitted layers.

    The larger of the paired estimate (spread of the per-layer differences / sqrt(layers)) and the
    fits' own error (each layer's sigma = (alpha - 1)/sqrt(tail size), propagated to the mean).
    """
    left, right = _success(a), _success(b)
    shared = [n for n in left if n in right and math.isfinite(_value(left[n], "alpha")) and math.isfinite(_value(right[n], "alpha"))]
    if not shared:
        return math.nan
    count = len(shared)
    fit = sum(_value(left[n], "sigma") ** 2 + _value(right[n], "sigma") ** 2 for n in shared) / count**2
    differences = [_value(left[n], "alpha") - _value(right[n], "alpha") for n in shared]
    if count == 1 and not math.isfinite(fit):
        return math.nan  # one layer and no fit error (e.g. rows read back without sigma): nothing to measure the noise by
    paired = statistics.variance(differences) / count if count > 1 else 0.0
    return math.sqrt(max(fit if math.isfinite(fit) else 0.0, paired))


def _below_one(rows: Sequence[Rows]) -> int:
    """Fitted layers whose largest eigenvalue is below 1, where alpha_weighted = alpha*log10(lambda_max) turns negative."""
    return sum(1 for model_rows in rows for row in _success(model_rows).values() if _value(row, "log_spectral_norm") < 0)


def _order(names: Sequence[str], summaries: Mapping[str, Mapping[str, float]], metric: str) -> tuple[str, ...]:
    def key(name: str) -> float:
        value = summaries[name].get(metric, math.nan)
        return value if math.isfinite(value) else math.inf

    return tuple(sorted(names, key=key))


def _weighted_note(rows: Sequence[Rows]) -> str:
    count = _below_one(rows)
    return (
        f"; alpha_weighted is not used: {count} fitted layer{'s' if count != 1 else ''} have lambda_max < 1, where its sign flips"
        if count
        else ""
    )


def rank_same_architecture(names: Sequence[str], rows: Sequence[Rows], summaries: Mapping[str, Mapping[str, float]], why: str) -> Verdict:
    """Rank by mean alpha (lower is better); a best needs no failed layer, alpha >= 2, the median's agreement, a lead beyond noise."""
    ranking = _order(names, summaries, RANK_METRIC)
    tracked = (
        "as it tracked held-out accuracy on our hyper-parameter and checkpoint series, closely for MLPs, weakly for CNNs (docs/verdicts.md)"
    )
    basis = f"same architecture ({why}): ranked by mean alpha, lower is better, {tracked}"
    note = _weighted_note(rows)
    top, runner = ranking[0], ranking[1]
    best_alpha, next_alpha = summaries[top].get(RANK_METRIC, math.nan), summaries[runner].get(RANK_METRIC, math.nan)
    if not math.isfinite(best_alpha):
        return Verdict(SAME_ARCHITECTURE, RANK_METRIC, ranking, None, f"no clear ranking: no model has a fitted layer{note}")
    failed = sum(1 for row in rows[names.index(top)] if row.get("status") == "failed")
    if failed:
        reason = (
            f"no clear ranking: {top} has {failed} failed layer{'s' if failed != 1 else ''} (non-finite weights or a failed fit), "
            f"left out of its mean alpha, so it leads on its other layers only; {basis}{note}"
        )
        return Verdict(SAME_ARCHITECTURE, RANK_METRIC, ranking, None, reason)
    if not math.isfinite(next_alpha):
        return Verdict(SAME_ARCHITECTURE, RANK_METRIC, ranking, top, f"best: {top}, the only model with fitted layers; {basis}{note}")
    if best_alpha < OVER_TRAINED_THRESH:
        reason = (
            f"no clear ranking: {top} leads with mean alpha {best_alpha:.3f}, below {OVER_TRAINED_THRESH:g} (the over-trained range), "
            f"where a lower alpha was not validated as better; {basis}{note}"
        )
        return Verdict(SAME_ARCHITECTURE, RANK_METRIC, ranking, None, reason)
    median_first = _order(names, summaries, CHECK_METRIC)[0]
    if median_first != top:
        reason = f"no clear ranking: mean alpha puts {top} first but median alpha puts {median_first} first; {basis}{note}"
        return Verdict(SAME_ARCHITECTURE, RANK_METRIC, ranking, None, reason)
    noise = alpha_noise(rows[names.index(top)], rows[names.index(runner)])
    gap = next_alpha - best_alpha
    if not math.isfinite(noise) or gap <= NOISE_SIGMAS * noise:
        within = f"+-{NOISE_SIGMAS * noise:.3f}" if math.isfinite(noise) else "unknown: no shared layer with a fit error to measure it by"
        reason = f"no clear ranking: {top} and {runner} differ in mean alpha by {gap:.3f}, within the noise ({within}); {basis}{note}"
        return Verdict(SAME_ARCHITECTURE, RANK_METRIC, ranking, None, reason)
    reason = (
        f"best: {top} (mean alpha {best_alpha:.3f} vs {next_alpha:.3f} for {runner}, noise +-{NOISE_SIGMAS * noise:.3f}); {basis}{note}"
    )
    return Verdict(SAME_ARCHITECTURE, RANK_METRIC, ranking, top, reason)


def judge(
    names: Sequence[str], rows: Sequence[Rows], summaries: Mapping[str, Mapping[str, float]], reference: str | None = None
) -> Verdict:
    """The verdict on a series: its kind, the ranking metric the kind supports, and whether the best is clear."""
    given = tuple(names)
    if reference is not None:
        reason = f"no best: distances from the reference {reference} (relative Frobenius distance and change in mean alpha)"
        return Verdict(REFERENCE, None, given, None, reason)
    kind, why = series_kind(names, rows)
    if kind == UNRELATED:
        return Verdict(kind, None, given, None, f"no clear ranking: {why}; no metric is validated across unrelated architectures")
    if kind == DIFFERENT_SIZES:
        reason = (
            f"no clear ranking: {why}; across sizes the literature ranks by scale metrics (alpha_weighted, log_alpha_norm), "
            f"which ranked ww's width and depth benchmark series backwards (docs/verdicts.md): check with held-out scores (ww correlate)"
            f"{_weighted_note(rows)}"
        )
        return Verdict(kind, None, given, None, reason)
    if near_copies(rows):
        reason = (
            f"no best: the models are near copies of {names[0]} (every layer's Frobenius norm within {COPY_NORM_TOLERANCE:.0%}, "
            f"e.g. quantized copies); compare them with {names[0]} as the reference (reference=, --reference) for distances"
        )
        return Verdict(NEAR_COPIES, None, given, None, reason)
    return rank_same_architecture(names, rows, summaries, why)
