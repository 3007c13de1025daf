"""Do ww's verdicts track held-out accuracy? Trains model series on sklearn's digits and ranks them.

``python benchmarks/verdict_series.py [--quick] [--seed N] [--save DIR]``
Four series of a small ReLU MLP (torch, one thread, seeded; data shipped in scikit-learn, no download;
a stratified half of the 1797 images held out):

- ``hyper``: one architecture (64-256-128-10), batch size 16..512 x learning rate 0.02/0.05/0.1,
  plain SGD for a fixed budget of epochs (18 models; the large-batch, small-rate ones end less trained);
- ``width``: two hidden layers of width 8..256, the same training (6 models);
- ``depth``: one to six hidden layers of width 128, the same training (6 models);
- ``steps``: snapshots of one run (batch 64, rate 0.05) after 1..100 epochs (7 models).

Each model is analyzed with ``ww_core.analyze`` (default options) and the series compared with
``ww_core.compare``. Printed per series: test accuracy range, the Spearman and Kendall rank
correlation of each summary metric with test accuracy (sign as measured; for a metric where lower
is better, a good predictor has a negative correlation), and Kendall's tau between ww's chosen
ranking and the ranking by test accuracy (+1 = identical, target >= 0.5; none where ww does not rank
that kind of series), the best it names, if any, its one-line verdict, and for ranked series every pair
compared alone (how often a best is named, and how often it is the more accurate model). ``--save DIR`` writes each
series as DIR/<series>/<model>.npz plus scores.csv (model, accuracies, metrics), the input of
``ww correlate DIR/<series>/scores.csv --score test_accuracy``. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import ww_core

METRICS = ("alpha", "alpha_median", "alpha_weighted", "log_alpha_norm", "log_norm", "log_spectral_norm", "stable_rank")
EPOCHS = 100


@dataclass
class Trained:
    """One trained model: its layer weights (numpy, by name) and its accuracies."""

    name: str
    weights: dict[str, np.ndarray]
    train_accuracy: float
    test_accuracy: float


@dataclass
class Digits:
    """The digits split: half for training, half held out (stratified, seed 0)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @classmethod
    def load(cls) -> Digits:
        data = load_digits()
        x = (data.data / 16.0).astype(np.float32)
        parts = train_test_split(x, data.target, test_size=0.5, random_state=0, stratify=data.target)
        return cls(*(torch.tensor(part) for part in (parts[0], parts[2], parts[1], parts[3])))


