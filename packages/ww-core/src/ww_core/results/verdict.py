"""The one-line verdict that ends ``ww analyze``: how many layers sit in the 2–6 band, which are flagged, what failed."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ww_core.platform.messages import printable
from ww_core.spectra.metrics import DEGENERATE_WARNING, OVER_TRAINED_THRESH, UNDER_TRAINED_THRESH

#: Flagged layers named in the line; more are counted.
NAMED = 3

#: Why no flag is no proof of training, as measured (docs/verdicts.md): shared by the terminal line and the report.
BAND_IS_NOT_PROOF = "a random Gaussian layer falls in 2–6 for most seeds; mp_fit's num_spikes tells noise apart"


def _names(rows: Sequence[Mapping[str, Any]]) -> str:
    names = [printable(str(row.get("name"))) for row in rows[:NAMED]]  # names come from untrusted files
    more = f", +{len(rows) - NAMED} more" if len(rows) > NAMED else ""
    return f" ({', '.join(names)}{more})"


def verdict_line(rows: Sequence[Mapping[str, Any]]) -> str:
    """``verdict: 3 of 5 analyzed layers have alpha in 2–6; 2 flagged over-trained (conv2, fc3); ...`` from the rows alone."""
    fitted = [row for row in rows if row.get("status") == "success" and row.get("warning") != DEGENERATE_WARNING]
    degenerate = [row for row in rows if row.get("status") == "success" and row.get("warning") == DEGENERATE_WARNING]
    failed = [row for row in rows if row.get("status") == "failed"]
    if not fitted and not degenerate:
        return "verdict: no layer could be analyzed, so there is nothing to judge; the table gives each reason."
    below = [row for row in fitted if float(row["alpha"]) < OVER_TRAINED_THRESH]
    above = [row for row in fitted if float(row["alpha"]) > UNDER_TRAINED_THRESH]
    band = f"{OVER_TRAINED_THRESH:g}–{UNDER_TRAINED_THRESH:g}"
    parts = [f"verdict: {len(fitted) - len(below) - len(above)} of {len(fitted) + len(degenerate)} analyzed layers have alpha in {band}"]
    if below:
        parts.append(f"{len(below)} flagged over-trained{_names(below)}")
    if above:
        parts.append(f"{len(above)} flagged under-trained{_names(above)}")
    if degenerate:
        parts.append(f"{len(degenerate)} degenerate{_names(degenerate)}: their alpha measures nothing")
    if failed:
        parts.append(f"{len(failed)} failed, so the model is not judged whole")
    if len(parts) == 1:
        return parts[0] + f", none flagged; the band alone does not prove training ({BAND_IS_NOT_PROOF})."
    return "; ".join(parts) + "."
