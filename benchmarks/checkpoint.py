"""Benchmark inputs: a LLaMA-7B-shaped safetensors checkpoint, written tensor by tensor, and
the reference's view of any safetensors file as a torch module of plain Linear/Embedding layers."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ww_core.platform.named_arrays import infer_kind

HIDDEN = 4096
INTERMEDIATE = 11008
VOCAB = 32000


def llama_shapes(blocks: int) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Names and (out, in) shapes of LLaMA-7B's tensors for the first ``blocks`` decoder blocks."""
    yield "model.embed_tokens.weight", (VOCAB, HIDDEN)
    for i in range(blocks):
        prefix = f"model.layers.{i}"
        yield f"{prefix}.input_layernorm.weight", (HIDDEN,)
        for proj in ("q", "k", "v", "o"):
            yield f"{prefix}.self_attn.{proj}_proj.weight", (HIDDEN, HIDDEN)
        yield f"{prefix}.post_attention_layernorm.weight", (HIDDEN,)
        yield f"{prefix}.mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)
        yield f"{prefix}.mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)
        yield f"{prefix}.mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)
    yield "model.norm.weight", (HIDDEN,)
    yield "lm_head.weight", (VOCAB, HIDDEN)


def write_safetensors(path: Path, shapes: list[tuple[str, tuple[int, ...]]], seed: int = 0) -> int:
    """Write float32 N(0, 0.02²) tensors one at a time (never the whole model in memory); returns the file size."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in shapes:
        size = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(seed)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(blob)) + blob)
        for _, shape in shapes:
            handle.write((rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)).tobytes())
    return path.stat().st_size


def linear_stack_checkpoint(path: Path, count: int = 4, width: int = 4096, seed: int = 0) -> int:
    """``count`` torch-initialized Linear(width, width) weights, as the reference sees ``nn.Sequential``."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    tensors = {f"{i}.weight": torch.nn.Linear(width, width, bias=False).weight.detach().contiguous() for i in range(count)}
    save_file(tensors, str(path))
    return path.stat().st_size


def reference_module(path: Path) -> tuple[Any, dict[str, str]]:
    """A torch module with one Linear/Embedding per 2-D float tensor of ``path`` (the same weights, no copies).

    Returns the module and a map from its module names to ww-core's layer names (tensor names less ".weight").
    """
    import torch
    from safetensors import safe_open

    model = torch.nn.Module()
    names: dict[str, str] = {}
    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():
            tensor = handle.get_tensor(key)
            if tensor.ndim != 2 or not tensor.is_floating_point() or infer_kind(key, tuple(tensor.shape)) is None:
                continue
            out_dim, in_dim = tensor.shape
            if infer_kind(key, tuple(tensor.shape)) == "embedding":
                layer: Any = torch.nn.Embedding(out_dim, in_dim, device="meta")
            else:
                layer = torch.nn.Linear(in_dim, out_dim, bias=False, device="meta")
            layer.weight = torch.nn.Parameter(tensor, requires_grad=False)
            module_name = f"m{len(names)}"
            model.add_module(module_name, layer)
            names[module_name] = key.removesuffix(".weight")  # ww-core names layers by module path
    return model, names
