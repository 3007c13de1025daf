"""The README stays one screen, and the examples of README.md and docs/ run as written where their install line leaves you.

README's first command installs ww-core alone (numpy, scipy, pluggy). Each example runs in a child
Python where every installed distribution that install would not bring is hidden: it keeps the
standard library, ww-core and its dependencies, plus the extras a block names on its first line
(``# pip install './packages/ww-core[pandas]'``); every installed adapter is disabled. So an example
that needs pandas or a framework without saying so fails here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = {page: re.findall(r"```python\n(.*?)```", page.read_text(), re.S) for page in PAGES}
CASES = [(page, index) for page, blocks in BLOCKS.items() for index in range(len(blocks))]
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
#: ``pip install ./packages/ww-core`` or ``'./packages/ww-core[plot,pandas]'``: the extras it installs.
CORE_INSTALL = re.compile(r"pip install '?\./packages/ww-core(?:\[([\w,]+)\])?'?")
#: The largest README, in bytes: one screen of what ww is, the two commands, install, two examples, links.
README_LIMIT = 6 * 1024

#: Run as the child: hide every module the install line does not bring, then run a script or ``-m module``.
BOOT = """
import runpy, sys
hidden = set(open(sys.argv[1]).read().split())
class NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        top = name.partition(".")[0]
        if top in hidden:
            raise ModuleNotFoundError(f"No module named {top!r} (not installed by the example's install line)", name=top)
        return None
sys.meta_path.insert(0, NotInstalled)
if sys.argv[2] == "-m":
    sys.argv = sys.argv[3:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def not_installed_by(extras: frozenset[str]) -> set[str]:
    """Top-level modules of this environment's distributions and adapters that installing ww-core with ``extras`` would not bring."""
    wanted: list[tuple[str, frozenset[str]]] = [("ww-core", extras)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while wanted:
        name, chosen = wanted.pop()
        if (canonicalize_name(name), chosen) in seen:
            continue
        seen.add((canonicalize_name(name), chosen))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:  # a dependency for another platform or Python
            continue
        for text in requires:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in chosen | {""}):
                wanted.append((requirement.name, frozenset(requirement.extras)))
    brought = {name for name, _ in seen}
    owners = metadata.packages_distributions()
    adapters = {entry.value.partition(":")[0].partition(".")[0] for entry in metadata.entry_points(group="ww")}
    other = {module for module, dists in owners.items() if not brought & {canonicalize_name(d) for d in dists}}
    return (other | adapters) - {"ww_core"}


def extras_named(block: str) -> frozenset[str]:
    """The extras a block's first line installs (``# pip install './packages/ww-core[pandas]'``); none by default."""
    first = block.splitlines()[0] if block.strip() else ""
    found = CORE_INSTALL.search(first) if first.startswith("#") else None
    return frozenset(found.group(1).split(",")) if found and found.group(1) else frozenset()


def run_installed(args: list[str], extras: frozenset[str], folder: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in ``folder`` as in an environment holding ww-core (and ``extras``) only, adapters disabled."""
    hidden = folder / ".hidden-modules"
    hidden.write_text("\n".join(sorted(not_installed_by(extras))))
    adapters = ",".join(entry.name for entry in metadata.entry_points(group="ww"))
    env = {**os.environ, "WW_DISABLE_PLUGINS": adapters, "MPLBACKEND": "Agg"}
    command = [sys.executable, "-c", BOOT, str(hidden), *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def run_block(page: Path, index: int, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run a page's Python block after its earlier ones (later blocks may use names the first defined)."""
    blocks = [block for block in BLOCKS[page][: index + 1] if "hookimpl" not in block]
    script = folder / f"{page.stem}_block{index}.py"
    script.write_text("\n".join(blocks))
    return run_installed([str(script)], frozenset().union(*map(extras_named, blocks)), folder)


def test_readme_is_one_screen() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; keep it to one screen and move the rest to docs/guide.md"
    assert "## Bad input" not in README.read_text(), "docs/bad-input.md holds the policy; the README links to it"


def test_readme_leads_with_the_install_that_works() -> None:
    """Its first command installs ww-core from the repository (``pip install ww-core`` fails: not published)."""
    first_install = re.search(r"pip install [^\n]*", README.read_text())
    assert first_install and CORE_INSTALL.match(first_install.group(0)), first_install
    assert "pip install ww-core" not in README.read_text()


def test_ci_runs_the_readme_test_command() -> None:
    test_command = BASH_BLOCKS[0].splitlines()[1].split("#")[0].strip()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci[-1].strip() == test_command


def test_readme_says_the_tests_need_chromium() -> None:
    after_commands = README.read_text().split("```bash", 1)[1].split("## Install")[0]
    assert "Chromium" in after_commands and "apt-get install chromium" in after_commands and "root" in after_commands


def test_readme_has_examples() -> None:
    assert BLOCKS[README]
    assert not extras_named(BLOCKS[README][0]), "the README's Python example runs after its own install line: ww-core alone"


def test_the_child_hides_what_the_install_line_does_not_bring(tmp_path: Path) -> None:
    """The check can fail: pandas, present in this environment, is missing in the child unless a block names the extra."""
    pytest.importorskip("pandas")
    script = tmp_path / "uses_pandas.py"
    script.write_text("import pandas\n")
    assert "No module named 'pandas'" in run_installed([str(script)], frozenset(), tmp_path).stderr
    assert run_installed([str(script)], frozenset({"pandas"}), tmp_path).returncode == 0


@pytest.mark.parametrize(("page", "index"), CASES, ids=[f"{p.relative_to(ROOT)}-{i}" for p, i in CASES])
def test_example_runs(page: Path, index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = BLOCKS[page][index]
    if "hookimpl" in block:  # an adapter example: its hooks are called with a folder of .npy files
        monkeypatch.chdir(tmp_path)
        namespace: dict[str, object] = {}
        exec(compile(block, f"{page.relative_to(ROOT)} block {index}", "exec"), namespace)
        import numpy as np

        np.save(tmp_path / "a.npy", np.ones((4, 3)))
        layers = namespace["ww_layers"](str(tmp_path), {})  # type: ignore[operator]
        assert [layer.name for layer in layers] == ["a"]
        return
    done = run_block(page, index, tmp_path)
    assert done.returncode == 0, f"{page.relative_to(ROOT)} block {index} failed:\n{done.stderr[-3000:]}"


def test_readme_command_line_runs_on_the_python_example_s_file(tmp_path: Path) -> None:
    """Each ``ww ...`` line of the README runs on the file its Python example wrote; ``ww analyze`` ends with the verdict."""
    assert run_block(README, 0, tmp_path).returncode == 0
    lines = [line.split(" #")[0].strip() for block in BASH_BLOCKS for line in block.splitlines() if line.startswith("ww ")]
    assert len(lines) >= 3
    script = tmp_path / "commands.py"  # one child runs them all, as `ww` would one by one (one import of ww_core, not one per line)
    script.write_text(COMMANDS.format(lines=lines))
    done = run_installed([str(script)], frozenset(), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for line, (code, out) in zip(lines, json.loads(done.stdout.splitlines()[-1])):
        assert code == 0, f"{line}: exit {code}\n{done.stderr[-2000:]}"
        if line.startswith("ww analyze"):
            assert out.rstrip().splitlines()[-1].startswith("verdict:"), out


#: The child running the README's command lines through ww's entry point, printing each exit code and output as JSON.
COMMANDS = """
import contextlib, io, json, shlex
from ww_core.cli import main
done = []
for line in {lines!r}:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(shlex.split(line)[1:])
    done.append((code, out.getvalue()))
print(json.dumps(done))
"""
