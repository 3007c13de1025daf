"""LoRA adapters: the update ΔW = B·A of each lora_A/lora_B pair, analyzed as its own dense layer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ww_core.platform.protocol import LayerMatrix
from ww_core.platform.tensor_refs import TensorRef, ref_of

_LORA = re.compile(r"(?P<stem>.*?)(?P<sep>[./_]?)lora_(?P<part>[AB])(?P<tail>.*)")


def _pair_key(name: str) -> tuple[str, str] | None:
    """("stem|tail", "A" or "B") for a LoRA factor's name, None for any other layer."""
    found = _LORA.fullmatch(name)
    if found is None:
        return None
    return f"{found['stem']}{found['sep']}|{found['tail']}", found["part"]


def _product(a: LayerMatrix, b: LayerMatrix) -> np.ndarray:
    return np.asarray(b.weights(), dtype=np.float64) @ np.asarray(a.weights(), dtype=np.float64)


@dataclass(frozen=True)
class LoraProduct(TensorRef):
    """B·A of two factor layers whose weights are file references: picklable, so a worker reads both factors itself.

    ``path`` is B's file, which errors name.
    """

    path: str
    a: LayerMatrix
    b: LayerMatrix

    def read(self) -> np.ndarray:
        return _product(self.a, self.b)


def _product_loader(a: LayerMatrix, b: LayerMatrix) -> Callable[[], np.ndarray]:
    """B·A read lazily: a ``LoraProduct`` when both factors live in files, else a closure over the in-memory factors."""
    b_ref = ref_of(b.load)
    if b_ref is not None and ref_of(a.load) is not None:
        return LoraProduct(b_ref.path, a, b)
    return lambda: _product(a, b)


def lora_products(layers: list[LayerMatrix]) -> list[LayerMatrix]:
    """One dense ``…lora_BA…`` layer per matched pair: B (out, r) · A (r, in) → (out, in), loaded lazily (a reference when both
    factors are).

    Pairs are matched by name (``x.lora_A.default`` with ``x.lora_B.default``); indices follow the
    model's last layer, in the order the B factors appear. A pair whose ranks disagree (B's columns are
    not A's rows) has no product: its row is skipped saying so, never left out.
    """
    factors: dict[str, dict[str, LayerMatrix]] = {}
    for layer in layers:
        found = _pair_key(layer.name)
        if found is not None and layer.kind == "dense":
            factors.setdefault(found[0], {})[found[1]] = layer
    products: list[LayerMatrix] = []
    next_index = max((layer.index for layer in layers), default=-1) + 1
    for key, pair in factors.items():
        a, b = pair.get("A"), pair.get("B")
        if a is None or b is None:
            continue
        stem, tail = key.split("|", 1)
        disagree = b.shape[1] != a.shape[0]
        products.append(
            LayerMatrix(
                name=f"{stem}lora_BA{tail}",
                index=next_index + len(products),
                kind="dense",
                shape=(b.shape[0], a.shape[1]),
                load=_product_loader(a, b),
                origin=b.origin,
                framework_type="LoRA B·A",
                reference_id=a.reference_id,  # the reference lists B·A in its lora_A factor's place
                skip=f"LoRA ranks disagree: B {b.shape} has {b.shape[1]} columns, A {a.shape} {a.shape[0]} rows; no product B·A"
                if disagree
                else "",
            )
        )
    return products


def is_lora_product(layer: LayerMatrix) -> bool:
    """True for the ΔW layers made by ``lora_products``."""
    return layer.framework_type == "LoRA B·A"
