"""``compare`` on small models trained here (sklearn's digits): it never names the worse of two clearly different models best.

Reproduces issue 22: ranked by alpha_weighted, the epoch-1 checkpoint and the large-batch, small-rate
model (test accuracy ~0.1-0.6) came out best. The series are built so the better model is known
(its held-out accuracy is measured and asserted far above the other's).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from ww_core.cli import main
from ww_core.models.comparison import compare

datasets = pytest.importorskip("sklearn.datasets")  # the digits; the conformance session collects this folder without sklearn


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: tiny matmuls on a shared machine run faster without spinning threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, ...]:
    data = datasets.load_digits()
    x = torch.tensor((data.data / 16.0).astype(np.float32))
    y = torch.tensor(data.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train, test = order[:900], order[900:]
    return x[train], y[train], x[test], y[test]


def _train(digits: tuple[torch.Tensor, ...], batch: int, lr: float, epochs: int, keep: tuple[int, ...] = ()) -> dict[str, nn.Module]:
    """A seeded 64-256-128-10 MLP trained with plain SGD; the models after ``keep`` epochs and at the end."""
    x, y = digits[0], digits[1]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    kept = {}
    for epoch in range(1, epochs + 1):
        for ids in torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch)).split(batch):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[ids]), y[ids]).backward()
            optimizer.step()
        if epoch in keep:
            kept[f"epoch-{epoch}"] = copy.deepcopy(model)
    kept["final"] = model
    return kept


def _accuracy(model: nn.Module, digits: tuple[torch.Tensor, ...]) -> float:
    with torch.no_grad():
        return float((model(digits[2]).argmax(1) == digits[3]).float().mean())


def test_the_better_hyper_parameters_are_not_ranked_below_the_worse(digits: tuple[torch.Tensor, ...]) -> None:
    good = _train(digits, batch=16, lr=0.1, epochs=10)["final"]
    poor = _train(digits, batch=512, lr=0.02, epochs=10)["final"]
    assert _accuracy(good, digits) > _accuracy(poor, digits) + 0.2  # the case is what it claims
    comparison = compare(poor, good, names=["b512-lr0.02", "b16-lr0.1"])
    assert comparison.ranking[0] == "b16-lr0.1" and comparison.verdict.best in ("b16-lr0.1", None)


def test_checkpoints_of_one_run_rank_the_trained_above_the_first_epoch(digits: tuple[torch.Tensor, ...], tmp_path: Path) -> None:
    kept = _train(digits, batch=64, lr=0.05, epochs=15, keep=(1,))
    assert _accuracy(kept["final"], digits) > _accuracy(kept["epoch-1"], digits) + 0.3
    run = tmp_path / "run"
    for step, model in ((1, kept["epoch-1"]), (15, kept["final"])):
        (run / f"checkpoint-{step}").mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(run / f"checkpoint-{step}" / "model.safetensors"))
    comparison = compare(str(run))
    assert comparison.names == ["checkpoint-1", "checkpoint-15"]
    assert comparison.ranking[0] == "checkpoint-15" and comparison.verdict.best in ("checkpoint-15", None)
    assert main(["compare", str(run)]) == 0
