"""ww-torch's GPU spectra hook against core's CPU path, on one machine: time and agreement of every row.

``python benchmarks/gpu_spectra.py [--blocks 2] [--device cuda] [--markdown FILE]`` on a machine with a GPU
(ww-core and ww-torch installed). Two cases:

- 4×Linear(4096²) (heavy-tailed weights, so the fits are real): the model on the CPU (core's numpy path)
  against the same model moved to the GPU (the hook claims layers on an accelerator);
- a LLaMA-shaped bf16 safetensors checkpoint (Llama-3-8B blocks: hidden 4096, MLP 14336, 8 KV heads of
  128), analyzed by core on the CPU against ``extra={"torch": {"torch_device": ...}}``.

Both float64 on the device (the default ``torch_precision``), plus float32 as information. Prints each
run's wall time, the speed-up, and the largest difference of alpha (absolute) and of the other metrics
(relative) against the CPU rows, with PASS when alpha agrees to 1e-10. Never asserts (timings vary).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

import ww_core

ALPHA_TOLERANCE = 1e-10
METRICS = ("D", "xmin", "log_norm", "log_spectral_norm", "stable_rank")
HIDDEN, MLP, KV = 4096, 14336, 1024  # divided by --shrink for a quick check without a GPU


def heavy_tailed(shape: tuple[int, ...], device: str, generator: torch.Generator) -> torch.Tensor:
    """Student-t (4 degrees of freedom) entries scaled by 1/sqrt(fan-in), drawn on ``device`` (fast on a GPU)."""
    normal = torch.randn(shape, generator=generator, device=device)
    chi2 = torch.randn((4, *shape), generator=generator, device=device).square().sum(0)
    return normal / (chi2 / 4).sqrt() / shape[-1] ** 0.5


def linear_model(device: str) -> nn.Module:
    generator = torch.Generator(device=device).manual_seed(0)
    model = nn.Sequential(*(nn.Linear(HIDDEN, HIDDEN, bias=False) for _ in range(4)))
    with torch.no_grad():
        for weight in model.parameters():
            weight.copy_(heavy_tailed((HIDDEN, HIDDEN), device, generator).cpu())
    return model


def llama_checkpoint(folder: Path, blocks: int, device: str) -> Path:
    """``blocks`` Llama-3-8B-shaped blocks (7 matrices each) in one bf16 safetensors file."""
    from safetensors.torch import save_file

    generator = torch.Generator(device=device).manual_seed(1)
    shapes = {
        "self_attn.q_proj": (HIDDEN, HIDDEN),
        "self_attn.k_proj": (KV, HIDDEN),
        "self_attn.v_proj": (KV, HIDDEN),
        "self_attn.o_proj": (HIDDEN, HIDDEN),
        "mlp.gate_proj": (MLP, HIDDEN),
        "mlp.up_proj": (MLP, HIDDEN),
        "mlp.down_proj": (HIDDEN, MLP),
    }
    tensors = {
        f"model.layers.{block}.{name}.weight": heavy_tailed(shape, device, generator).to(torch.bfloat16).cpu().contiguous()
        for block in range(blocks)
        for name, shape in shapes.items()
    }
    path = folder / "model.safetensors"
    save_file(tensors, str(path))
    return path


def timed(label: str, run: Callable[[], Any], device: str) -> tuple[float, Any]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    results = run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    print(f"  {label:<44} {seconds:8.2f} s")
    return seconds, results


def differences(reference: Any, other: Any) -> tuple[float, float, int]:
    """Largest |Δalpha|, largest relative difference of the other metrics, and failed rows in ``other``."""
    worst_alpha = worst_other = 0.0
    failed = 0
    for a, b in zip(reference.details, other.details, strict=True):
        assert a["name"] == b["name"], (a["name"], b["name"])
        if b.get("status") == "failed":
            failed += 1
            continue
        worst_alpha = max(worst_alpha, abs(a["alpha"] - b["alpha"]))
        for column in METRICS:
            worst_other = max(worst_other, abs(a[column] - b[column]) / max(abs(a[column]), 1e-300))
    return worst_alpha, worst_other, failed


def compare(case: str, cpu_s: float, cpu: Any, runs: list[tuple[str, float, Any]], table: list[str]) -> None:
    for label, seconds, results in runs:
        alpha, other, failed = differences(cpu, results)
        verdict = "PASS" if failed == 0 and alpha <= ALPHA_TOLERANCE else "FAIL" if "float64" in label else "info"
        timing = f"{cpu_s:.2f} | {seconds:.2f} | {cpu_s / seconds:.1f}×"
        line = f"| {case} | {label} | {len(cpu.details)} | {timing} | {alpha:.1e} | {other:.1e} | {verdict} |"
        print(line)
        table.append(line)


def linear_case(device: str, table: list[str]) -> None:
    """The model on the CPU (core) against the same model on the device (the hook claims its layers)."""
    case = f"4×Linear({HIDDEN}²)"
    print(case)
    model = linear_model(device)
    cpu_s, cpu = timed("CPU model, core's numpy path", lambda: ww_core.analyze(model), "cpu")
    model.to(device)
    f64_s, f64 = timed(f"model on {device}, float64", lambda: ww_core.analyze(model), device)
    in_float32 = {"torch": {"torch_precision": "float32"}}
    f32_s, f32 = timed(f"model on {device}, float32", lambda: ww_core.analyze(model, extra=in_float32), device)
    compare(case, cpu_s, cpu, [("model on device, float64", f64_s, f64), ("model on device, float32", f32_s, f32)], table)


def llama_case(device: str, blocks: int, shrink: int, table: list[str]) -> None:
    """A bf16 safetensors file read by core: core's CPU path against ``torch_device``."""
    on_device = {"torch": {"torch_device": device}}
    in_float32 = {"torch": {"torch_device": device, "torch_precision": "float32"}}
    with tempfile.TemporaryDirectory() as tmp:
        path = llama_checkpoint(Path(tmp), blocks, device)
        shrunk = f" (1/{shrink})" if shrink > 1 else ""
        case = f"LLaMA-3-8B-shaped{shrunk}, {blocks} blocks, bf16 safetensors ({path.stat().st_size / 1e9:.2f} GB)"
        print(case)
        cpu_s, cpu = timed("file, core's numpy path", lambda: ww_core.analyze(path), "cpu")
        f64_s, f64 = timed(f"file, torch_device={device}, float64", lambda: ww_core.analyze(path, extra=on_device), device)
        f32_s, f32 = timed(f"file, torch_device={device}, float32", lambda: ww_core.analyze(path, extra=in_float32), device)
        compare(case, cpu_s, cpu, [("torch_device, float64", f64_s, f64), ("torch_device, float32", f32_s, f32)], table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--shrink", type=int, default=1, help="divide every dimension (a smoke test on a CPU)")
    args = parser.parse_args()
    global HIDDEN, MLP, KV
    HIDDEN, MLP, KV = HIDDEN // args.shrink, MLP // args.shrink, KV // args.shrink
    device = args.device
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else device
    print(f"device {name}; torch {torch.__version__}; {os.cpu_count()} CPU cores; ww-core {ww_core.__version__}")
    ww_core.analyze({"warm.weight": torch.eye(64).numpy()}, extra={"torch": {"torch_device": device}})  # CUDA context, cuSOLVER
    table = [
        "| case | device run | rows | CPU (core) s | device s | speed-up | max abs Δalpha | max rel Δ other | alpha to 1e-10 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    linear_case(device, table)
    llama_case(device, args.blocks, args.shrink, table)
    print("\n".join(table))
    if args.markdown is not None:
        args.markdown.write_text(f"device {name}; torch {torch.__version__}; {os.cpu_count()} CPU cores\n\n" + "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
