"""Analysis options: the reference tool's ``analyze()`` keywords, with its defaults."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any, Sequence

DEFAULT_MIN_EVALS = 8
DEFAULT_MAX_EVALS = 15000
DEFAULT_MAX_N = 50000

FIX_FINGERS = (None, "clip_xmax", "xmin_peak")
FITS = ("PL", "power_law", "TPL", "truncated_power_law", "E_TPL")

#: Why ``intra=True`` is refused (docs/differences.md says more).
INTRA_REFUSED = (
    "intra=True is not supported: weightwatcher 0.7.7's inter-layer analysis is experimental there "
    "(an unseeded random mask by default, a normalization its own code marks 'probably wrong', only the "
    "first kernel slice of convs, silently off with base_model), so ww refuses it rather than guess"
)


@dataclass(frozen=True)
class AnalysisOptions:
    """Everything that changes a row. Names and meanings follow weightwatcher 0.7.7.

    ``layers`` selects by layer index (int), kind ("dense", "conv2d", ...) or name
    substring (str); negative ints exclude. ``seed`` makes ``randomize`` reproducible.
    ``fused_qkv`` reports fused attention projections as one row; ``trust_pickle`` lets
    adapters unpickle code from files (never by default); ``exact`` uses full SVD;
    ``extra`` carries adapter-specific options through to ``ww_layers``. ``peft=True`` analyzes
    only the LoRA updates B·A; ``peft="with_base"`` analyzes them beside every other layer.
    """

    layers: Sequence[int | str] = ()
    min_evals: int = DEFAULT_MIN_EVALS
    max_evals: int = DEFAULT_MAX_EVALS
    max_N: int = DEFAULT_MAX_N
    pool: bool = True
    conv2d_norm: bool = True
    conv2d_fft: bool = False
    randomize: bool = False
    seed: int = 0
    mp_fit: bool = False
    fix_fingers: str | None = None
    xmin_max: float | None = None
    max_fingers: int = 10
    finger_thresh: float = 1.0
    fit: str = "PL"
    xmax: float | int | str | None = None
    vectors: bool = False
    detX: bool = False
    inverse: bool = False
    intra: bool = False
    peft: bool | str = False
    fused_qkv: bool = False
    trust_pickle: bool = False
    exact: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fix_fingers not in FIX_FINGERS:
            raise ValueError(f"fix_fingers must be one of {FIX_FINGERS}, got {self.fix_fingers!r}")
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {self.fit!r}")
        if self.peft not in (False, True, "with_base"):
            raise ValueError(f"peft must be False, True or 'with_base', got {self.peft!r}")
        if self.intra:
            raise ValueError(INTRA_REFUSED)
        if self.min_evals < 0 or self.max_evals < self.min_evals:
            raise ValueError(f"need 0 <= min_evals <= max_evals, got {self.min_evals}, {self.max_evals}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "AnalysisOptions":
        """Build from reference-style keywords; unknown keywords are an error naming them."""
        known = {f.name for f in fields(cls)}
        aliases = {"ww2x": "pool", "min_size": None, "max_size": None}
        clean: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key == "ww2x":
                clean["pool"] = not value
            elif key in aliases:
                if value:
                    message = f"analysis option {key!r} has no effect (the reference ignores it too; use min_evals/max_evals)"
                    warnings.warn(message, stacklevel=3)
                continue
            elif key in known:
                clean[key] = value
            else:
                raise TypeError(f"unknown analysis option {key!r}; known options: {sorted(known)}")
        if isinstance(clean.get("layers"), (int, str)):
            clean["layers"] = (clean["layers"],)
        return cls(**clean)

    def with_(self, **changes: Any) -> "AnalysisOptions":
        """A copy with some options changed."""
        return replace(self, **changes)

    def adapter_options(self) -> dict[str, Any]:
        """The subset adapters see in ``ww_layers``."""
        return {"fused_qkv": self.fused_qkv, "trust_pickle": self.trust_pickle, **self.extra}
