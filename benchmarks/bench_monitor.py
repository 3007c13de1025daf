"""Monitoring overhead on training wall time: the digits CNN in torch, with and without ww_core.Monitor.

``python benchmarks/bench_monitor.py [--epochs 4] [--every 100] [--batch 32] [--repeat 9] [--threads 1]``
Runs alternate (plain, monitored, plain, ...) so machine load hits both alike; the medians are
compared. The monitor runs as shipped: background thread, skip when behind. Wall time is the
target (< 10%); process CPU time (training plus the background analysis) is printed beside it,
as the cost when no core is idle. ``--threads`` fixes torch's intra-op threads (a shared machine
makes two spinning threads erratic). Prints PASS/FAIL; never asserts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

import ww_core
from ww_torch.training import watch

OVERHEAD_TARGET = 0.10


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    return torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1), torch.tensor(data.target)


def cnn() -> nn.Module:
    """Conv 1→16 (3×3), conv 16→32 (3×3), dense 1152→64, dense 64→10: four analyzed layers."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 6 * 6, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def train(epochs: int, batch: int, monitor: ww_core.Monitor | None) -> tuple[float, float]:
    """Wall and process CPU seconds for ``epochs`` of SGD over digits (seed 0), until the monitor is closed."""
    torch.manual_seed(0)
    images, labels = digits()
    model = cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if monitor is not None:
        watch(monitor, model, optimizer)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for batch_ids in torch.randperm(len(labels)).split(batch):
            loss = nn.functional.cross_entropy(model(images[batch_ids]), labels[batch_ids])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    if monitor is not None:
        monitor.close()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--every", type=int, default=100, help="snapshot every N optimizer steps")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.epochs * -(-1797 // args.batch)
    train(1, args.batch, ww_core.Monitor(every=args.every))  # warm-up: first-call costs of torch and of the analysis code
    plain: list[tuple[float, float]] = []
    monitored: list[tuple[float, float]] = []
    analyzed = skipped = 0
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.repeat):
            log = Path(folder) / f"run{run}.jsonl"
            plain.append(train(args.epochs, args.batch, None))
            monitored.append(train(args.epochs, args.batch, ww_core.Monitor(every=args.every, log=log)))
            history = ww_core.load_history(log)
            analyzed, skipped = analyzed + len(history.steps), skipped + len(history.skipped)
    print(
        f"digits CNN, torch {torch.__version__}, {args.threads} thread(s), {steps} steps of batch {args.batch}, snapshot every {args.every}"
    )
    for label, index in (("wall", 0), ("cpu", 1)):
        base, watched = statistics.median(t[index] for t in plain), statistics.median(t[index] for t in monitored)
        overhead = watched / base - 1
        verdict = f"(target < {OVERHEAD_TARGET:.0%}): {'PASS' if overhead < OVERHEAD_TARGET else 'FAIL'}" if label == "wall" else ""
        print(f"  {label:4} plain median {base:.3f}s, monitored median {watched:.3f}s, overhead {overhead:+.1%} {verdict}")
    print(f"  snapshots analyzed {analyzed}, skipped (analysis behind) {skipped}, over {args.repeat} monitored runs")


if __name__ == "__main__":
    main()
