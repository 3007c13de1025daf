"""One small embedding + conv1d + MLP network with fixed numpy weights, built in every framework.

Canonical weights: embedding (64, 16), conv1d (24, 16, 3), fc1 (32, 24), fc2 (10, 32): each
layer has at least 10 eigenvalues, so every power-law fit runs. Biases are zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

VOCAB, DIM, CHANNELS, HIDDEN, CLASSES, KERNEL, TOKENS = 64, 16, 24, 32, 10, 3, 12


def weights() -> dict[str, np.ndarray]:
    """Heavy-tailed float32 weights in the canonical layout; names sort naturally into architecture order."""
    rng = np.random.default_rng(20240607)

    def draw(*shape: int) -> np.ndarray:
        return (rng.standard_t(3.0, size=shape) / np.sqrt(shape[1])).astype(np.float32)

    return {
        "0_embedding.weight": draw(VOCAB, DIM),
        "1_conv.weight": draw(CHANNELS, DIM, KERNEL),
        "2_fc1.weight": draw(HIDDEN, CHANNELS),
        "3_fc2.weight": draw(CLASSES, HIDDEN),
    }


def parts(w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(embedding, conv (out, in, k), fc1 (out, in), fc2 (out, in))."""
    return w["0_embedding.weight"], w["1_conv.weight"], w["2_fc1.weight"], w["3_fc2.weight"]


def npz(w: dict[str, np.ndarray], folder: Path) -> Path:
    path = folder / "net.npz"
    np.savez(path, **w)
    return path


def safetensors(w: dict[str, np.ndarray], folder: Path) -> Path:
    from safetensors.numpy import save_file

    path = folder / "net.safetensors"
    save_file(w, str(path))
    return path


def torch_module(w: dict[str, np.ndarray]) -> Any:
    import torch

    emb, conv, fc1, fc2 = parts(w)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = torch.nn.Embedding(VOCAB, DIM)
            self.conv = torch.nn.Conv1d(DIM, CHANNELS, KERNEL)
            self.fc1 = torch.nn.Linear(CHANNELS, HIDDEN)
            self.fc2 = torch.nn.Linear(HIDDEN, CLASSES)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            x = self.conv(self.embedding(tokens).transpose(1, 2)).mean(dim=2)
            return self.fc2(torch.relu(self.fc1(x)))

    net = Net()
    with torch.no_grad():
        for module, array in ((net.embedding, emb), (net.conv, conv), (net.fc1, fc1), (net.fc2, fc2)):
            module.weight.copy_(torch.from_numpy(array))
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
    net(torch.zeros(1, TOKENS, dtype=torch.long))
    return net


def torch_file(w: dict[str, np.ndarray], folder: Path) -> Path:
    import torch

    path = folder / "net.pt"
    torch.save(torch_module(w).state_dict(), path)
    return path


