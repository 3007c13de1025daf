"""Structure the code must keep: shared thresholds and types defined once, no import for a side effect."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np

import ww_core
from ww_core.spectra.spectrum import inverse_spectrum

CORE = Path(ww_core.__file__).parent
ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
#: Values that are shared thresholds: binding one to a literal outside constants.py copies it.
SHARED = {1e-5, 1e-10}
SHARED_NAMES = {"ALPHA_LOW", "ALPHA_HIGH", "OVER_TRAINED_THRESH", "UNDER_TRAINED_THRESH", "DEFAULT_MAX_FINGERS", "MIN_ALPHA"}


def _literal_bindings(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, (ast.Constant, ast.Tuple)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            values = [c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant)]
            numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if any(v in SHARED for v in numbers) or (SHARED_NAMES & set(names) and numbers):
                found.append(f"{path.name}:{node.lineno} {names}")
    return found


def test_thresholds_are_defined_once() -> None:
    copies = [hit for path in sorted(CORE.rglob("*.py")) if path.name != "constants.py" for hit in _literal_bindings(path)]
    assert not copies, f"thresholds bound to literals outside constants.py: {copies}"


def test_eigenvalue_fn_is_defined_once() -> None:
    defined = [path.name for path in CORE.rglob("*.py") if "EigenvalueFn = " in path.read_text()]
    assert defined == ["spectrum.py"], defined


def test_inverse_flip_is_one_function() -> None:
    copies = [path.name for path in CORE.rglob("*.py") if "1.0 / evals" in path.read_text() or "1.0 / pooled" in path.read_text()]
    assert copies == ["spectrum.py"], copies
    np.testing.assert_array_equal(inverse_spectrum(np.array([4.0, 0.5, 2.0])), [0.25, 0.5, 2.0])


def test_single_blas_thread_needs_no_math_module() -> None:
    script = (
        "import sys; from ww_core.pipeline.threads import single_blas_thread; single_blas_thread(); "
        "print('ww_core.spectra.spectrum' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_results_and_plots_do_not_import_each_other_at_import_time() -> None:
    """Results delegates to plots on use (matplotlib is optional); plots names Results only for type hints."""
    script = (
        "import sys\n"
        "import ww_core.views.plots\n"
        "assert 'ww_core.results.results' not in sys.modules\n"
        "del sys.modules['ww_core.views.plots']\n"
        "import ww_core.results.results\n"
        "assert 'ww_core.views.plots' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_the_tree_is_the_documented_stages() -> None:
    """ww_core's top level holds exactly the stages and face modules that docs/architecture.md draws, each stage a package."""
    diagram = ARCHITECTURE.read_text(encoding="utf-8").split("## Inside ww-core", 1)[1].split("```", 2)[1]
    documented = {word.rstrip("/") for line in diagram.splitlines() for word in line.split() if word.endswith(("/", ".py"))}
    on_disk = {
        p.name.removesuffix(".py") if p.suffix == ".py" else p.name for p in CORE.iterdir() if p.name not in {"__pycache__", "py.typed"}
    }
    assert on_disk - {"__main__"} == {name.removesuffix(".py") for name in documented}
    assert len(on_disk) <= 13, sorted(on_disk)  # 9 stage packages and 4 face modules
    stages = [p for p in CORE.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert all((stage / "__init__.py").is_file() for stage in stages), stages
