"""The report's layout in a real headless Chromium: the table fits the page, the fitted tail stays inside the ESD plot.

Measured, not assumed: a full-page screenshot is exactly as wide as the window (nothing sticks out to
the right: the reason column was cut off), and the fitted line's ends lie inside the plot's frame
(the y-range stopped at the smallest bin, so a steep tail ran off the bottom).
"""

from __future__ import annotations

import base64
import itertools
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import ww_core

from .cdp import Browser, find_browser

WIDTH = 1200
LONG = "transformer.encoder.layers.11.self_attention.query_key_value_projection_with_a_long_name"


def _model(path: Path) -> Path:
    """Wide rows: long names, a failed layer whose reason is long, steep and shallow tails (alpha from ~1.5 to ~9)."""
    rng = np.random.default_rng(0)
    layers = {f"{LONG}.{i}": rng.standard_t(1.2 + i, size=(200, 120)) for i in range(8)}
    broken = rng.standard_normal((96, 64))
    broken[0, :] = np.inf
    np.savez(path, **layers, broken_layer_whose_weights_hold_infinities=broken)
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, ww_core.Results]]:
    executable = find_browser()
    if executable is None:
        pytest.fail("no Chromium found: install it (apt-get install chromium, as root) or set WW_BROWSER; this test must not skip")
    folder = tmp_path_factory.mktemp("layout")
    results = ww_core.analyze(str(_model(folder / "model.npz")))
    results.to_html(folder / "report.html")
    browser = Browser(executable, width=WIDTH, height=900)
    browser.page("Page.enable")
    browser.page("Page.navigate", url=(folder / "report.html").resolve().as_uri())
    browser.wait_for("Page.loadEventFired")
    yield browser, results
    browser.close()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_a_full_page_screenshot_is_no_wider_than_the_window(page: tuple[Browser, ww_core.Results]) -> None:
    browser, _ = page
    viewport = browser.evaluate("document.documentElement.clientWidth")
    content = browser.page("Page.getLayoutMetrics")["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": content["width"], "height": content["height"], "scale": 1}
    shot = base64.b64decode(browser.page("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"])
    assert _png_size(shot)[0] == viewport
    table = browser.evaluate(
        "(() => { const t = document.getElementById('layers').getBoundingClientRect();"
        " const w = document.querySelector('.table-scroll').getBoundingClientRect(); return [t.right, w.right]; })()"
    )
    assert table[1] <= viewport
    reasons = browser.evaluate("Array.from(document.querySelectorAll('#layers td.reason')).map(td => td.getBoundingClientRect().right)")
    assert reasons and all(right <= viewport for right in reasons)  # the reason column is on the page, wrapped


def _fit_inside_frame(browser: Browser) -> tuple[list[float], list[float]]:
    """The fitted line's ends and the plot frame (x0, y0, x1, y1) in the open ESD's coordinates."""
    return browser.evaluate(
        "(() => { const p = document.getElementById('esd-panel'); const f = p.querySelector('line.fit');"
        " const r = p.querySelector('rect.frame'); const n = (e, k) => Number(e.getAttribute(k));"
        " return [[n(f,'x1'), n(f,'y1'), n(f,'x2'), n(f,'y2')],"
        " [n(r,'x'), n(r,'y'), n(r,'x') + n(r,'width'), n(r,'y') + n(r,'height')]]; })()"
    )


def test_the_worst_layer_is_open_and_every_fitted_tail_stays_in_the_plot(page: tuple[Browser, ww_core.Results]) -> None:
    browser, results = page
    fitted = [row for row in results.details if row.get("status") == "success"]
    worst = max(fitted, key=lambda row: max(2 - row["alpha"], row["alpha"] - 6))
    assert browser.evaluate("document.getElementById('esd-panel').dataset.layer") == worst["name"]
    assert min(row["alpha"] for row in fitted) < 2 < 6 < max(row["alpha"] for row in fitted)  # shallow and steep tails
    for row in fitted:
        browser.click(f'#layers tbody tr[data-name="{row["name"]}"] td:nth-child(2)')
        (x1, y1, x2, y2), (left, top, right, bottom) = _fit_inside_frame(browser)
        for x, y in ((x1, y1), (x2, y2)):
            assert left - 0.5 <= x <= right + 0.5 and top - 0.5 <= y <= bottom + 0.5, (row["name"], row["alpha"], (x, y))


def test_a_truncated_power_law_is_drawn_as_its_curve(tmp_path: Path) -> None:
    """With fit='TPL' the panel drew a straight line labelled 'fitted power law' from alpha and xmin alone."""
    executable = find_browser()
    if executable is None:
        pytest.fail("no Chromium found: install it (apt-get install chromium, as root) or set WW_BROWSER; this test must not skip")
    results = ww_core.analyze({"fc": np.random.default_rng(0).standard_t(3, size=(400, 300))}, fit="TPL", workers=1)
    assert results.details[0]["status"] == "success" and results.details[0]["Lambda"] > 0
    results.to_html(tmp_path / "tpl.html")
    browser = Browser(executable, width=WIDTH, height=900)
    try:
        browser.page("Page.enable")
        browser.page("Page.navigate", url=(tmp_path / "tpl.html").resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        points, frame, info = browser.evaluate(
            "(() => { const p = document.getElementById('esd-panel'); const f = p.querySelector('polyline.fit');"
            " const r = p.querySelector('rect.frame'); const n = (e, k) => Number(e.getAttribute(k));"
            " return [f ? f.getAttribute('points').split(' ').map(q => q.split(',').map(Number)) : [],"
            " [n(r,'x'), n(r,'y'), n(r,'x') + n(r,'width'), n(r,'y') + n(r,'height')],"
            " p.querySelector('.fit-info').textContent]; })()"
        )
    finally:
        browser.close()
    assert len(points) == 48 and "truncated power law (Lambda" in info, info
    left, top, right, bottom = frame
    assert all(left - 0.5 <= x <= right + 0.5 and top - 0.5 <= y <= bottom + 0.5 for x, y in points)
    slopes = [(y2 - y1) / (x2 - x1) for (x1, y1), (x2, y2) in itertools.pairwise(points)]
    assert max(slopes) - min(slopes) > 0.05  # a curve bending down, not one straight line
