"""The ``ww`` command: analyze, describe, compare, correlate, report, plugins, demo.

User errors are one line ``ww: error: ...`` with exit code 2; Ctrl-C is one line with exit code 130;
a closed pipe (``ww analyze | head -1``) ends quietly. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import shutil
import sys
import textwrap
import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ww_core.cli.demo import model_path
from ww_core.cli.option_flags import add_option_flags, option_kwargs
from ww_core.pipeline.analysis import analyze, describe
from ww_core.pipeline.cache import CacheWriteError
from ww_core.pipeline.plugins import ALLOW_ENV, hook_seconds, list_adapters, reload_plugins
from ww_core.pipeline.progress import ProgressBar
from ww_core.pipeline.selection import EXCLUDED
from ww_core.platform.adapter_options import option_specs
from ww_core.platform.install_hints import install_hint
from ww_core.platform.messages import printable
from ww_core.platform.version import __version__
from ww_core.results import table_view
from ww_core.results.export import columns_of
from ww_core.results.options import AnalysisOptions
from ww_core.results.outputs import STDOUT, WEIGHT_SUFFIXES, OutputGuard, check_writable_file, check_writable_folder, write_output
from ww_core.results.results import Results, adapter_label
from ww_core.results.rows import esd_key
from ww_core.results.summary import summary_lines
from ww_core.results.verdict import verdict_line
from ww_core.sources.peft_folder import adapter_note

if TYPE_CHECKING:
    from ww_core.models.comparison import Comparison

#: The user's input or environment, reported as one line: OSError (a file or folder that cannot be
#: read or written: missing, permissions, disk full), ValueError (a corrupt file or an invalid option
#: value; LayerLoadError is one) and ImportError (an optional extra or a framework not installed).
USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, ImportError)
EXIT_USER_ERROR, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 130, 141
#: The commands that take analysis options.
OPTION_COMMANDS = ("analyze", "demo", "describe", "compare", "report")
#: The columns ``ww describe`` shows; what it drops to fit a terminal (the shape columns stay: a reason wraps instead).
DESCRIBE_COLUMNS = ("layer_id", "name", "layer_type", "N", "M", "rf", "num_evals", "status", table_view.REASON)
DESCRIBE_DROP_ORDER, DESCRIBE_LAST_RESORT = ("rf", "num_evals"), ("layer_id", "status")
#: ``ww --help``'s examples.
EXAMPLES = """examples:
  ww demo                                   analyze the bundled trained CNN
  ww analyze model.safetensors --csv rows.csv
  ww report checkpoint-500/ -o report.html  one self-contained HTML page
  ww compare base/ tuned/                   several models side by side
"""


def terminal_width() -> int | None:
    """Columns to fit the table to: ``COLUMNS`` when set, else the terminal's; None when stdout is no terminal (never cut)."""
    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size((80, 24)).columns


def chosen_columns(
    rows: Sequence[dict[str, Any]], requested: str | None, defaults: Sequence[str], **fit: Sequence[str]
) -> tuple[list[str], int | None]:
    """The columns to print and the width to fit: ``--columns a,b`` or ``all`` as asked, else defaults fitted to the terminal."""
    if requested == "all":
        return columns_of(rows), None
    if requested:
        columns = [c.strip() for c in requested.split(",") if c.strip()]
        known = set(columns_of(rows)) | {table_view.REASON}
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise ValueError(f"--columns: no column {', '.join(unknown)}; columns: {', '.join(sorted(known))}")
        return columns, None
    width = terminal_width()
    if width is None:
        return [c for c in defaults if c != table_view.REASON or any(table_view.cell(r, c) for r in rows)], None
    return table_view.fit_columns(rows, defaults, width, **fit), width


def shown_rows(results: Results, verbose: bool) -> list[dict[str, Any]]:
    """The rows the terminal shows: those ``--layers`` left out only with ``-v``."""
    return [row for row in results.details if verbose or row.get("error") != EXCLUDED]