def keras_model(w: dict[str, np.ndarray]) -> Any:
    import keras

    emb, conv, fc1, fc2 = parts(w)
    model = keras.Sequential(
        [
            keras.Input((TOKENS,), dtype="int32"),
            keras.layers.Embedding(VOCAB, DIM, name="embedding"),
            keras.layers.Conv1D(CHANNELS, KERNEL, name="conv"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(HIDDEN, activation="relu", name="fc1"),
            keras.layers.Dense(CLASSES, name="fc2"),
        ],
        name="net",
    )
    model.get_layer("embedding").set_weights([emb])
    model.get_layer("conv").set_weights([conv.transpose(2, 1, 0), np.zeros(CHANNELS, np.float32)])
    model.get_layer("fc1").set_weights([fc1.T, np.zeros(HIDDEN, np.float32)])
    model.get_layer("fc2").set_weights([fc2.T, np.zeros(CLASSES, np.float32)])
    return model


def keras_file(w: dict[str, np.ndarray], folder: Path, suffix: str) -> Path:
    path = folder / f"net{suffix}"
    keras_model(w).save(path)
    return path


def linen_variables(w: dict[str, np.ndarray]) -> dict[str, Any]:
    """Variables of the Linen model below, initialized by Flax and then overwritten with ``w``."""
    import jax
    import jax.numpy as jnp
    from flax import linen

    emb, conv, fc1, fc2 = parts(w)

    class Net(linen.Module):
        @linen.compact
        def __call__(self, tokens: jax.Array) -> jax.Array:
            embedded = linen.Embed(VOCAB, DIM, name="embedding")(tokens)
            x = linen.Conv(CHANNELS, (KERNEL,), padding="VALID", name="conv")(embedded).mean(axis=1)
            hidden = linen.relu(linen.Dense(HIDDEN, name="fc1")(x))
            return linen.Dense(CLASSES, name="fc2")(hidden)

    variables = Net().init(jax.random.PRNGKey(0), jnp.zeros((1, TOKENS), jnp.int32))
    params = variables["params"]
    params["embedding"]["embedding"] = jnp.asarray(emb)
    params["conv"]["kernel"] = jnp.asarray(conv.transpose(2, 1, 0))
    params["fc1"]["kernel"] = jnp.asarray(fc1.T)
    params["fc2"]["kernel"] = jnp.asarray(fc2.T)
    return variables


def nnx_module(w: dict[str, np.ndarray]) -> Any:
    from flax import nnx

    emb, conv, fc1, fc2 = parts(w)

    class Net(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.embedding = nnx.Embed(VOCAB, DIM, rngs=rngs)
            self.conv = nnx.Conv(DIM, CHANNELS, (KERNEL,), padding="VALID", rngs=rngs)
            self.fc1 = nnx.Linear(CHANNELS, HIDDEN, rngs=rngs)
            self.fc2 = nnx.Linear(HIDDEN, CLASSES, rngs=rngs)

    net = Net(nnx.Rngs(0))
    net.embedding.embedding.set_value(emb)
    net.conv.kernel.set_value(conv.transpose(2, 1, 0))
    net.fc1.kernel.set_value(fc1.T)
    net.fc2.kernel.set_value(fc2.T)
    return net


def msgpack_file(w: dict[str, np.ndarray], folder: Path) -> Path:
    from flax import serialization

    path = folder / "net.msgpack"
    path.write_bytes(serialization.to_bytes(linen_variables(w)))
    return path


def onnx_model(w: dict[str, np.ndarray]) -> Any:
    """The same network as an ONNX graph: Gather → Transpose → Conv → ReduceMean → Gemm → Relu → Gemm."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    emb, conv, fc1, fc2 = parts(w)
    initializers = [
        numpy_helper.from_array(emb, "embedding.weight"),
        numpy_helper.from_array(conv, "conv.weight"),
        numpy_helper.from_array(np.zeros(CHANNELS, np.float32), "conv.bias"),
        numpy_helper.from_array(fc1, "fc1.weight"),
        numpy_helper.from_array(np.zeros(HIDDEN, np.float32), "fc1.bias"),
        numpy_helper.from_array(fc2, "fc2.weight"),
        numpy_helper.from_array(np.zeros(CLASSES, np.float32), "fc2.bias"),
        numpy_helper.from_array(np.array([2], np.int64), "mean_axes"),
    ]
    nodes = [
        helper.make_node("Gather", ["embedding.weight", "tokens"], ["embedded"], axis=0),
        helper.make_node("Transpose", ["embedded"], ["channels_first"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["channels_first", "conv.weight", "conv.bias"], ["conv_out"]),
        helper.make_node("ReduceMean", ["conv_out", "mean_axes"], ["pooled"], keepdims=0),
        helper.make_node("Gemm", ["pooled", "fc1.weight", "fc1.bias"], ["hidden"], transB=1),
        helper.make_node("Relu", ["hidden"], ["activated"]),
        helper.make_node("Gemm", ["activated", "fc2.weight", "fc2.bias"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, TOKENS])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    return model


def onnx_file(w: dict[str, np.ndarray], folder: Path) -> Path:
    import onnx

    path = folder / "net.onnx"
    onnx.save(onnx_model(w), str(path))
    return path
