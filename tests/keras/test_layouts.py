"""Each Keras layer type reaches core in the canonical layout, with the documented name and kind."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import ww_keras
from ww_core import testing

from .keras_models import build


def layers_of(source: object) -> dict[str, object]:
    return {layer.name: layer for layer in testing.check_layers(ww_keras.ww_layers(source, {}))}


def test_zoo_names_kinds_shapes_in_architecture_order(zoo: keras.Model) -> None:
    described = [(layer.name, layer.kind, layer.shape) for layer in testing.check_layers(ww_keras.ww_layers(zoo, {}))]
    assert described == [
        ("emb", "embedding", (40, 16)),
        ("conv1d", "conv1d", (20, 16, 3)),
        ("mha.query", "dense", (12, 20)),
        ("mha.key", "dense", (12, 20)),
        ("mha.value", "dense", (12, 20)),
        ("mha.attention_output", "dense", (20, 12)),
        ("lstm.ih_l0", "dense", (40, 20)),
        ("lstm.hh_l0", "dense", (40, 10)),
        ("bi.ih_l0", "dense", (27, 10)),
        ("bi.hh_l0", "dense", (27, 9)),
        ("bi.ih_l0_reverse", "dense", (27, 10)),
        ("bi.hh_l0_reverse", "dense", (27, 9)),
        ("einsum", "dense", (14, 18)),
        ("conv2d", "conv2d", (6, 1, 3, 2)),
        ("depthwise", "conv2d", (12, 1, 2, 2)),
        ("deconv2d", "conv2d", (5, 12, 2, 3)),
        ("head.fc1", "dense", (11, 5)),
        ("head.fc2", "dense", (3, 11)),
    ]


def test_nested_names_use_dots_and_longname_keeps_the_keras_path(zoo: keras.Model) -> None:
    """Canonical names join nested layers by dots like every other route; ``framework_path`` keeps Keras' ``/``."""
    paths = {layer.name: layer.framework_path for layer in ww_keras.ww_layers(zoo, {})}
    assert paths["head.fc1"] == "head/fc1"
    assert paths["lstm.hh_l0"] == "lstm/lstm_cell/recurrent_kernel"
    assert paths["emb"] == "emb"


def test_dense_is_out_by_in() -> None:
    dense = keras.layers.Dense(7)
    model = build(dense, input_shape=(4,))
    (layer,) = layers_of(model).values()
    np.testing.assert_array_equal(layer.load(), dense.kernel.numpy().T)
    x = np.arange(4, dtype="float32")
    np.testing.assert_allclose(layer.load() @ x + dense.bias.numpy(), model(x[None]).numpy()[0], rtol=1e-5)


@pytest.mark.parametrize(
    ("conv", "input_shape"),
    [(keras.layers.Conv1D(5, 3), (9, 4)), (keras.layers.Conv2D(5, (3, 2)), (9, 9, 4)), (keras.layers.Conv3D(5, (2, 3, 2)), (6, 6, 6, 4))],
)
def test_conv_is_out_in_kernel(conv: keras.Layer, input_shape: tuple[int, ...]) -> None:
    (layer,) = layers_of(build(conv, input_shape=input_shape)).values()
    kernel = conv.kernel.numpy()  # (*k, in, out)
    loaded = layer.load()
    assert layer.kind == f"conv{kernel.ndim - 2}d"
    assert loaded.shape == (5, 4, *kernel.shape[:-2])
    index = (1,) * (kernel.ndim - 2)
    np.testing.assert_array_equal(loaded[(3, 2, *index)], kernel[(*index, 2, 3)])


@pytest.mark.parametrize(
    ("deconv", "input_shape"),
    [
        (keras.layers.Conv1DTranspose(5, 3), (9, 4)),
        (keras.layers.Conv2DTranspose(5, (3, 2)), (9, 9, 4)),
        (keras.layers.Conv3DTranspose(5, 2), (5, 5, 5, 4)),
    ],
)
def test_conv_transpose_kernel_out_in_is_reordered(deconv: keras.Layer, input_shape: tuple[int, ...]) -> None:
    (layer,) = layers_of(build(deconv, input_shape=input_shape)).values()
    kernel = deconv.kernel.numpy()  # (*k, out, in)
    assert kernel.shape[-2:] == (5, 4)
    loaded = layer.load()
    assert loaded.shape == (5, 4, *kernel.shape[:-2])
    index = (1,) * (kernel.ndim - 2)
    np.testing.assert_array_equal(loaded[(3, 2, *index)], kernel[(*index, 3, 2)])