def demo_note(results: Results, width: int | None) -> list[str]:
    """What the demo's flags mean: a small network that generalizes well, flagged all the same (digits_cnn.json's accuracy)."""
    flagged = [row for row in results.analyzed if row.get("warning") in ("over-trained", "under-trained")]
    if not flagged:
        return []
    recipe = json.loads(model_path().with_suffix(".json").read_text())
    few = [row for row in flagged if int(row.get("num_evals", 0)) < 50]
    small = "".join(f" {row['name']}'s fit rests on only {row['num_evals']} eigenvalues." for row in few)
    text = (
        f"demo: this CNN scores {recipe['test_accuracy']:.1%} on held-out digits, yet {len(flagged)} of its {len(results.analyzed)} "
        "layers are flagged. On a small network fit this well, a flag marks an unusual spectrum, not lost accuracy: check "
        f"held-out data before acting on one.{small}"
    )
    return textwrap.wrap(text, width or 100, subsequent_indent="  ", break_on_hyphens=False)


def results_text(results: Results, requested: str | None, verbose: bool = False, demo: bool = False) -> str:
    """What ``ww analyze`` prints: the table (reasons for rows that are not a success), the summary, a warning legend, the verdict."""
    rows = shown_rows(results, verbose)
    defaults = table_view.default_columns(rows, results.options)
    columns, width = chosen_columns(rows, requested, defaults)
    said = [f"{option}: {meaning}" for option, meaning in results.options.meanings().items()]
    lines = [
        f"source: {printable(str(results.source))}{read_by(results)}",
        *said,
        table_view.render(rows, columns, width),
        "",
        "summary:",
    ]
    lines += summary_lines(results.summary)
    if "warning" in columns:
        lines += table_view.legend(rows, width)
    if demo:
        lines += demo_note(results, width)
    verdict = verdict_line(results.details)  # one line; wrapped only to fit a terminal
    lines += textwrap.wrap(verdict, width, subsequent_indent="  ") if width else [verdict]
    return "\n".join(lines)


def read_by(results: Results) -> str:
    """What the source line says of the adapter that read the source ("" for results without one)."""
    return f" · read by {adapter_label(results.adapter)}" if results.adapter else ""


def require_analyzed(results: Results, layers: Sequence[Any] | None) -> None:
    """A ValueError when no layer was analyzed, saying why (nothing matched ``--layers``, or every layer skipped)."""
    if results.analyzed:
        return
    count = len(results.details)
    if not count:
        raise ValueError(f"{results.source}: no weight matrix found")
    if layers:
        wanted = " ".join(str(layer) for layer in layers)
        raise ValueError(f"--layers {wanted} matched no layer of {results.source} (it has {count}; `ww describe` lists them)")
    reason = results.details[0].get("error", "")
    note = None if results.options.peft else adapter_note(results.source)  # the run's warnings go unshown with an error
    said = f"; {note}" if note else ""
    raise ValueError(f"no layer of {results.source} was analyzed: all {count} were skipped (first: {reason}){said}")


Job = tuple[str, Callable[[], object]]


def table_jobs(args: argparse.Namespace, to_csv: Callable[[], str], to_json: Callable[[], str]) -> list[Job]:
    """The ``--csv``/``--json`` outputs asked for, each to its file or to stdout (``-``)."""

    def job(target: str, render: Callable[[], str]) -> Job:
        return target, lambda: write_output(target, render())

    return [job(target, render) for target, render in ((args.csv, to_csv), (args.json, to_json)) if target]


def write_all(jobs: Sequence[Job]) -> list[str]:
    """Run each output job; a failure becomes an error line naming the target, and the other outputs are still written."""
    errors = []
    for target, job in jobs:
        try:
            job()
        except BrokenPipeError:
            raise
        except OSError as exc:
            errors.append(f"ww: error: cannot write {printable(target)}: {printable(str(exc.strerror or exc))}")
    return errors


