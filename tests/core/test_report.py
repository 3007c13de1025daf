"""The HTML report: one self-contained file (nothing fetched), every row, compact ESDs, compare mode, CLI."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core.cli import main
from ww_core.results.verdict import verdict_line
from ww_core.views.report import esd_payload, summary_sentences


def _layers(count: int, seed: int = 0, shape: tuple[int, int] = (96, 64)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"block.{i}.fc": rng.standard_t(1.5 + (i % 12) / 3, size=shape) for i in range(count)}


def _esd_data(html: str) -> dict[str, dict[str, object]]:
    found = re.search(r'<script type="application/json" id="ww-data">(.*?)</script>', html, re.S)
    assert found is not None
    return dict(json.loads(found.group(1))["esd"])


def assert_self_contained(html: str) -> None:
    """No URL of any scheme, no external script, style, image or font."""
    assert not re.search(r"(https?:|ftp:|//[a-z])", html, re.I)
    assert not re.search(r"<(script|img|link|iframe)[^>]*\b(src|href)=", html, re.I)
    assert "@import" not in html and "url(http" not in html


def test_report_of_the_demo_is_self_contained(tmp_path: Path) -> None:
    results = ww_core.analyze(_demo())
    html = results.to_html(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text() == html
    assert_self_contained(html)
    assert html.count('<tr class="layer') == len(results.details) == 5
    assert set(_esd_data(html)) == {"0", "1", "2", "3", "4"}
    assert "3 of 5 analyzed layers have alpha between 2 and 6" in html
    assert "read by ww-core" in html


def _demo() -> str:
    from ww_core.cli.demo import model_path

    return str(model_path())


def test_esd_payload_is_a_compact_histogram_with_the_fit() -> None:
    evals = np.sort(np.random.default_rng(0).pareto(2.0, 5000) + 1.0)
    row = {"alpha": 3.0, "xmin": 2.0, "xmax": float(evals[-1])}
    payload = esd_payload(evals, row)
    assert payload is not None
    assert sum(payload["c"]) == payload["n"] == 5000 and len(payload["c"]) == 60
    assert payload["tail"] == int(np.count_nonzero(evals >= 2.0))
    assert payload["lo"] == evals[0] and payload["hi"] >= evals[-1]
    assert esd_payload(np.zeros(10), {}) is None


def test_summary_sentences_say_what_the_band_means() -> None:
    results = ww_core.analyze(_layers(12))
    text, good = summary_sentences(results)
    assert text.count(". ") + text.endswith(".") >= 2 and "between 2 and 6" in text
    assert not good and "may be" in text


def test_failed_layers_are_never_summed_up_as_well_trained() -> None:
    """A model whose other layers sit in the band said 'No layer is flagged ... looks well trained' beside NaN layers."""
    rng = np.random.default_rng(0)
    layers = {f"fc{i}": rng.standard_t(3, size=(200, 100)) for i in range(3)}
    layers["broken"] = np.full((200, 100), np.nan)
    results = ww_core.analyze(layers)
    assert [row["status"] for row in results.details].count("failed") == 1
    text, good = summary_sentences(results)
    assert not good and "well trained" not in text
    assert "1 layer failed" in text


def test_a_300_layer_report_stays_small(tmp_path: Path) -> None:
    results = ww_core.analyze(_layers(300, shape=(300, 200)), workers=1)
    html = results.to_html()
    assert html.count('<tr class="layer') == 300 and len(_esd_data(html)) == 300
    assert len(html.encode()) < 1_000_000


def test_names_cannot_inject_markup() -> None:
    rng = np.random.default_rng(0)
    hostile = ["</script><script>alert(1)</script>", '"><img src=x>']
    results = ww_core.analyze({name: rng.standard_normal((60, 30)) for name in hostile})
    html = results.to_html()
    assert "<script>alert(1)" not in html and "<img src=x>" not in html
    assert html.count("<script") == 2


def test_failed_and_skipped_rows_carry_reasons_and_warnings_explain_themselves() -> None:
    layers = _layers(4)
    layers["broken"] = np.full((60, 30), np.nan)
    layers["tiny"] = np.ones((3, 2))
    html = ww_core.analyze(layers).to_html()
    assert re.search(r'<tr class="layer failed"[^>]*data-reason="[^"]*broken[^"]*NaN', html)
    assert "num_evals=2 &lt; min_evals=8" in html
    assert re.search(r'<text class="failed"[^>]*>×<title>broken: failed: ', html)
    assert 'title="over-trained: alpha &lt; 2' in html or 'title="under-trained: alpha &gt; 6' in html


def test_repr_html_is_a_static_table() -> None:
    results = ww_core.analyze(_layers(3))
    fragment = results._repr_html_()
    assert "<script" not in fragment and fragment.count('<tr class="layer') == 3 and "between 2 and 6" in fragment


def test_compare_report_ranks_and_shows_deltas(tmp_path: Path) -> None:
    comparison = ww_core.compare(_layers(6, seed=1), _layers(6, seed=2), names=["early", "late"])
    html = comparison.to_html(tmp_path / "cmp.html")
    assert_self_contained(html)
    best = comparison.ranking[0]
    assert escape(str(comparison.verdict)) in html and "ranked by mean alpha" in html
    ranking = re.search(r'<table id="ranking".*?</table>', html, re.S)
    assert ranking is not None
    assert ranking.group(0).index(f"<td>{best}</td>") < ranking.group(0).index(f"<td>{comparison.ranking[1]}</td>")
    deltas = re.search(r'<table id="deltas".*?</table>', html, re.S)
    assert deltas is not None and deltas.group(0).count("<tr>") == 1 + 6 and "delta_late" in deltas.group(0)
    fragment = comparison._repr_html_()
    assert "<script" not in fragment and fragment.index(f"<td>{best}</td>") < fragment.index(f"<td>{comparison.ranking[1]}</td>")


def test_cli_report_writes_one_file_or_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "demo.html"
    assert main(["report", "-o", str(target)]) == 0
    assert capsys.readouterr().out == f"wrote {target}\n"
    assert_self_contained(target.read_text())
    assert main(["report", "-o", "-", "--names", "Digits CNN"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>") and "<h1>ww report: Digits CNN</h1>" in page
    assert main(["report", "-o", "-", "--names", "a", "b"]) == 2
    np.savez(tmp_path / "a.npz", **_layers(3, seed=1))
    np.savez(tmp_path / "b.npz", **_layers(3, seed=2))
    assert main(["report", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "-o", str(tmp_path / "cmp.html")]) == 0
    assert '<table id="deltas"' in (tmp_path / "cmp.html").read_text()
    assert main(["report", "--layers", "99", "-o", str(tmp_path / "none.html")]) == 2
    assert not (tmp_path / "none.html").exists()


def _random_layers_in_the_band() -> dict[str, np.ndarray]:
    """Untrained Gaussian layers whose fitted alphas all fall in 2–6 (seeds found by scanning; a random matrix often does)."""
    found: dict[str, np.ndarray] = {}
    for seed in range(200):
        weights = np.random.default_rng(seed).standard_normal((256, 128))
        alpha = ww_core.analyze({"fc": weights}, workers=1).details[0]["alpha"]
        if 2 <= alpha <= 6:
            found[f"fc{len(found)}"] = weights
        if len(found) == 3:
            return found
    raise AssertionError("no Gaussian layer with alpha in 2-6")


def test_random_weights_in_the_band_are_not_called_well_trained() -> None:
    """Every layer of an untrained Gaussian model sat in 2–6 and both verdicts said 'the model looks well trained'."""
    results = ww_core.analyze(_random_layers_in_the_band(), workers=1)
    assert all(2 <= row["alpha"] <= 6 for row in results.details)
    text, good = summary_sentences(results)
    line = verdict_line(results.details)
    for said in (text, line):
        assert "well trained" not in said.replace("well-trained networks", ""), said
        assert "random" in said and "mp_fit" in said, said
    assert good  # no layer is flagged, and the page says so


def test_a_series_without_a_clear_best_is_not_headed_best_first(tmp_path: Path) -> None:
    """Two draws of one distribution: ordered by mean alpha, but no best named, so the page must not call the order 'best first'."""
    comparison = ww_core.compare(_layers(6, seed=1), _layers(6, seed=2), names=["early", "late"])
    assert comparison.verdict.metric == "alpha" and comparison.verdict.best is None
    html = comparison.to_html(tmp_path / "cmp.html")
    assert "best first" not in html and "Models (ordered by mean alpha, lowest first; no best named)" in html


def test_a_series_with_a_clear_best_is_headed_best_first() -> None:
    """Light-tailed (Gaussian-like, untrained) layers against heavy-tailed ones: the heavy-tailed model is named best."""
    rng = np.random.default_rng(0)
    trained = {f"fc{i}": rng.standard_t(2.5, size=(300, 200)) for i in range(6)}
    untrained = {f"fc{i}": rng.standard_normal((300, 200)) for i in range(6)}
    comparison = ww_core.compare(untrained, trained, names=["untrained", "trained"])
    assert comparison.verdict.best == "trained"
    assert "<h2>Models (best first)</h2>" in comparison.to_html()


def test_a_truncated_power_law_row_gives_the_page_its_curve() -> None:
    """With fit='TPL' the page drew a straight power law from alpha and xmin alone: the fitted curve needs Lambda and its normalizer."""
    rng = np.random.default_rng(0)
    results = ww_core.analyze({"fc": rng.standard_t(3, size=(400, 300))}, fit="TPL", workers=1)
    row = results.details[0]
    assert row["status"] == "success" and row["Lambda"] > 0, row
    payload = esd_payload(results.esds["fc"], row)
    assert payload is not None and payload["lam"] == row["Lambda"]
    # the density the page draws integrates to 1 over [xmin, inf): checked on a grid, independent of quad
    x = np.geomspace(row["xmin"], row["xmin"] * 1e6, 200_000)
    density = np.exp(-payload["lnorm"]) * x ** -row["alpha"] * np.exp(-row["Lambda"] * x)
    assert np.trapezoid(density, x) == pytest.approx(1.0, rel=1e-3)
    plain = esd_payload(results.esds["fc"], {**row, "Lambda": None})
    assert plain is not None and plain["lam"] is None