def test_depthwise_maps_to_grouped_conv_layout() -> None:
    depthwise = keras.layers.DepthwiseConv2D((3, 2), depth_multiplier=3)
    (layer,) = layers_of(build(depthwise, input_shape=(8, 8, 4))).values()
    kernel = depthwise.kernel.numpy()  # (kh, kw, in=4, mult=3)
    loaded = layer.load()
    assert loaded.shape == (12, 1, 3, 2)
    for channel in range(4):
        for m in range(3):
            np.testing.assert_array_equal(loaded[channel * 3 + m, 0], kernel[:, :, channel, m])


def test_separable_conv_gives_depthwise_and_pointwise() -> None:
    separable = keras.layers.SeparableConv2D(7, 3, depth_multiplier=2)
    found = layers_of(build(separable, input_shape=(8, 8, 4)))
    shapes = {name.rsplit(".", 1)[-1]: layer.shape for name, layer in found.items()}
    assert shapes == {"depthwise_kernel": (8, 1, 3, 3), "pointwise_kernel": (7, 8, 1, 1)}


def test_embedding_is_vocab_by_dim() -> None:
    embedding = keras.layers.Embedding(30, 8)
    (layer,) = layers_of(build(embedding, input_shape=(5,), dtype="int32")).values()
    assert layer.kind == "embedding"
    np.testing.assert_array_equal(layer.load(), embedding.embeddings.numpy())


def test_attention_projections_flatten_heads() -> None:
    query = keras.Input((6, 10))
    mha = keras.layers.MultiHeadAttention(num_heads=3, key_dim=4, name="attn")
    model = keras.Model(query, mha(query, query))
    found = layers_of(model)
    q_kernel = mha.query_dense.kernel.numpy()  # (in=10, heads=3, dim=4)
    out_kernel = mha.output_dense.kernel.numpy()  # (heads=3, dim=4, out=10)
    np.testing.assert_array_equal(found["attn.query"].load(), q_kernel.reshape(10, 12).T)
    np.testing.assert_array_equal(found["attn.attention_output"].load(), out_kernel.reshape(12, 10).T)


def test_einsum_dense_uses_its_equation() -> None:
    inputs = keras.Input((5, 6))
    outputs = keras.layers.EinsumDense("abc,dce->abde", output_shape=(5, 3, 4), name="proj")(inputs)  # kernel (d=3, c=6, e=4)
    found = layers_of(keras.Model(inputs, outputs))
    kernel = found["proj"]
    raw = keras.Model(inputs, outputs).get_layer("proj").kernel.numpy()
    np.testing.assert_array_equal(kernel.load(), raw.transpose(0, 2, 1).reshape(12, 6))


def torch_gate_order(kernel: np.ndarray) -> np.ndarray:
    """A Keras GRU kernel (in, 3·hidden), gates z, r, h, as torch's (3·hidden, in), gates r, z, n."""
    z, r, h = np.split(kernel.T, 3)
    return np.concatenate([r, z, h])


def test_recurrent_kernels_are_separate_rows_in_torch_gate_order() -> None:
    gru = keras.layers.GRU(5, name="gru")
    found = layers_of(build(gru, input_shape=(7, 3)))
    np.testing.assert_array_equal(found["gru.ih_l0"].load(), torch_gate_order(gru.cell.kernel.numpy()))
    np.testing.assert_array_equal(found["gru.hh_l0"].load(), torch_gate_order(gru.cell.recurrent_kernel.numpy()))


def test_gru_gate_order_is_the_same_from_files(tmp_path: Path) -> None:
    model = build(keras.layers.GRU(5, name="gru"), input_shape=(7, 3))
    live = {name: layer.load() for name, layer in layers_of(model).items()}  # type: ignore[attr-defined]
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    for path in (tmp_path / "m.keras", tmp_path / "m.h5"):
        stored = {name: layer.load() for name, layer in layers_of(str(path)).items()}  # type: ignore[attr-defined]
        assert stored.keys() == live.keys()
        for name in live:
            np.testing.assert_array_equal(stored[name], live[name], err_msg=f"{path.name}: {name}")


def test_a_lone_layer_is_a_source() -> None:
    dense = keras.layers.Dense(6, name="solo")
    dense.build((None, 9))
    (layer,) = layers_of(dense).values()
    assert layer.name == "solo" and layer.shape == (6, 9)


def test_unbuilt_model_is_a_clear_error() -> None:
    model = keras.Sequential([keras.layers.Dense(3)], name="lazy_net")
    testing.check_clear_error(lambda: ww_keras.ww_layers(model, {}), "lazy_net", "build")


def test_live_weights_are_read_at_load_time(zoo: keras.Model) -> None:
    def double() -> None:
        for variable in zoo.weights:
            variable.assign(variable.numpy() * 2 + 1)

    testing.check_lazy(lambda: ww_keras.ww_layers(zoo, {}), double)