def check_outputs(
    files: Sequence[tuple[str, str | None]] = (),
    folders: Sequence[tuple[str, str | None]] = (),
    inputs: Sequence[str | None] = (),
    cache: str | None = None,
) -> None:
    """Fail now, before any analysis, when an output (flag, file) would harm the user's files (``OutputGuard``: an
    input, the model folder, the cache, another output), cannot be written, or two outputs would share stdout."""
    for flag, target in [*files, *folders, ("--cache", cache)]:
        if target is not None and not target.strip():  # "$OUT" with OUT unset: never a silent "nothing written"
            raise ValueError(f"{flag}: an empty file name (an unset shell variable?); name a file, or leave the flag out")
    if sum(target == STDOUT for _, target in files) > 1:
        raise ValueError("only one output can go to stdout ('-'); write the others to files")
    suffixes = WEIGHT_SUFFIXES | {str(s).lower() for row in list_adapters() if row.get("status") == "ok" for s in row.get("suffixes") or ()}
    guard = OutputGuard([source for source in inputs if source], frozenset(suffixes))
    guard.claim(cache, "--cache", appended=True)
    for flag, target in files:
        guard.claim(target, flag)
    for flag, folder in folders:
        guard.claim(folder, flag, folder=True)
    for _, target in files:
        if target:
            check_writable_file(target)
    for _, folder in folders:
        if folder:
            check_writable_folder(folder)


def warn_cached_esds(results: Results, cache: str | None, report: bool = False) -> None:
    """Say which rows restored from the cache cannot be drawn, never leave them out silently: plots need eigenvalues (the
    cache keeps a histogram only); a report draws the histogram, which a cache from an older ww or a damaged line lacks."""
    drawable = {**results.esds, **results.esd_histograms} if report else results.esds
    missing = [row for row in results.details if row.get("status") == "success" and esd_key(row) not in drawable]
    if cache and missing:
        what = "no usable ESD histogram (a cache from an older ww, or a damaged line), so the report draws none for them"
        if not report:
            what = "no eigenvalues (the cache keeps a histogram), so their ESD plots are left out"
        print(
            f"ww: warning: {len(missing)} layers restored from the cache {printable(cache)} have {what}; run without --cache to draw them",
            file=sys.stderr,
        )


def _print_errors(errors: Sequence[str]) -> int:
    for line in errors:
        print(line, file=sys.stderr)
    return EXIT_USER_ERROR if errors else 0


def cmd_analyze(args: argparse.Namespace) -> int:
    """Analyze a model (``ww demo``: the bundled one), write the outputs asked for, print the table."""
    if args.command == "analyze" and not args.path:
        raise ValueError("ww analyze needs a model path (a file, a folder or a Hugging Face id); `ww demo` analyzes the bundled model")
    source = args.path or str(model_path())
    check_outputs([("--csv", args.csv), ("--json", args.json)], [("--plot", args.plot)], [source, args.base], args.cache)
    bar = ProgressBar(0, enabled=False if args.quiet else None)  # -q: no bar either
    try:
        try:
            with run_kwargs(args) as run:
                results = analyze(source, progress=bar, **run, **option_kwargs(args))
        except CacheWriteError as exc:  # the rows finished so far are still shown, then the one error line
            bar.close()
            if exc.results is not None and exc.results.details and not args.quiet:
                print(results_text(exc.results, args.columns, args.verbose, args.command == "demo"))
            raise
        require_analyzed(results, args.layers)
        jobs = table_jobs(args, results.to_csv, results.to_json)
        if args.plot:
            from ww_core.views import plots

            warn_cached_esds(results, args.cache)
            jobs.append((args.plot, lambda: plots.save_all(results, args.plot, progress=bar)))
        errors = write_all(jobs)
    finally:
        bar.close()
    if not args.quiet and STDOUT not in (args.csv, args.json):
        print(results_text(results, args.columns, args.verbose, args.command == "demo"))
    if not any(row.get("status") == "success" for row in results.details):  # the rows say why; the exit code must too
        skipped = f", {len(results.skipped)} skipped" if results.skipped else ""
        errors.append(f"ww: error: no layer of {results.source} was analyzed: {len(results.failed)} failed{skipped} (see their reasons)")
    return _print_errors(errors)


def cmd_describe(args: argparse.Namespace) -> int:
    """List layers and sizes without computing spectra, as a table, CSV or JSON."""
    source = args.path or str(model_path())
    check_outputs([("--csv", args.csv), ("--json", args.json)], inputs=[source])
    results = describe(source, **option_kwargs(args))
    errors = write_all(table_jobs(args, results.to_csv, results.to_json))
    if STDOUT not in (args.csv, args.json):
        rows = shown_rows(results, args.verbose)
        fit = {"drop_order": DESCRIBE_DROP_ORDER, "last_resort": DESCRIBE_LAST_RESORT}
        columns, width = chosen_columns(rows, args.columns, DESCRIBE_COLUMNS, **fit)
        print(f"source: {results.source}{read_by(results)}")
        print(table_view.render(rows, columns, width))
    return _print_errors(errors)


