"""The ``collapse lm`` subcommands: ``run``, ``value`` and ``report``.

``register(subparsers)`` adds them to the ``collapse`` parser (and to ``python
-m collapse.lm``).  Importing this module imports neither torch nor transformers:
handlers import the heavy modules when they run, so ``collapse theory`` stays
light.  Bad input raises :class:`collapse.analysis.errors.CollapseError` (one line that
names the parameter; the caller prints it and exits 2).

Examples::

    collapse lm run --workflow all --iterations 3 --seeds 1 --preset tiny --output runs/tiny
    collapse lm run --workflow real=original,synthetic=all,size=n,real-fraction=0.5 ...
    collapse lm report runs/tiny --format csv --plot runs/tiny.png
    collapse lm value --real-sizes 25,50,100 --synthetic-sizes 0,100,200 --seeds 3 --output runs/value
    collapse lm run --model ./my-model --dataset data.jsonl --text-field text --n 50 ...
"""

from __future__ import annotations

import argparse
import math
import sys

from collapse.analysis.vocabulary import ALL, WORKFLOWS

FORMATS = ("table", "csv", "json")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum} (got {text!r})") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum} (got {value})")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 (got {text!r})")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        values = ()
    if not values or values[0] < 0:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers >= 0 (got {text!r})")
    return values


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``value``: sizes, data, model, resources."""
    from collapse.lm.presets import PRESET_NAMES

    parser.add_argument("--seeds", type=_int_at_least(1), default=1, metavar="K",
                        help="replicate seeds --seed .. --seed+K-1 (>= 1, default 1)")
    parser.add_argument("--seed", type=_int_at_least(0), default=0, help="first replicate seed (default 0)")
    parser.add_argument("--n-eval", type=_int_at_least(1), default=None,
                        help="held-out evaluation documents (>= 1; default: the preset's)")
    parser.add_argument("--preset", default="tiny", metavar="P",
                        help=f"sizes and hyperparameters: {', '.join(PRESET_NAMES)} (default tiny)")
    parser.add_argument("--context", type=_int_at_least(2), default=None, metavar="C",
                        help="tokens per training window and the longest chat example kept (default: the "
                             "preset's; a --model's own limit caps it)")
    parser.add_argument("--lr", type=_positive_float, default=None, metavar="LR",
                        help="fine-tuning learning rate (AdamW, constant; default: the preset's)")
    parser.add_argument("--output", required=True, metavar="DIR", help="run directory (created, or resumed)")
    parser.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                        help="a causal LM for from_pretrained (local directory or hub name) instead of the "
                             "locally pretrained default")
    parser.add_argument("--dataset", default=None, metavar="SOURCE",
                        help="python-docs (default, offline), a local .txt (blank-line separated) or .jsonl "
                             "file, or a hub data set name (needs the datasets package)")
    parser.add_argument("--text-field", default=None, metavar="FIELD",
                        help="the text field of a .jsonl or hub data set (default: records with prompt and "
                             "response fields become 'user: ...\\nassistant: ...' as in the paper, others "
                             "use text)")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="where base models are cached (default $COLLAPSE_LM_CACHE or ~/.cache/collapse-lm)")
    parser.add_argument("--threads", type=_int_at_least(1), default=1,
                        help="torch CPU threads (default 1; part of the run's settings, since results can "
                             "differ in the last bits between thread counts)")
    parser.add_argument("--force", action="store_true",
                        help="run even when the up-front estimate says it would take over a week")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-iteration lines")


def register(subparsers) -> None:
    """Add ``lm`` with its ``run``, ``value`` and ``report`` subcommands to an argparse ``subparsers``."""
    lm = subparsers.add_parser(
        "lm", help="the language-model loop (fine-tune, sample, repeat) on real text",
        description="The language-model loop: fine-tune, sample, repeat, on real text.",
    )
    lm_sub = lm.add_subparsers(dest="lm_command", metavar="{run,value,report}")
    lm_sub.required = True

    run = lm_sub.add_parser(
        "run", help="run or resume the loop into a run directory",
        description=(
            "Fine-tune a fresh copy of the same base model on D_t, evaluate held-out "
            "cross-entropy (test_nll, nats per token), sample n texts at temperature 1, build "
            "D_{t+1}; for each workflow, iteration and seed. An existing --output directory is "
            "resumed, after checking every file it reuses."
        ),
    )
    run.add_argument("--workflow", default=ALL,
                     help=f"{', '.join(WORKFLOWS)}, fresh, a comma-separated list of them, a spec such as "
                          f"real=original,synthetic=all,size=n,real-fraction=0.5, or {ALL} (default {ALL})")
    run.add_argument("--iterations", type=_int_at_least(1), required=True, metavar="T",
                     help="model-fitting iterations t = 1..T (>= 1)")
    run.add_argument("--n", type=_int_at_least(2), default=None,
                     help="real training documents = texts sampled per iteration (>= 2; default: the preset's)")
    run.add_argument("--budget", default="epochs", metavar="B",
                     help="fine-tuning per iteration: epochs (the preset's epochs over D_t, the paper's; "
                          "default), matched (every iteration takes the optimiser steps of those epochs "
                          "over the real set D_1), or an integer number of optimiser steps")
    _add_model_options(run)
    run.set_defaults(func=run_command)

    value = lm_sub.add_parser(
        "value", help="the value of synthetic data: a student on n_r real + n_s generated documents",
        description=(
            "Fine-tune a generator once per seed on the largest real set, sample from it, then "
            "fine-tune a student from the same base on the first n_r real documents plus n_s "
            "generated ones, for every (n_r, n_s) of the grid; test_nll per cell. Resumable per cell."
        ),
    )
    value.add_argument("--real-sizes", type=_sizes, required=True, metavar="R,..",
                       help="real documents n_r of the students (integers >= 0)")
    value.add_argument("--synthetic-sizes", type=_sizes, required=True, metavar="S,..",
                       help="generated documents n_s of the students (integers >= 0)")
    value.add_argument("--generator-n", type=_int_at_least(1), default=None, metavar="N",
                       help="real documents the generator is fine-tuned on (default: the largest n_r)")
    value.add_argument("--format", choices=FORMATS, default="table", help="table format (default table)")
    _add_model_options(value)
    value.set_defaults(func=value_command)

    report = lm_sub.add_parser(
        "report", help="mean and standard error over seeds, growth-shape fits or value grid, figure",
        description="Summarise an lm run or value directory in the project's table columns.",
    )
    report.add_argument("directory", metavar="DIR", help="a directory written by `collapse lm run` or `lm value`")
    report.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    report.add_argument("--output", default=None, metavar="PATH", help="write here instead of standard output")
    report.add_argument("--plot", default=None, metavar="FILE",
                        help="also draw the curves (or the heat map) into FILE (.png, .pdf or .svg)")
    report.set_defaults(func=report_command)


def _preset(args: argparse.Namespace):
    from collapse.lm.presets import get_preset, with_overrides

    preset = get_preset(args.preset)
    context = args.context
    # sampled texts must fit the context too
    new_tokens = None if context is None else context - 1
    return with_overrides(preset, n=getattr(args, "n", None), n_eval=args.n_eval, finetune_lr=args.lr,
                          context=context, max_new_tokens=new_tokens)


def _log(args: argparse.Namespace):
    return None if args.quiet else (lambda m: print(f"lm: {m}", file=sys.stderr, flush=True))


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``collapse lm run``."""
    from collapse.lm import progress
    from collapse.lm.run import RunConfig, check_budget, run

    preset = _preset(args)
    config = RunConfig(preset=preset, dataset=args.dataset, text_field=args.text_field,
                       model=args.model, seed=args.seed, budget=check_budget(args.budget))
    result = run(
        config, args.output, workflows_to_run=args.workflow, iterations=args.iterations,
        n_seeds=args.seeds, cache_dir=args.cache_dir, threads=args.threads, force=args.force,
        show_progress=progress.wanted(args.quiet), log=_log(args),
    )
    if not args.quiet:
        print(
            f"lm: {len(result.computed)} iterations computed, {len(result.reused)} reused, "
            f"{result.seconds:.1f} s; summarise with: collapse lm report {args.output}",
            file=sys.stderr,
        )
    return 0


