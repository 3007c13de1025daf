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