def mlp(widths: list[int]) -> nn.Sequential:
    """Linear+ReLU hidden layers of ``widths`` on the 64 pixels, then a 10-way linear output."""
    layers: list[nn.Module] = []
    previous = 64
    for width in widths:
        layers += [nn.Linear(previous, width), nn.ReLU()]
        previous = width
    layers.append(nn.Linear(previous, 10))
    return nn.Sequential(*layers)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def weights(model: nn.Module) -> dict[str, np.ndarray]:
    """The linear layers' weight matrices as float64 copies, named fc0, fc1, ..."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return {f"fc{i}": m.weight.detach().numpy().astype(np.float64) for i, m in enumerate(linears)}


@dataclass
class Run:
    """A seeded SGD run of an MLP; ``snapshot_at`` epochs are kept as Trained models."""

    widths: list[int]
    batch: int
    lr: float
    epochs: int
    snapshot_at: tuple[int, ...] = ()
    snapshots: list[Trained] = field(default_factory=list)

    def train(self, data: Digits, name: str, seed: int) -> Trained:
        torch.manual_seed(seed)
        model = mlp(self.widths)
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr)
        order = torch.Generator().manual_seed(seed)
        for epoch in range(1, self.epochs + 1):
            for ids in torch.randperm(len(data.y_train), generator=order).split(self.batch):
                loss = nn.functional.cross_entropy(model(data.x_train[ids]), data.y_train[ids])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if epoch in self.snapshot_at:
                self.snapshots.append(self._trained(model, data, f"epoch-{epoch}"))
        return self._trained(model, data, name)

    @staticmethod
    def _trained(model: nn.Module, data: Digits, name: str) -> Trained:
        train = accuracy(model, data.x_train, data.y_train)
        return Trained(name, weights(model), train, accuracy(model, data.x_test, data.y_test))


def hyper_series(data: Digits, quick: bool, seed: int) -> list[Trained]:
    batches = (16, 64, 256, 512) if quick else (16, 32, 64, 128, 256, 512)
    return [Run([256, 128], batch, lr, EPOCHS).train(data, f"b{batch}-lr{lr}", seed) for batch in batches for lr in (0.02, 0.05, 0.1)]


def width_series(data: Digits, quick: bool, seed: int) -> list[Trained]:
    widths = (8, 16, 32, 64, 128) if quick else (8, 16, 32, 64, 128, 256)
    return [Run([width, width], 32, 0.05, EPOCHS).train(data, f"w{width}", seed) for width in widths]


def depth_series(data: Digits, quick: bool, seed: int) -> list[Trained]:
    depths = (1, 2, 3, 4) if quick else (1, 2, 3, 4, 5, 6)
    return [Run([128] * depth, 32, 0.05, EPOCHS).train(data, f"d{depth}", seed) for depth in depths]


def step_series(data: Digits, quick: bool, seed: int) -> list[Trained]:
    run = Run([256, 128], 64, 0.05, 100 if not quick else 40, snapshot_at=(1, 2, 5, 10, 20, 40, 100))
    run.train(data, "last", seed)
    return run.snapshots


def kendall(a: list[float], b: list[float]) -> float:
    return float(kendalltau(a, b).statistic)


def pair_verdicts(comparison: ww_core.Comparison, test: dict[str, float]) -> tuple[int, int]:
    """Compare every pair of the series alone: how many name a best, and how many of those name the more accurate model."""
    results = dict(zip(comparison.names, comparison.results))
    named = right = 0
    for a, b in itertools.combinations(comparison.names, 2):
        best = ww_core.compare(results[a], results[b], names=[a, b]).verdict.best
        if best is not None:
            named += 1
            right += test[best] > test[b if best == a else a]
    return named, right


def evaluate(label: str, models: list[Trained], save: Path | None) -> float:
    """Print the series' correlations and the chosen ranking's tau; return that tau."""
    comparison = ww_core.compare(*(m.weights for m in models), names=[m.name for m in models], progress=False)
    test = [m.test_accuracy for m in models]
    train = [m.train_accuracy for m in models]
    print(f"\n== {label}: {len(models)} models, test accuracy {min(test):.3f}..{max(test):.3f}, train {min(train):.3f}..{max(train):.3f}")
    rows = []
    for model in models:
        summary = comparison.summaries[model.name]
        values = {m: summary.get(m, float("nan")) for m in METRICS}
        rows.append({"name": model.name, "train_accuracy": model.train_accuracy, "test_accuracy": model.test_accuracy, **values})
    for metric in METRICS:
        values = [row[metric] for row in rows]
        rho, tau = spearmanr(values, test).statistic, kendall(values, test)
        print(f"  {metric:18s} Spearman {rho:+.2f}  Kendall {tau:+.2f}")
    verdict = comparison.verdict
    if verdict.metric is None:
        chosen = float("nan")
        print(f"  ww's ranking       none: {verdict.kind}, not ranked")
    else:
        position = {name: i for i, name in enumerate(comparison.ranking)}
        chosen = kendall([-position[m.name] for m in models], test)
        print(f"  ww's ranking       Kendall {chosen:+.2f}  (by {verdict.metric}; first: {', '.join(comparison.ranking[:3])}, ...)")
    if verdict.best is not None:
        best = next(m for m in models if m.name == verdict.best)
        place = 1 + sum(t > best.test_accuracy for t in test)
        print(f"  named best         {best.name}: test accuracy {best.test_accuracy:.3f}, {place} of {len(models)} by test accuracy")
    if verdict.metric is not None:
        named, right = pair_verdicts(comparison, {m.name: m.test_accuracy for m in models})
        print(f"  every pair alone   a best named in {named} of {len(models) * (len(models) - 1) // 2}, the more accurate in {right}")
    print(f"  ww says: {verdict}")
    if save is not None:
        folder = save / label
        folder.mkdir(parents=True, exist_ok=True)
        for model in models:
            np.savez(folder / f"{model.name}.npz", **model.weights)
        with open(folder / "scores.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["model", *list(rows[0])[1:]])
            writer.writeheader()
            writer.writerows({"model": f"{row['name']}.npz", **{k: v for k, v in row.items() if k != "name"}} for row in rows)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter models (a smoke run)")
    parser.add_argument("--seed", type=int, default=0, help="seeds every model's initialization and batch order (default 0)")
    help_save = "write each series' models and scores.csv (for ww correlate) under DIR/<series>/"
    parser.add_argument("--save", type=Path, default=None, metavar="DIR", help=help_save)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.process_time()
    data = Digits.load()
    for label, build in (("hyper", hyper_series), ("width", width_series), ("depth", depth_series), ("steps", step_series)):
        evaluate(label, build(data, args.quick, args.seed), args.save)
    print(f"\nCPU time {time.process_time() - started:.0f} s")


if __name__ == "__main__":
    main()
