"""Canonical layouts per op, hand-checked shapes and values, constants, subgraphs and order."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .onnx_graphs import constant, layers_of, model, summary, weight


@pytest.mark.parametrize(("trans_b", "stored"), [(0, (5, 3)), (1, (3, 5))])
def test_gemm_weight_b_honours_trans_b(trans_b: int, stored: tuple[int, int]) -> None:
    w = weight(0, *stored)
    found = layers_of(model([helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=trans_b)], {"W": w, "b": weight(1, 3)}))
    assert summary(found) == [("W", "dense", (3, 5), "Gemm")]
    np.testing.assert_array_equal(found[0].weights(), w if trans_b else w.T)


@pytest.mark.parametrize(("trans_a", "stored"), [(0, (3, 5)), (1, (5, 3))])
def test_gemm_weight_a_honours_trans_a(trans_a: int, stored: tuple[int, int]) -> None:
    w = weight(0, *stored)
    [layer] = layers_of(model([helper.make_node("Gemm", ["W", "x"], ["y"], transA=trans_a)], {"W": w}))
    assert layer.shape == (3, 5)
    np.testing.assert_array_equal(layer.weights(), w.T if trans_a else w)


def test_matmul_x_times_w_is_transposed() -> None:
    w = weight(0, 6, 4)  # (in, out)
    [layer] = layers_of(model([helper.make_node("MatMul", ["x", "W"], ["y"])], {"W": w}))
    assert (layer.kind, layer.shape) == ("dense", (4, 6))
    np.testing.assert_array_equal(layer.weights(), w.T)
    assert layer.weights()[3, 5] == w[5, 3]


def test_matmul_w_times_x_kept() -> None:
    w = weight(0, 4, 6)
    [layer] = layers_of(model([helper.make_node("MatMul", ["W", "x"], ["y"])], {"W": w}))
    np.testing.assert_array_equal(layer.weights(), w)


@pytest.mark.parametrize(("shape", "kind"), [((6, 4, 3), "conv1d"), ((6, 4, 3, 2), "conv2d"), ((6, 4, 1, 2, 3), "conv3d")])
def test_conv_kept_as_out_in_kernel(shape: tuple[int, ...], kind: str) -> None:
    w = weight(0, *shape)
    [layer] = layers_of(model([helper.make_node("Conv", ["x", "W"], ["y"])], {"W": w}))
    assert (layer.kind, layer.shape, layer.framework_type) == (kind, shape, "Conv")
    np.testing.assert_array_equal(layer.weights(), w)


def test_conv_transpose_swaps_in_and_out() -> None:
    w = weight(0, 4, 6, 3, 3)  # (in, out, kh, kw)
    [layer] = layers_of(model([helper.make_node("ConvTranspose", ["x", "W"], ["y"])], {"W": w}))
    assert (layer.kind, layer.shape) == ("conv2d", (6, 4, 3, 3))
    np.testing.assert_array_equal(layer.weights(), np.swapaxes(w, 0, 1))


def test_gather_axis_0_is_an_embedding() -> None:
    table = weight(0, 50, 8)
    nodes = [helper.make_node("Gather", ["E", "x"], ["h"]), helper.make_node("Gather", ["F", "h"], ["y"], axis=1)]
    found = layers_of(model(nodes, {"E": table, "F": weight(1, 8, 9)}))
    assert summary(found) == [("E", "embedding", (50, 8), "Gather")]


def test_lstm_whole_per_direction_and_split_per_gate() -> None:
    hidden, width = 3, 5
    w, r = weight(0, 2, 4 * hidden, width), weight(1, 2, 4 * hidden, hidden)
    lstm = model([helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=hidden, direction="bidirectional")], {"W": w, "R": r})
    whole = layers_of(lstm)
    assert summary(whole) == [
        ("W.forward", "dense", (12, 5), "LSTM"),
        ("W.reverse", "dense", (12, 5), "LSTM"),
        ("R.forward", "dense", (12, 3), "LSTM"),
        ("R.reverse", "dense", (12, 3), "LSTM"),
    ]
    i, o, f, c = np.split(w[1], 4)  # ONNX stores gates i,o,f,c; whole rows are in torch's order i,f,g,o
    np.testing.assert_array_equal(whole[1].weights(), np.concatenate([i, f, c, o]))
    split = layers_of(lstm, split_gates=True)
    assert [layer.name for layer in split[:4]] == ["W.forward.i", "W.forward.o", "W.forward.f", "W.forward.c"]
    assert split[0].shape == (3, 5) and len(split) == 16
    np.testing.assert_array_equal(split[6].weights(), w[1, 6:9])  # reverse direction, gate f


def test_gru_single_direction_split() -> None:
    w = weight(0, 1, 3 * 4, 6)
    gru = model([helper.make_node("GRU", ["x", "W", "R"], ["y"], hidden_size=4)], {"W": w, "R": weight(1, 1, 12, 4)})
    assert [(layer.name, layer.shape) for layer in layers_of(gru, split_gates=True)[:3]] == [
        ("W.z", (4, 6)),
        ("W.r", (4, 6)),
        ("W.h", (4, 6)),
    ]
    assert [layer.name for layer in layers_of(gru)] == ["W", "R"]


def test_torch_style_lstm_weight_restacked_through_slices() -> None:
    """torch exports LSTMCell weights (4H, in) cut by Slice, re-stacked by Concat, lifted by Unsqueeze."""
    w = weight(0, 8, 5)
    starts = [constant(f"s{i}", np.array([2 * i], np.int64)) for i in range(4)]
    ends = [constant(f"e{i}", np.array([2 * i + 2], np.int64)) for i in range(4)]
    nodes = [
        *starts,
        *ends,
        *[helper.make_node("Slice", ["Wt", f"s{i}", f"e{i}"], [f"part{i}"]) for i in range(4)],
        helper.make_node("Concat", [f"part{i}" for i in (0, 3, 1, 2)], ["cat"], axis=0),
        constant("axis0", np.array([0], np.int64)),
        helper.make_node("Unsqueeze", ["cat", "axis0"], ["W3"]),
        helper.make_node("LSTM", ["x", "W3", "R"], ["y"], hidden_size=2),
    ]
    found = layers_of(model(nodes, {"Wt": w, "R": weight(1, 1, 8, 2)}))
    assert summary(found) == [("Wt", "dense", (8, 5), "LSTM"), ("R", "dense", (8, 2), "LSTM")]
    np.testing.assert_array_equal(found[0].weights(), w)


def test_constant_nodes_identity_and_cast_pass_through() -> None:
    w = weight(0, 6, 4)
    nodes = [
        constant("Wc", w),
        helper.make_node("Identity", ["Wc"], ["Wi"]),
        helper.make_node("Cast", ["Wi"], ["Wf"], to=1),
        helper.make_node("MatMul", ["x", "Wf"], ["y"]),
    ]
    [layer] = layers_of(model(nodes))
    assert (layer.name, layer.shape) == ("Wc", (4, 6))
    np.testing.assert_array_equal(layer.weights(), w.T)


def test_reshaped_weight_is_not_read_as_a_dense_layer() -> None:
    nodes = [
        constant("shape", np.array([4, 6], np.int64)),
        helper.make_node("Reshape", ["W", "shape"], ["Wr"]),
        helper.make_node("MatMul", ["x", "Wr"], ["y"]),
    ]
    assert layers_of(model(nodes, {"W": weight(0, 6, 4)})) == []


def test_scalars_vectors_and_non_weight_inputs_skipped() -> None:
    nodes = [
        constant("scale", np.array(2.0, np.float32)),
        helper.make_node("Mul", ["x", "scale"], ["h1"]),
        helper.make_node("Add", ["h1", "bias4d"], ["h2"]),
        helper.make_node("Conv", ["h2", "W", "b"], ["y"]),
    ]
    found = layers_of(model(nodes, {"bias4d": weight(0, 1, 1, 1, 1), "W": weight(1, 4, 2, 3, 3), "b": weight(2, 4)}))
    assert [layer.name for layer in found] == ["W"]


def test_node_order_not_initializer_order_and_shared_weight_once() -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "second"], ["h"]),
        helper.make_node("MatMul", ["h", "first"], ["h2"]),
        helper.make_node("MatMul", ["h2", "second"], ["y"]),
    ]
    found = layers_of(model(nodes, {"first": weight(0, 4, 4), "second": weight(1, 4, 4)}))
    assert [(layer.name, layer.index) for layer in found] == [("second", 0), ("first", 1)]


def test_weights_inside_if_branches_with_outer_scope_names() -> None:
    then_graph = helper.make_graph(
        [constant("inner", weight(0, 7, 3)), helper.make_node("MatMul", ["x", "inner"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", 1, None)],
    )
    else_graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "outer"], ["e"])], "else", [], [helper.make_tensor_value_info("e", 1, None)]
    )
    nodes = [
        constant("cond", np.array(True)),
        helper.make_node("If", ["cond"], ["h"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Gemm", ["h", "last"], ["y"], transB=1),
    ]
    found = layers_of(model(nodes, {"outer": weight(1, 3, 5), "last": weight(2, 2, 5)}))
    assert sorted(summary(found)[:2]) == [("inner", "dense", (3, 7), "MatMul"), ("outer", "dense", (5, 3), "MatMul")]
    assert summary(found)[2] == ("last", "dense", (2, 5), "Gemm")  # branches are visited where the If node stands


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int8])
def test_dtypes_widened_to_float32_or_kept_float64(dtype: type) -> None:
    w = (weight(0, 6, 4) * 10).astype(dtype)
    [layer] = layers_of(model([helper.make_node("MatMul", ["x", "W"], ["y"])], {"W": w}))
    assert layer.weights().dtype == (np.float64 if dtype is np.float64 else np.float32)
    np.testing.assert_array_equal(layer.weights(), w.T.astype(layer.weights().dtype))


def test_bfloat16_widened() -> None:
    import ml_dtypes

    w = weight(0, 6, 4).astype(ml_dtypes.bfloat16)
    tensor = helper.make_tensor("W", 16, w.shape, w.view(np.uint16).tobytes(), raw=True)  # TensorProto.BFLOAT16
    graph_model = model([helper.make_node("MatMul", ["x", "W"], ["y"])])
    graph_model.graph.initializer.append(tensor)
    [layer] = layers_of(graph_model)
    np.testing.assert_array_equal(layer.weights(), w.astype(np.float32).T)
