"""ww-core math speed: the vectorized power-law scan and the Gram eigenvalue path.

``python benchmarks/bench_core.py``. Prints ratios and PASS/FAIL against the targets;
never asserts (timings vary by machine).
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import scipy.linalg

from ww_core.spectra.powerlaw_fit import fit_power_law
from ww_core.spectra.spectrum import eigenvalues

FIT_TARGET = 10.0
EIGEN_TARGET = 3.0
EIGEN_RTOL = 1e-9


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest of a few runs, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loop_fit(evals: np.ndarray) -> tuple[float, float, float]:
    """The same CSN scan with one Python iteration per candidate xmin (the reference's way)."""
    data = np.sort(evals[evals > 1e-5])
    logs = np.log(data)
    n = len(data)
    alphas, Ds = np.zeros(n - 1), np.ones(n - 1)
    for i in range(n - 1):
        tail_n = float(n - i)
        alpha = 1 + tail_n / (np.sum(logs[i:]) - tail_n * logs[i])
        alphas[i] = alpha
        if alpha > 1:
            Ds[i] = np.max(np.abs(1 - (data[i:] / data[i]) ** (1 - alpha) - np.arange(tail_n) / tail_n))
    best = int(np.argmin(Ds))
    return float(alphas[best]), float(data[best]), float(Ds[best])


def bench_fit(n: int = 4096) -> bool:
    rng = np.random.default_rng(0)
    W = rng.standard_t(2.5, size=(2 * n, n))
    evals = np.sort(np.linalg.svd(W, compute_uv=False) ** 2)
    fit = fit_power_law(evals)
    reference = loop_fit(evals)
    same = all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip((fit.alpha, fit.xmin, fit.D), reference))
    fast, slow = best_time(lambda: fit_power_law(evals)), best_time(lambda: loop_fit(evals), repeats=1)
    ratio = slow / fast
    ok = same and ratio >= FIT_TARGET
    print(f"power-law fit n={n}: vectorized {fast * 1e3:.1f} ms, loop {slow * 1e3:.1f} ms -> {ratio:.1f}x (target >= {FIT_TARGET:g}x)")
    print(f"  identical answers: {same} (alpha {fit.alpha:.6f}, xmin {fit.xmin:.6g}, D {fit.D:.6f})  {'PASS' if ok else 'FAIL'}")
    return ok


def bench_eigenvalues(n: int = 4096) -> bool:
    rng = np.random.default_rng(1)
    W = (rng.standard_t(3.0, size=(n, n)) * 0.02).astype(np.float32)
    fast = best_time(lambda: eigenvalues([W]), repeats=1)
    slow = best_time(lambda: scipy.linalg.svd(W.astype(np.float64), compute_uv=False), repeats=1)
    (ours,) = eigenvalues([W])
    exact = np.sort(scipy.linalg.svd(W.astype(np.float64), compute_uv=False) ** 2)
    top = slice(n // 2, None)
    error = float(np.max(np.abs(ours[top] - exact[top]) / exact[top]))
    ratio = slow / fast
    ok = ratio >= EIGEN_TARGET and error < EIGEN_RTOL
    print(f"eigenvalues {n}x{n} float32: float64 Gram + band eigensolver {fast:.2f} s, scipy float64 SVD {slow:.2f} s", end=" ")
    print(f"-> {ratio:.1f}x (target >= {EIGEN_TARGET:g}x)")
    print(f"  max relative error on the top half: {error:.2e} (target < {EIGEN_RTOL:g})  {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> bool:
    """Run both benchmarks; True when every target is met."""
    results = [bench_fit(), bench_eigenvalues()]
    return all(results)


if __name__ == "__main__":
    main()
