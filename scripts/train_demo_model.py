"""Train the bundled demo model: a small CNN on scikit-learn's 8x8 handwritten digits.

Reproduce (about a minute on 2 CPU cores):
    pip install torch==2.13.0 scikit-learn safetensors
    python scripts/train_demo_model.py
It writes packages/ww-core/src/ww_core/cli/demo/digits_cnn.safetensors (weights in torch layout:
dense (out, in), conv (out, in, kh, kw)) and digits_cnn.json (architecture, accuracy, recipe).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

OUT_DIR = Path(__file__).resolve().parents[1] / "packages/ww-core/src/ww_core/demo"
SEED = 0
EPOCHS = 60


def build_model() -> nn.Sequential:
    """conv(1→32) → conv(32→64) → pool → dense(1024→256) → dense(256→128) → dense(128→10)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 4 * 4, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def main() -> None:
    torch.manual_seed(SEED)
    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(digits.target)
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.25, random_state=SEED, stratify=labels)
    model = build_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(EPOCHS):
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), 32):
            batch = order[start : start + 32]
            optimizer.zero_grad()
            loss_fn(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    names = {"0": "conv1", "2": "conv2", "6": "fc1", "8": "fc2", "10": "fc3"}
    tensors = {f"{names[k.split('.')[0]]}.{k.split('.')[1]}": v.contiguous() for k, v in model.state_dict().items()}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT_DIR / "digits_cnn.safetensors"))
    recipe = {
        "data": "sklearn.datasets.load_digits (1797 8x8 images), 75/25 stratified split, seed 0",
        "optimizer": "SGD lr=0.05 momentum=0.9, batch 32",
        "epochs": EPOCHS,
        "architecture": "conv1 3x3 1->32, conv2 3x3 32->64, maxpool 2, fc1 1024->256, fc2 256->128, fc3 128->10, ReLU",
        "test_accuracy": round(accuracy, 4),
        "torch": torch.__version__,
    }
    (OUT_DIR / "digits_cnn.json").write_text(json.dumps(recipe, indent=2) + "\n")
    print(json.dumps(recipe, indent=2))


if __name__ == "__main__":
    main()