def cmd_compare(args: argparse.Namespace) -> int:
    """Analyze several models (or a training-run folder's checkpoints) with the same options; print the table and the verdict."""
    from ww_core.models.comparison import compare

    check_outputs([("--csv", args.csv), ("--json", args.json)], [("--plot", args.plot)], [*args.paths, args.base], args.cache)
    with run_kwargs(args) as run:
        comparison = compare(*args.paths, names=args.names, reference=args.reference, **run, **option_kwargs(args))
    jobs = table_jobs(args, comparison.to_csv, comparison.to_json)
    if args.plot:
        jobs.append((args.plot, lambda: comparison.plot(args.plot)))
    errors = write_all(jobs)
    if STDOUT not in (args.csv, args.json):
        print(comparison_text(comparison))
    else:
        print(f"ww: {printable(str(comparison.verdict))}", file=sys.stderr)
        for note in comparison.failed_notes():
            print(f"ww: warning: {printable(note)}, so its rank rests on its other layers", file=sys.stderr)
    return _print_errors(errors)


def comparison_text(comparison: Comparison) -> str:
    """What ``ww compare`` prints: the model table and the verdict, fitted to a terminal as ``ww analyze``'s are (whole when not one)."""
    width = terminal_width()
    if width is None:
        return str(comparison)
    rows, columns = comparison.ordered_table(), comparison.shown_columns()
    kept = {"rank", "name", "alpha", str(comparison.verdict.metric)}
    shown = table_view.fit_columns(rows, columns, width, drop_order=[c for c in reversed(columns) if c not in kept], last_resort=())
    said = [str(comparison.verdict), *(f"warning: {note}, so its rank rests on its other layers" for note in comparison.failed_notes())]
    lines = [table_view.render(rows, shown, width), ""]
    for text in said:
        lines += textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False)
    return "\n".join(lines)


