"""What adapters' hooks receive as ``options``: core's keys typed and fixed, the adapter's own extras, read-only.

Users pass adapter-specific options namespaced by the adapter's name, ``extra={"torch":
{"split_gates": True}}`` (or ``"torch.split_gates": True``; ``--extra torch.split_gates=true``),
so one key can mean different things to two adapters. Core's keys can never come from ``extra``:
``extra={"trust_pickle": True}`` is refused, only ``trust_pickle=True`` grants trust.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterator, Mapping

#: Options every adapter may read, set only by their own analysis arguments.
CORE_KEYS = ("fused_qkv", "trust_pickle", "exact")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class AdapterOptions(Mapping[str, Any]):
    """Read-only options for one adapter: ``fused_qkv``, ``trust_pickle``, ``exact``, and ``extra`` (its own namespace).

    Also a Mapping (``options.get("split_gates")``): core keys first, then this adapter's extras.
    ``namespaces`` holds every adapter's extras; core picks each adapter's view with ``for_adapter``.
    """

    fused_qkv: bool = False
    trust_pickle: bool = False
    exact: bool = False
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    namespaces: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _EMPTY, repr=False)

    def for_adapter(self, *names: str, specs: "tuple[OptionSpec, ...] | None" = None) -> "AdapterOptions":
        """The view of the adapter known by ``names`` (entry-point and distribution name): its extras only.

        ``specs``, the options the adapter declares, fill in their defaults and refuse other keys of its
        namespace. Extras given without a namespace (``from_mapping``: a low-level call) are kept as they are.
        """
        own: dict[str, Any] = {}
        for name in names:
            own.update(self.namespaces.get(name, {}))
        if specs is not None:
            own = checked_extras(names[0], own, specs)
        own.update(self.extra)
        return AdapterOptions(self.fused_qkv, self.trust_pickle, self.exact, MappingProxyType(own), self.namespaces)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> "AdapterOptions":
        """From a plain dict (low-level callers and tests): core keys typed, the rest as this adapter's extras."""
        if isinstance(options, AdapterOptions):
            return options
        rest = {key: value for key, value in options.items() if key not in CORE_KEYS}
        flag = {key: bool(options.get(key, False)) for key in CORE_KEYS}
        return cls(flag["fused_qkv"], flag["trust_pickle"], flag["exact"], extra=MappingProxyType(rest))

    def __getitem__(self, key: str) -> Any:
        if key in CORE_KEYS:
            return getattr(self, key)
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        yield from CORE_KEYS
        yield from (key for key in self.extra if key not in CORE_KEYS)

    def __len__(self) -> int:
        return len(CORE_KEYS) + sum(1 for key in self.extra if key not in CORE_KEYS)


def namespaced_extras(extra: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``extra`` as adapter name → its options; ValueError for a key that names no adapter or a core option."""
    spaces: dict[str, dict[str, Any]] = {}
    for key, value in extra.items():
        if isinstance(value, Mapping):
            adapter, options = str(key), dict(value)
        elif "." in str(key):
            adapter, _, name = str(key).partition(".")
            options = {name: value}
        else:
            _refuse_core(str(key))
            raise ValueError(
                f"extra option {key!r} must name its adapter: extra={{'<adapter>': {{{key!r}: ...}}}} "
                f"or '<adapter>.{key}' (--extra <adapter>.{key}=VALUE); `ww plugins` lists the adapters"
            )
        for name in options:
            _refuse_core(name)
        spaces.setdefault(adapter, {}).update(options)
    return spaces


def _refuse_core(name: str) -> None:
    if name in CORE_KEYS:
        raise ValueError(f"{name!r} is a core option and cannot be set through extra: pass {name}=True (--{name.replace('_', '-')})")


def frozen(spaces: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    """A read-only copy of the namespaces."""
    return MappingProxyType({name: MappingProxyType(dict(options)) for name, options in spaces.items()})


#: The value types an adapter may declare for its options, by the name it declares them with.
OPTION_TYPES: Mapping[str, tuple[type, ...]] = MappingProxyType({"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)})


@dataclass(frozen=True)
class OptionSpec:
    """One option an adapter declares in ``ww_adapter_info()["options"]``: its name, type, default and help."""

    name: str
    type: str
    default: Any = None
    help: str = ""

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has this option's type (None always: "not set")."""
        wanted = OPTION_TYPES[self.type]
        return value is None or (isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted))

    def words(self) -> str:
        """``name (type, default X): help``, for ``ww plugins NAME``."""
        return f"{self.name} ({self.type}, default {self.default!r})" + (f": {self.help}" if self.help else "")


def option_specs(declared: Any) -> tuple[OptionSpec, ...]:
    """The options an adapter declares (a list of {name, type, default, help}); ValueError saying what is malformed."""
    if isinstance(declared, (str, bytes, Mapping)) or not isinstance(declared, (list, tuple)):
        raise ValueError(f"'options' must be a list of {{name, type, default, help}}, got {type(declared).__name__}")
    specs = []
    for entry in declared:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or entry.get("type") not in OPTION_TYPES:
            raise ValueError(f"option {entry!r} needs a 'name' and a 'type' among {', '.join(OPTION_TYPES)}")
        spec = OptionSpec(entry["name"], entry["type"], entry.get("default"), str(entry.get("help", "")))
        if spec.name in CORE_KEYS or not spec.accepts(spec.default):
            raise ValueError(f"option {spec.name!r}: a core key, or a default {spec.default!r} that is no {spec.type}")
        specs.append(spec)
    return tuple(specs)


def checked_extras(adapter: str, given: Mapping[str, Any], specs: tuple[OptionSpec, ...]) -> dict[str, Any]:
    """``given`` over the declared defaults; ValueError naming a key the adapter does not declare, or a value of another type."""
    known = {spec.name: spec for spec in specs}
    for key, value in given.items():
        spec = known.get(key)
        if spec is None:
            valid = ", ".join(sorted(known)) or "none"
            raise ValueError(f"extra: adapter {adapter!r} has no option {key!r}; its options: {valid} (`ww plugins {adapter}`)")
        if not spec.accepts(value):
            raise ValueError(f"extra: option {adapter}.{key} must be {spec.type}, got {type(value).__name__} {value!r}")
    return {**{spec.name: spec.default for spec in specs}, **given}
