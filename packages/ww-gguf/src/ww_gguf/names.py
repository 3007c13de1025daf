"""GGUF tensor names → the Hugging Face module names of the same architecture (llama family).

``blk.0.attn_q.weight`` → ``model.layers.0.self_attn.q_proj``, so a GGUF file and the
safetensors it was converted from match layer by layer (``compare``, ``base_model=``).
Architectures not listed keep their GGUF names (``.weight`` dropped).
"""

from __future__ import annotations

import re

#: Per-block tensors shared by every mapped architecture.
_BLOCK = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_norm": "input_layernorm",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
#: Mixture-of-experts tensors: Mixtral (GGUF arch ``llama``) and Qwen MoE; ``{e}`` is the expert.
_MIXTRAL_MOE = {
    "ffn_gate_inp": "block_sparse_moe.gate",
    "ffn_gate_exps": "block_sparse_moe.experts.{e}.w1",
    "ffn_down_exps": "block_sparse_moe.experts.{e}.w2",
    "ffn_up_exps": "block_sparse_moe.experts.{e}.w3",
}
_QWEN_MOE = {
    "ffn_gate_inp": "mlp.gate",
    "ffn_gate_exps": "mlp.experts.{e}.gate_proj",
    "ffn_up_exps": "mlp.experts.{e}.up_proj",
    "ffn_down_exps": "mlp.experts.{e}.down_proj",
    "ffn_gate_shexp": "mlp.shared_expert.gate_proj",
    "ffn_up_shexp": "mlp.shared_expert.up_proj",
    "ffn_down_shexp": "mlp.shared_expert.down_proj",
    "ffn_gate_inp_shexp": "mlp.shared_expert_gate",
}
_BLOCK_BY_ARCH = {
    "llama": {**_BLOCK, **_MIXTRAL_MOE},
    "qwen2": _BLOCK,
    "qwen3": _BLOCK,
    "qwen2moe": {**_BLOCK, **_QWEN_MOE},
    "qwen3moe": {**_BLOCK, **_QWEN_MOE},
}
_GLOBAL = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK_NAME = re.compile(r"blk\.(?P<block>\d+)\.(?P<leaf>[a-z0-9_]+)")

#: Architectures whose converter permutes q/k rows into llama.cpp's rotary order (undone on load).
PERMUTED_QK_ARCHS = frozenset({"llama"})


def module_name(gguf_name: str) -> str:
    """A tensor's name without its ``.weight`` suffix (GGUF's module path)."""
    return gguf_name[: -len(".weight")] if gguf_name.endswith(".weight") else gguf_name


def hf_name(arch: str, gguf_name: str, expert: int | str | None = None) -> str:
    """The Hugging Face module name of ``gguf_name`` in ``arch``; its GGUF module path when unmapped.

    ``expert`` picks one expert of a stacked ``*_exps`` tensor (unmapped: ``<name>.<expert>``); ``"*"`` names them all.
    """
    base = module_name(gguf_name)
    blocks = _BLOCK_BY_ARCH.get(arch)
    mapped: str | None = None
    if blocks is not None:
        found = _BLOCK_NAME.fullmatch(base)
        if found and found["leaf"] in blocks:
            mapped = f"model.layers.{found['block']}.{blocks[found['leaf']]}"
        elif base in _GLOBAL:
            mapped = _GLOBAL[base]
    if expert is None:
        return mapped or base
    if mapped and "{e}" in mapped:
        return mapped.format(e=expert)
    return f"{mapped or base}.{expert}"


def is_expert_stack(gguf_name: str) -> bool:
    """True for a tensor that stacks one matrix per expert (``blk.N.ffn_*_exps``)."""
    return module_name(gguf_name).endswith("_exps")


def permuted_heads(arch: str, gguf_name: str, metadata: dict[str, object]) -> int | None:
    """The head count whose rotary row permutation llama.cpp applied to this tensor, or None.

    The converter permutes ``attn_q`` with ``head_count`` heads and ``attn_k`` with ``head_count_kv``.
    """
    if arch not in PERMUTED_QK_ARCHS:
        return None
    found = _BLOCK_NAME.fullmatch(module_name(gguf_name))
    if not found or found["leaf"] not in ("attn_q", "attn_k"):
        return None
    heads = metadata.get(f"{arch}.attention.head_count")
    kv_heads = metadata.get(f"{arch}.attention.head_count_kv", heads)
    count = heads if found["leaf"] == "attn_q" else kv_heads
    if not isinstance(count, int) or count <= 0:
        raise ValueError(f"{arch}.attention.head_count(_kv) is {count!r}; cannot undo the rotary row order of {gguf_name!r}")
    return count
