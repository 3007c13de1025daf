"""Which adapter package would read a source no installed adapter claims, for the "pip install ww-x" advice.

Installed adapters declare their own hints in ``ww_adapter_info`` (``suffixes``, ``modules``),
so core keeps no framework knowledge for them. An adapter that is not installed cannot speak,
so the first-party packages' hints are kept here as data (docs/architecture.md says why);
``tests/core/test_adapter_hints.py`` checks that each entry equals what that adapter declares.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ww_core.platform.install_hints import install_hint


@dataclass(frozen=True)
class Hints:
    """An adapter package, the file suffixes it reads and the top-level modules of the objects it reads."""

    package: str
    suffixes: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()


#: The first-party adapter packages, for sources whose adapter is not installed.
FIRST_PARTY: tuple[Hints, ...] = (
    Hints("ww-torch", (".pt", ".pth", ".bin", ".bin.index.json"), ("torch", "transformers", "peft")),
    Hints("ww-keras", (".keras", ".h5", ".hdf5"), ("keras", "tensorflow", "tf_keras")),
    Hints("ww-jax", (".msgpack", ".ocdbt"), ("flax", "jax", "jaxlib")),
    Hints("ww-onnx", (".onnx",), ("onnx",)),
    Hints("ww-gguf", (".gguf",), ()),
)


def hints_of(info: Mapping[str, Any]) -> Hints | None:
    """The hints an adapter declares in its ``ww_adapter_info`` (``package``, ``suffixes``, ``modules``), or None."""
    suffixes, modules = tuple(info.get("suffixes") or ()), tuple(info.get("modules") or ())
    if not info.get("package") or not (suffixes or modules):
        return None
    return Hints(str(info["package"]), tuple(str(s).lower() for s in suffixes), tuple(str(m) for m in modules))


def package_for(source: Any, hints: Iterable[Hints]) -> str | None:
    """The first package whose hints match ``source``: a file's suffix, a folder's files' suffixes, an object's module."""
    hints = list(hints)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        suffixes = [os.path.splitext(path)[1].lower()]
        if os.path.isdir(path):
            suffixes = [os.path.splitext(name)[1].lower() for name in sorted(os.listdir(path))] + suffixes
        return next((h.package for suffix in suffixes for h in hints if suffix and suffix in h.suffixes), None)
    root = type(source).__module__.split(".")[0]
    return next((h.package for h in hints if root in h.modules), None)


def advice(source: Any, adapters: Sequence[Mapping[str, Any]]) -> str:
    """What to do about ``source``, given the adapters found (``list_adapters()`` rows): install, or why it did not read it."""
    declared = [found for row in adapters if (found := hints_of(row)) is not None]  # broken or disabled ones too: say so
    package = package_for(source, [*declared, *FIRST_PARTY])
    if package is None:
        return " No known adapter package handles it."
    row = next((row for row in adapters if package in (row.get("distribution"), row.get("package"))), None)
    if row is None:
        first_party = any(hints.package == package for hints in FIRST_PARTY)
        return f" Install it with: {install_hint(package) if first_party else f'pip install {package}'}"
    if row.get("status") == "ok":
        return f" {package} is installed but did not recognize it."
    return f" {package} is installed but {row.get('status')} ({row.get('reason')})."
