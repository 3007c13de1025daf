"""Validate the monitor's rules on runs trained for the purpose: which rule fires on which run, when, and its false alarms.

``python benchmarks/monitor_rules.py [--out DIR] [--runs normal huge_lr ...] [--min-evals 50 0]``
trains a small MLP (64-512-512-256-10, torch SGD, one thread) on scikit-learn's bundled digits
(no download) in ten ways (normal, learning rates from 1e-4 to 5, 50 training images for 300
epochs, random labels, weight decay), each under a ww_core.Monitor that snapshots the initial
weights (step 0) and then every epoch (every step for ``huge_lr_every_step``), waiting so every
snapshot is analyzed. Then it scans each rule on each run's log: ``Divergence``,
``FractionBelow``, ``SummaryTurnsUp``, ``band_exits``, and analyze()'s per-layer ``warning``
column (over-/under-trained) at the last epoch; the alpha rules look only at layers with at
least ``--min-evals`` eigenvalues. What each run *is* comes from its measurements alone, never
from the rules: diverged (non-finite loss or weights, or a weight above 1e6), over-fit (train
accuracy above test accuracy by more than 0.15), under-trained (train accuracy below 0.9), or
healthy. A rule that fires on a run with the condition it claims has caught it; firing on a
healthy run is a false alarm. About a minute of CPU in all; prints tables, never asserts.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import ww_core
from ww_core.training.signals import Divergence, EarlyWarning, FractionBelow, SummaryTurnsUp, band_exits
from ww_torch.training import watch

TRAIN_SAMPLES = 1400
OVERFIT_GAP = 0.15
UNDERTRAINED_ACCURACY = 0.9


@dataclass(frozen=True)
class Run:
    """One training recipe: SGD on ``samples`` training images for ``epochs``, a snapshot every ``every`` steps (0: each epoch)."""

    name: str
    lr: float
    epochs: int
    samples: int = TRAIN_SAMPLES
    batch: int = 32
    weight_decay: float = 0.0
    random_labels: bool = False
    momentum: float = 0.9
    every: int = 0


RUNS = (
    Run("normal", lr=0.01, epochs=30),
    Run("high_lr", lr=0.5, epochs=10),
    Run("huge_lr", lr=2.0, epochs=3),
    Run("huge_lr_every_step", lr=2.0, epochs=1, every=1),
    Run("nan_lr", lr=5.0, epochs=3, momentum=0.0),
    Run("tiny_lr", lr=1e-4, epochs=10, momentum=0.0),
    Run("tiny_data", lr=0.01, epochs=300, samples=50, batch=10),
    Run("random_labels", lr=0.05, epochs=100, random_labels=True),
    Run("weight_decay", lr=0.01, epochs=60, weight_decay=0.01),
    Run("strong_weight_decay", lr=0.01, epochs=40, weight_decay=0.05),
)

#: The condition HT-SR associates with each rule, against which its firings are counted.
CLAIMS = {
    "divergence": "diverged",
    "fraction_below": "over-fit",
    "summary_turns_up": "over-fit",
    "band_exit": "over-fit",
    "over-trained flag": "over-fit",
    "under-trained flag": "under-trained",
}


def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits split into 1400 training and 397 test images (fixed seed), flattened and scaled to [0, 1]."""
    digits = load_digits()
    images = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    labels = torch.tensor(digits.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train, test = order[:TRAIN_SAMPLES], order[TRAIN_SAMPLES:]
    return images[train], labels[train], images[test], labels[test]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train(run: Run, log: Path) -> dict[str, Any]:
    """Train ``run`` (seed 0) under a monitor: the initial weights at step 0, then every ``every`` optimizer steps.

    Returns per-epoch train and test accuracy, the steps per epoch, and the first epoch whose loss
    or weights were non-finite or whose largest weight passed 1e6 (None if none).
    """
    torch.manual_seed(0)
    x, y, x_test, y_test = data()
    x, y = x[: run.samples], y[: run.samples]
    if run.random_labels:
        y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=run.lr, momentum=run.momentum, weight_decay=run.weight_decay)
    steps_per_epoch = -(-len(y) // run.batch)
    measured: dict[str, Any] = {"train": [], "test": [], "diverged_at": None, "steps_per_epoch": steps_per_epoch}
    log.unlink(missing_ok=True)
    with ww_core.Monitor(every=run.every or steps_per_epoch, log=log, when_behind="wait") as monitor:
        monitor.observe(model, step=0)  # the initial weights: the baseline of the divergence rule's norm growth
        watch(monitor, model, optimizer)
        for epoch in range(1, run.epochs + 1):
            for ids in torch.randperm(len(y)).split(run.batch):
                loss = nn.functional.cross_entropy(model(x[ids]), y[ids])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            weights = [p.detach() for p in model.parameters()]
            finite = math.isfinite(float(loss)) and all(bool(torch.isfinite(w).all()) for w in weights)
            if measured["diverged_at"] is None and (not finite or max(float(w.abs().max()) for w in weights) > 1e6):
                measured["diverged_at"] = epoch
            measured["train"].append(accuracy(model, x, y))
            measured["test"].append(accuracy(model, x_test, y_test))
    return measured


def condition(measured: dict[str, Any]) -> str:
    """What the run is, from its measurements alone: diverged, over-fit, under-trained or healthy."""
    if measured["diverged_at"] is not None:
        return "diverged"
    if measured["train"][-1] - measured["test"][-1] > OVERFIT_GAP:
        return "over-fit"
    if measured["train"][-1] < UNDERTRAINED_ACCURACY:
        return "under-trained"
    return "healthy"


def looked_at(history: ww_core.History, min_evals: int) -> set[str]:
    """Names of the layers with at least ``min_evals`` eigenvalues."""
    return {str(row["name"]) for rows in history.rows.values() for row in rows if row.get("num_evals", 0) >= min_evals}


def firings(history: ww_core.History, min_evals: int) -> dict[str, int | None]:
    """Per rule, the first step it fires on ``history`` (None: never); the layer flags are read at the last step."""
    rules = [Divergence(), FractionBelow(min_evals=min_evals), SummaryTurnsUp(min_evals=min_evals)]
    fired: dict[str, int | None] = {}
    for rule in rules:
        warning: EarlyWarning | None = rule.scan(history)
        fired[rule.name] = None if warning is None else warning.step
    layers = looked_at(history, min_evals)
    exits = [step for name, step in band_exits(history).items() if name in layers and step is not None]
    fired["band_exit"] = min(exits) if exits else None
    last = history.steps[-1]
    for flag in ("over-trained", "under-trained"):
        flagged = any(row.get("warning") == flag for row in history.rows[last] if str(row["name"]) in layers)
        fired[f"{flag} flag"] = last if flagged else None
    return fired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="", help="folder for the monitor logs (default: a temporary one)")
    parser.add_argument("--runs", nargs="*", default=[run.name for run in RUNS], help="runs to train")
    parser.add_argument("--min-evals", type=int, nargs="*", default=[50, 0], help="look only at layers with this many eigenvalues")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small layers: one thread is as fast, and steady on a busy machine
    out = Path(args.out or tempfile.mkdtemp(prefix="monitor_rules_"))
    out.mkdir(parents=True, exist_ok=True)
    histories: dict[str, ww_core.History] = {}
    conditions: dict[str, str] = {}
    epoch_of: dict[str, int] = {}
    print("| run | recipe | is | train acc | test acc (best, epoch) | alpha per layer (num_evals) at the end |")
    print("|---|---|---|---|---|---|")
    for run in (run for run in RUNS if run.name in args.runs):
        measured = train(run, out / f"{run.name}.jsonl")
        histories[run.name] = history = ww_core.load_history(out / f"{run.name}.jsonl")
        conditions[run.name] = condition(measured)
        epoch_of[run.name] = measured["steps_per_epoch"]
        best = int(np.argmax(measured["test"])) + 1
        recipe = f"lr {run.lr:g}, {run.epochs} epochs, {run.samples} samples" + (", random labels" if run.random_labels else "")
        recipe += f", weight decay {run.weight_decay:g}" if run.weight_decay else ""
        recipe += "" if run.momentum else ", no momentum"
        last = history.rows[history.steps[-1]]
        alphas = ", ".join(f"{float(row.get('alpha', math.nan)):.2f} ({row.get('num_evals')})" for row in last)
        print(
            f"| {run.name} | {recipe} | {conditions[run.name]} | {measured['train'][-1]:.3f} | "
            f"{measured['test'][-1]:.3f} ({max(measured['test']):.3f}, {best}) | {alphas} |"
        )
    for min_evals in args.min_evals:
        print(f"\nLayers looked at: those with >= {min_evals} eigenvalues. (epoch) = the epoch the rule first fired.")
        print("| rule | tested as | fired on (epoch) | caught | false alarms (healthy runs) | fired on runs with another problem |")
        print("|---|---|---|---|---|---|")
        fired = {name: firings(history, min_evals) for name, history in histories.items()}
        for rule, claim in CLAIMS.items():
            hits = {name: per_rule[rule] / epoch_of[name] for name, per_rule in fired.items() if per_rule[rule] is not None}
            caught = [name for name in hits if conditions[name] == claim]
            false = [name for name in hits if conditions[name] == "healthy"]
            other = [name for name in hits if conditions[name] not in (claim, "healthy")]
            claimed = sum(condition == claim for condition in conditions.values())
            on = ", ".join(f"{name} ({epoch:.3g})" for name, epoch in hits.items()) or "none"
            print(f"| {rule} | {claim} | {on} | {len(caught)} of {claimed} | {', '.join(false) or 'none'} | {', '.join(other) or 'none'} |")
    print("\nWhat the divergence rule saw:")
    for name, history in histories.items():
        warning = Divergence().scan(history)
        if warning is not None:
            print(f"  {name}: step {warning.step} (epoch {warning.step / epoch_of[name]:.3g}): {warning.message}")


if __name__ == "__main__":
    main()
