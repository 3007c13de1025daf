"""Every analysis option has a flag generated from AnalysisOptions; only real user errors print as one line."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from ww_core import cli
from ww_core.cli import build_parser, main
from ww_core.cli.option_flags import option_kwargs
from ww_core.results.options import AnalysisOptions


def _help(command: str) -> str:
    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    return str(sub.format_help())


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@pytest.mark.parametrize("command", ["analyze", "demo", "compare"])
def test_every_analysis_option_has_a_flag(command: str) -> None:
    text = _help(command)
    for spec in fields(AnalysisOptions):
        assert _flag(spec.name) in text or _flag(f"no_{spec.name}") in text, spec.name
    assert "--base MODEL" in text


def test_describe_lists_only_options_that_change_the_listing() -> None:
    text = _help("describe")
    for flag in ("--layers", "--max-evals", "--no-pool", "--peft", "--trust-pickle", "--csv", "--json"):
        assert flag in text
    for flag in ("--mp-fit", "--randomize", "--fit", "--vectors", "--workers", "--cache", "--base"):
        assert flag not in text


@pytest.mark.parametrize("given", [["--layers", "0,1", "fc"], ["--layers", "0", "--layers", "1", "fc"], ["--layers", "0,", "1,fc"]])
def test_layers_given_with_commas_or_repeated_add_up(given: list[str]) -> None:
    """`--layers 0,1` was one name substring '0,1' (matching nothing); a repeated `--layers` dropped the earlier ones."""
    chosen = option_kwargs(build_parser().parse_args(["analyze", "m.npz", *given]))
    assert chosen["layers"] == [0, 1, "fc"]


def test_flags_reach_the_options_with_their_types() -> None:
    argv = [
        "analyze", "m.npz", "--layers", "1", "fc", "-2", "--vectors", "--detX", "--conv2d-fft", "--xmax", "3",
        "--peft", "with_base", "--inverse", "--no-pool", "--no-conv2d-norm", "--xmin-max", "0.5",
        "--fix-fingers", "clip_xmax", "--max-fingers", "4", "--finger-thresh", "2.5",
        "--extra", "torch.split_gates=true", "--extra", "torch.k=x",
    ]  # fmt: skip
    chosen = option_kwargs(build_parser().parse_args(argv))
    assert chosen["extra"] == {"torch.split_gates": True, "torch.k": "x"}  # values read as JSON when they are JSON
    options = AnalysisOptions.from_kwargs(**{k: v for k, v in chosen.items() if k != "extra"})
    assert list(options.layers) == [1, "fc", -2]
    assert (options.vectors, options.detX, options.conv2d_fft, options.inverse) == (True, True, True, True)
    assert options.xmax == 3 and isinstance(options.xmax, int)
    assert options.peft == "with_base" and options.pool is False and options.conv2d_norm is False
    assert options.xmin_max == 0.5 and options.max_fingers == 4 and options.finger_thresh == 2.5
    bare = build_parser().parse_args(["analyze", "m.npz", "--peft", "--xmax", "2.5e3"])
    assert option_kwargs(bare) == {"peft": True, "xmax": 2500.0}
    assert option_kwargs(build_parser().parse_args(["analyze"])) == {}


def test_base_model_flag_analyzes_the_difference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((80, 40))
    np.savez(tmp_path / "base.npz", fc=base)
    np.savez(tmp_path / "tuned.npz", fc=base + 1e-3 * rng.standard_normal((80, 40)))
    assert main(["analyze", str(tmp_path / "tuned.npz"), "--base", str(tmp_path / "base.npz"), "--csv", "-"]) == 0
    csv_text = capsys.readouterr().out
    header, row = csv_text.splitlines()[:2]
    log_norm = float(row.split(",")[header.split(",").index("log_norm")])
    assert log_norm < 0  # ||W - W_base|| is tiny; the plain W would give log_norm > 1


@pytest.mark.parametrize("bug", [TypeError("bad call"), KeyError("x"), AttributeError("y")])
def test_bugs_are_not_reported_as_user_errors(monkeypatch: pytest.MonkeyPatch, bug: Exception) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise bug

    monkeypatch.setattr(cli, "describe", broken)
    with pytest.raises(type(bug)):
        main(["describe"])


@pytest.mark.parametrize("error", [ValueError("corrupt"), PermissionError("denied"), ImportError("needs matplotlib")])
def test_user_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception) -> None:
    def failing(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(cli, "describe", failing)
    assert main(["describe"]) == 2
    assert capsys.readouterr().err == f"ww: error: {error}\n"
