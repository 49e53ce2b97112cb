"""The ``collapse`` command.

::

    collapse theory   {gaussian,kde} [options]   exact expectations per iteration
    collapse simulate {gaussian,kde} [options]   Monte Carlo mean and standard error per iteration
    collapse compare  {gaussian,kde} [options]   both, with a statistical verdict; exit 1 if inconsistent
    collapse lm ...                              the language-model loop

Bad input gets one line ``collapse: error: ...`` naming the parameter and exit
status 2; an interrupted run exits 130 after keeping what it finished (with
``--checkpoint``).  ``collapse theory`` imports neither torch nor the Monte Carlo
engines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from collapse.analysis.vocabulary import ALL, WORKFLOWS
from collapse.analysis.workflows import parse_workflows
from collapse.simulate.argtypes import any_float, int_at_least, probability
from collapse.analysis.errors import CollapseError
from collapse.simulate.settings import Setting, settings
from collapse.simulate.tables import FORMATS, THEORY_COLUMNS, Table, atomic_write_text

PROG = "collapse"


class CollapseParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = " ".join(message.split())
        self.exit(2, f"{PROG}: error: {message}\n")


def _workflow_type(text: str) -> tuple[str, ...]:
    try:
        names = tuple(w.label for w in parse_workflows(text))
        for name in names:
            if name not in WORKFLOWS:
                raise ValueError(f"workflow {name} is not supported yet")
        return names
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_common(parser: argparse.ArgumentParser, command: str) -> None:
    common = parser.add_argument_group("common options")
    common.add_argument("--workflow", dest="workflows", type=_workflow_type, default=WORKFLOWS,
                        metavar="{" + ",".join(WORKFLOWS + (ALL,)) + "}",
                        help="training workflow(s) (default all)")
    common.add_argument("--n", type=int_at_least(2), default=100,
                        help="samples drawn from every model, and real samples (default 100)")
    common.add_argument("--iterations", type=int_at_least(1), default=100,
                        help="model-fitting iterations; iteration 1 is fitted on real data "
                             "(default 100)")
    common.add_argument("--replicates", type=int_at_least(2 if command == "compare" else 1),
                        default=1000, help="independent Monte Carlo replicates (default 1000; "
                                           "ignored by theory)")
    common.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed of numpy's SeedSequence (default 0; ignored by theory)")
    common.add_argument("--format", choices=FORMATS, default="table",
                        help="output format (default table)")
    common.add_argument("--output", type=Path, metavar="PATH",
                        help="write the full result to PATH (atomically) instead of stdout")
    common.add_argument("--plot", type=Path, metavar="PATH",
                        help="draw the curves to PATH (e.g. curves.png)")
    if command != "theory":
        common.add_argument("--chunk-size", type=int_at_least(1), default=None,
                            help="replicates simulated at once (bounds memory; results do not "
                                 "depend on it)")
        common.add_argument("--checkpoint", type=Path, metavar="DIR",
                            help="keep each finished workflow's replicates in DIR; a rerun with "
                                 "the same settings reuses them (resume after interruption)")
    if command == "compare":
        common.add_argument("--alpha", type=probability, default=0.01,
                            help="family-wise false-alarm rate of the verdict (default 0.01)")
        common.add_argument("--theory-scale", type=any_float, default=1.0, metavar="FACTOR",
                            help="negative control: multiply every exact expectation by FACTOR "
                                 "before testing; a sound test must then report inconsistency")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("collapse-or-thrive")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = CollapseParser(
        prog=PROG,
        description="Will a model collapse if it trains on its own outputs? Exact theory and "
                    "Monte Carlo for the replace, accumulate and accumulate-subsample workflows.",
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
            _add_common(leaf, command)
            setting.add_arguments(leaf, command)
            leaf.set_defaults(func=_RUNNERS[command], setting_adapter=setting)
    _register_lm(commands)
    return parser


def _register_lm(commands: argparse._SubParsersAction) -> None:
    # The LM subcommands are declared here but import torch only when they run.
    from collapse.lm.cli import register

    register(commands)


# -- running -----------------------------------------------------------------------

def _emit(table: Table, args: argparse.Namespace) -> None:
    text = table.render(args.format)
    if args.output is not None:
        atomic_write_text(args.output, text)
        print(f"{PROG}: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        if args.format != "table":
            for note in table.notes:
                print(f"note: {note}", file=sys.stderr)


def theory_table(setting: Setting, config, workflows: Sequence[str], iterations: int,
                 scale: float = 1.0) -> tuple[Table, dict[str, dict[str, tuple[float, ...]]]]:
    """Theory rows for ``workflows`` and the raw values (optionally scaled)."""
    table = Table(THEORY_COLUMNS)
    values: dict[str, dict[str, tuple[float, ...]]] = {}
    for workflow in workflows:
        try:
            result = setting.theory(config, workflow, iterations)
        except ValueError as exc:
            raise CollapseError(str(exc)) from None
        values[workflow] = {}
        for metric, series in result.values.items():
            series = tuple(float(v) * scale for v in series)
            values[workflow][metric] = series
            for t, v in enumerate(series):
                table.append(setting.name, workflow, t + 1, metric, v)
        for note in result.notes:
            note = f"{workflow}: {note}"
            if note not in table.notes:
                table.notes.append(note)
    return table, values


def _checkpoint_path(directory: Path, setting: Setting, config, workflow: str,
                     args: argparse.Namespace) -> Path:
    key = json.dumps({"setting": setting.name, "config": asdict(config), "workflow": workflow,
                      "iterations": args.iterations, "replicates": args.replicates,
                      "seed": args.seed}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return directory / f"{setting.name}-{workflow}-{digest}.npz"


def replicates(setting: Setting, config, args: argparse.Namespace) -> dict[str, dict[str, np.ndarray]]:
    """Monte Carlo replicates for every requested workflow, reusing checkpoints."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for workflow in args.workflows:
        path = None
        if args.checkpoint is not None:
            path = _checkpoint_path(args.checkpoint, setting, config, workflow, args)
            if path.exists():
                with np.load(path) as data:
                    out[workflow] = {k: data[k] for k in data.files}
                print(f"{PROG}: reused {workflow} from {path}", file=sys.stderr)
                continue
        try:
            result = setting.simulate(config, workflow, iterations=args.iterations,
                                      replicates=args.replicates, seed=args.seed,
                                      chunk_size=args.chunk_size)
        except ValueError as exc:
            raise CollapseError(str(exc)) from None
        out[workflow] = result
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
            os.close(fd)
            with open(tmp, "wb") as handle:
                np.savez(handle, **result)
            os.replace(tmp, path)
    return out