def cmd_correlate(args: argparse.Namespace) -> int:
    """Rank-correlate every metric with a held-out score over the models a CSV file lists; print the table and the best predictor."""
    from ww_core.models.comparison import default_names
    from ww_core.models.correlation import correlate, read_scores

    models, scores, column = read_scores(args.scores, args.score)
    outputs = [("--csv", args.csv), ("--json", args.json), ("--html", args.html)]
    check_outputs(outputs, inputs=[args.scores, *models, args.base], cache=args.cache)
    with run_kwargs(args) as run:
        table = correlate(models, scores, score=column, higher_is_better=not args.lower_is_better, names=default_names(models),
                          **run, **option_kwargs(args))  # fmt: skip
    jobs = table_jobs(args, table.to_csv, table.to_json)
    if args.html:
        jobs.append((args.html, lambda: write_output(args.html, table.to_html())))
    errors = write_all(jobs)
    if STDOUT not in (args.csv, args.json, args.html):
        print(table)
    return _print_errors(errors)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report of one model, or of several compared (a training-run folder: its checkpoints in step order)."""
    from ww_core.models.comparison import compare, expand_series
    from ww_core.views.report import results_report

    paths = expand_series(args.paths or [str(model_path())])
    if args.names and len(args.names) != len(paths):
        raise ValueError(f"got {len(args.names)} names for {len(paths)} models")
    check_outputs([("-o", args.output)], inputs=[*paths, args.base], cache=args.cache)
    with run_kwargs(args) as run:
        kwargs = {**run, **option_kwargs(args)}
        if len(paths) == 1:
            results = analyze(paths[0], **kwargs)
            require_analyzed(results, args.layers)
            warn_cached_esds(results, args.cache, report=True)
            title = args.names[0] if args.names else None
            render: Callable[[], str] = functools.partial(results_report, results, title)
        else:
            render = compare(*paths, names=args.names, reference=args.reference, **kwargs).to_html
    errors = write_all([(args.output, lambda: write_output(args.output, render()))])
    if args.output != STDOUT and not errors:
        print(f"wrote {printable(args.output)}")
    return _print_errors(errors)


def cmd_plugins(args: argparse.Namespace) -> int:
    """List the installed plugins (distribution, version, hooks, status, what each reads), or one plugin with its options."""
    adapters = list_adapters()
    if args.name:
        adapters = [a for a in adapters if args.name in (a["name"], a["distribution"])]
        if not adapters:
            raise ValueError(f"no plugin named {args.name!r}; `ww plugins` lists them")
    if args.json:
        print(json.dumps(adapters, indent=2, default=str))
        return 0
    for adapter in adapters:
        version = f" {adapter['version']}" if adapter.get("version") else ""
        status = adapter["status"] + (f": {adapter['reason']}" if adapter.get("reason") else "")
        hooks = ", ".join(adapter["hooks"]) or "none"
        line = f"{adapter['name']} [{status}] {adapter['distribution']}{version}; hooks: {hooks}; reads: {adapter['handles']}"
        print(printable(line))  # a plugin's words about itself are third-party text, escaped like file names
        if args.name:
            print(printable(f"  asked about: {adapter['declares']}"))
            specs = option_specs(adapter["options"]) if "options" in adapter else None
            if specs is None:
                print("  options: not declared (any --extra key reaches it)")
            for spec in specs or ():
                print(printable(f"  --extra {adapter['name']}.{spec.words()}"))
    if args.timing:
        print("time spent in plugin code in this process (import, ww_adapter_info):")
        print(timing_text())
    return 0


def timing_text() -> str:
    """One line per plugin hook called in this process: calls and seconds, the slowest first."""
    lines = [f"  {plugin} {hook}: {calls} call{'s' * (calls != 1)}, {seconds:.3f} s" for plugin, hook, calls, seconds in hook_seconds()]
    return "\n".join(lines)


def cmd_plot_history(args: argparse.Namespace) -> int:
    """Draw a training monitor's log: a metric per layer and the summary over steps."""
    from pathlib import Path

    from ww_core.results.outputs import write_atomic
    from ww_core.training.history import load_history
    from ww_core.training.signals import divergence_of
    from ww_core.views import plots
    from ww_core.views.history_report import figure_bytes, history_html

    target = Path(args.output or Path(args.log).with_suffix(".png"))
    kind = target.suffix.lower()
    if kind not in (".png", ".svg", ".html"):
        raise ValueError(
            f"{printable(str(target))}: plot-history writes .png, .svg or .html, not {printable(kind) or 'a file without suffix'}"
        )
    check_outputs([("-o", str(target))], inputs=[args.log])
    history = load_history(args.log)
    if not history.steps:
        raise ValueError(f"{args.log}: no analyzed snapshot to plot ({len(history.skipped)} skipped, {len(history.errors)} failed)")
    try:
        history.layer_series(args.metric)
    except KeyError as exc:  # a one-line user error, not a traceback
        raise ValueError(exc.args[0]) from None
    try:
        import matplotlib  # noqa: F401  (after the log and metric: a wrong one is said first; the .html page embeds the plot too)
    except ImportError:
        raise ImportError(
            f"ww plot-history draws with matplotlib, for .png, .svg and .html alike: {install_hint('ww-core', 'plot')}"
        ) from None
    found = divergence_of(history)
    if found is not None and not any(record.get("rule") == found.rule for record in history.warnings):  # load_history said a logged one
        print(f"ww: warning: {args.log}: training diverged at step {found.step} (seen in its rows): {found.message}", file=sys.stderr)
    if kind == ".html":
        write_atomic(target, history_html(history, args.metric))
    else:
        write_atomic(target, figure_bytes(plots.plot_history(history, args.metric), kind[1:]))
    print(f"wrote {printable(str(target))}")
    return 0


def _reference_flag(sub: argparse.ArgumentParser) -> None:
    help_text = "measure the other models against this one (its name), e.g. quantized copies against full precision: distances, no best"
    sub.add_argument("--reference", metavar="NAME", help=help_text)


def _run_flags(sub: argparse.ArgumentParser) -> None:
    """Flags of a run that do not change a row: the base model, parallelism, the resume cache."""
    base_help = "analyze W − W_base against this model (matched by layer name); with --peft with_base, a PEFT adapter's base model"
    sub.add_argument("--base", metavar="MODEL", help=base_help)
    sub.add_argument("--workers", type=int, help="layers analyzed in parallel (threads; default: one per core, at most 4)")
    sub.add_argument("--cache", metavar="FILE", help="JSON-lines results cache; an interrupted run resumes from it")
    sub.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run layers on a Dask cluster: a scheduler (tcp://host:8786) or local:N (N worker processes); workers read their own layers",
    )
    sub.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run layers as Ray tasks: auto (the running cluster), ray://host:port, host:port or local:N (a local Ray of N CPUs)",
    )


