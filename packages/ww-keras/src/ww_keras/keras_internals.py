"""The only private Keras API ww-keras uses, in one place: the variables a layer owns itself, and its direct sublayers.

Keras 3 has no public API for either (``layer.weights`` is recursive; ``layers`` exists only on
models). ``tests/keras/test_keras_internals.py`` checks the contract ww-keras relies on, that a
layer's own variables and its sublayers' weights partition ``layer.weights``, on the Keras the
tests run with; the supported range is ``SUPPORTED`` (also the package's dependency).
"""

from __future__ import annotations

from typing import Any

#: The Keras releases whose private layer tracking ww-keras relies on.
SUPPORTED = ">=3.0,<4"


def own_variables(layer: Any) -> list[Any]:
    """The variables ``layer`` itself creates (trainable first), not its sublayers'."""
    try:
        return [*layer._trainable_variables, *layer._non_trainable_variables]
    except AttributeError:
        raise ImportError(_unsupported("Layer._trainable_variables")) from None


def child_layers(layer: Any) -> list[Any]:
    """The direct sublayers of ``layer``, in tracking order."""
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is None:
        raise ImportError(_unsupported("Layer._flatten_layers"))
    return list(flatten(include_self=False, recursive=False))


def _unsupported(attribute: str) -> str:
    try:
        import keras

        found = f"keras {keras.__version__}"
    except ImportError:
        found = "no keras"
    return f"ww-keras reads Keras' {attribute}, which is missing here ({found}); ww-keras supports Keras {SUPPORTED}"
