"""``workers=1`` on a busy machine: BLAS on every core (as before) against BLAS on the idle cores (ww's choice now).

``python benchmarks/bench_busy_blas.py [--busy N] [--layers 4] [--size 2048] [--repeats 3]`` starts N
spinning processes (default: one per core), waits until the load average shows them, then alternates
the two settings on the same checkpoint and prints each run's wall time and the medians. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import ww_core
from ww_core.pipeline import analysis, threads


def spin(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """Busy work standing in for other jobs on a shared machine."""
    count = 0
    while not stop.is_set():
        count += 1


def timed(path: Path, all_cores: bool) -> tuple[float, int | None]:
    """Wall time of ``analyze(path, workers=1)`` and the BLAS threads a large layer got."""
    chosen = analysis.idle_cores
    if all_cores:
        analysis.idle_cores = threads.available_cores  # type: ignore[assignment]  # the behaviour before: every core
    try:
        limit = threads.serial_blas_threads((4 * 1024, 1024), analysis.idle_cores())
        start = time.perf_counter()
        ww_core.analyze(str(path), workers=1)
        return time.perf_counter() - start, limit
    finally:
        analysis.idle_cores = chosen  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--busy", type=int, default=threads.available_cores(), help="spinning processes (default: one per core)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--size", type=int, default=2048, help="each layer is SIZE x SIZE/2")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="ww-busy-"))
    path = folder / "model.npz"
    shape = (args.size, args.size // 2)
    np.savez(path, **{f"layers.{i}.weight": rng.standard_normal(shape).astype(np.float32) for i in range(args.layers)})
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    try:
        deadline = time.monotonic() + 90
        while os.getloadavg()[0] < args.busy - 0.5 and time.monotonic() < deadline:
            time.sleep(2)
        print(f"cores {threads.available_cores()}, spinners {args.busy}, load {os.getloadavg()[0]:.2f}, idle cores {threads.idle_cores()}")
        runs: dict[str, list[float]] = {"every core (before)": [], "idle cores (now)": []}
        for _ in range(args.repeats):
            for label, all_cores in (("every core (before)", True), ("idle cores (now)", False)):
                seconds, limit = timed(path, all_cores)
                runs[label].append(seconds)
                print(f"  {label}: {seconds:.2f} s (BLAS threads: {limit or 'all'})", flush=True)
        for label, times in runs.items():
            print(f"{label}: median {statistics.median(times):.2f} s over {len(times)} runs")
    finally:
        stop.set()
        for process in spinners:
            process.join()
        path.unlink()
        folder.rmdir()


if __name__ == "__main__":
    sys.exit(main())
