"""The report page explains itself: capped alphas marked, columns defined, the worst layer's ESD open, ESDs kept by the cache.

The page's layout (the table within the page, the fitted tail inside the ESD plot) is checked in Chromium: tests/browser.
"""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core.cli import main
from ww_core.views.report import COLUMN_HINTS, results_report, worst_layer
from ww_core.views.report_svg import flow_svg


def _page_data(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="ww-data">(.*?)</script>', html, re.S)
    assert found is not None
    return dict(json.loads(found.group(1)))


def _model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"block.{i}.fc": rng.standard_t(1.5 + i, size=(96, 64)) for i in range(4)}


def test_an_alpha_above_the_flow_s_axis_is_marked() -> None:
    """75.3 was drawn at 20, the top of the axis, like any alpha of 20."""
    rows = [(0, {"name": "a", "alpha": 3.0, "status": "success"}), (1, {"name": "b", "alpha": 75.3, "status": "success"})]
    svg = flow_svg({"m": rows})
    capped = re.findall(r'<[^>]*class="capped"[^>]*>.*?</\w+>', svg)
    assert len(capped) == 1 and "75.3" in capped[0] and 'data-row="1"' in capped[0]
    assert 'class="capped"' not in flow_svg({"m": rows[:1]})


def test_the_table_s_columns_are_defined_on_the_page() -> None:
    html = results_report(ww_core.analyze(_model()))
    for column in ("D", "alpha_weighted", "log_norm", "stable_rank"):
        header = escape(column).replace("_", "_<wbr>")  # a header may break after an underscore
        assert f'<th title="{escape(COLUMN_HINTS[column])}">{header}</th>' in html
        assert f"<dt>{column}</dt>" in html  # the glossary under the table
    assert '<div class="table-scroll">' in html  # a table wider than the page scrolls within it


def test_the_worst_layer_s_esd_is_shown_by_default() -> None:
    results = ww_core.analyze(_model())
    alphas = [row["alpha"] for row in results.details]
    farthest = max(range(len(alphas)), key=lambda i: max(2 - alphas[i], alphas[i] - 6))
    assert worst_layer(results) == farthest
    assert _page_data(results_report(results))["open"] == str(farthest)


def test_worst_layer_prefers_a_layer_outside_the_band() -> None:
    results = ww_core.analyze(_model())
    for row, alpha in zip(results.details, (3.0, 1.2, 5.9, 8.0)):
        row["alpha"] = alpha
    assert worst_layer(results) == 3  # 2 above the band beats 0.8 below it


def test_a_report_rebuilt_from_the_cache_has_every_esd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "m.npz", **_model())
    cache, first, second = tmp_path / "rows.jsonl", tmp_path / "first.html", tmp_path / "second.html"
    assert main(["report", str(tmp_path / "m.npz"), "--cache", str(cache), "-o", str(first)]) == 0
    assert main(["report", str(tmp_path / "m.npz"), "--cache", str(cache), "-o", str(second)]) == 0
    assert "no ESD" not in capsys.readouterr().err
    built, rebuilt = _page_data(first.read_text())["esd"], _page_data(second.read_text())["esd"]
    assert set(rebuilt) == set(built) == {"0", "1", "2", "3"}
    assert rebuilt == built  # the same histogram, fit and tail, from the cache


def test_the_cache_keeps_a_histogram_not_the_eigenvalues(tmp_path: Path) -> None:
    ww_core.analyze(_model(), cache=tmp_path / "rows.jsonl")
    records = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert all(len(record["esds"]) == 1 for record in records)
    assert all(sum(esd["c"]) == esd["n"] == 64 and len(esd["c"]) <= 60 for record in records for esd in record["esds"].values())


def test_a_damaged_histogram_in_the_cache_is_not_drawn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Restored data is checked like input: a histogram whose counts do not add up is left out, and the report says so."""
    np.savez(tmp_path / "m.npz", **_model())
    cache, page = tmp_path / "rows.jsonl", tmp_path / "r.html"
    ww_core.analyze(str(tmp_path / "m.npz"), cache=cache)
    records = [json.loads(line) for line in cache.read_text().splitlines()]
    (histogram,) = records[0]["esds"].values()
    histogram["c"][0] += 1  # the counts no longer sum to n
    cache.write_text("".join(json.dumps(record) + "\n" for record in records))
    assert main(["report", str(tmp_path / "m.npz"), "--cache", str(cache), "-o", str(page)]) == 0
    err = capsys.readouterr().err
    assert err.count("ww: warning:") == 1 and "1 layers restored from the cache" in err and "no usable ESD histogram" in err
    assert set(_page_data(page.read_text())["esd"]) == {"1", "2", "3"}
