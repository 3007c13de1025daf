"""randomize: the ESD of element-shuffled W (seeded), compared with the real one.

Shuffling destroys correlations but keeps the entry distribution, so the shuffled ESD is
the layer's random (MP-like) baseline; large real eigenvalues beyond it are learned signal
and spikes in it are "correlation traps".
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ww_core.spectra.mp_fit import mp_fit
from ww_core.spectra.spectrum import EigenvalueFn, inverse_spectrum

#: Below this many components the random ESD pools this many shuffles (the reference's rule).
FEW_COMPONENTS = 100
REPLICAS_WHEN_FEW = 5


def shuffled(matrices: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Each matrix with its elements randomly permuted."""
    return [rng.permutation(m.ravel()).reshape(m.shape) for m in matrices]


def random_esd(matrices: Sequence[np.ndarray], eigen: EigenvalueFn, rng: np.random.Generator, replicas: int, inverse: bool) -> np.ndarray:
    """Sorted eigenvalues of ``replicas`` independent shuffles of every matrix, pooled."""
    evals = [e for _ in range(replicas) for e in eigen(shuffled(matrices, rng))]
    pooled = np.sort(np.concatenate(evals))
    return inverse_spectrum(pooled) if inverse else pooled


def jensen_shannon_distance(p: np.ndarray, q: np.ndarray) -> float:
    """JS distance between two sorted eigenvalue vectors each normalized to sum 1 (the reference's rand_distance)."""
    from scipy import stats  # scipy's submodules load on use: they cost most of a cold start

    m = (p + q) / 2
    return float(np.sqrt((stats.entropy(p, m) + stats.entropy(q, m)) / 2))


def randomize_columns(
    matrices: Sequence[np.ndarray],
    evals: np.ndarray,
    *,
    N: int,
    M: int,
    num_components: int,
    eigen: EigenvalueFn,
    seed: int,
    inverse: bool = False,
) -> dict[str, Any]:
    """rand_* MP columns, max_rand_eval, rand_distance, ww_softrank and ww_maxdist for one ESD."""
    rng = np.random.default_rng(seed)
    replicas = REPLICAS_WHEN_FEW if num_components < FEW_COMPONENTS else 1
    rand = random_esd(matrices, eigen, rng, replicas, inverse)
    single = random_esd(matrices, eigen, rng, 1, inverse)
    fit = mp_fit(rand, N, M)
    return {
        "max_rand_eval": float(np.max(rand)),
        "rand_distance": jensen_shannon_distance(evals, single) if len(single) == len(evals) else float("nan"),
        "ww_softrank": float(np.max(single) / np.max(evals)),
        "ww_maxdist": float(np.max(evals) - np.max(single)),
        **fit.columns("rand_"),
        "num_traps": fit.num_spikes,
    }
