"""Run one analysis in a fresh process and report its wall time, peak RSS and alphas.

``python benchmarks/measure.py TOOL PATH OUT.json [--workers N] [--repeat R]`` with TOOL
``ww`` (ww-core on the file, streamed) or ``reference`` (weightwatcher 0.7.7 on a torch
module holding the same weights). A fresh process per measurement keeps peak RSS honest.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux: VmHWM, which starts afresh at exec; ru_maxrss would carry over the RSS of the
    process that forked this one (here run_all.py, after its own benchmarks). Elsewhere ru_maxrss.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def run_ww(path: Path, workers: int | None, repeat: int) -> tuple[list[float], dict[str, float]]:
    """ww-core straight from the file, layers memory-mapped (imports untimed, as the reference's); None: default workers."""
    import ww_core
    import ww_core.pipeline.analysis  # ww_core imports it lazily; weightwatcher is imported before its timer too

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        results = ww_core.analyze(path, workers=workers)
        times.append(time.perf_counter() - started)
    return times, {str(row["name"]): float(row["alpha"]) for row in results.details if row["status"] == "success"}


def run_reference(path: Path, repeat: int) -> tuple[list[float], dict[str, float]]:
    """weightwatcher 0.7.7 with default options on a torch module built from the same weights (stdout silenced)."""
    from checkpoint import reference_module

    logging.disable(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import weightwatcher

        model, names = reference_module(path)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            frame = weightwatcher.WeightWatcher(model=model).analyze()
            times.append(time.perf_counter() - started)
    return times, {names[str(name)]: float(alpha) for name, alpha in zip(frame["name"], frame["alpha"])}


def measure(tool: str, path: Path, workers: int | None = None, repeat: int = 1, blas_threads: int | None = None) -> dict[str, Any]:
    """Run one measurement in a subprocess and return its report; ``blas_threads`` caps BLAS there."""
    handle, name = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    out = Path(name)
    command = [sys.executable, __file__, tool, str(path), str(out), "--repeat", str(repeat)]
    if workers is not None:
        command += ["--workers", str(workers)]
    env = dict(os.environ)
    if blas_threads is not None:
        env.update({variable: str(blas_threads) for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    subprocess.run(command, check=True, env=env)
    report: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tool", choices=["ww", "reference"])
    parser.add_argument("path", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--workers", type=int, default=None, help="ww's workers (default: ww's own default)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.tool == "ww":
        times, alphas = run_ww(args.path, args.workers, args.repeat)
    else:
        times, alphas = run_reference(args.path, args.repeat)
    report = {
        "seconds": min(times),
        "peak_rss_mb": peak_rss_mb(),
        "alphas": {k: (v if math.isfinite(v) else None) for k, v in alphas.items()},
    }
    args.out.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
