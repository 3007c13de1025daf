"""Layer-level parity of ww_core.analyze_layer with the reference weightwatcher 0.7.7."""

from __future__ import annotations

import contextlib
import io
import logging
import math
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
weightwatcher = pytest.importorskip("weightwatcher")

from ww_core.pipeline.layer_analysis import analyze_layer  # noqa: E402
from ww_core.platform.protocol import LayerMatrix  # noqa: E402
from ww_core.results.options import AnalysisOptions  # noqa: E402
from ww_core.spectra.mp_fit import linear_kde  # noqa: E402
from ww_core.spectra.powerlaw_fit import fit_power_law  # noqa: E402
from ww_core.spectra.vectors import discrete_entropy, vector_metrics  # noqa: E402

logging.getLogger("weightwatcher").setLevel(logging.ERROR)

RTOL = 1e-6
FIT_COLUMNS = ("alpha", "D", "xmin", "xmax", "sigma", "num_pl_spikes")
NORM_COLUMNS = ("norm", "log_norm", "spectral_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm", "stable_rank", "lambda_max")
SHAPE_COLUMNS = ("N", "M", "rf", "num_evals", "matrix_rank")


def heavy_tailed(shape: tuple[int, ...], seed: int, dof: float = 2.5) -> np.ndarray:
    """Student-t entries: a heavy-tailed ESD like a trained layer's."""
    rng = np.random.default_rng(seed)
    return (rng.standard_t(dof, size=shape) * 0.05).astype(np.float32)


def torch_layer(kind: str, weights: np.ndarray) -> Any:
    out_dim, in_dim = weights.shape[:2]
    if kind == "dense":
        module = torch.nn.Linear(in_dim, out_dim, bias=False)
    elif kind == "conv2d":
        module = torch.nn.Conv2d(in_dim, out_dim, weights.shape[2:], bias=False)
    else:
        raise ValueError(kind)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(weights))
    return torch.nn.Sequential(module)


