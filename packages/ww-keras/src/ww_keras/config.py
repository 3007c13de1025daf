"""Read a saved model's architecture from its JSON config, never deserializing (so no code runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ww_keras.layouts import ATTENTION_CLASSES, attention_in_axes, einsum_in_axes


@dataclass
class Architecture:
    """Layer path → (class name, layer config), in architecture order (depth-first through nested models)."""

    layers: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def add(self, entry: Any, prefix: str) -> None:
        """Record one serialized layer and, recursively, the layers it contains."""
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            return
        config = entry["config"]
        path = prefix + str(config.get("name", entry.get("name", "")))
        self.layers[path] = (str(entry.get("class_name", "")), config)
        self.add_children(config, path + "/")

    def add_children(self, config: dict[str, Any], prefix: str) -> None:
        """Nested models list ``layers``; wrappers (Bidirectional, TimeDistributed) hold ``layer``/``backward_layer``."""
        for child in config.get("layers", []) or []:
            self.add(child, prefix)
        for key in ("layer", "forward_layer", "backward_layer"):
            if isinstance(config.get(key), dict):
                self.add(config[key], prefix)

    def owner(self, path: str) -> tuple[str, str]:
        """The nearest configured ancestor-or-self of ``path``: (its path, its class); ("", "") if none."""
        parts = path.split("/")
        for end in range(len(parts), 0, -1):
            candidate = "/".join(parts[:end])
            if candidate in self.layers:
                return candidate, self.layers[candidate][0]
        return "", ""

    def position(self, path: str) -> int:
        """Architecture position of the nearest configured ancestor-or-self (unknown layers go last)."""
        found, _ = self.owner(path)
        return list(self.layers).index(found) if found else len(self.layers)

    def in_axes(self, path: str, ndim: int) -> tuple[int, ...] | None:
        """Contracted kernel axes for EinsumDense layers and attention projections, else None."""
        found, class_name = self.owner(path)
        if class_name == "EinsumDense" and found == path:
            equation = self.layers[found][1].get("equation")
            return einsum_in_axes(equation) if isinstance(equation, str) else None
        if class_name in ATTENTION_CLASSES and found != path:
            return attention_in_axes(path.rsplit("/", 1)[-1], ndim)
        return None


def architecture(model_config: dict[str, Any]) -> Architecture:
    """The layers of a serialized model (its own entry excluded); a lone serialized layer is kept as is."""
    arch = Architecture()
    config = model_config.get("config")
    if isinstance(config, dict) and ("layers" in config or "layer" in config):
        arch.add_children(config, "")
    else:
        arch.add(model_config, "")
    return arch
