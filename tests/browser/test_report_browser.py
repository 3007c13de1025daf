"""The HTML report in a real headless Chromium: no console errors, no requests, one row per layer, sorting, ESDs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import ww_core

from .cdp import Browser, find_browser

ARTIFACTS = Path(os.environ.get("WW_ARTIFACTS", "artifacts")) / "browser"


def _model(path: Path) -> Path:
    rng = np.random.default_rng(0)
    layers = {f"encoder.layer.{i}.dense": rng.standard_t(1.5 + i / 6, size=(96, 64)) for i in range(24)}
    broken = rng.standard_normal((96, 64))
    broken[0, 0] = np.nan
    np.savez(path, **layers, broken=broken, tiny=rng.standard_normal((4, 3)))
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[ww_core.Results, Path]:
    folder = tmp_path_factory.mktemp("report")
    results = ww_core.analyze(str(_model(folder / "model.npz")))
    path = folder / "report.html"
    results.to_html(path)
    return results, path


@pytest.fixture(scope="module")
def browser(report: tuple[ww_core.Results, Path]) -> Iterator[Browser]:
    executable = find_browser()
    if executable is None:
        pytest.fail("no Chromium found: install it (apt-get install chromium) or set WW_BROWSER; this test must not skip")
    opened = Browser(executable)
    for domain in ("Page", "Runtime", "Log", "Network"):
        opened.page(f"{domain}.enable")
    opened.page("Page.navigate", url=report[1].resolve().as_uri())
    opened.wait_for("Page.loadEventFired")
    yield opened
    opened.close()


def test_one_table_row_per_layer(browser: Browser, report: tuple[ww_core.Results, Path]) -> None:
    results, _ = report
    names = browser.evaluate("Array.from(document.querySelectorAll('#layers tbody tr')).map(tr => tr.dataset.name)")
    assert names == [row["name"] for row in results.details]
    cells = "#layers tbody tr.failed td.reason, #layers tbody tr.skipped td.reason"
    reasons = browser.evaluate(f"Array.from(document.querySelectorAll('{cells}')).map(td => td.textContent)")
    assert len(reasons) == 2 and all(reasons)


def test_sorting_by_alpha(browser: Browser) -> None:
    column = browser.evaluate("Array.from(document.querySelectorAll('#layers thead th')).findIndex(th => th.textContent === 'alpha')")
    read = f"Array.from(document.querySelectorAll('#layers tbody tr')).map(tr => tr.cells[{column}].dataset.v)"
    browser.click(f"#layers thead th:nth-child({column + 1})")
    ascending = [float(v) for v in browser.evaluate(read) if v != ""]
    assert len(ascending) == 24 and ascending == sorted(ascending)
    assert browser.evaluate(read)[-2:] == ["", ""]  # the failed and skipped rows (no alpha) last
    browser.click(f"#layers thead th:nth-child({column + 1})")
    descending = [float(v) for v in browser.evaluate(read) if v != ""]
    assert descending == sorted(ascending, reverse=True)


def test_clicking_a_row_shows_its_esd(browser: Browser, report: tuple[ww_core.Results, Path]) -> None:
    results, _ = report
    for name in ("encoder.layer.3.dense", "encoder.layer.17.dense"):
        browser.click(f'#layers tbody tr[data-name="{name}"] td:nth-child(2)')
        assert browser.evaluate("document.getElementById('esd-panel').dataset.layer") == name
        drawn = browser.evaluate(
            "(() => { const p = document.getElementById('esd-panel'); return [p.querySelectorAll('svg rect.bar').length,"
            " p.querySelectorAll('line.fit').length, p.querySelectorAll('line.xmin').length, p.textContent]; })()"
        )
        assert drawn[0] > 5 and drawn[1] == 1 and drawn[2] == 1
        assert f"alpha = {results.row(name)['alpha']:.3g}" in drawn[3]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.screenshot(str(ARTIFACTS / "report.png"))  # kept as a CI artifact: the page with an ESD open
    browser.click('#layers tbody tr[data-name="broken"] td:nth-child(2)')
    assert "no ESD" in browser.evaluate("document.getElementById('esd-panel').textContent")


def test_filtering_rows(browser: Browser) -> None:
    type_in = "(() => {{ const f = document.getElementById('filter'); f.value = '{}'; f.dispatchEvent(new Event('input')); }})()"
    browser.evaluate(type_in.format("layer.1"))
    visible = "Array.from(document.querySelectorAll('#layers tbody tr')).filter(tr => !tr.hidden)"
    shown = browser.evaluate(f"{visible}.map(tr => tr.dataset.name)")
    assert sorted(shown) == sorted(["encoder.layer.1.dense", *[f"encoder.layer.{i}.dense" for i in range(10, 20)]])
    browser.evaluate(type_in.format(""))


def test_no_console_errors_and_no_network_requests(browser: Browser, report: tuple[ww_core.Results, Path]) -> None:
    browser.evaluate("1")  # drain pending events
    methods = [event.get("method") for event in browser.events]
    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"]
    console = [e for e in browser.events if e.get("method") == "Runtime.consoleAPICalled"]
    errors += [e for e in console if e["params"]["type"] in ("error", "assert", "warning")]
    logged = [e for e in browser.events if e.get("method") == "Log.entryAdded"]
    errors += [e for e in logged if e["params"]["entry"]["level"] in ("error", "warning")]
    assert errors == []
    requested = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert requested == [report[1].resolve().as_uri()], methods


def test_comparison_report_sorts_and_stays_quiet(browser: Browser, tmp_path: Path) -> None:
    """Runs last: it navigates the shared page to a comparison report."""
    rng = np.random.default_rng(1)
    models = [{f"fc{i}": rng.standard_t(2 + k, size=(80, 40)) for i in range(5)} for k in range(3)]
    comparison = ww_core.compare(*models, names=["early", "middle", "late"])
    path = tmp_path / "compare.html"
    comparison.to_html(path)
    before = len(browser.events)
    browser.page("Page.navigate", url=path.resolve().as_uri())
    browser.wait_for("Page.loadEventFired", since=before)
    ranked = browser.evaluate("Array.from(document.querySelectorAll('#ranking tbody tr')).map(tr => tr.cells[1].textContent)")
    assert ranked == comparison.ranking
    browser.click("#deltas thead th:nth-child(5)")  # delta_middle
    read = "Array.from(document.querySelectorAll('#deltas tbody tr')).map(tr => tr.cells[4].dataset.v)"
    deltas = [float(v) for v in browser.evaluate(read)]
    assert deltas == sorted(deltas) and len(deltas) == 5
    later = browser.events[before:]
    assert not [e for e in later if e.get("method") == "Runtime.exceptionThrown"]
    requested = [e["params"]["request"]["url"] for e in later if e.get("method") == "Network.requestWillBeSent"]
    assert requested == [path.resolve().as_uri()]
