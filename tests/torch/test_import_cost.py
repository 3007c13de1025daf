"""Installing ww-torch costs nothing at import time: torch is imported only for torch sources."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True, capture_output=True, text=True).stdout.strip()


def test_numpy_model_analyzed_without_importing_torch() -> None:
    out = run(
        """
        import sys
        import numpy as np
        import ww_core, ww_torch
        from ww_core.pipeline.plugins import list_adapters
        assert any(a["name"] == "torch" for a in list_adapters())
        rng = np.random.default_rng(0)
        ww_core.analyze({"fc.weight": rng.normal(size=(40, 30))})
        print("torch" in sys.modules)
        """
    )
    assert out == "False"


def test_unknown_file_suffix_does_not_import_torch(tmp_path: object) -> None:
    out = run(
        """
        import sys
        from ww_torch.recognize import source_kind
        print(source_kind("/definitely/not/here.txt"), source_kind(object()), "torch" in sys.modules)
        """
    )
    assert out == "None None False"