@contextlib.contextmanager
def run_kwargs(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """``analyze()`` keywords of the run flags; with ``--dask`` or ``--ray`` the cluster's executor, held open for the run."""
    run = {"base_model": args.base, "workers": args.workers, "cache": args.cache}
    if args.dask and args.ray:
        raise ValueError("--dask and --ray each run the layers on a cluster: give one of them")
    if args.dask:
        from ww_core.pipeline.dask_cluster import dask_executor as cluster_executor
    elif args.ray:
        from ww_core.pipeline.ray_cluster import ray_executor as cluster_executor
    else:
        yield run
        return
    with cluster_executor(args.dask or args.ray) as (executor, slots):
        yield {**run, "executor": executor, "workers": slots if args.workers is None else args.workers}


def _columns_flag(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--columns", metavar="A,B,...", help="columns to print, comma-separated, or 'all' (default: what fits the terminal)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="ww",
        description="Judge a trained network from its weights alone.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ww-core {__version__}")
    verbose_help = "log progress (and each plugin hook's time) to stderr; show the rows --layers left out"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    parser.add_argument(
        "--plugins",
        metavar="NAMES",
        help=f"load only these plugins: entry-point or distribution names, 'first-party', or 'none' (sets {ALLOW_ENV})",
    )
    commands = parser.add_subparsers(dest="command")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)  # after the command too
        return sub

    for name, help_text in (
        ("analyze", "analyze a model file, folder, checkpoint or Hugging Face id"),
        ("demo", "analyze the bundled demo model"),
    ):
        sub = command(name, cmd_analyze, help_text)
        if name == "analyze":
            sub.add_argument("path", nargs="?", help="model file or folder (required; `ww demo` for the bundled model)")
        else:
            sub.set_defaults(path=None)
        sub.add_argument("--csv", metavar="FILE", help="write the rows as CSV here ('-': stdout)")
        sub.add_argument("--json", metavar="FILE", help="write summary and rows as JSON here ('-': stdout)")
        sub.add_argument("--plot", metavar="DIR", help="write ESD and correlation-flow plots here (needs matplotlib)")
        sub.add_argument("-q", "--quiet", action="store_true", help="print nothing")
        _columns_flag(sub)
        _run_flags(sub)
        add_option_flags(sub)
    sub = command("describe", cmd_describe, "list layers and sizes without computing spectra")
    sub.add_argument("path", nargs="?", help="model file or folder")
    sub.add_argument("--csv", metavar="FILE", help="write the layer list as CSV here ('-': stdout)")
    sub.add_argument("--json", metavar="FILE", help="write the layer list as JSON here ('-': stdout)")
    _columns_flag(sub)
    add_option_flags(sub, describe_only=True)
    sub = command("compare", cmd_compare, "compare models of a series (checkpoints, a sweep): table and verdict (docs/verdicts.md)")
    sub.add_argument("paths", nargs="+", metavar="path", help="model files or folders in series order, or one training-run folder")
    sub.add_argument("--names", nargs="+", help="a label per model (default: file names)")
    _reference_flag(sub)
    sub.add_argument("--csv", nargs="?", const=STDOUT, metavar="FILE", help="the model table as CSV, to this file or stdout ('-')")
    json_help = "verdict, ranking, model table and per-layer alpha deltas as JSON, to this file or stdout ('-')"
    sub.add_argument("--json", nargs="?", const=STDOUT, metavar="FILE", help=json_help)
    sub.add_argument("--plot", metavar="DIR", help="write comparison.png and flows.png here (needs matplotlib)")
    _run_flags(sub)
    add_option_flags(sub)
    sub = command("correlate", cmd_correlate, "rank-correlate every metric with a held-out score per model (Spearman, Kendall)")
    sub.add_argument("scores", help="CSV file: a model column (paths, relative to the file) and one column per score")
    sub.add_argument("--score", metavar="COLUMN", help="the score column to use (needed when the file has several)")
    sub.add_argument("--lower-is-better", action="store_true", help="a lower score is a better model (a loss; default: higher is better)")
    sub.add_argument("--csv", nargs="?", const=STDOUT, metavar="FILE", help="the per-metric table as CSV, to this file or stdout ('-')")
    sub.add_argument(
        "--json", nargs="?", const=STDOUT, metavar="FILE", help="table, best predictor and models' values as JSON ('-': stdout)"
    )
    sub.add_argument("--html", metavar="FILE", help="write the page with a scatter plot per metric here ('-': stdout)")
    _run_flags(sub)
    add_option_flags(sub)
    sub = command("report", cmd_report, "write a self-contained HTML report of a model, or of several models compared")
    sub.add_argument(
        "paths", nargs="*", metavar="path", help="model file or folder; several, or a training-run folder: compared (default: the demo)"
    )
    sub.add_argument("-o", "--output", default="report.html", metavar="FILE", help="the HTML file (default report.html; '-': stdout)")
    sub.add_argument("--names", nargs="+", help="a label per model, the page title for one (default: file names)")
    _reference_flag(sub)
    _run_flags(sub)
    add_option_flags(sub)
    sub = command("plot-history", cmd_plot_history, "plot a training monitor's JSON-lines log (ww_core.Monitor) over steps")
    sub.add_argument("log", help="the monitor's log, e.g. run.jsonl")
    output_help = "the .png, .svg or .html (page with the signals) to write (default: the log's name with .png); each needs matplotlib"
    sub.add_argument("-o", "--output", help=output_help)
    sub.add_argument("--metric", default="alpha", help="row metric to draw (default alpha)")
    sub = command("plugins", cmd_plugins, "list installed adapters")
    sub.add_argument("name", nargs="?", help="show this plugin only, with what it is asked about")
    sub.add_argument("--json", action="store_true", help="as JSON")
    sub.add_argument("--timing", action="store_true", help="also the seconds each plugin's import and hooks took")
    return parser


