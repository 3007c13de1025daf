"""Where users keep models: PEFT adapter folders from the command line (and Hugging Face cache layouts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ww_core.cli import main

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _peft_folder(folder: Path) -> Path:
    """What ``PeftModel.save_pretrained`` writes: adapter_config.json and adapter_model.safetensors."""
    rng = np.random.default_rng(3)
    folder.mkdir()
    prefix = "base_model.model.model.layers.0.self_attn"
    tensors = {}
    for proj in ("q_proj", "v_proj"):
        tensors[f"{prefix}.{proj}.lora_A.weight"] = rng.standard_t(3, size=(8, 64)).astype(np.float32)
        tensors[f"{prefix}.{proj}.lora_B.weight"] = rng.standard_t(3, size=(64, 8)).astype(np.float32)
    safetensors_numpy.save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "target_modules": ["q_proj", "v_proj"]}))
    return folder


@pytest.mark.parametrize(("flags", "analyzed"), [(["--peft"], 2), (["--peft", "with_base"], 6)])
def test_peft_adapter_folder_from_the_command_line(tmp_path: Path, flags: list[str], analyzed: int) -> None:
    folder = _peft_folder(tmp_path / "adapter")
    out = tmp_path / "rows.json"
    assert main(["analyze", str(folder), "--min-evals", "4", "--json", str(out), "-q", *flags]) == 0
    rows = [row for row in json.loads(out.read_text())["details"] if row["status"] == "success"]
    assert len(rows) == analyzed
    assert {row["name"] for row in rows} >= {f"base_model.model.model.layers.0.self_attn.{p}.lora_BA" for p in ("q_proj", "v_proj")}
