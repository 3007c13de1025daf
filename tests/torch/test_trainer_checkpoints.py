"""Hugging Face Trainer checkpoint folders: the model's weights are analyzed, the training state never."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import ww_core
from ww_core import testing


@dataclass
class TrainingArguments:  # pickled as the Trainer pickles its own (needs code to load)
    learning_rate: float = 1e-3


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(24, 32)
        self.fc2 = nn.Linear(32, 16)


def _checkpoint(folder: Path, weights: str) -> tuple[Path, Net]:
    """What ``Trainer._save_checkpoint`` writes: weights beside optimizer, scheduler, RNG state and training args."""
    folder.mkdir()
    model = Net()
    optimizer = torch.optim.Adam(model.parameters())
    model.fc2(model.fc1(torch.ones(2, 24))).sum().backward()
    optimizer.step()  # Adam's exp_avg/exp_avg_sq: 2-D tensors shaped like the weights
    state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    if weights == "model.safetensors":
        save_file(state, str(folder / weights))
    else:
        torch.save(state, folder / weights)
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    torch.save(torch.optim.lr_scheduler.StepLR(optimizer, 1).state_dict(), folder / "scheduler.pt")
    torch.save({"python": 0, "cpu": torch.get_rng_state()}, folder / "rng_state.pth")
    torch.save(TrainingArguments(), folder / "training_args.bin")
    (folder / "trainer_state.json").write_text("{}")
    return folder, model


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.safetensors"])
def test_trainer_checkpoint_analyzes_the_model_only(tmp_path: Path, weights: str) -> None:
    folder, model = _checkpoint(tmp_path / "checkpoint-500", weights)
    results = ww_core.analyze(folder, min_evals=2)
    assert [(row["name"], row["status"]) for row in results.details] == [("fc1", "success"), ("fc2", "success")]
    direct = ww_core.analyze(model, min_evals=2)
    testing.assert_rows_close(results.details, direct.details)


def test_training_state_alone_is_refused_naming_the_folder(tmp_path: Path) -> None:
    folder, _ = _checkpoint(tmp_path / "checkpoint-500", "pytorch_model.bin")
    (folder / "pytorch_model.bin").unlink()
    with pytest.raises(ValueError) as caught:
        ww_core.analyze(folder)
    message = str(caught.value)
    assert str(folder) in message and "optimizer.pt" in message and "no model weights" in message
