"""The weight matrices of a GGUF file as LayerMatrix records, named like the Hugging Face model."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from gguf import GGMLQuantizationType

from ww_core.platform.toolkit import CONV_KIND_BY_RANK, DEFAULT_MIN_EVALS, LayerKind, LayerMatrix, unanalyzable_reason
from ww_gguf.header import TensorInfo
from ww_gguf.names import hf_name, is_expert_stack, permuted_heads
from ww_gguf.splits import split_files
from ww_gguf.tensors import INTEGER_TYPES, GGUFFile, GGUFTensorRef, unpermute

_EMBEDDING_TENSORS = ("token_embd", "pos_embd", "token_types", "per_layer_token_embd")


def _kind(tensor: TensorInfo, ndim: int) -> LayerKind | None:
    if ndim == 2:
        return "embedding" if tensor.name.split(".")[0] in _EMBEDDING_TENSORS else "dense"
    return CONV_KIND_BY_RANK.get(ndim)


def _unpermuted(load: Callable[[], np.ndarray], heads: Callable[[], int | None]) -> Callable[[], np.ndarray]:
    """``load`` with llama.cpp's rotary row order undone once ``heads`` tells the head count (raising then, for this layer only)."""
    return lambda: unpermute(load(), heads())


def _loader(gguf_file: GGUFFile, tensor: TensorInfo, expert: int | None, experts: int | None, arch: str, metadata: dict[str, Any]) -> Any:
    """A picklable ``GGUFTensorRef`` (workers read it themselves); a closure when the head count is unusable, so the error
    surfaces when this one layer loads."""
    try:
        heads = permuted_heads(arch, tensor.name, metadata) if expert is None else None
    except ValueError:
        return _unpermuted(GGUFTensorRef(str(gguf_file.path), tensor.name), functools.partial(permuted_heads, arch, tensor.name, metadata))
    return GGUFTensorRef(str(gguf_file.path), tensor.name, expert, experts or 1, heads)


def _tiny_experts(gguf_file: GGUFFile, tensor: TensorInfo, experts: int, arch: str) -> LayerMatrix:
    """One skipped row for a stack of experts each too small to analyze: a 2 MB file held 1,000,000 1x1 experts (a million rows)."""
    shape = tuple(int(d) for d in tensor.shape[1:])
    return LayerMatrix(
        name=hf_name(arch, tensor.name, "*"),
        index=0,
        kind="dense",
        shape=shape,
        load=GGUFTensorRef(str(gguf_file.path), tensor.name, 0, experts),
        origin=str(gguf_file.path),
        framework_type=f"gguf {tensor.type_name}",
        skip=f"{experts} experts of shape {shape}: each has fewer than {DEFAULT_MIN_EVALS} eigenvalues (min_evals), one row for them all",
    )


def gguf_layers(path: Path) -> Iterator[LayerMatrix]:
    """Every float matrix of the model ``path`` holds (all its split files) in file order; MoE stacks give one row per expert.

    Architecture and head counts come from the first file, which alone carries the model's metadata.
    """
    first = GGUFFile(path)
    files = split_files(path, first.header.metadata)
    if files[0] != path:
        first = GGUFFile(files[0])
    metadata = first.header.metadata
    arch = str(metadata.get("general.architecture", ""))
    index = 0
    for number, file in enumerate(files):
        gguf_file = first if number == 0 else GGUFFile(file)
        if gguf_file.header.metadata.get("split.no", number) != number:
            raise ValueError(f"{file}: split.no is {gguf_file.header.metadata.get('split.no')}, its name says {number}")
        for layer in _file_layers(gguf_file, arch, metadata):
            yield dataclasses.replace(layer, index=index)
            index += 1


def _skip_reason(tensor: TensorInfo) -> str:
    """Why a tensor is listed but not analyzed (integer ids or indices, an empty tensor), or ""."""
    integer = GGMLQuantizationType(tensor.ggml_type) in INTEGER_TYPES
    return unanalyzable_reason(f"int{tensor.type_name[1:]}" if integer else "float32", tuple(tensor.shape))


def _skipped(gguf_file: GGUFFile, tensor: TensorInfo, arch: str, reason: str) -> Iterator[LayerMatrix]:
    """A tensor shaped like a weight that is not analyzed: one skipped row saying why (never loaded)."""
    kind = _kind(tensor, len(tensor.shape))
    if kind is not None:
        yield LayerMatrix(
            name=hf_name(arch, tensor.name, None),
            index=0,
            kind=kind,
            shape=tuple(int(d) for d in tensor.shape),
            load=GGUFTensorRef(str(gguf_file.path), tensor.name),
            origin=str(gguf_file.path),
            framework_type=f"gguf {tensor.type_name}",
            skip=reason,
        )


def _file_layers(gguf_file: GGUFFile, arch: str, metadata: dict[str, Any]) -> Iterator[LayerMatrix]:
    """One file's layers, all with index 0 (the caller numbers them across split files); integer and empty tensors skipped."""
    for tensor in gguf_file.header.tensors:
        shape = tensor.shape
        reason = _skip_reason(tensor)
        if reason:
            yield from _skipped(gguf_file, tensor, arch, reason)
            continue
        experts = shape[0] if is_expert_stack(tensor.name) and len(shape) == 3 else None
        if experts is not None and min(shape[1:]) < DEFAULT_MIN_EVALS:
            yield _tiny_experts(gguf_file, tensor, experts, arch)
            continue
        for expert in range(experts) if experts is not None else [None]:
            canonical = shape[1:] if expert is not None else shape
            kind = _kind(tensor, len(canonical))
            if kind is None:
                continue
            load = _loader(gguf_file, tensor, expert, experts, arch, metadata)
            yield LayerMatrix(
                name=hf_name(arch, tensor.name, expert),
                index=0,
                kind=kind,
                shape=tuple(int(d) for d in canonical),
                load=load,
                origin=str(gguf_file.path),
                framework_type=f"gguf {tensor.type_name}",
            )