def _configure(args: argparse.Namespace):
    setting: Setting = args.setting_adapter
    try:
        return setting, setting.configure(args)
    except ValueError as exc:
        if isinstance(exc, CollapseError):
            raise
        raise CollapseError(str(exc)) from None


def run_theory(args: argparse.Namespace) -> int:
    setting, config = _configure(args)
    table, _ = theory_table(setting, config, args.workflows, args.iterations)
    _emit(table, args)
    if args.plot is not None:
        from collapse.simulate.plotting import plot_curves

        plot_curves(args.plot, theory=table, title=setting.describe(config) + " (theory)")
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    from collapse.simulate.stats import simulate_table

    setting, config = _configure(args)
    samples = replicates(setting, config, args)
    table = simulate_table(setting.name, samples)
    _emit(table, args)
    if args.plot is not None:
        from collapse.simulate.plotting import plot_curves

        plot_curves(args.plot, simulated=table,
                    title=f"{setting.describe(config)}, {args.replicates} replicates")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from collapse.simulate.stats import compare, simulate_table

    setting, config = _configure(args)
    theory, values = theory_table(setting, config, args.workflows, args.iterations,
                                  scale=args.theory_scale)
    samples = replicates(setting, config, args)
    result = compare(setting.name, values, samples, alpha=args.alpha,
                     lower_bounds=setting.lower_bounds(config))
    result.table.notes.extend(theory.notes)
    summary = result.summary_table()
    header = f"{setting.describe(config)}; {args.replicates} replicates, seed {args.seed}"
    if args.theory_scale != 1.0:
        header += f"; NEGATIVE CONTROL: theory scaled by {args.theory_scale:g}"
    verdict = "CONSISTENT" if result.consistent else "INCONSISTENT"
    summary_text = f"{header}\n{summary.to_text()}verdict: {verdict}\n"
    if args.format == "table" and args.output is None:
        sys.stdout.write(summary_text)
        for note in theory.notes:
            sys.stdout.write(f"note: {note}\n")
    else:
        sys.stderr.write(summary_text)
        if args.output is not None and args.format == "table":
            atomic_write_text(args.output, result.table.to_text())
            print(f"{PROG}: wrote {args.output}", file=sys.stderr)
        else:
            _emit(result.table, args)
    if args.plot is not None:
        from collapse.simulate.plotting import plot_curves

        plot_curves(args.plot, simulated=simulate_table(setting.name, samples), theory=theory,
                    title=header)
    return 0 if result.consistent else 1


_RUNNERS = {"theory": run_theory, "simulate": run_simulate, "compare": run_compare}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CollapseError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `collapse ... | head` closes stdout early; that is not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
