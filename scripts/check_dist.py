"""Check the wheelhouse the ``dist`` nox session built: contents against git, metadata complete.

Usage: ``python scripts/check_dist.py WHEELHOUSE core torch ...`` from the repository root.
Each package must have one wheel and one sdist holding exactly its git-tracked module files
(no tests, caches or build leftovers), a README description, license, classifiers,
``Requires-Python``, its extras, and (adapters) a ``ww-core`` range and a ``ww`` entry point.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

CORE_RANGE = "ww-core>=0.1,<0.2"
EXTRAS = {"core": {"pandas", "plot", "threads", "dask", "ray", "all"}, "jax": {"orbax"}}
VERSION = "0.1.0"


def tracked_module_files(short: str) -> set[str]:
    """The package's module files in git, relative to its ``src/`` folder."""
    prefix = f"packages/ww-{short}/src/"
    listed = subprocess.run(["git", "ls-files", prefix], capture_output=True, text=True, check=True).stdout.split()
    return {path[len(prefix) :] for path in listed}


def check_wheel(wheel: Path, short: str) -> None:
    module, info = f"ww_{short}/", f"ww_{short}-{VERSION}.dist-info/"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = Parser().parsestr(archive.read(info + "METADATA").decode())
        entry_points = archive.read(info + "entry_points.txt").decode() if info + "entry_points.txt" in names else ""
    stray = sorted(n for n in names if not (n.startswith(module) or n.startswith(info)))
    assert not stray, f"{wheel.name}: files outside {module}: {stray}"
    shipped = {n for n in names if n.startswith(module)}
    expected = tracked_module_files(short)
    assert shipped == expected, f"{wheel.name}: not in git {sorted(shipped - expected)}; missing {sorted(expected - shipped)}"
    readme = Path(f"packages/ww-{short}/README.md").read_text()
    assert metadata.get_payload().strip() == readme.strip(), f"{wheel.name}: description is not the package README"
    assert metadata["Description-Content-Type"] == "text/markdown", f"{wheel.name}: README not marked as markdown"
    for field in ("Summary", "Requires-Python", "License-Expression", "Author"):
        assert metadata[field], f"{wheel.name}: no {field}"
    assert len(metadata.get_all("Classifier") or []) >= 5, f"{wheel.name}: too few classifiers"
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert extras == EXTRAS.get(short, set()), f"{wheel.name}: extras {extras}"
    requires = metadata.get_all("Requires-Dist") or []
    groups = configparser.ConfigParser()
    groups.read_string(entry_points)
    if short == "core":
        assert groups.get("console_scripts", "ww", fallback="") == "ww_core.cli:main", f"{wheel.name}: no ww command"
    else:
        assert CORE_RANGE in requires, f"{wheel.name}: does not declare {CORE_RANGE}: {requires}"
        assert groups.get("ww", short, fallback="") == f"ww_{short}", f"{wheel.name}: no [ww] {short} entry point"


def check_sdist(sdist: Path, short: str) -> None:
    root = f"ww_{short}-{VERSION}/"
    with tarfile.open(sdist) as archive:
        names = {member.name for member in archive.getmembers() if member.isfile()}
    expected = {root + "src/" + path for path in tracked_module_files(short)}
    expected |= {root + name for name in ("pyproject.toml", "README.md", "PKG-INFO")}
    assert names == expected, f"{sdist.name}: unexpected {sorted(names - expected)}; missing {sorted(expected - names)}"


def main(wheelhouse: Path, shorts: list[str]) -> None:
    for short in shorts:
        wheels = list(wheelhouse.glob(f"ww_{short}-{VERSION}-*.whl"))
        sdists = list(wheelhouse.glob(f"ww_{short}-{VERSION}.tar.gz"))
        assert len(wheels) == 1 and len(sdists) == 1, f"ww-{short}: expected one wheel and one sdist, found {wheels + sdists}"
        check_wheel(wheels[0], short)
        check_sdist(sdists[0], short)
        print(f"ww-{short}: wheel and sdist complete")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
