"""The ``ww correlate`` page in a real headless Chromium: quiet, offline, one scatter plot per metric, sortable table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import ww_core
from ww_core.models.correlation import CORRELATED_METRICS

from .cdp import Browser, find_browser

DFS = (2.0, 2.5, 3.5, 5.0, 8.0)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[ww_core.Correlation, Path]:
    models = [{f"fc{i}": np.random.default_rng(seed).standard_t(df, (120, 60)) for i in range(2)} for seed, df in enumerate(DFS)]
    table = ww_core.correlate(models, [0.9, 0.85, 0.8, 0.7, 0.6], score="test_accuracy", names=[f"df{df}" for df in DFS])
    path = tmp_path_factory.mktemp("correlate") / "correlate.html"
    table.to_html(path)
    return table, path


@pytest.fixture(scope="module")
def browser(page: tuple[ww_core.Correlation, Path]) -> Iterator[Browser]:
    executable = find_browser()
    if executable is None:
        pytest.fail("no Chromium found: install it (apt-get install chromium) or set WW_BROWSER; this test must not skip")
    opened = Browser(executable)
    for domain in ("Page", "Runtime", "Log", "Network"):
        opened.page(f"{domain}.enable")
    opened.page("Page.navigate", url=page[1].resolve().as_uri())
    opened.wait_for("Page.loadEventFired")
    yield opened
    opened.close()


def test_one_drawn_scatter_per_metric_with_a_dot_per_model(browser: Browser) -> None:
    metrics = browser.evaluate("Array.from(document.querySelectorAll('svg.scatter')).map(s => s.dataset.metric)")
    assert metrics == list(CORRELATED_METRICS)
    sizes = browser.evaluate("Array.from(document.querySelectorAll('svg.scatter')).map(s => s.getBoundingClientRect().width)")
    assert all(size > 100 for size in sizes)
    dots = browser.evaluate("Array.from(document.querySelectorAll('svg.scatter')).map(s => s.querySelectorAll('circle').length)")
    assert dots == [len(DFS)] * len(CORRELATED_METRICS)
    tip = browser.evaluate("document.querySelector('svg.scatter circle title').textContent")
    assert tip.startswith("df") and "test_accuracy" in tip


def test_table_sorts_and_the_page_stays_quiet_and_offline(browser: Browser, page: tuple[ww_core.Correlation, Path]) -> None:
    browser.click("#correlations thead th:nth-child(5)")  # kendall
    read = "Array.from(document.querySelectorAll('#correlations tbody tr')).map(tr => tr.cells[4].dataset.v)"
    taus = [float(v) for v in browser.evaluate(read) if v]
    assert taus == sorted(taus) and len(taus) == len(CORRELATED_METRICS)
    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"]
    console = [e for e in browser.events if e.get("method") == "Runtime.consoleAPICalled"]
    errors += [e for e in console if e["params"]["type"] in ("error", "assert", "warning")]
    logged = [e for e in browser.events if e.get("method") == "Log.entryAdded"]
    errors += [e for e in logged if e["params"]["entry"]["level"] in ("error", "warning")]
    assert errors == []
    requested = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert requested == [page[1].resolve().as_uri()]
