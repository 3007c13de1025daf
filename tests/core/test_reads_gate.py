"""Every reader opens model files through the toolkit's gate (docs/bad-input.md, "Reads"), never with a bare ``open``.

A bare ``open(path, "rb")`` of a FIFO blocks for ever and follows any link out of the model; the gate
(``open_regular``, ``regular_file``) refuses both. This scan keeps new reading code on the gate.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Where model files are read: core's built-in sources and platform, and every adapter.
ADAPTERS = sorted(path for path in (ROOT / "packages").glob("ww-*/src/ww_*") if not path.name.startswith("ww_core"))
READERS = [ROOT / "packages/ww-core/src/ww_core/sources", ROOT / "packages/ww-core/src/ww_core/platform", *ADAPTERS]
#: The gate itself, and modules that only write files.
EXEMPT = {"untrusted.py", "write_files.py", "write_back.py"}
BARE_READS = re.compile(r"""(\.open\(\s*["']rb["']|\bopen\([^)]*["']rb["']|\.read_bytes\(\)|zipfile\.ZipFile\(\s*(path|self\.path)\s*\))""")


def test_no_reader_opens_a_model_file_past_the_gate() -> None:
    bare = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in READERS
        for path in sorted(folder.rglob("*.py"))
        if path.name not in EXEMPT
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BARE_READS.search(line)
    ]
    assert bare == [], "open model files with ww_core.platform.toolkit.open_regular (or check them with regular_file):\n" + "\n".join(bare)