def value_command(args: argparse.Namespace) -> int:
    """Handler of ``collapse lm value``."""
    from collapse.lm import progress, value
    from collapse.lm.run import RunConfig

    config = RunConfig(preset=_preset(args), dataset=args.dataset, text_field=args.text_field,
                       model=args.model, seed=args.seed)
    result = value.run_value(
        config, args.output, real_sizes=args.real_sizes, synthetic_sizes=args.synthetic_sizes,
        generator_n=args.generator_n, n_seeds=args.seeds, cache_dir=args.cache_dir,
        threads=args.threads, force=args.force, show_progress=progress.wanted(args.quiet), log=_log(args),
    )
    _emit(result.table, args.format, None)
    if not args.quiet:
        print(f"lm: {len(result.computed)} generators and students computed, {len(result.reused)} reused, "
              f"{result.seconds:.1f} s", file=sys.stderr)
    return 0


def _emit(table, fmt: str, output: str | None) -> None:
    from collapse.simulate.tables import write_text

    text = table.render(fmt)
    if output:
        write_text(output, text, "--output")
    else:
        _write_stdout(text)
    if fmt == "csv":
        for note in table.notes:
            print(f"note: {note}", file=sys.stderr)


def _write_stdout(text: str) -> None:
    """Write ``text`` even where the locale cannot encode it (an ASCII terminal): such
    characters come out as backslash escapes instead of a traceback."""
    stream = sys.stdout
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = stream.encoding or "ascii"
        stream.write(text.encode(encoding, errors="backslashreplace").decode(encoding))
    stream.flush()


def report_command(args: argparse.Namespace) -> int:
    """Handler of ``collapse lm report``."""
    from collapse.lm import report, rundir, value
    from collapse.simulate.tables import check_output, check_plot

    # refuse bad destinations before reading anything
    if args.output is not None:
        check_output(args.output, "--output")
    if args.plot is not None:
        check_plot(args.plot, "--plot")
    if value.is_value_dir(args.directory):
        result = value.load_value(args.directory)
        _emit(result.table, args.format, args.output)
        if args.plot:
            value.save_heatmap(result, args.plot)
        return 0
    rundir.read_config(args.directory)
    result = report.load_result(args.directory)
    _emit(result.table, args.format, args.output)
    if args.plot:
        report.plot(result, args.plot)
    return 0
