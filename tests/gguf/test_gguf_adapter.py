"""ww-gguf against the conformance kit, MoE expert stacks, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
pytest.importorskip("ww_gguf")

from gguf import GGMLQuantizationType as Q  # noqa: E402

import ww_core  # noqa: E402
import ww_gguf  # noqa: E402
from ww_core import testing  # noqa: E402
from ww_core.cli import main  # noqa: E402

from .gguf_files import write_gguf  # noqa: E402

RNG = np.random.default_rng(1)


def _model(seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    return {
        "token_embd.weight": rng.standard_normal((50, 32)).astype(np.float32),
        "blk.0.attn_v.weight": (rng.standard_normal((32, 32)), Q.Q8_0),
        "blk.0.ffn_up.weight": rng.standard_normal((64, 32)).astype(np.float16),
        "blk.0.attn_norm.weight": np.ones(32, np.float32),
    }


def test_conformance_kit(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", _model(), arch="qwen2")
    layers = testing.check_layers(ww_gguf.ww_layers(path, {}))
    assert [layer.name for layer in layers] == ["model.embed_tokens", "model.layers.0.self_attn.v_proj", "model.layers.0.mlp.up_proj"]
    testing.check_lazy(lambda: ww_gguf.ww_layers(path, {}), mutate=lambda: write_gguf(path, _model(seed=1), arch="qwen2"))
    testing.check_declines(ww_gguf.ww_layers)
    testing.check_adapter_info(ww_gguf.ww_adapter_info())


def test_routed_through_core_by_entry_point(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", _model(), arch="qwen2")
    results = ww_core.analyze(path, min_evals=2)
    assert [row["status"] for row in results.details] == ["success"] * 3
    assert any(adapter["name"] == "gguf" for adapter in ww_core.list_adapters())


@pytest.mark.parametrize(
    ("arch", "names"),
    [
        ("llama", ["block_sparse_moe.gate", "block_sparse_moe.experts.{e}.w1", "block_sparse_moe.experts.{e}.w2"]),
        ("qwen2moe", ["mlp.gate", "mlp.experts.{e}.gate_proj", "mlp.experts.{e}.down_proj"]),
        ("unknown", ["blk.0.ffn_gate_inp", "blk.0.ffn_gate_exps.{e}", "blk.0.ffn_down_exps.{e}"]),
    ],
)
def test_moe_expert_stacks_give_one_row_per_expert(tmp_path: Path, arch: str, names: list[str]) -> None:
    experts, dim, ff = 3, 32, 64
    gate = RNG.standard_normal((experts, ff, dim)).astype(np.float32)  # numpy (expert, out, in)
    down = RNG.standard_normal((experts, dim, ff)).astype(np.float32)
    router = RNG.standard_normal((experts, dim)).astype(np.float32)
    tensors = {"blk.0.ffn_gate_inp.weight": router, "blk.0.ffn_gate_exps.weight": (gate, Q.Q8_0), "blk.0.ffn_down_exps.weight": down}
    path = write_gguf(tmp_path / "moe.gguf", tensors, arch=arch, metadata={f"{arch}.expert_count": experts})
    layers = {layer.name: layer for layer in testing.check_layers(ww_gguf.ww_layers(path, {}))}
    prefix = "" if arch == "unknown" else "model.layers.0."
    expected = [prefix + names[0]] + [prefix + n.format(e=e) for n in names[1:] for e in range(experts)]
    assert list(layers) == expected
    np.testing.assert_array_equal(layers[prefix + names[0]].load(), router)
    q_gate = gguf.quants.dequantize(gguf.quants.quantize(gate, Q.Q8_0), Q.Q8_0)
    for e in range(experts):
        np.testing.assert_array_equal(layers[prefix + names[1].format(e=e)].load(), q_gate[e])
        np.testing.assert_array_equal(layers[prefix + names[2].format(e=e)].load(), down[e])
        assert layers[prefix + names[2].format(e=e)].shape == (dim, ff)


def test_cli_analyze_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_gguf(tmp_path / "a.gguf", _model(), arch="qwen2")
    b = write_gguf(tmp_path / "b.gguf", _model(seed=2), arch="qwen2")
    assert main(["analyze", str(a), "--min-evals", "2", "--json", "-"]) == 0
    rows = json.loads(capsys.readouterr().out)["details"]
    assert [row["name"] for row in rows] == ["model.embed_tokens", "model.layers.0.self_attn.v_proj", "model.layers.0.mlp.up_proj"]
    assert main(["compare", str(a), str(b), "--min-evals", "2"]) == 0


def test_a_folder_of_gguf_files(tmp_path: Path) -> None:
    """A downloaded GGUF repo folder: one file is read; several quantizations are refused naming them."""
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "README.md").write_text("model card")
    write_gguf(folder / "m-Q8_0.gguf", _model(), arch="qwen2")
    rows = ww_core.analyze(folder, min_evals=2).details
    assert [row["status"] for row in rows] == ["success"] * 3
    write_gguf(folder / "m-F16.gguf", _model(), arch="qwen2")
    testing.check_clear_error(lambda: ww_core.analyze(folder), str(folder), "m-F16.gguf", "m-Q8_0.gguf", error=ValueError)


def _split_model(folder: Path) -> list[Path]:
    """Five tensors written by gguf as three split files (two tensors each at most)."""
    folder.mkdir(exist_ok=True)
    writer = gguf.GGUFWriter(folder / "m.gguf", "qwen2", split_max_tensors=2)
    for block in range(5):
        writer.add_tensor(f"blk.{block}.ffn_up.weight", RNG.standard_normal((24, 16)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sorted(folder.glob("m-*.gguf"))


def test_any_split_file_reads_the_whole_model(tmp_path: Path) -> None:
    files = _split_model(tmp_path / "split")
    assert [f.name for f in files] == ["m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "m-00003-of-00003.gguf"]
    expected = [f"model.layers.{block}.mlp.up_proj" for block in range(5)]
    for source in (*files, tmp_path / "split"):
        layers = testing.check_layers(ww_gguf.ww_layers(source, {}))
        assert [layer.name for layer in layers] == expected, source
    assert [layer.origin for layer in layers][-1] == str(files[2])
    files[1].unlink()
    testing.check_clear_error(lambda: ww_core.analyze(files[0]), str(files[0]), "m-00002-of-00003.gguf", "missing", error=FileNotFoundError)
