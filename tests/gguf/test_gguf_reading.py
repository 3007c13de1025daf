"""ww-gguf reads what gguf wrote: shapes (GGML's reversed dimension order), values, quantized types, names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
pytest.importorskip("ww_gguf")

from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import quants  # noqa: E402

import ww_core  # noqa: E402
import ww_gguf  # noqa: E402
from ww_core import testing  # noqa: E402
from ww_gguf.header import read_header  # noqa: E402

from .gguf_files import llama_permute, write_gguf  # noqa: E402

RNG = np.random.default_rng(0)


def _layers(path: Path) -> dict[str, ww_core.LayerMatrix]:
    layers = ww_gguf.ww_layers(path, {})
    assert layers is not None
    return {layer.name: layer for layer in testing.check_layers(layers)}


def test_dimension_order_round_trips_known_weights(tmp_path: Path) -> None:
    weights = {
        "blk.0.ffn_up.weight": np.arange(6 * 4, dtype=np.float32).reshape(6, 4),
        "blk.0.ffn_down.weight": RNG.standard_normal((4, 6)).astype(np.float16),
        "blk.0.attn_v.weight": RNG.standard_normal((3, 4)).astype(np.float64),
    }
    path = write_gguf(tmp_path / "m.gguf", weights, arch="unmapped")
    header = read_header(path)
    assert {t.name: t.ne for t in header.tensors} == {name: tuple(reversed(a.shape)) for name, a in weights.items()}
    reader = gguf.GGUFReader(path)  # gguf's own reader agrees on GGML order
    assert {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors} == {t.name: t.ne for t in header.tensors}
    layers = _layers(path)
    for name, array in weights.items():
        layer = layers[name.removesuffix(".weight")]
        assert layer.shape == array.shape
        np.testing.assert_array_equal(layer.load(), array.astype(np.float32 if array.dtype == np.float16 else array.dtype))


def test_bf16_widens_exactly(tmp_path: Path) -> None:
    array = RNG.standard_normal((16, 32)).astype(np.float32)
    path = write_gguf(tmp_path / "bf16.gguf", {"blk.0.ffn_up.weight": (array, Q.BF16)}, arch="x")
    expected = quants.dequantize(quants.quantize(array, Q.BF16), Q.BF16)
    loaded = _layers(path)["blk.0.ffn_up"].load()
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, expected)
    np.testing.assert_allclose(loaded, array, rtol=1e-2)


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_0, Q.Q5_1, Q.MXFP4])
def test_quantized_types_dequantize_like_gguf(tmp_path: Path, qtype: Q) -> None:
    array = RNG.standard_normal((24, 64)).astype(np.float32)
    path = write_gguf(tmp_path / "q.gguf", {"blk.0.ffn_up.weight": (array, qtype)}, arch="x")
    layer = _layers(path)["blk.0.ffn_up"]
    assert layer.shape == (24, 64) and layer.framework_type == f"gguf {qtype.name}"
    np.testing.assert_array_equal(layer.load(), quants.dequantize(quants.quantize(array, qtype), qtype))


def test_k_quant_blocks_dequantize_like_gguf(tmp_path: Path) -> None:
    """gguf cannot quantize to Q6_K; blocks of random bytes with a small f16 scale stand in for a real one."""
    block, type_size = gguf.GGML_QUANT_SIZES[Q.Q6_K]
    raw = RNG.integers(0, 256, size=(8, 2 * type_size), dtype=np.uint8)
    raw.reshape(8, 2, type_size)[..., -2:] = np.frombuffer(np.float16(0.01).tobytes(), dtype=np.uint8)
    path = write_gguf(tmp_path / "k.gguf", {"blk.0.ffn_up.weight": (raw, Q.Q6_K)}, arch="x")
    layer = _layers(path)["blk.0.ffn_up"]
    assert layer.shape == (8, 2 * block)
    np.testing.assert_array_equal(layer.load(), quants.dequantize(raw, Q.Q6_K))


def test_a_type_gguf_cannot_dequantize_fails_that_layer_only(tmp_path: Path) -> None:
    _, type_size = gguf.GGML_QUANT_SIZES[Q.Q8_1]
    tensors = {
        "blk.0.ffn_up.weight": RNG.standard_normal((64, 32)).astype(np.float32),
        "blk.0.ffn_down.weight": (np.zeros((32, 2 * type_size), np.uint8), Q.Q8_1),  # bytes as stored: no quantizer exists
        "token_ids": np.arange(8, dtype=np.int32).reshape(2, 4),
    }
    path = write_gguf(tmp_path / "mixed.gguf", tensors, arch="x")
    results = ww_core.analyze(path, min_evals=2)
    rows = {row["name"]: row for row in results.details}
    assert set(rows) == {"blk.0.ffn_up", "blk.0.ffn_down", "token_ids"}
    assert rows["token_ids"]["status"] == "skipped" and "integer dtype int32" in rows["token_ids"]["error"]  # listed, never loaded
    assert rows["blk.0.ffn_up"]["status"] == "success"
    assert rows["blk.0.ffn_down"]["status"] == "failed"
    assert "Q8_1" in rows["blk.0.ffn_down"]["error"] and "cannot dequantize" in rows["blk.0.ffn_down"]["error"]


def _llama(heads: int = 4, kv_heads: int = 2, dim: int = 32, ff: int = 48, vocab: int = 40) -> dict[str, np.ndarray]:
    """A two-block llama in Hugging Face names (state-dict keys)."""
    head_dim = dim // heads
    tensors = {"model.embed_tokens.weight": RNG.standard_normal((vocab, dim)), "lm_head.weight": RNG.standard_normal((vocab, dim))}
    for block in range(2):
        prefix = f"model.layers.{block}."
        for name, shape in (
            ("self_attn.q_proj", (dim, dim)),
            ("self_attn.k_proj", (kv_heads * head_dim, dim)),
            ("self_attn.v_proj", (kv_heads * head_dim, dim)),
            ("self_attn.o_proj", (dim, dim)),
            ("mlp.gate_proj", (ff, dim)),
            ("mlp.up_proj", (ff, dim)),
            ("mlp.down_proj", (dim, ff)),
        ):
            tensors[f"{prefix}{name}.weight"] = RNG.standard_normal(shape)
        tensors[f"{prefix}input_layernorm.weight"] = np.ones(dim)
    tensors["model.norm.weight"] = np.ones(dim)
    return {name: array.astype(np.float32) for name, array in tensors.items()}


_GGUF_LEAF = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
}


def _to_gguf(hf: dict[str, np.ndarray], heads: int, kv_heads: int, qtype: Q | None = None) -> dict[str, object]:
    """What llama.cpp's converter writes for ``hf``: GGUF names, q/k rows permuted, optionally quantized."""
    out: dict[str, object] = {}
    for key, array in hf.items():
        module = key.removesuffix(".weight")
        if module.startswith("model.layers."):
            _, _, block, leaf = module.split(".", 3)
            name = f"blk.{block}.{_GGUF_LEAF[leaf]}.weight"
            if leaf == "self_attn.q_proj":
                array = llama_permute(array, heads)
            if leaf == "self_attn.k_proj":
                array = llama_permute(array, kv_heads)
        else:
            name = {"model.embed_tokens": "token_embd", "lm_head": "output", "model.norm": "output_norm"}[module] + ".weight"
        out[name] = (array, qtype) if qtype is not None and array.ndim == 2 else array
    return out


