"""Command-line flags generated from AnalysisOptions' fields, so each option is defined once (options.py)."""

from __future__ import annotations

import argparse
import functools
import json
from dataclasses import MISSING, Field, fields
from typing import Any, Sequence

from ww_core.results.options import AnalysisOptions, flag_name


def layer_filter(text: str) -> int | str:
    """``3`` and ``-3`` are layer ids (negative excludes); anything else is a kind or a name substring."""
    return int(text) if text.lstrip("-").isdigit() else text


class _LayerFilters(argparse.Action):
    """``--layers 0,1 fc --layers -3``: every filter given, split at commas, added up (argparse kept only the last flag)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None) -> None:
        given = list(getattr(namespace, self.dest, None) or [])
        given += [layer_filter(piece) for value in values for piece in str(value).split(",") if piece]
        setattr(namespace, self.dest, given)


def number_or_word(text: str) -> int | float | str:
    """``xmax``: an int drops that many of the largest eigenvalues, a float is an eigenvalue, a word is kept."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def spelled_as(choices: Sequence[str], text: str) -> str:
    """The choice ``text`` names in any case (``--fit tpl`` is ``TPL``); unknown text stays, for argparse to refuse listing the choices."""
    return next((choice for choice in choices if choice.lower() == text.lower()), text)


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (numbers, true/false), else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _default(spec: Field[Any]) -> Any:
    return spec.default_factory() if spec.default_factory is not MISSING else spec.default


def _add_flag(group: argparse._ArgumentGroup, spec: Field[Any]) -> None:
    """One flag for one field; its kind follows the field's type (annotations are strings here)."""
    help_text: str = spec.metadata["help"]
    choices = spec.metadata["choices"] or None
    default = _default(spec)
    kind = str(spec.type)
    if kind == "bool" and default is True:
        group.add_argument(flag_name(f"no_{spec.name}"), dest=spec.name, action="store_false", default=None, help=f"do not {help_text}")
    elif kind == "bool":
        group.add_argument(flag_name(spec.name), dest=spec.name, action="store_true", default=None, help=help_text)
    elif kind == "bool | str":
        group.add_argument(
            flag_name(spec.name), dest=spec.name, nargs="?", const=True, choices=choices, default=None, metavar="MODE", help=help_text
        )
    elif kind.startswith("Sequence"):
        group.add_argument(
            flag_name(spec.name),
            dest=spec.name,
            nargs="+",
            action=_LayerFilters,
            default=None,
            metavar="LAYER",
            help=f"{help_text} (several: space- or comma-separated, or the flag repeated)",
        )
    elif kind.startswith("dict"):
        group.add_argument(
            flag_name(spec.name), dest=spec.name, type=key_value, action="append", default=None, metavar="KEY=VALUE", help=help_text
        )
    else:
        parse = {"int": int, "float | None": float, "float": float}.get(kind, number_or_word if "int" in kind else str)
        if choices and all(isinstance(choice, str) for choice in choices):
            parse = functools.partial(spelled_as, choices)
        shown = "" if default is None else f" (default {default})"
        group.add_argument(flag_name(spec.name), dest=spec.name, type=parse, choices=choices, default=None, help=help_text + shown)


def add_option_flags(parser: argparse.ArgumentParser, describe_only: bool = False) -> None:
    """A flag per analysis option; with ``describe_only`` just those that change what ``describe`` lists."""
    group = parser.add_argument_group("analysis options")
    for spec in fields(AnalysisOptions):
        if spec.metadata.get("describe") or not describe_only:
            _add_flag(group, spec)


def option_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The analysis options the user set on the command line, as ``analyze()`` keywords."""
    chosen: dict[str, Any] = {}
    for spec in fields(AnalysisOptions):
        value = getattr(args, spec.name, None)
        if value is None:
            continue
        chosen[spec.name] = dict(value) if str(spec.type).startswith("dict") else value
    return chosen
