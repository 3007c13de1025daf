"""Analysis options: the reference tool's ``analyze()`` keywords, with its defaults."""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any, Sequence

import numpy as np

from ww_core.platform.adapter_options import AdapterOptions, frozen, namespaced_extras
from ww_core.platform.protocol import DEFAULT_MIN_EVALS
from ww_core.spectra import xmax as xmax_option
from ww_core.spectra.constants import DEFAULT_MAX_FINGERS

DEFAULT_MAX_EVALS = 15000
DEFAULT_MAX_N = 50000

FIX_FINGERS = (None, "clip_xmax", "xmin_peak")
FITS = ("PL", "power_law", "TPL", "truncated_power_law", "E_TPL")

#: Why ``intra=True`` is refused here (docs/differences.md says more).
INTRA_REFUSED = (
    "intra=True is not computed by ww_core.analyze or the CLI: weightwatcher 0.7.7's inter-layer analysis is an "
    "experiment (a random mask, a normalization its own code marks 'probably wrong'); the drop-in "
    "ww_core.WeightWatcher(model).analyze(intra=True) computes it as the reference defines it (docs/differences.md)"
)


def flag_name(name: str) -> str:
    """The command-line flag of an option: ``xmin_max`` → ``--xmin-max``."""
    return "--" + name.replace("_", "-")


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # numpy integers too


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _layer_filters(layers: Any) -> tuple[int | str, ...]:
    """``layers=`` as a tuple of ints (numpy integers too: ids from a details DataFrame) and strings; anything else refused."""
    items = (layers,) if isinstance(layers, (str, numbers.Integral)) else layers
    try:
        items = tuple(items)
    except TypeError:
        raise ValueError(f"layers (--layers) must be layer ids, kinds or name substrings, got {layers!r}") from None
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (numbers.Integral, str)):
            raise ValueError(f"layers (--layers) entries must be layer ids (int), kinds or name substrings (str), got {item!r}")
    return tuple(item if isinstance(item, str) else int(item) for item in items)


def flag_help(help: str, *, describe: bool = False, choices: Sequence[Any] = ()) -> dict[str, Any]:
    """What the command line needs of a field: its help, its choices, and whether ``describe`` uses it."""
    return {"help": help, "describe": describe, "choices": tuple(choices)}


def option(default: Any, help: str, *, describe: bool = False, choices: Sequence[Any] = ()) -> Any:
    """A field with its command-line help: the CLI generates one flag per field, so an option is defined in one place."""
    return field(default=default, metadata=flag_help(help, describe=describe, choices=choices))