def reference_rows(model: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Rows of weightwatcher.analyze, with its stdout chatter swallowed."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        watcher = weightwatcher.WeightWatcher(model=model)
        details = watcher.analyze(**kwargs)
    return details.to_dict("records")


def ours(kind: str, weights: np.ndarray, **kwargs: Any) -> list[dict[str, Any]]:
    layer = LayerMatrix(name="0", index=0, kind=kind, shape=weights.shape, load=lambda: weights)  # type: ignore[arg-type]
    return analyze_layer(layer, weights, AnalysisOptions.from_kwargs(**kwargs))


def assert_close(mine: dict[str, Any], ref: dict[str, Any], columns: tuple[str, ...], rtol: float = RTOL) -> None:
    for column in columns:
        got, want = float(mine[column]), float(ref[column])
        assert math.isclose(got, want, rel_tol=rtol, abs_tol=1e-12), f"{column}: ours {got!r} vs reference {want!r}"


CASES = [
    ("dense", (300, 120), 0),
    ("dense", (96, 256), 1),
    ("dense", (512, 512), 2),
    ("conv2d", (64, 32, 3, 3), 3),
    ("conv2d", (48, 48, 5, 5), 4),
    ("conv2d", (32, 64, 1, 1), 5),
]


@pytest.mark.parametrize(("kind", "shape", "seed"), CASES)
def test_default_options_match_the_reference(kind: str, shape: tuple[int, ...], seed: int) -> None:
    weights = heavy_tailed(shape, seed)
    (ref,) = reference_rows(torch_layer(kind, weights))
    (mine,) = ours(kind, weights)
    assert mine["status"] == ref["status"] == "success"
    assert_close(mine, ref, FIT_COLUMNS + NORM_COLUMNS + SHAPE_COLUMNS)
    assert_close(mine, ref, ("entropy", "sv_max", "sv_min", "Q"), rtol=1e-6)
    assert mine["warning"] == ref["warning"]


@pytest.mark.parametrize(("kind", "shape", "seed"), [c for c in CASES if c[0] == "conv2d"])
def test_unpooled_conv_slices_match_the_reference(kind: str, shape: tuple[int, ...], seed: int) -> None:
    weights = heavy_tailed(shape, seed)
    refs = reference_rows(torch_layer(kind, weights), pool=False)
    mine = ours(kind, weights, pool=False)
    assert len(mine) == len(refs)
    for row, ref in zip(mine, refs):
        assert_close(row, ref, FIT_COLUMNS + NORM_COLUMNS + ("N", "M", "num_evals"))


@pytest.mark.parametrize(("kind", "shape", "seed"), CASES)
def test_clip_xmax_matches_the_reference(kind: str, shape: tuple[int, ...], seed: int) -> None:
    weights = heavy_tailed(shape, seed, dof=1.8)
    (ref,) = reference_rows(torch_layer(kind, weights), fix_fingers="clip_xmax")
    (mine,) = ours(kind, weights, fix_fingers="clip_xmax")
    assert_close(mine, ref, (*FIT_COLUMNS, "num_fingers", "raw_alpha"))


@pytest.mark.parametrize("xmax", [-3, 5])
@pytest.mark.parametrize(("kind", "shape", "seed"), CASES[:4])
def test_integer_xmax_drops_the_largest_eigenvalues_as_the_reference(kind: str, shape: tuple[int, ...], seed: int, xmax: int) -> None:
    weights = heavy_tailed(shape, seed)
    (ref,) = reference_rows(torch_layer(kind, weights), xmax=xmax)
    (mine,) = ours(kind, weights, xmax=xmax)
    assert mine["status"] == ref["status"] == "success"
    assert_close(mine, ref, FIT_COLUMNS + NORM_COLUMNS)
    assert mine["xmax_clipped"] == abs(xmax)


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_clip_xmax_finds_the_same_fingers(seed: int) -> None:
    """Moderate tails plus a rank-one spike: the reference clips 1, 3 and 7 fingers here."""
    rng = np.random.default_rng(seed)
    weights = heavy_tailed((400, 200), seed, dof=4.0)
    weights += (0.01 * (1 + seed % 3) * np.outer(rng.normal(size=400), rng.normal(size=200))).astype(np.float32)
    (ref,) = reference_rows(torch_layer("dense", weights), fix_fingers="clip_xmax")
    (mine,) = ours("dense", weights, fix_fingers="clip_xmax")
    assert ref["num_fingers"] > 0
    assert_close(mine, ref, (*FIT_COLUMNS, "num_fingers", "raw_alpha"))


@pytest.mark.parametrize(("kind", "shape", "seed"), CASES)
def test_mp_fit_matches_the_reference(kind: str, shape: tuple[int, ...], seed: int) -> None:
    weights = heavy_tailed(shape, seed)
    (ref,) = reference_rows(torch_layer(kind, weights), mp_fit=True)
    (mine,) = ours(kind, weights, mp_fit=True)
    assert_close(mine, ref, ("sigma_mp", "num_spikes", "mp_softrank", "bulk_max", "bulk_min", "W_scale"))


@pytest.mark.parametrize(("kind", "shape", "seed"), CASES)
def test_detx_matches_the_reference(kind: str, shape: tuple[int, ...], seed: int) -> None:
    weights = heavy_tailed(shape, seed)
    (ref,) = reference_rows(torch_layer(kind, weights), detX=True)
    (mine,) = ours(kind, weights, detX=True)
    assert_close(mine, ref, ("detX_num", "ERG_gap", "detX_val", "detX_val_unrescaled"))


def test_vector_metrics_match_the_reference_functions() -> None:
    RMT_Util = pytest.importorskip("weightwatcher.RMT_Util")
    W = heavy_tailed((200, 80), 7).astype(np.float64)
    V = np.linalg.eigh(W.T @ W)[1]
    metrics = vector_metrics(V)
    for k in range(V.shape[1]):
        assert math.isclose(metrics["loc_ratio"][k], RMT_Util.localization_ratio(V[:, k]), rel_tol=1e-12)
        assert math.isclose(metrics["part_ratio"][k], RMT_Util.participation_ratio(V[:, k]), rel_tol=1e-12)
        assert math.isclose(discrete_entropy(V[:, k]), RMT_Util.discrete_entropy(V[:, k]), rel_tol=1e-12)


@pytest.mark.parametrize(("kind", "shape", "seed"), CASES[:4])
def test_vectors_match_the_reference(kind: str, shape: tuple[int, ...], seed: int) -> None:
    """Close, not equal: the reference splits bulk/tail by value, so rounding can move xmin's own vector."""
    weights = heavy_tailed(shape, seed)
    (ref,) = reference_rows(torch_layer(kind, weights), vectors=True)
    (mine,) = ours(kind, weights, vectors=True)
    columns = tuple(f"{p}_mean_{m}" for p in ("bulk", "tail") for m in ("loc_ratio", "part_ratio", "vec_entropy"))
    assert_close(mine, ref, columns, rtol=0.05)


@pytest.mark.parametrize(("kind", "shape", "seed"), CASES)
def test_randomize_columns_are_comparable(kind: str, shape: tuple[int, ...], seed: int) -> None:
    """Shuffles differ (different generators), so compare the random-baseline statistics loosely."""
    weights = heavy_tailed(shape, seed, dof=5.0)
    np.random.seed(seed)  # the reference shuffles with numpy's global generator
    (ref,) = reference_rows(torch_layer(kind, weights), randomize=True)
    (mine,) = ours(kind, weights, randomize=True)
    assert_close(mine, ref, ("rand_W_scale",))
    for column in ("max_rand_eval", "rand_sigma_mp", "ww_softrank"):
        assert math.isclose(mine[column], ref[column], rel_tol=0.25), column


def test_small_n_path_matches_the_reference_fit() -> None:
    """Fewer than 20 eigenvalues: the reference's bias-corrected small-n fit."""
    WWFit = pytest.importorskip("weightwatcher.WW_powerlaw").WWFit
    for seed in range(20):
        data = np.abs(np.random.default_rng(seed).standard_t(2, size=8 + seed % 12)) ** 2 + 1e-3
        with contextlib.redirect_stdout(io.StringIO()):
            ref = WWFit(data)
        fit = fit_power_law(data)
        for name in ("alpha", "xmin", "D"):
            assert math.isclose(getattr(fit, name), float(getattr(ref, name)), rel_tol=1e-9), (seed, name)


def test_kernel_density_matches_sklearn() -> None:
    sklearn_neighbors = pytest.importorskip("sklearn.neighbors")
    samples = np.random.default_rng(0).gamma(2.0, size=3000)
    grid = np.linspace(0, samples.max() + 0.5, 1000)
    kde = sklearn_neighbors.KernelDensity(kernel="linear", bandwidth=0.1).fit(samples.reshape(-1, 1))
    np.testing.assert_allclose(linear_kde(samples, grid, 0.1), np.exp(kde.score_samples(grid[:, None])), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("shape", "expected_reference"), [((1, 8, 5, 5), "kernel axes as channels"), ((4, 6, 2, 2), "N and M swapped")])
def test_conv_orientation_is_one_rule_here_where_the_reference_guesses(shape: tuple[int, ...], expected_reference: str) -> None:
    """docs/differences.md 'Conv orientation': N = max(out, in), M = min(out, in), rf = kernel positions, always."""
    weights = heavy_tailed(shape, seed=5)
    [row] = ours("conv2d", weights, min_evals=0)
    assert (row["N"], row["M"], row["rf"]) == (max(shape[:2]), min(shape[:2]), shape[2] * shape[3])
    [ref] = reference_rows(torch_layer("conv2d", weights), min_evals=0)
    assert (ref["N"], ref["M"], ref["rf"]) != (row["N"], row["M"], row["rf"]), expected_reference
