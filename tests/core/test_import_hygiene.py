"""ww-core never imports a framework: proven in a fresh interpreter after a full analysis."""

from __future__ import annotations

import subprocess
import sys
import textwrap

FRAMEWORKS = ("torch", "tensorflow", "keras", "jax", "flax", "onnx", "onnxruntime")


def test_core_analysis_imports_no_framework() -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import ww_core
        rng = np.random.default_rng(0)
        results = ww_core.analyze({{"w": rng.standard_normal((64, 32)), "c": rng.standard_normal((8, 4, 3, 3))}})
        assert results.analyzed, "nothing analyzed"
        ww_core.list_adapters()
        loaded = sorted(name for name in {FRAMEWORKS!r} if name in sys.modules)
        print("LOADED", loaded)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "LOADED []" in done.stdout, done.stdout + done.stderr


def test_lazy_public_names_are_not_shadowed_by_submodules() -> None:
    """Importing every submodule first must not turn ``ww_core.compare`` etc. into modules."""
    script = textwrap.dedent(
        """
        import importlib, pkgutil, types
        import ww_core
        for info in pkgutil.iter_modules(ww_core.__path__):
            if info.name != "__main__":
                importlib.import_module(f"ww_core.{info.name}")
        shadowed = [name for name in ww_core.__all__ if isinstance(getattr(ww_core, name), types.ModuleType)]
        print("SHADOWED", shadowed)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "SHADOWED []" in done.stdout, done.stdout + done.stderr
