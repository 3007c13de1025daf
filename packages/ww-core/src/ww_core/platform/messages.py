"""Text from files made safe to print: one escaping rule for every message, table cell and label ww shows."""

from __future__ import annotations

import unicodedata

#: Unicode categories escaped: control (newline, ESC), format (bidi overrides) and surrogates (bytes of a file name
#: that are not UTF-8).
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def printable(text: str) -> str:
    """``text`` with control, format and surrogate characters escaped (``\\x1b``, ``\\n``, ``\\udcff``): file and tensor
    names come from untrusted files, and a raw escape sequence or newline would act on the terminal or forge a line."""
    return "".join(ascii(char)[1:-1] if unicodedata.category(char) in ESCAPED_CATEGORIES else char for char in text)
