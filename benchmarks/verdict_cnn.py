"""Do ww's verdicts hold on a small CNN? Conv-layer series on sklearn's digits, compared through files as a user would.

``python benchmarks/verdict_cnn.py [--seed N] [--keep DIR]``
A three-conv, two-linear CNN (channels c, 2c, 4c; 8x8 digits as 1x8x8 images; torch, one thread,
plain SGD, seeded; the split of benchmarks/verdict_series.py). Series, each saved as safetensors
files and compared with ``ww_core.compare`` on the files (default options):

- ``hyper``: c=16, batch 16/64/256 x learning rate 0.01/0.03/0.1, 40 epochs (9 models; several end
  under-trained, near chance);
- ``width``: c = 4, 8, 16, 32 (batch 32, rate 0.05, 40 epochs; different sizes, so not ranked);
- ``run``: one run (c=16, batch 64, rate 0.05) saved every few epochs as a Trainer-like folder
  ``run/checkpoint-<step>/model.safetensors`` and as numbered ``pts/step_<step>.pt`` files;
  compared as ``compare("run")`` and ``compare("pts")`` (the run-folder series);
- ``quant``: the run's last snapshot in float32, float16, int8 and int4 (per-tensor round to
  nearest, stored dequantized), compared without and with ``reference="f32"``.

Printed per series: test accuracies, Kendall's tau of each summary metric with test accuracy (sign
as measured), Kendall's tau of ww's ranking with test accuracy (none where ww does not rank), the
best named, if any, ww's one-line verdict, and for ranked series every pair compared alone (how often
a best is named, and how often it is the more accurate model). Prints; never asserts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save_file
from torch import nn
from verdict_series import METRICS, Digits, kendall, pair_verdicts

import ww_core

EPOCHS = 40
RUN_SNAPSHOTS = (1, 2, 5, 10, 20, 40, 60)


def cnn(channels: int) -> nn.Sequential:
    """conv(1->c) conv(c->2c) pool conv(2c->4c) pool, then linear(16c->128) and linear(128->10)."""
    c = channels
    return nn.Sequential(
        nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * c, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone().contiguous() for key, value in model.state_dict().items()}


def train(
    data: Digits, batch: int, lr: float, epochs: int, channels: int, seed: int, snapshot: Callable[[nn.Module, int], None] | None = None
) -> nn.Module:
    """Seeded plain SGD; ``snapshot(model, epoch)`` is called after the epochs in RUN_SNAPSHOTS."""
    torch.manual_seed(seed)
    model = cnn(channels)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    x = data.x_train.reshape(-1, 1, 8, 8)
    for epoch in range(1, epochs + 1):
        for ids in torch.randperm(len(data.y_train), generator=order).split(batch):
            loss = nn.functional.cross_entropy(model(x[ids]), data.y_train[ids])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if snapshot is not None and epoch in RUN_SNAPSHOTS:
            snapshot(model, epoch)
    return model


def report(label: str, comparison: ww_core.Comparison, test: dict[str, float]) -> None:
    """Print the series' metric correlations, ww's ranking against test accuracy, the best named and the verdict."""
    names = comparison.names
    accuracies = [test[name] for name in names]
    print(f"\n== {label}: {len(names)} models; test accuracy " + ", ".join(f"{name} {test[name]:.3f}" for name in names))
    for metric in METRICS:
        print(f"  {metric:18s} Kendall {kendall([comparison.metric(n, metric) for n in names], accuracies):+.2f}")
    verdict = comparison.verdict
    if verdict.metric is None:
        print(f"  ww's ranking       none ({verdict.kind})")
    else:
        position = {name: i for i, name in enumerate(comparison.ranking)}
        print(f"  ww's ranking       Kendall {kendall([-position[n] for n in names], accuracies):+.2f} by {verdict.metric}")
    if verdict.best is not None:
        place = 1 + sum(t > test[verdict.best] for t in accuracies)
        print(f"  named best         {verdict.best}: test accuracy {test[verdict.best]:.3f}, {place} of {len(names)}")
    if verdict.metric is not None:
        named, right = pair_verdicts(comparison, test)
        print(f"  every pair compared alone: best named in {named} of {len(names) * (len(names) - 1) // 2}, the more accurate in {right}")
    print(f"  ww says: {verdict}")


def saved_series(folder: Path, models: dict[str, nn.Module], data: Digits) -> dict[str, float]:
    """Save each model as folder/<name>.safetensors; return its test accuracy by name."""
    folder.mkdir(parents=True, exist_ok=True)
    x_test = data.x_test.reshape(-1, 1, 8, 8)
    for name, model in models.items():
        save_file(state(model), str(folder / f"{name}.safetensors"))
    return {name: accuracy(model, x_test, data.y_test) for name, model in models.items()}


def compare_files(folder: Path, names: list[str], **options: object) -> ww_core.Comparison:
    return ww_core.compare(*(str(folder / f"{n}.safetensors") for n in names), names=names, progress=False, **options)


def rounded(weights: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """Per-tensor symmetric round to nearest on 2*levels+1 values, stored dequantized (int8: 127, int4: 7)."""
    out = {}
    for key, value in weights.items():
        scale = float(value.abs().max()) / levels or 1.0
        out[key] = (torch.round(value / scale).clamp(-levels, levels) * scale).contiguous()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seeds every model's initialization and batch order (default 0)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR", help="write the model files here (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.process_time()
    data = Digits.load()
    x_test = data.x_test.reshape(-1, 1, 8, 8)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        hyper = {f"b{b}-lr{lr}": train(data, b, lr, EPOCHS, 16, args.seed) for b in (16, 64, 256) for lr in (0.01, 0.03, 0.1)}
        test = saved_series(root / "hyper", hyper, data)
        report("hyper (c=16)", compare_files(root / "hyper", list(hyper)), test)

        width = {f"c{c}": train(data, 32, 0.05, EPOCHS, c, args.seed) for c in (4, 8, 16, 32)}
        test = saved_series(root / "width", width, data)
        report("width", compare_files(root / "width", list(width)), test)

        steps: dict[str, float] = {}
        (root / "pts").mkdir(parents=True, exist_ok=True)

        def snapshot(model: nn.Module, epoch: int) -> None:
            step = epoch * 10  # optimizer steps / ~1.4: a label, like a Trainer's global step
            folder = root / "run" / f"checkpoint-{step}"
            folder.mkdir(parents=True, exist_ok=True)
            save_file(state(model), str(folder / "model.safetensors"))
            torch.save(state(model), root / "pts" / f"step_{step}.pt")
            steps[f"checkpoint-{step}"] = steps[f"step_{step}.pt"] = accuracy(model, x_test, data.y_test)

        final = train(data, 64, 0.05, RUN_SNAPSHOTS[-1], 16, args.seed, snapshot)
        report("run folder (checkpoint-*/model.safetensors)", ww_core.compare(str(root / "run"), progress=False), steps)
        report("numbered .pt files", ww_core.compare(str(root / "pts"), progress=False), steps)

        base = state(final)
        copies = {"f32": base, "f16": {k: v.half().float() for k, v in base.items()}, "int8": rounded(base, 127), "int4": rounded(base, 7)}
        models = {}
        for name, weights in copies.items():
            models[name] = cnn(16)
            models[name].load_state_dict(weights)
        test = saved_series(root / "quant", models, data)
        report("quantized copies", compare_files(root / "quant", list(copies)), test)
        report("quantized copies, reference f32", compare_files(root / "quant", list(copies), reference="f32"), test)
        report("f32 and int4 only", compare_files(root / "quant", ["f32", "int4"]), test)
    print(f"\nCPU time {time.process_time() - started:.0f} s")


if __name__ == "__main__":
    main()