@dataclass(frozen=True)
class AnalysisOptions:
    """Everything that changes a row. Names and meanings follow weightwatcher 0.7.7.

    ``layers`` selects by layer index (int), kind ("dense", "conv2d", ...) or name
    substring (str); negative ints exclude. ``seed`` makes ``randomize`` reproducible.
    ``fused_qkv`` reports fused attention projections as one row; ``trust_pickle`` lets
    adapters unpickle code from files (never by default); ``exact`` uses full SVD;
    ``extra`` carries adapter-specific options, namespaced by adapter name (``{"torch": {...}}``
    or ``"torch.key"``; see ``adapter_options``), to that adapter's hooks. ``peft=True`` analyzes
    only the LoRA updates B·A; ``peft="with_base"`` analyzes them beside every other layer.
    ``adapter`` names the adapter (entry-point or distribution name) that must read the source,
    when more than one would claim it.
    """

    layers: Sequence[int | str] = option((), "layer ids, kinds (dense, conv2d, ...) or name substrings; -ID excludes", describe=True)
    min_evals: int = option(DEFAULT_MIN_EVALS, "skip layers with fewer eigenvalues", describe=True)
    max_evals: int = option(DEFAULT_MAX_EVALS, "skip layers with more eigenvalues", describe=True)
    max_N: int = option(DEFAULT_MAX_N, "skip layers with N above this", describe=True)
    pool: bool = option(True, "pool a conv's kernel-position slices into one ESD", describe=True)
    conv2d_norm: bool = option(True, "normalize conv slices by the kernel size")
    conv2d_fft: bool = option(False, "ESD of the conv kernel's FFT instead of its slices")
    randomize: bool = option(False, "compare with the element-shuffled matrix (rand_* columns)")
    seed: int = option(0, "seed for randomize and vectors")
    mp_fit: bool = option(False, "fit the Marchenko-Pastur bulk")
    fix_fingers: str | None = option(None, "handle outlier eigenvalues", choices=FIX_FINGERS[1:])
    xmin_max: float | None = option(None, "largest xmin the fit may choose")
    max_fingers: int = option(DEFAULT_MAX_FINGERS, "most eigenvalues clip_xmax may drop")
    finger_thresh: float = option(1.0, "alpha change that counts as a finger for clip_xmax")
    fit: str = option("PL", "power law or truncated power law", choices=FITS)
    xmax: float | int | str | None = option(None, xmax_option.HELP)
    vectors: bool = option(False, "eigenvector localization columns")
    detX: bool = option(False, "detX_num/detX_val columns (where log det of the tail is 0)")
    inverse: bool = option(False, "analyze the inverse spectrum")
    intra: bool = option(False, "refused: the reference's experimental inter-layer analysis (WeightWatcher.analyze computes it)")
    peft: bool | str = option(False, "LoRA updates B·A only, or 'with_base' beside every layer", describe=True, choices=("with_base",))
    fused_qkv: bool = option(False, "fused attention projections as one row", describe=True)
    trust_pickle: bool = option(False, "allow unpickling code from model files (only for files you trust)", describe=True)
    exact: bool = option(False, "full SVD instead of Gram + eigh")
    extra: dict[str, Any] = field(
        default_factory=dict,
        metadata=flag_help("an adapter's own option ADAPTER.KEY=VALUE, e.g. torch.split_gates=true (repeatable)", describe=True),
    )
    adapter: str | None = option(None, "the adapter that reads the source (a name `ww plugins` shows)", describe=True)

    def __post_init__(self) -> None:
        if self.fix_fingers not in FIX_FINGERS:
            raise ValueError(f"fix_fingers must be one of {FIX_FINGERS}, got {self.fix_fingers!r}")
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {self.fit!r}")
        if self.peft not in (False, True, "with_base"):
            raise ValueError(f"peft must be False, True or 'with_base', got {self.peft!r}")
        self._check_switches()
        object.__setattr__(self, "layers", _layer_filters(self.layers))
        if self.intra:
            raise ValueError(INTRA_REFUSED)
        for name in ("min_evals", "max_evals"):
            if not (_number(getattr(self, name)) and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} ({flag_name(name)}) must be a whole number, got {getattr(self, name)!r}")
        if self.min_evals < 0 or self.max_evals < self.min_evals:
            raise ValueError(f"need 0 <= min_evals <= max_evals, got {self.min_evals}, {self.max_evals}")
        self._check_numbers()
        object.__setattr__(self, "extra", namespaced_extras(self.extra))
        object.__setattr__(self, "xmax", xmax_option.checked(self.xmax))

    def _check_switches(self) -> None:
        """Refuse a switch that is no bool (numpy's too) or 0/1: a string is truthy, so trust_pickle="false" would trust."""
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.type == "bool" and not (isinstance(value, (bool, np.bool_)) or (_whole(value) and value in (0, 1))):
                raise ValueError(f"{spec.name} ({flag_name(spec.name)}) must be True or False, got {value!r}")

    def _check_numbers(self) -> None:
        """Refuse numbers no analysis can use, naming the keyword and its flag (``seed (--seed)``)."""
        checks = (
            ("seed", _whole(self.seed) and self.seed >= 0, "a whole number >= 0"),
            ("max_N", _number(self.max_N) and self.max_N >= 1, "a number >= 1"),
            ("max_fingers", _whole(self.max_fingers) and self.max_fingers >= 0, "a whole number >= 0"),
            ("finger_thresh", _number(self.finger_thresh) and math.isfinite(self.finger_thresh), "a finite number"),
            (
                "xmin_max",
                self.xmin_max is None or (_number(self.xmin_max) and math.isfinite(self.xmin_max) and self.xmin_max > 0),
                "a positive finite eigenvalue",
            ),
        )
        for name, fine, wanted in checks:
            if not fine:
                raise ValueError(f"{name} ({flag_name(name)}) must be {wanted}, got {getattr(self, name)!r}")

    def unused(self) -> list[str]:
        """Options set to a value that changes nothing under the others, each in words (warned about, never silent)."""
        said = []
        if self.xmin_max is not None and self.fix_fingers != "xmin_peak":
            said.append("xmin_max (--xmin-max) has no effect without fix_fingers='xmin_peak' (--fix-fingers xmin_peak)")
        for name in ("max_fingers", "finger_thresh"):
            if getattr(self, name) != getattr(AnalysisOptions, name) and self.fix_fingers != "clip_xmax":
                said.append(f"{name} ({flag_name(name)}) has no effect without fix_fingers='clip_xmax' (--fix-fingers clip_xmax)")
        return said

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "AnalysisOptions":
        """Build from reference-style keywords; unknown keywords are an error naming them."""
        known = {f.name for f in fields(cls)}
        aliases = {"ww2x": "pool", "min_size": None, "max_size": None}
        clean: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key == "ww2x":
                clean["pool"] = not value
            elif key in ("fix_fingers", "xmax") and value is False:  # the reference's spelling of "none"
                clean[key] = None
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
        made = cls(**clean)
        for message in made.unused():
            warnings.warn(message, stacklevel=3)
        return made

    def with_(self, **changes: Any) -> "AnalysisOptions":
        """A copy with some options changed."""
        return replace(self, **changes)

    def changed(self) -> dict[str, Any]:
        """The options that differ from their defaults (what a run's metadata records)."""
        default = AnalysisOptions()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}

    def meanings(self) -> dict[str, str]:
        """Options whose value alone is easy to misread, in words (``xmax``: 5 drops eigenvalues, 5.0 bounds them)."""
        said = xmax_option.meaning(self.xmax)
        return {"xmax": said} if said else {}

    def adapter_options(self) -> AdapterOptions:
        """What adapters' hooks see: core's keys, and every adapter's extras (core hands each its own view)."""
        return AdapterOptions(self.fused_qkv, self.trust_pickle, self.exact, namespaces=frozen(self.extra))
