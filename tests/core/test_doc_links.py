"""Every relative link in README.md and docs/ resolves inside the repository, anchors included."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.M)
CODE_BLOCK = re.compile(r"```.*?```", re.S)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def links(page: Path) -> list[str]:
    return LINK.findall(CODE_BLOCK.sub("", page.read_text()))


def anchors(page: Path) -> set[str]:
    return {anchor(h) for h in HEADING.findall(CODE_BLOCK.sub("", page.read_text()))}


def test_anchor_rule() -> None:
    assert anchor("Plugin discovery and routing") == "plugin-discovery-and-routing"
    assert anchor("Frameworks (adapters)") == "frameworks-adapters"
    assert anchor("Deliberate differences from weightwatcher 0.7.7") == "deliberate-differences-from-weightwatcher-077"


def test_docs_exist() -> None:
    assert len(PAGES) > 3, "docs/ holds the design pages"


def broken_links(page: Path, root: Path) -> list[str]:
    """The relative links of ``page`` that leave ``root``, name no file, or name a missing heading."""
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto: — not this test's business
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if root not in resolved.parents and resolved != root:
            broken.append(f"{target} (leaves the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target} (no heading #{fragment})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(page: Path) -> None:
    assert not broken_links(page, ROOT), f"{page.relative_to(ROOT)}: broken links: {broken_links(page, ROOT)}"


def test_the_check_catches_broken_links(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "other.md").write_text("# Other\n")
    (tmp_path / "outside.md").write_text("# Outside\n")
    page = root / "docs" / "page.md"
    page.write_text(
        "# Title\n[a](#title) [b](other.md#other) [c](../../outside.md) [d](gone.md) [e](other.md#nope) [f](https://x.org)\n"
        "```\n[g](in-code.md)\n```\n"
    )
    assert broken_links(page, root) == [
        "../../outside.md (leaves the repository)",
        "gone.md (no such file)",
        "other.md#nope (no heading #nope)",
    ]


def test_every_docs_page_is_in_the_index() -> None:
    index = ROOT / "docs" / "README.md"
    listed = {target.partition("#")[0] for target in links(index)}
    missing = [page.name for page in PAGES if page.parent.name == "docs" and page != index and page.name not in listed]
    assert not missing, f"docs/README.md does not list {missing}"