def test_llama_names_and_rows_match_the_hugging_face_weights(tmp_path: Path) -> None:
    hf = _llama()
    meta = {"llama.attention.head_count": 4, "llama.attention.head_count_kv": 2}
    path = write_gguf(tmp_path / "llama.gguf", _to_gguf(hf, 4, 2), metadata=meta)
    layers = _layers(path)
    expected = {key.removesuffix(".weight"): array for key, array in hf.items() if array.ndim == 2}
    assert set(layers) == set(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(layers[name].load(), array, err_msg=name)  # q/k rows back in HF order
    assert layers["model.embed_tokens"].kind == "embedding" and layers["lm_head"].kind == "dense"


def test_mapped_names_are_the_ones_gguf_maps_from(tmp_path: Path) -> None:
    """gguf's own HF → GGUF tensor map sends every name ww gives back to the GGUF tensor it came from."""
    tensors = _to_gguf(_llama(), 4, 2)
    path = write_gguf(tmp_path / "llama.gguf", tensors, metadata={"llama.attention.head_count": 4, "llama.attention.head_count_kv": 2})
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
    for layer in _layers(path).values():
        assert name_map.get_name(layer.name) + ".weight" in tensors, layer.name


def test_safetensors_and_quantized_gguf_compare_layer_by_layer(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    hf = _llama(dim=64, ff=96, vocab=80)
    save_file(hf, str(tmp_path / "model.safetensors"))
    meta = {"llama.attention.head_count": 4, "llama.attention.head_count_kv": 2}
    f32 = write_gguf(tmp_path / "model-f32.gguf", _to_gguf(hf, 4, 2), metadata=meta)
    q4 = write_gguf(tmp_path / "model-Q4_0.gguf", _to_gguf(hf, 4, 2, Q.Q4_0), metadata=meta)
    same = ww_core.distances(tmp_path / "model.safetensors", f32)
    assert len(same.details) == 16 and all(row["frobenius"] == 0.0 for row in same.details), same.details
    damage = ww_core.analyze(q4, base_model=tmp_path / "model.safetensors", min_evals=2)
    assert {row["status"] for row in damage.details} == {"success"}, damage.details
    cmp = ww_core.compare(tmp_path / "model.safetensors", q4, min_evals=2)
    deltas = cmp.layer_deltas("alpha")
    assert len(deltas) == 16  # every layer matched by name across the two formats
    assert cmp.verdict.best is None  # issue 22: the 4-bit copy was called best
    against = ww_core.compare(tmp_path / "model.safetensors", q4, min_evals=2, names=["f32", "q4"], reference="f32")
    assert against.verdict.best is None and 0 < against.distances["q4"] < 0.5
