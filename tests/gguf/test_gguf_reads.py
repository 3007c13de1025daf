"""docs/bad-input.md "Reads", for ww-gguf: special files, and row explosions (an expert stack of a million 1x1 experts).

Each case runs ``ww`` in a child process with bounded memory and time (tests/bounded_cli.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tests.bounded_cli import analyzed_rows, check_refused
from tests.gguf.gguf_files import write_gguf

Q = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)


def test_a_fifo_as_the_model_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "model.gguf")
    check_refused(tmp_path / "model.gguf", "not a regular file", "FIFO")


def test_a_fifo_as_a_split_file_is_refused(tmp_path: Path) -> None:
    first = write_gguf(tmp_path / "m-00001-of-00002.gguf", {"blk.0.attn_q.weight": Q}, metadata={"split.count": 2})
    os.mkfifo(tmp_path / "m-00002-of-00002.gguf")
    check_refused(first, "m-00002-of-00002.gguf", "not a regular file")


def test_an_expert_stack_of_a_million_tiny_experts_is_one_skipped_row(tmp_path: Path) -> None:
    """1,000,000 experts of 1x1 gave a million rows (61 s, 1.35 GB): experts below min_evals collapse into one row."""
    path = write_gguf(tmp_path / "moe.gguf", {"blk.0.attn_q.weight": Q, "blk.0.ffn_up_exps.weight": np.ones((1_000_000, 1, 1), np.float16)})
    rows = analyzed_rows(path, tmp_path / "rows.json", command="describe")
    assert len(rows) == 2, [row["name"] for row in rows[:5]]
    stack = next(row for row in rows if "attn_q" not in str(row["name"]) and "q_proj" not in str(row["name"]))
    assert stack["status"] == "skipped" and "1000000 experts" in str(stack["error"]), stack


def test_experts_large_enough_keep_one_row_each(tmp_path: Path) -> None:
    experts = np.random.default_rng(1).standard_normal((3, 16, 12)).astype(np.float32)
    path = write_gguf(tmp_path / "moe.gguf", {"blk.0.attn_q.weight": Q, "blk.0.ffn_up_exps.weight": experts})
    rows = analyzed_rows(path, tmp_path / "rows.json", command="describe")
    assert len(rows) == 4 and all(row["status"] == "selected" for row in rows), rows
