"""weightwatcher 0.7.7's own public-API tests, ported to small random-weight torch models and run against both libraries.

Written from what the reference's published tests (``tests/test.py`` of CalculatedContent/WeightWatcher)
check, re-expressed on VGG-, ResNet-, BERT- and LoRA-shaped models built here, so a script written for
weightwatcher runs unchanged on ``ww_core.WeightWatcher``. Every test runs once per library (``lib``);
where ww differs on purpose, the test checks the row of docs/differences.md that says how.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")
weightwatcher = pytest.importorskip("weightwatcher")
pytest.importorskip("ww_torch")
pytest.importorskip("matplotlib")

from torch import nn  # noqa: E402

import ww_core  # noqa: E402

logging.getLogger("weightwatcher").setLevel(logging.ERROR)
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::FutureWarning", "ignore:Passing a dict to DataFrame.from_records", "ignore::RuntimeWarning"
)

LIBS = ("weightwatcher", "ww")
RAND_COLUMNS = ("max_rand_eval", "rand_W_scale", "rand_bulk_max", "rand_bulk_min", "rand_distance", "rand_mp_softrank", "rand_num_spikes")
#: Columns the reference's tests expect in analyze()'s DataFrame.
ANALYZE_COLUMNS = (
    "layer_id name D M N alpha alpha_weighted has_esd lambda_max layer_type log_alpha_norm log_norm log_spectral_norm norm "
    "num_evals rank_loss rf sigma spectral_norm stable_rank sv_max sv_min xmax xmin num_pl_spikes weak_rank_loss"
).split()
#: The small VGG's layer ids, as both libraries number a torch module (its named_modules() positions).
CONV_IDS, DENSE_IDS = [2, 5, 8, 10], [15, 18, 21]


class VGG(nn.Module):
    """VGG-shaped: four 3x3 convs in ``features``, three linears in ``classifier``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        conv = [(3, 16), (16, 32), (32, 32), (32, 64)]
        self.features = nn.Sequential(
            nn.Conv2d(*conv[0], 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(*conv[1], 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(*conv[2], 3, padding=1), nn.ReLU(),
            nn.Conv2d(*conv[3], 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(
            nn.Linear(256, 128), nn.ReLU(), nn.Dropout(), nn.Linear(128, 96), nn.ReLU(), nn.Dropout(), nn.Linear(96, 10)
        )


class Block(nn.Module):
    """A ResNet basic block, with a 1x1 downsampling conv when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if stride != 1 else None


class ResNet(nn.Module):
    """ResNet-shaped: a 7x7 stem, two basic blocks (one downsampling), a linear head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16)
        self.layer1, self.layer2 = nn.Sequential(Block(16, 16, 1)), nn.Sequential(Block(16, 32, 2))
        self.fc = nn.Linear(32, 10)


class Attention(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.query, self.key, self.value, self.dense = (nn.Linear(d, d) for _ in range(4))
        self.LayerNorm = nn.LayerNorm(d)


class Encoder(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.attention, self.intermediate, self.output = Attention(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)


class Bert(nn.Module):
    """BERT-shaped: word and position embeddings, two encoder layers, a pooler."""

    def __init__(self, d: int = 32) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.word_embeddings, self.position_embeddings = nn.Embedding(100, d), nn.Embedding(40, d)
        self.layer = nn.ModuleList([Encoder(d) for _ in range(2)])
        self.pooler = nn.Linear(d, d)


class LoraLinear(nn.Module):
    """A PEFT-style LoRA wrapper: ``base_layer``, ``lora_A.default``, ``lora_B.default``."""

    def __init__(self, d: int, rank: int) -> None:
        super().__init__()
        self.base_layer = nn.Linear(d, d)
        self.lora_A = nn.ModuleDict({"default": nn.Linear(d, rank, bias=False)})
        self.lora_B = nn.ModuleDict({"default": nn.Linear(rank, d, bias=False)})


class Lora(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.query, self.value, self.dense = LoraLinear(48, 8), LoraLinear(48, 8), nn.Linear(48, 48)


def with_trap(model: VGG) -> VGG:
    """``classifier.3`` (id 18) gets a block of large weights: a correlation trap (a spike that shuffling keeps) SVDSharpness removes."""
    with torch.no_grad():
        model.classifier[3].weight[:4, :4] += 2.0
    return model


@pytest.fixture(params=LIBS)
def lib(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def vgg() -> VGG:
    return VGG()


def watcher_of(lib: str) -> Callable[..., Any]:
    """The library's WeightWatcher class, made as a script makes it."""
    cls = weightwatcher.WeightWatcher if lib == "weightwatcher" else ww_core.WeightWatcher
    return lambda model=None, **kw: cls(model=model, log_level=logging.WARNING, **kw)


def test_describe_has_the_shape_columns(lib: str, vgg: VGG) -> None:
    details = watcher_of(lib)(vgg).describe()
    assert {"layer_id", "name", "M", "N", "Q", "longname", "layer_type", "num_evals", "rf"} <= set(details.columns)
    assert len(details) == 7
    assert details.layer_id.tolist() == CONV_IDS + DENSE_IDS
    assert np.allclose(details.Q, details.N / details.M)
    assert (details.N >= details.M).all()
    assert (details.M * details.rf == details.num_evals).all()
    assert details.rf.tolist()[:4] == [9, 9, 9, 9]


def test_a_new_watcher_describes_the_model_it_is_given(lib: str, vgg: VGG) -> None:
    details = watcher_of(lib)().describe(model=vgg)
    assert len(details) == 7 and details.longname.tolist()[0] == "features.0"


def test_columns_lead_with_id_and_name_then_alphabetical(lib: str, vgg: VGG) -> None:
    watcher = watcher_of(lib)(vgg)
    for frame in (watcher.describe(), watcher.analyze(layers=[15])):
        columns = list(frame.columns)
        assert columns[:2] == ["layer_id", "name"] and columns[2:] == sorted(columns[2:]), columns


def test_analyze_has_the_reference_columns(lib: str, vgg: VGG) -> None:
    details = watcher_of(lib)(vgg).analyze(layers=DENSE_IDS)
    assert set(ANALYZE_COLUMNS) <= set(details.columns), sorted(set(ANALYZE_COLUMNS) - set(details.columns))
    assert details.has_esd.all()


def test_mp_fit_columns(lib: str, vgg: VGG) -> None:
    details = watcher_of(lib)(vgg).analyze(layers=[21], mp_fit=True)
    assert {"num_spikes", "sigma_mp", "mp_softrank"} <= set(details.columns)


@pytest.mark.parametrize(("kind", "count"), [("dense", 3), ("conv2d", 4)])
def test_layer_type_filter_returns_only_that_type(lib: str, vgg: VGG, kind: str, count: int) -> None:
    details = watcher_of(lib)(vgg).describe(layers=[kind])
    assert len(details) == count
    assert (details.layer_type == kind).all() and (details.N > 0).all()


def test_id_filters_keep_or_drop_those_layers(lib: str, vgg: VGG) -> None:
    watcher = watcher_of(lib)(vgg)
    assert watcher.describe(layers=DENSE_IDS).layer_id.tolist() == DENSE_IDS
    assert watcher.describe(layers=[-i for i in DENSE_IDS]).layer_id.tolist() == CONV_IDS
    assert len(watcher.describe(layers=[])) == 7


def test_numpy_integers_select_layers(lib: str, vgg: VGG) -> None:
    watcher = watcher_of(lib)(vgg)
    assert watcher.analyze(layers=[np.int64(21)]).layer_id.tolist() == [21]
    assert watcher.describe(layers=list(np.array([15, 18]))).layer_id.tolist() == [15, 18]


def test_unpooled_describe_has_a_row_per_conv_slice(lib: str, vgg: VGG) -> None:
    """pool=False (ww2x=True): one row per kernel position; the size limits apply to each slice's M (features.0 has M=3)."""
    watcher = watcher_of(lib)(vgg)
    for details in (watcher.describe(pool=False), watcher.describe(ww2x=True)):
        conv = details[details.layer_type == "conv2d"]
        assert len(conv) == 3 * 9 and len(details) == 3 * 9 + 3
        assert conv.slice_id.tolist() == list(range(9)) * 3
        assert (conv.num_evals == conv.M).all()


def test_unpooled_analysis_has_a_row_per_conv_slice(lib: str, vgg: VGG) -> None:
    details = watcher_of(lib)(vgg).analyze(layers=[5], pool=False)
    assert details.layer_id.tolist() == [5] * 9 and details.slice_id.tolist() == list(range(9))
    assert (details.M == 16).all() and (details.num_evals == 16).all()


def test_size_limits(lib: str, vgg: VGG) -> None:
    watcher = watcher_of(lib)(vgg)
    assert (watcher.describe(min_evals=100).num_evals >= 100).all()
    assert len(watcher.describe(min_evals=100)) == 4  # 27, 96 and 10 eigenvalues are fewer
    assert (watcher.describe(max_evals=100).num_evals <= 100).all()


def test_dimensions_of_a_conv(lib: str, vgg: VGG) -> None:
    row = watcher_of(lib)(vgg).describe(layers=[2]).iloc[0]
    assert (row.N, row.M, row.rf, row.num_evals) == (16, 3, 9, 27)


def test_start_ids_shift_every_id(lib: str, vgg: VGG) -> None:
    watcher = watcher_of(lib)(vgg)
    assert watcher.describe(start_ids=1).layer_id.tolist() == [i + 1 for i in CONV_IDS + DENSE_IDS]
    details = watcher.analyze(layers=[16], start_ids=1)
    assert details.layer_id.tolist() == [16] and details.longname.tolist() == ["classifier.0"]


def test_the_watcher_keeps_the_last_model(lib: str, vgg: VGG) -> None:
    watcher = watcher_of(lib)()
    details = watcher.analyze(model=vgg, layers=[21], randomize=False)
    assert not set(RAND_COLUMNS) & set(details.columns)
    details = watcher.analyze(layers=[21], randomize=True)
    assert set(RAND_COLUMNS) <= set(details.columns)
    assert len(watcher.get_ESD(layer=21)) == 10


def test_get_details_and_summary(lib: str, vgg: VGG) -> None:
    watcher = watcher_of(lib)(vgg)
    details = watcher.analyze(layers=[5])
    assert len(watcher.get_details()) == len(details) == 1
    assert watcher.get_summary(details) == watcher.get_summary()
    pairs = watcher.analyze(layers=DENSE_IDS, intra=True, sparsify=False)
    watcher.describe()  # a later describe leaves the last analysis's details as they were
    assert watcher.get_details().equals(pairs) and watcher.get_details().name.tolist() == ["15 X 18 ", "18 X 21 "]


def test_get_esd(lib: str, vgg: VGG) -> None:
    watcher = watcher_of(lib)(vgg)
    assert len(watcher.get_ESD(layer=5)) == 16 * 9
    assert len(watcher.get_ESD(model=vgg, layer=5, params=None)) == 16 * 9
    assert np.array_equal(watcher.get_ESD(layer=15), watcher_of(lib)().get_ESD(model=vgg, layer=15))


def test_get_esd_takes_the_reference_params(lib: str, vgg: VGG) -> None:
    """``params=`` is the reference's parameter dict (DEFAULT_PARAMS, changed): ``inverse`` inverts the ESD, ``pool`` changes nothing."""
    params = dict(weightwatcher.DEFAULT_PARAMS)
    watcher = watcher_of(lib)(vgg)
    plain = watcher.get_ESD(layer=15, params=params)
    assert np.allclose(watcher.get_ESD(layer=15, params={**params, "inverse": True}), np.sort(1 / plain))
    assert len(watcher.get_ESD(layer=5, params={**params, "pool": False})) == 16 * 9


@pytest.mark.parametrize(("layer", "size"), [(21, 5 * 10), (15, 128), (5, 16 * 9)])
def test_randomized_esd(lib: str, vgg: VGG, layer: int, size: int) -> None:
    """get_ESD(random=True): the shuffled layer's eigenvalues (5 shuffles below 100 components); shuffling keeps their sum, ‖W‖²."""
    watcher = watcher_of(lib)(vgg)
    shuffled, plain = watcher.get_ESD(layer=layer, random=True), watcher.get_ESD(layer=layer)
    assert len(shuffled) == size and np.isclose(shuffled.sum(), plain.sum() * size / len(plain), rtol=1e-6)
    assert not np.allclose(np.sort(shuffled)[-len(plain) :], plain)  # a random-weight layer's shuffle: another spectrum, same sum


def test_get_esd_is_the_reference_s(vgg: VGG) -> None:
    for layer in (5, 15):
        ours, ref = (watcher_of(lib)(vgg).get_ESD(layer=layer) for lib in ("ww", "weightwatcher"))
        assert np.allclose(ours, ref, rtol=1e-6), layer


def test_svd_smoothing_keeps_the_requested_rank(lib: str) -> None:
    model = VGG()
    watcher = watcher_of(lib)(model)
    watcher.SVDSmoothing(layers=[15], method="svd", percent=0.2)
    esd = watcher.get_ESD(layer=15)
    assert np.count_nonzero(esd > 1e-10) == int(0.2 * 128)
    kept = np.linalg.matrix_rank(model.classifier[0].weight.detach().numpy().astype(np.float64), tol=1e-4)
    assert kept == int(0.2 * 128), "the model given to the watcher is the one smoothed"


def test_svd_sharpness_changes_the_model_it_was_given(lib: str) -> None:
    model = with_trap(VGG())
    watcher = watcher_of(lib)(model)
    before_esd = watcher.get_ESD(layer=18)
    before_alpha = watcher.analyze(layers=[18]).alpha.iloc[0]
    before_weight = model.classifier[3].weight.detach().clone()
    watcher.SVDSharpness(layers=[18])
    assert not torch.equal(model.classifier[3].weight.detach(), before_weight)
    assert before_esd.max() > watcher.get_ESD(layer=18).max() * 2
    assert watcher.analyze(layers=[18]).alpha.iloc[0] != before_alpha


def test_distances_between_models(lib: str, vgg: VGG) -> None:
    watcher = watcher_of(lib)(vgg)
    avg_dw, avg_db, details = watcher.distances(vgg, VGG())
    assert (avg_dw, avg_db) == (0.0, 0.0)
    assert len(details) == 7
    other = VGG(seed=9)
    for method in ("euclidean", "cka"):
        avg_dw, avg_db, details = watcher.distances(vgg, other, method=method)
        assert avg_dw > 0 and avg_db == 0.0  # the reference reads no biases for these methods
    avg_dw, _, details = watcher.distances(vgg, other, layers=[15], method="euclidean")
    assert details.index.tolist() == [15] and avg_dw > 0


def test_raw_distances_of_biases(lib: str, vgg: VGG) -> None:
    """``method='raw'``: the reference adds ||b1 - b2|| per layer; ww reads no biases, says so and reports 0.0 (differences.md)."""
    other = VGG(seed=9)
    if lib == "weightwatcher":
        _, avg_db, details = watcher_of(lib)(vgg).distances(vgg, other, method="raw")
        assert avg_db > 0 and (details.delta_b > 0).any()
        return
    with pytest.warns(UserWarning, match="biases"):
        _, avg_db, details = watcher_of(lib)(vgg).distances(vgg, other, method="raw")
    assert avg_db == 0.0 and (details.delta_b == 0.0).all()


@pytest.mark.parametrize(("make", "count"), [(VGG, 5), (ResNet, 6), (Bert, 14)])
def test_intra_without_sparsify_is_the_reference_s_numbers(make: Callable[[], nn.Module], count: int) -> None:
    """``intra=True, sparsify=False`` is deterministic: ww gives the reference's rows (names, ids, alphas), convs and embeddings too."""
    columns = ["layer_id", "name", "longname", "layer_type", "N", "M", "rf", "num_evals"]
    model = make()
    ref, ours = (watcher_of(lib)(model).analyze(intra=True, sparsify=False) for lib in ("weightwatcher", "ww"))
    assert ours[columns].astype(str).values.tolist() == ref[columns].astype(str).values.tolist() and len(ours) == count
    assert ours.Xflag.all() and ours.name.tolist()[0].count(" X ") == 1
    for column in ("alpha", "lambda_max", "sv_max", "log_norm", "D"):
        assert np.allclose(ours[column], ref[column], rtol=1e-4), column


def test_intra_describe_is_refused(lib: str, vgg: VGG) -> None:
    """The reference's describe() rejects intra=True (its describe's parameters hold randomize and vectors); so does ww's."""
    with pytest.raises(Exception, match=r"(?i)intra|params not valid"):
        watcher_of(lib)(vgg).describe(intra=True)


def test_intra_and_stacked_refuse_what_needs_the_matrix(vgg: VGG) -> None:
    """Their rows are fitted from eigenvalues alone (differences.md): randomize, mp_fit, vectors and conv2d_fft are refused
    (the reference refuses intra with randomize, vectors or conv2d_fft too), as is base_model."""
    watcher = watcher_of("ww")(vgg)
    for option in ({"intra": True}, {"stacked": True}):
        for needs in ("randomize", "mp_fit", "vectors", "conv2d_fft"):
            with pytest.raises(ValueError, match=needs):
                watcher.analyze(**option, **{needs: True})
        with pytest.raises(ValueError, match="base_model"):
            watcher_of("ww")(vgg).analyze(**option, base_model=VGG(seed=4))


def test_intra_sparsify_is_seeded() -> None:
    """The reference draws each layer pair's 0/1 mask unseeded; ww draws it from ``seed``."""
    model = VGG()
    first, again, other = (watcher_of("ww")(model).analyze(layers=DENSE_IDS, intra=True, seed=s) for s in (0, 0, 1))
    assert len(first) == 2 and first.alpha.tolist() == again.alpha.tolist() != other.alpha.tolist()
    reference = watcher_of("weightwatcher")(model).analyze(layers=DENSE_IDS, intra=True)
    assert reference.layer_id.tolist() == first.layer_id.tolist() == [18, 21]


def test_stacked_is_one_layer(lib: str, vgg: VGG) -> None:
    details = watcher_of(lib)(vgg).describe(stacked=True)
    assert len(details) == 1
    row = details.iloc[0]
    assert (row.layer_id, row["name"], row.layer_type, row.rf, row.N, row.M) == (0, "Stacked Layer", "stacked", 1, 378, 288)


@pytest.mark.parametrize("make", [VGG, ResNet, Bert])
def test_stacked_analysis_matches(make: Callable[[], nn.Module]) -> None:
    model = make()
    ref, ours = (watcher_of(lib)(model).analyze(stacked=True).iloc[0] for lib in ("weightwatcher", "ww"))
    assert (ours.N, ours.M, ours.num_evals) == (ref.N, ref.M, ref.num_evals)
    assert np.isclose(ours.alpha, ref.alpha, rtol=1e-4) and np.isclose(ours.lambda_max, ref.lambda_max, rtol=1e-6)


def test_base_model_in_constructor_describe_and_analyze(lib: str) -> None:
    model, base = VGG(), VGG(seed=4)
    assert watcher_of(lib)(model, base_model=base).base_model is base
    watcher = watcher_of(lib)()
    assert watcher.base_model is None
    assert len(watcher.describe(model=model, base_model=base)) == 7
    assert watcher.base_model is base
    watcher = watcher_of(lib)()
    details = watcher.analyze(model=model, base_model=base, layers=[15])
    assert watcher.base_model is base and details.layer_id.tolist() == [15]


def test_base_model_analysis_matches() -> None:
    model, base = VGG(), VGG(seed=4)
    alphas = [watcher_of(lib)(model, base_model=base).analyze(layers=DENSE_IDS).alpha.to_numpy() for lib in LIBS]
    assert np.allclose(*alphas, rtol=1e-4)


@pytest.mark.parametrize("peft", [True, "peft_only"])
def test_peft_only_describes_the_lora_products(lib: str, peft: Any) -> None:
    details = watcher_of(lib)().describe(model=Lora(), peft=peft)
    assert details.longname.tolist() == ["query.lora_BA.default", "value.lora_BA.default"]
    assert details.layer_id.tolist() == [4, 10] and (details.N == 48).all() and (details.M == 48).all()


def test_peft_with_base_lists_the_factors_where_the_reference_lists_w_plus_ba(lib: str) -> None:
    """porting.md: with 'with_base' the reference replaces each lora_B by W + B·A and drops lora_A; ww keeps every layer."""
    longnames = watcher_of(lib)().describe(model=Lora(), peft="with_base").longname.tolist()
    assert "query.lora_BA.default" in longnames and "dense" in longnames
    if lib == "weightwatcher":
        assert "query.lora_W_plus_AB.default" in longnames and "query.lora_A.default" not in longnames
    else:
        assert "query.lora_A.default" in longnames and not any("W_plus_AB" in name for name in longnames)


def test_plots_use_the_reference_file_names(lib: str, vgg: VGG, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        watcher_of(lib)(vgg).analyze(layers=[21], plot=True, savefig=str(tmp_path))
    names = {path.name for path in tmp_path.iterdir()}
    assert {f"ww.layer21.esd{suffix}.png" for suffix in ("", "2", "3", "4", "5")} <= names, sorted(names)


def test_resnet_layers(lib: str) -> None:
    details = watcher_of(lib)(ResNet()).describe()
    assert details.layer_id.tolist() == [1, 5, 7, 11, 13, 16, 18]
    assert details.rf.tolist() == [49, 9, 9, 9, 9, 1, 1]
    assert (details.N >= details.M).all() and (details.M * details.rf == details.num_evals).all()


def test_bert_layers_and_alphas() -> None:
    frames = [watcher_of(lib)(Bert()).analyze() for lib in LIBS]
    ref, ours = frames
    assert ours.layer_id.tolist() == ref.layer_id.tolist() and len(ours) == 15
    assert ours.longname.tolist() == ref.longname.tolist()
    assert (ours.layer_type.tolist()[:2], ref.layer_type.tolist()[:2]) == (["embedding"] * 2, ["embedding"] * 2)
    assert np.allclose(ours.alpha, ref.alpha, rtol=1e-4)
