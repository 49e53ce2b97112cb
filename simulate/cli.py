"""The ``collapse`` command: a thin client of the Python API.

::

    collapse theory   SETTING [options]   exact expectations per iteration
    collapse simulate SETTING [options]   Monte Carlo mean and standard error per iteration
    collapse compare  SETTING [options]   both, with a statistical verdict
    collapse value    SETTING [options]   the value of synthetic data over a grid of sizes
    collapse sweep    GRID.toml --output DIR [--scheduler ADDRESS] [--workers N]
                                          a grid of the above as tasks on a Dask cluster
    collapse lm ...                       the language-model loop

Every command maps its options to a problem dataclass and calls
:func:`collapse.theory`, :func:`collapse.simulate`, :func:`collapse.compare` or
:func:`collapse.value`, so the same options and seed give the same numbers as the API.
Exit status: 0 success (and ``compare``, or ``value --replicates``: consistent); 1 an
inconsistency; 2 bad input (one line ``collapse: error: ...`` naming the option, no
traceback); 3 no row could be tested; 4 ``sweep`` had cells that failed (the others are
kept); 130 interrupted (finished workflows are kept with ``--checkpoint``, finished cells
of a sweep always).
``collapse theory`` imports neither torch nor the Monte Carlo engines.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import ALL, FORMATS, WORKFLOWS
from collapse.simulate.cli_options import (
    add_setting_arguments,
    as_option,
    integer,
    number,
    problem_from_args,
    sizes,
)
from collapse.simulate.settings import settings

PROG = "collapse"

#: Names of API parameters as the command line spells them.
_FLAGS = {"iterations": "--iterations", "replicates": "--replicates", "seed": "--seed",
          "alpha": "--alpha", "theory_scale": "--theory-scale", "chunk_size": "--chunk-size",
          "engine": "--engine", "workflow": "--workflow", "output": "--output",
          "plot": "--plot", "checkpoint": "--checkpoint", "force": "--force",
          "generator_n": "--generator-n", "real_sizes": "--real-sizes",
          "synthetic_sizes": "--synthetic-sizes",
          "real_sizes and synthetic_sizes": "--real-sizes and --synthetic-sizes",
          "workers": "--workers", "retries": "--retries"}


def _all_flags() -> dict[str, str]:
    """Parameter name -> option, for the API's parameters and every setting's fields."""
    from collapse.simulate.cli_options import OPTIONS

    flags = dict(_FLAGS, n="--n")
    for options in OPTIONS.values():
        flags.update({option.field: option.flag for option in options})
    return flags


class CollapseParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = " ".join(message.split())
        self.exit(2, f"{PROG}: error: {message}\n")


def _add_common(parser: argparse.ArgumentParser, command: str, n_default: int = 100) -> None:
    common = parser.add_argument_group("common options")
    common.add_argument("--workflow", dest="workflows", action="append", metavar="WORKFLOW",
                        help="a preset (" + ", ".join(WORKFLOWS) + ", fresh), a comma-separated "
                             "list of presets, 'all' (the paper's three; the default), or a "
                             "spec such as real=original,synthetic=window:3; repeat to "
                             "compare several rules")
    # None: the problem's own default applies (it differs between settings)
    common.add_argument("--n", type=integer, default=None,
                        help=f"samples drawn from every model, and real samples (default "
                             f"{n_default})")
    common.add_argument("--iterations", type=integer, default=100,
                        help="model-fitting iterations; iteration 1 is fitted on real data "
                             "(default 100)")
    ignored = "; ignored by theory" if command == "theory" else ""
    common.add_argument("--replicates", type=integer, default=1000,
                        help=f"independent Monte Carlo replicates (default 1000{ignored})")
    common.add_argument("--seed", type=integer, default=0,
                        help=f"seed of numpy's SeedSequence (default 0{ignored})")
    common.add_argument("--format", choices=FORMATS, default="table",
                        help="output format (default table)")
    common.add_argument("--output", metavar="PATH",
                        help="write the full result to PATH instead of standard output")
    common.add_argument("--plot", metavar="PATH",
                        help="draw the curves to PATH (.png, .pdf or .svg)")
    common.add_argument("--force", action="store_true",
                        help="run even when the up-front estimate of memory or time says the "
                             "request cannot fit this machine")
    if command != "theory":
        common.add_argument("--chunk-size", type=integer, default=None,
                            help="replicates simulated at once (bounds memory; results do not "
                                 "depend on it)")
        common.add_argument("--checkpoint", metavar="DIR",
                            help="keep each finished workflow's replicates in DIR; a rerun with "
                                 "the same settings reuses them (resume after interruption)")
    if command == "compare":
        common.add_argument("--alpha", type=number, default=0.01,
                            help="family-wise false-alarm rate of the verdict (default 0.01)")
        common.add_argument("--theory-scale", type=number, default=1.0, metavar="FACTOR",
                            help="negative control: multiply every exact expectation by FACTOR "
                                 "before testing; a sound test must then report inconsistency")


def _version() -> str:
    import collapse

    return collapse.__version__


def build_parser() -> argparse.ArgumentParser:
    """The ``collapse`` argument parser (also rendered on the docs' CLI page)."""
    parser = CollapseParser(
        prog=PROG,
        description="Will a model collapse if it trains on its own outputs? Exact theory and "
                    "Monte Carlo for training workflows that replace, accumulate or mix real "
                    "and synthetic data.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=CollapseParser)
    helps = {
        "theory": "exact expectations per iteration",
        "simulate": "Monte Carlo mean and standard error per iteration",
        "compare": "theory and Monte Carlo with a statistical verdict (exit 1 if inconsistent)",
    }
    for command, text in helps.items():
        sub = commands.add_parser(command, help=text, description=text)
        kinds = sub.add_subparsers(dest="setting", required=True, metavar="SETTING",
                                   parser_class=CollapseParser)
        for name, setting in settings().items():
            leaf = kinds.add_parser(name, help=setting.help, description=f"{text}: {setting.help}")
            _add_common(leaf, command, _field_default(setting.problem_type, "n"))
            add_setting_arguments(leaf, setting, command)
            leaf.set_defaults(func=_RUNNERS[command], setting_adapter=setting)
    _register_value(commands)
    _register_sweep(commands)
    _register_lm(commands)
    return parser


def _field_default(problem_type: type, name: str):
    import dataclasses

    for f in dataclasses.fields(problem_type):
        if f.name == name:
            return f.default
    return None


#: The settings with a value-of-synthetic-data grid.
VALUE_SETTINGS = ("gaussian", "kde")


def _register_value(commands: argparse._SubParsersAction) -> None:
    text = ("the value of synthetic data: a generator fitted on N real points, a student on "
            "n_r of them plus n_s generated points, over a grid of (n_r, n_s); exact theory, "
            "or Monte Carlo with --replicates (exit 1 if inconsistent)")
    sub = commands.add_parser("value", help="the value of synthetic data over a grid of "
                                            "real and synthetic sizes", description=text)
    kinds = sub.add_subparsers(dest="setting", required=True, metavar="SETTING",
                               parser_class=CollapseParser)
    for name, setting in settings().items():
        if name not in VALUE_SETTINGS:
            continue
        leaf = kinds.add_parser(name, help=setting.help, description=f"{text}: {setting.help}")
        grid = leaf.add_argument_group("grid")
        grid.add_argument("--generator-n", type=integer, required=True, metavar="N",
                          help="real points the generator is fitted on (>= 2)")
        grid.add_argument("--real-sizes", type=sizes, required=True, metavar="A,B,...",
                          help="the student's real points, each in [0, N] (the generator's "
                               "first n_r)")
        grid.add_argument("--synthetic-sizes", type=sizes, required=True, metavar="C,D,...",
                          help="the student's points sampled from the generator, each >= 0")
        common = leaf.add_argument_group("common options")
        common.add_argument("--replicates", type=integer, default=None,
                            help="Monte Carlo replicates (>= 2); without it, exact theory only")
        common.add_argument("--seed", type=integer, default=0,
                            help="seed of numpy's SeedSequence (default 0)")
        common.add_argument("--alpha", type=number, default=0.01,
                            help="family-wise false-alarm rate of the verdict (default 0.01)")
        common.add_argument("--theory-scale", type=number, default=1.0, metavar="FACTOR",
                            help="negative control: multiply every exact value by FACTOR")
        common.add_argument("--chunk-size", type=integer, default=None,
                            help="replicates simulated at once (results do not depend on it)")
        common.add_argument("--format", choices=FORMATS, default="table",
                            help="output format (default table: one grid per metric)")
        common.add_argument("--output", metavar="PATH",
                            help="write the full result to PATH instead of standard output")
        common.add_argument("--plot", metavar="PATH",
                            help="draw the heat maps to PATH (.png, .pdf or .svg)")
        add_setting_arguments(leaf, setting, "value")
        leaf.set_defaults(func=run_value, setting_adapter=setting)


def _register_sweep(commands: argparse._SubParsersAction) -> None:
    text = ("a grid of theory, simulate, compare or lm commands, one task per cell, on a Dask "
            "cluster; finished cells are kept, so a rerun computes only the missing ones")
    sub = commands.add_parser(
        "sweep", help="a grid of commands as tasks on a Dask cluster (resumable)",
        description=text + ". Exit status: as compare over all cells (1 if any cell is "
                           "inconsistent, 3 if one could test no row), 4 if a cell failed.")
    sub.add_argument("grid", metavar="GRID.toml",
                     help="the grid: command, setting, [fixed] options and [grid] lists, keys "
                          "named as the command-line options without dashes (the "
                          "sweeps folder holds the paper's grids)")
    sub.add_argument("--output", required=True, metavar="DIR",
                     help="the sweep directory: new, empty, or written by the same grid "
                          "(resumed); DIR/results.csv holds every cell's rows")
    sub.add_argument("--scheduler", metavar="ADDRESS", default=None,
                     help="a running Dask scheduler (tcp://host:8786 or a scheduler file), "
                          "or 'synchronous' (this process, one cell after another); default: "
                          "a local cluster on this machine")
    sub.add_argument("--workers", type=integer, default=None, metavar="N",
                     help="worker processes of the local cluster (default: the cores "
                          "available)")
    sub.add_argument("--retries", type=integer, default=2, metavar="K",
                     help="retries of a cell whose task raised an error (default 2; a worker "
                          "that dies has its cells rescheduled by Dask itself)")
    sub.add_argument("--quiet", action="store_true",
                     help="no progress bar (the final counts are still printed)")
    sub.set_defaults(func=run_sweep)


def _register_lm(commands: argparse._SubParsersAction) -> None:
    # The LM subcommands are declared here but import torch only when they run.
    from collapse.lm.cli import register

    register(commands)


# -- running -----------------------------------------------------------------------

def _check_paths(args: argparse.Namespace) -> None:
    # Refuse unwritable destinations before computing anything.
    from collapse.simulate.tables import check_output, check_plot

    if args.output is not None:
        check_output(args.output, "--output")
    if args.plot is not None:
        check_plot(args.plot, "--plot")


def _problem(args: argparse.Namespace):
    setting = args.setting_adapter
    return problem_from_args(setting, args, args.command)


def _checked_problem(args: argparse.Namespace, paths: bool = True):
    """The problem, after every option has been checked (nothing computed yet)."""
    from collapse.simulate.api import check_call

    problem = _problem(args)
    if args.command == "value":
        from collapse.simulate.value import check_value_call

        check_value_call(problem, args.generator_n, args.real_sizes, args.synthetic_sizes,
                         args.replicates, args.seed, alpha=args.alpha,
                         theory_scale=args.theory_scale, chunk_size=args.chunk_size)
        if paths:
            _check_paths(args)
        return problem
    check_call(args.command, problem, _workflows(args), args.iterations, args.replicates,
               args.seed, alpha=getattr(args, "alpha", 0.01),
               theory_scale=getattr(args, "theory_scale", 1.0),
               engine=getattr(args, "engine", "auto"), chunk_size=getattr(args, "chunk_size", None),
               force=args.force)
    if paths:
        _check_paths(args)
    return problem


def validate(argv: Sequence[str]) -> str | None:
    """``None`` if ``collapse argv`` would be accepted, else its one-line error.

    Nothing is computed and no path is checked (documented commands may name output
    folders that do not exist where the docs are built).
    """
    import contextlib
    import io

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = build_parser().parse_args(list(argv))
    except SystemExit as exc:
        return None if exc.code in (0, None) else (err.getvalue().strip() or f"exit {exc.code}")
    if args.command == "sweep":
        from collapse.analysis.checks import check_int
        from collapse.simulate.sweep import check_scheduler, load_grid

        try:
            load_grid(args.grid)
            check_scheduler(args.scheduler, args.workers)
            check_int("retries", args.retries, 0)
        except CollapseError as exc:
            return f"{PROG}: error: {as_option(str(exc), _FLAGS)}"
        return None
    if getattr(args, "setting_adapter", None) is None:
        return None  # lm subcommands check their own options when they run
    try:
        _checked_problem(args, paths=False)
    except CollapseError as exc:
        return f"{PROG}: error: {as_option(str(exc), _all_flags())}"
    return None


def _workflows(args: argparse.Namespace):
    return args.workflows if args.workflows else ALL


def _emit(result, args: argparse.Namespace, text_view: str | None = None) -> None:
    """Write the result in ``--format`` to ``--output`` or standard output."""
    if args.format == "csv":
        text = result.to_csv()
    elif args.format == "json":
        text = result.to_json()
    else:
        text = text_view if text_view is not None else result.to_text()
    if args.output is not None:
        from collapse.simulate.tables import write_text

        write_text(args.output, text, "--output")
        print(f"{PROG}: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
        if args.format != "table":
            for note in result.notes:
                print(f"note: {note}", file=sys.stderr)


def _plot(result, args: argparse.Namespace) -> None:
    if args.plot is not None:
        result.save_plot(args.plot)
        print(f"{PROG}: wrote {args.plot}", file=sys.stderr)


def compute(args: argparse.Namespace, *, paths: bool = True):
    """The result object of a parsed ``theory``, ``simulate`` or ``compare`` command.

    Every option is checked first (:class:`CollapseError` naming it); with ``paths``,
    ``--output`` and ``--plot`` too.  Nothing is written: the runners below emit the
    result, and ``collapse sweep`` stores it as one cell, so a cell's numbers are those
    of the single command by construction.
    """
    from collapse.simulate import api

    problem = _checked_problem(args, paths=paths)
    if args.command == "theory":
        return api.theory(problem, _workflows(args), args.iterations, force=args.force)
    if args.command == "simulate":
        return api.simulate(problem, _workflows(args), args.iterations, args.replicates,
                            args.seed, **_simulation_options(args))
    return api.compare(problem, _workflows(args), args.iterations, args.replicates, args.seed,
                       alpha=args.alpha, theory_scale=args.theory_scale,
                       **_simulation_options(args))


def run_theory(args: argparse.Namespace) -> int:
    result = compute(args)
    _emit(result, args)
    _plot(result, args)
    return 0


def _simulation_options(args: argparse.Namespace) -> dict:
    return {"engine": getattr(args, "engine", "auto"), "chunk_size": args.chunk_size,
            "checkpoint": args.checkpoint, "force": args.force}


def run_simulate(args: argparse.Namespace) -> int:
    result = compute(args)
    _emit(result, args)
    _plot(result, args)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    result = compute(args)
    summary = result.summary()
    if args.format == "table" and args.output is None:
        sys.stdout.write(summary)
    else:
        # the rows go where --format and --output say; the verdict to standard error
        sys.stderr.write(summary)
        _emit(result, args)
    _plot(result, args)
    return result.exit_status


def run_value(args: argparse.Namespace) -> int:
    from collapse.simulate.value import value

    problem = _checked_problem(args)
    result = value(problem, generator_n=args.generator_n, real_sizes=args.real_sizes,
                   synthetic_sizes=args.synthetic_sizes, replicates=args.replicates,
                   seed=args.seed, alpha=args.alpha, theory_scale=args.theory_scale,
                   chunk_size=args.chunk_size)
    if args.format == "table" and args.output is None:
        sys.stdout.write(result.summary())
    else:
        _emit(result, args)
        if result.verdict is not None:
            print(f"{PROG}: verdict: {result.verdict}", file=sys.stderr)
    _plot(result, args)
    return result.exit_status


def run_sweep(args: argparse.Namespace) -> int:
    import signal

    from collapse.simulate.sweep import sweep

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    # SIGTERM (a batch system's stop) ends the sweep like Ctrl-C: the local cluster's
    # workers are shut down instead of being left to notice their scheduler is gone.
    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        result = sweep(args.grid, args.output, scheduler=args.scheduler, workers=args.workers,
                       retries=args.retries, progress=not args.quiet)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return result.exit_status


_RUNNERS = {"theory": run_theory, "simulate": run_simulate, "compare": run_compare}


class _Handler(logging.Handler):
    """Library messages (reused checkpoints, damaged files) as ``collapse: ...`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{PROG}: {record.getMessage()}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns its exit status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logger = logging.getLogger("collapse")
    handler = _Handler()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        return int(args.func(args) or 0)
    except CollapseError as exc:
        message = as_option(" ".join(str(exc).split()), _all_flags())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `collapse ... | head` closes stdout early; that is not an error.
        sys.stderr.close()
        return 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
