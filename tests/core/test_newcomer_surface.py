"""What a newcomer meets first says what the README says it does, and every row of a narrow table stays identifiable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core.cli import main

#: Transformer-style names: they differ only in the layer number, far from their end.
LONG_NAMES = tuple(f"encoder.layers.{i}.self_attention.query_key_value_projection.weight" for i in range(6))


def _table(out: str) -> list[str]:
    """The table's rows (not its header, not a reason's wrapped lines) from ``ww analyze`` output."""
    lines = out.split("\n\nsummary:")[0].splitlines()[2:]
    return [line for line in lines if not line.startswith(" ")]


def test_printing_results_ends_with_the_verdict() -> None:
    """README: ``print(results)`` gives "a row per layer, the summary, the verdict", as ``ww analyze`` does."""
    rng = np.random.default_rng(0)
    results = ww_core.analyze({"fc1.weight": rng.standard_t(2.5, size=(120, 60)), "fc2.weight": rng.standard_normal((90, 40))})
    assert str(results).rstrip().splitlines()[-1].startswith("verdict: "), str(results)


@pytest.mark.parametrize("extra", [[], ["-v"]])
def test_rows_whose_names_are_cut_stay_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    """At 80 columns names are cut to their end; when those ends are alike the layer_id column stays to tell the rows apart."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "m.npz", **{name: rng.standard_normal((60, 30)) for name in LONG_NAMES})
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["analyze", str(tmp_path / "m.npz"), "--layers", "3", "4", "5", *extra]) == 0
    rows = _table(capsys.readouterr().out)
    assert len(rows) == (6 if extra else 3)
    starts = [row.split()[0] for row in rows]
    assert len(set(starts)) == len(rows), "\n".join(rows)


def test_a_failed_row_s_reason_does_not_repeat_its_layer_and_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The row names the layer and the ``source:`` line the file: the wrapped reason says only what went wrong."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["demo", "--fit", "TPL"]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\nsummary:")[0].splitlines()[1:]
    assert not any("digits_cnn" in line or "(id " in line for line in table), "\n".join(table)
    conv1 = " ".join(out.split("\nsummary:")[0].split(" conv1 ")[1].split())
    assert "power-law fit failed" in conv1, conv1


def _axis_names(svg: str) -> list[str]:
    import html
    import re

    return [html.unescape(text) for text in re.findall(r'<text class="layer-name"[^>]*>([^<]*)</text>', svg)]


def test_flow_names_under_the_axis_tell_alike_layers_apart() -> None:
    """Names cut to their end all read '…_value_projection' under the report's flow; each now says its layer_id too."""
    from ww_core.views.report_svg import flow_svg

    rows = [
        (i, {"name": name.removesuffix(".weight"), "layer_id": i, "alpha": 3.0, "status": "success"}) for i, name in enumerate(LONG_NAMES)
    ]
    labels = _axis_names(flow_svg({"m": rows}))
    assert len(labels) == len(LONG_NAMES) and len(set(labels)) == len(labels), labels
    assert all(label.startswith(f"{i} ") for i, label in enumerate(labels)), labels
    short = [(i, {"name": name, "layer_id": i, "alpha": 3.0, "status": "success"}) for i, name in enumerate(("conv1", "fc"))]
    assert _axis_names(flow_svg({"m": short})) == ["conv1", "fc"]


def test_a_comparison_flow_names_no_layer_the_other_model_does_not_have_there() -> None:
    """Two models of different layers on one flow: the first model's names were put under the second's points."""
    from ww_core.views.report_svg import flow_svg

    def rows(names: tuple[str, ...]) -> list[tuple[int, dict[str, object]]]:
        return [(i, {"name": name, "layer_id": i, "alpha": 3.0, "status": "success"}) for i, name in enumerate(names)]

    labels = _axis_names(flow_svg({"a": rows(("conv1", "conv2", "fc1")), "b": rows(("fc1", "fc2"))}))
    assert labels == ["0", "1", "fc1"], labels  # positions where they differ by number; the third holds a's fc1 alone
    assert _axis_names(flow_svg({"a": rows(("fc1", "fc2")), "b": rows(("fc1", "fc2"))})) == ["fc1", "fc2"]


def test_the_comparison_page_says_why_a_layer_has_no_alpha(tmp_path: Path) -> None:
    """The per-layer table printed 'nan' for a layer one model lacks; it leaves the cell empty and says what that means."""
    import re

    from ww_core.models.comparison import compare
    from ww_core.views.report import comparison_report

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", fc1=rng.standard_t(3, size=(80, 40)), fc2=rng.standard_t(3, size=(80, 40)))
    np.savez(tmp_path / "b.npz", fc1=rng.standard_t(3, size=(80, 40)))
    page = comparison_report(compare(str(tmp_path / "a.npz"), str(tmp_path / "b.npz")))
    deltas = re.search(r'<table id="deltas".*?</table>', page, re.S)
    assert deltas and ">nan<" not in deltas.group(0).lower(), deltas
    assert "empty cell" in page.split('<table id="deltas"')[0].rsplit("<h2>", 1)[1]


def test_a_peft_folder_whose_factors_are_all_skipped_still_says_it_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A LoRA folder whose rank is under min_evals (rank 4 or 8 against the default 8; here 8 against 16): every bare factor
    is skipped, the run ends in an error, and the warning naming --peft was dropped with the run's other warnings."""
    from .test_model_folders import _peft_folder

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    folder = _peft_folder(tmp_path / "adapter")
    assert main(["analyze", str(folder), "--min-evals", "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "were skipped" in err, err
    assert "adapter_config.json" in err and "--peft" in err, err


def test_compare_fits_the_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``ww compare`` at 80 columns printed an 88-column table and a 300-character verdict line, as if not in a terminal."""
    from ww_core.models.comparison import compare

    paths = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        np.savez(tmp_path / f"m{seed}.npz", a=rng.standard_t(2 + seed, size=(200, 100)), b=rng.standard_t(2 + seed, size=(150, 100)))
        paths.append(str(tmp_path / f"m{seed}.npz"))
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["compare", *paths]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    comparison = compare(*paths)
    assert " ".join(out.split("\n\n", 1)[1].split()) == " ".join(str(comparison.verdict).split())
    header = out.splitlines()[0].split()
    assert header[:2] == ["rank", "name"] and "alpha" in header
    monkeypatch.delenv("COLUMNS")
    assert main(["compare", *paths]) == 0  # not a terminal: never cut
    assert capsys.readouterr().out.rstrip() == str(comparison).rstrip()


def test_the_log_counts_the_layers_analyzed_not_those_listed(caplog: pytest.LogCaptureFixture) -> None:
    """With 2 of 3 layers excluded by ``layers=``, -v said 'analyzed 3 layers'."""
    rng = np.random.default_rng(0)
    model = {f"fc{i}": rng.standard_normal((80, 40)) for i in range(3)}
    with caplog.at_level("INFO", logger="ww_core"):
        ww_core.analyze(model, layers=[1], workers=1)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("analyzed")]
    assert len(said) == 1 and said[0].startswith("analyzed 1 of 3 layers"), said
