"""Read docs/porting.md's tables: every reference method and analyze() keyword with what ww does."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "porting.md"
STATUSES = ("same", "different", "warned", "refused", "not ported")


def _rows(section: str) -> list[list[str]]:
    text = PAGE.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    cells = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]
    return [row for row in cells[2:]]  # header and rule first


def methods() -> dict[str, str]:
    """Method name → status (a row may name several methods)."""
    found = {}
    for row in _rows("Methods"):
        for name in re.findall(r"`([A-Za-z_]\w*)`", row[0]):
            found[name] = row[1]
    return found


def keywords() -> dict[str, tuple[str, str]]:
    """analyze() keyword → (the reference's default as written, status)."""
    return {row[0].strip("`"): (row[1].strip("`"), row[2]) for row in _rows("analyze() keywords")}


def other_keywords() -> dict[tuple[str, str], str]:
    """(method, keyword) → status, for the constructor's and the other ported methods' keywords (a row may name several)."""
    found = {}
    for row in _rows("Other methods' keywords"):
        for method in re.findall(r"`([A-Za-z_]\w*)`", row[0]):
            for keyword in re.findall(r"`([A-Za-z_]\w*)`", row[1]):
                found[(method, keyword)] = row[2]
    return found
