"""The ``ww`` command: analyze, describe, plugins, demo. Errors are one clear line, exit code 2."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Callable, Sequence

from ww_core.analysis import analyze, describe
from ww_core.cache import CacheWriteError
from ww_core.demo import model_path
from ww_core.plugins import list_adapters
from ww_core.protocol import LayerLoadError

#: Exceptions that are the user's input, reported as one line instead of a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    IsADirectoryError,
    PermissionError,
    ValueError,
    TypeError,
    KeyError,
    LayerLoadError,
    CacheWriteError,
)


def _layer_filter(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """The reference's analysis options as flags."""
    group = parser.add_argument_group("analysis options")
    group.add_argument(
        "--layers", nargs="+", type=_layer_filter, default=[], help="layer ids, kinds (dense, conv2d, ...) or name substrings; -ID excludes"
    )
    group.add_argument("--min-evals", type=int, help="skip layers with fewer eigenvalues (default 8)")
    group.add_argument("--max-evals", type=int, help="skip layers with more eigenvalues (default 15000)")
    group.add_argument("--max-N", type=int, dest="max_N", help="skip layers with N above this (default 50000)")
    group.add_argument("--no-pool", dest="pool", action="store_false", default=None, help="one row per conv kernel position")
    group.add_argument("--mp-fit", action="store_true", default=None, help="fit the Marchenko-Pastur bulk")
    group.add_argument("--randomize", action="store_true", default=None, help="compare with the element-shuffled matrix")
    group.add_argument("--seed", type=int, help="seed for --randomize (default 0)")
    group.add_argument("--fix-fingers", choices=["clip_xmax", "xmin_peak"], help="handle outlier eigenvalues")
    group.add_argument("--fit", choices=["PL", "TPL", "E_TPL"], help="power law (default) or truncated power law")
    group.add_argument("--exact", action="store_true", default=None, help="full SVD instead of Gram + eigh")
    group.add_argument("--fused-qkv", action="store_true", default=None, help="fused attention projections as one row")
    group.add_argument(
        "--trust-pickle", action="store_true", default=None, help="allow unpickling code from model files (only for files you trust)"
    )
    parser.add_argument("--workers", type=int, help="layers analyzed in parallel (threads; default: one per core, at most 4)")
    parser.add_argument("--cache", help="JSON-lines results cache; an interrupted run resumes from it")


def analysis_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Analysis options the user actually set."""
    names = (
        "layers",
        "min_evals",
        "max_evals",
        "max_N",
        "pool",
        "mp_fit",
        "randomize",
        "seed",
        "fix_fingers",
        "fit",
        "exact",
        "fused_qkv",
        "trust_pickle",
    )
    return {name: getattr(args, name) for name in names if getattr(args, name, None) not in (None, [])}


def cmd_analyze(args: argparse.Namespace) -> int:
    """Analyze a model (the bundled demo when no path is given) and print or write the results."""
    source = args.path or str(model_path())
    results = analyze(source, workers=args.workers, cache=args.cache, progress=None, **analysis_kwargs(args))
    if args.csv:
        results.to_csv(args.csv)
    if args.json:
        results.to_json(args.json)
    if args.plot:
        from ww_core import plots

        plots.save_all(results, args.plot)
    if not args.quiet:
        print(f"source: {results.source}")
        print(results)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    """List layers and sizes without computing spectra."""
    results = describe(args.path or str(model_path()), **analysis_kwargs(args))
    print(results.table(("layer_id", "name", "layer_type", "N", "M", "rf", "num_evals", "status", "error")))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Analyze several models with the same options and rank them (lower alpha_weighted is better)."""
    from ww_core.comparison import compare

    comparison = compare(*args.paths, names=args.names, workers=args.workers, **analysis_kwargs(args))
    for render, target in ((comparison.to_csv, args.csv), (comparison.to_json, args.json)):
        if target == "-":
            print(render().rstrip("\n"))
        elif target:
            render(target)
    if args.plot:
        comparison.plot(args.plot)
    if "-" not in (args.csv, args.json):
        print(comparison)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """List the installed adapters."""
    adapters = list_adapters()
    if args.json:
        print(json.dumps(adapters, indent=2))
        return 0
    for adapter in adapters:
        version = f" {adapter['version']}" if adapter.get("version") else ""
        print(f"{adapter['name']}{version} ({adapter['package']}): {adapter['handles']}")
    return 0


def cmd_plot_history(args: argparse.Namespace) -> int:
    """Draw a training monitor's log: a metric per layer and the summary over steps."""
    from pathlib import Path

    from ww_core import plots

    target = Path(args.output or Path(args.log).with_suffix(".png"))
    plots.plot_history(args.log, metric=args.metric).savefig(target, dpi=100)
    print(f"wrote {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="ww", description="Judge a trained network from its weights alone.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    for name, help_text in (
        ("analyze", "analyze a model file, folder or checkpoint (default: the bundled demo)"),
        ("demo", "analyze the bundled demo model"),
    ):
        sub = command(name, cmd_analyze, help_text)
        if name == "analyze":
            sub.add_argument("path", nargs="?", help="model file or folder")
        else:
            sub.set_defaults(path=None)
        sub.add_argument("--csv", help="write the rows as CSV here")
        sub.add_argument("--json", help="write summary and rows as JSON here")
        sub.add_argument("--plot", metavar="DIR", help="write ESD and correlation-flow plots here (needs matplotlib)")
        sub.add_argument("-q", "--quiet", action="store_true", help="print nothing")
        add_analysis_options(sub)
    sub = command("describe", cmd_describe, "list layers and sizes without computing spectra")
    sub.add_argument("path", nargs="?", help="model file or folder")
    add_analysis_options(sub)
    sub = command("compare", cmd_compare, "rank models of a series (e.g. checkpoints) by mean alpha_weighted, log_norm and alpha")
    sub.add_argument("paths", nargs="+", metavar="path", help="model files or folders, in series order")
    sub.add_argument("--names", nargs="+", help="a label per model (default: file names)")
    sub.add_argument("--csv", nargs="?", const="-", help="the model table as CSV, to this file or stdout")
    sub.add_argument("--json", nargs="?", const="-", help="ranking, model table and per-layer alpha deltas as JSON, to this file or stdout")
    sub.add_argument("--plot", metavar="DIR", help="write comparison.png and flows.png here (needs matplotlib)")
    add_analysis_options(sub)
    sub = command("plot-history", cmd_plot_history, "plot a training monitor's JSON-lines log (ww_core.Monitor) over steps")
    sub.add_argument("log", help="the monitor's log, e.g. run.jsonl")
    sub.add_argument("-o", "--output", help="PNG to write (default: the log's name with .png)")
    sub.add_argument("--metric", default="alpha", help="row metric to draw (default alpha)")
    sub = command("plugins", cmd_plugins, "list installed adapters")
    sub.add_argument("--json", action="store_true", help="as JSON")
    return parser


def _configure_logging(verbose: bool) -> None:
    """Send ww_core's log to stderr; the root logger is left alone."""
    logger = logging.getLogger("ww_core")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ww`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command is None:
        args = parser.parse_args(["demo", *(argv or [])])
    try:
        return int(args.handler(args))
    except USER_ERRORS as exc:
        print(f"ww: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"ww: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