class _Messages(logging.Handler):
    """ww_core's log as the command's own lines on the current stderr: ``ww: warning: ...``, each line escaped
    (``printable``), a multi-line message's further lines indented."""

    def emit(self, record: logging.LogRecord) -> None:
        kind = "warning: " if record.levelno >= logging.WARNING else ""
        first, *more = record.getMessage().split("\n")
        print("\n".join([f"ww: {kind}{printable(first)}", *(f"  {printable(line)}" for line in more)]), file=sys.stderr)


def _configure_logging(verbose: bool) -> None:
    """Send ww_core's log to stderr (one handler, however often ``main`` runs); the root logger is left alone."""
    logger = logging.getLogger("ww_core")
    for handler in [h for h in logger.handlers if isinstance(h, _Messages)]:
        logger.removeHandler(handler)
    logger.addHandler(_Messages())
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def cached_layers(path: str) -> int:
    """How many finished layers a results cache file holds (its complete JSON lines)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return sum(1 for line in handle if line.endswith("\n") and _is_json(line))
    except OSError:
        return 0


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def interrupted_message(args: argparse.Namespace) -> str:
    """``ww: interrupted``, with how many layers the cache kept when there is one."""
    cache = getattr(args, "cache", None)
    if cache:
        return f"ww: interrupted; {cached_layers(cache)} layers cached in {cache}"
    return "ww: interrupted"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush into a closed pipe raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ww`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command is None:
        args = parser.parse_args(["demo", *(argv or [])])
    if args.plugins is not None:
        os.environ[ALLOW_ENV] = args.plugins  # worker processes inherit it
        reload_plugins()
    try:
        with warnings.catch_warnings(record=True) as caught:  # shown after the run, one line each; an error says it all
            if args.command in OPTION_COMMANDS:
                AnalysisOptions.from_kwargs(**option_kwargs(args))  # every option checked before any file is read
            code = int(args.handler(args))
        if args.verbose and hook_seconds():
            logging.getLogger("ww_core").info("time spent in plugin code:\n%s", timing_text())
        for message in dict.fromkeys(str(warning.message) for warning in caught):  # once each, however many models said it
            print(f"ww: warning: {printable(message)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(interrupted_message(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except USER_ERRORS as exc:
        print(f"ww: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
