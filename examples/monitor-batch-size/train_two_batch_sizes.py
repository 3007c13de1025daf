"""Watch the same MLP train on scikit-learn's digits with a small and a large batch size.

``python examples/monitor-batch-size/train_two_batch_sizes.py [--epochs 20] [--out batch_sizes.png]``
Each run is monitored once per epoch (ww_core.Monitor through ww_torch.watch) and logged to
JSON lines; one figure shows the summary alpha and each run's test accuracy over epochs.
HT-SR reports heavier-tailed layers (smaller alpha) for smaller batches at equal epochs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

import ww_core
from ww_core.training import signals
from ww_core.views.plots import ALPHA_HIGH, ALPHA_LOW, new_figure
from ww_torch.training import watch

TRAIN_SAMPLES = 1400


def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits split into 1400 training and 397 test images, flattened and scaled to [0, 1]."""
    digits = load_digits()
    images = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    labels = torch.tensor(digits.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train, test = order[:TRAIN_SAMPLES], order[TRAIN_SAMPLES:]
    return images[train], labels[train], images[test], labels[test]


def run(batch: int, epochs: int, lr: float, log: Path) -> list[float]:
    """Train one MLP (seed 0), snapshotting at every epoch's last step; returns test accuracy per epoch."""
    torch.manual_seed(0)
    x, y, x_test, y_test = data()
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    steps_per_epoch = -(-TRAIN_SAMPLES // batch)
    accuracy = []
    log.unlink(missing_ok=True)
    with ww_core.Monitor(every=steps_per_epoch, log=log, when_behind="wait") as monitor:
        watch(monitor, model, optimizer)
        for _ in range(epochs):
            for ids in torch.randperm(TRAIN_SAMPLES).split(batch):
                loss = nn.functional.cross_entropy(model(x[ids]), y[ids])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                accuracy.append(float((model(x_test).argmax(1) == y_test).float().mean()))
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batches", type=int, nargs=2, default=(16, 512))
    parser.add_argument("--out", default="batch_sizes.png")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small layers: one thread is as fast, and steady on a busy machine
    figure, (alpha_ax, accuracy_ax) = new_figure(ncols=2, width=5.5)
    for batch in args.batches:
        log = Path(args.out).with_name(f"batch{batch}.jsonl")
        accuracy = run(batch, args.epochs, args.lr, log)
        history = ww_core.load_history(log)
        steps_per_epoch = -(-TRAIN_SAMPLES // batch)
        summary = history.summary_series("alpha")
        epochs = summary.steps / steps_per_epoch
        alpha_ax.plot(epochs, summary.values, marker=".", label=f"batch {batch}: mean alpha")
        accuracy_ax.plot(range(1, args.epochs + 1), accuracy, marker=".", label=f"batch {batch}")
        layers = history.layer_series("alpha")
        last = {name: round(float(series.values[-1]), 2) for name, series in layers.items()}
        print(f"batch {batch:4}: mean alpha {summary.values[0]:.2f} (epoch 1) -> {summary.values[-1]:.2f} (epoch {args.epochs}); ", end="")
        print(f"per layer at the end {last}; test accuracy {accuracy[-1]:.3f}")
        exits = {name: step / steps_per_epoch for name, step in signals.band_exits(history).items() if step is not None}
        rules = [signals.FractionBelow(fraction=0.25), signals.SummaryTurnsUp()]
        fired = [(rule.name, warning.step / steps_per_epoch) for rule in rules if (warning := rule.scan(history)) is not None]
        print(f"    left the 2-6 band at epoch: {exits or 'none'}; rules fired at epoch: {fired or 'none'}")
    alpha_ax.axhspan(ALPHA_LOW, ALPHA_HIGH, color="tab:green", alpha=0.12)
    alpha_ax.set(xlabel="epoch", ylabel="mean alpha over layers", title="summary alpha (ww_core.Monitor, once per epoch)")
    accuracy_ax.set(xlabel="epoch", ylabel="test accuracy", title="held-out accuracy")
    alpha_ax.legend()
    accuracy_ax.legend()
    figure.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
