"""The ``collapse.lm`` subcommands: ``collapse.lm run`` and ``collapse.lm report``.

``register(subparsers)`` adds them to the ``collapse`` parser (and to ``python
-m lm``).  Importing this module imports neither torch nor transformers:
handlers import the heavy modules when they run, so ``collapse theory`` stays
light.  Bad input raises :class:`collapse.simulate.errors.CollapseError` (one line that
names the parameter; the caller prints it and exits 2).

Examples::

    collapse lm run --workflow all --iterations 3 --seeds 1 --preset tiny --output runs/tiny
    collapse lm report runs/tiny --format csv --plot runs/tiny.png
    collapse lm run --model ./my-model --dataset data.jsonl --text-field text --n 50 ...
"""

from __future__ import annotations

import argparse
import sys

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import ALL, WORKFLOWS
from collapse.analysis.workflows import parse_workflows

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


def register(subparsers) -> None:
    """Add ``collapse.lm`` with its ``run`` and ``report`` subcommands to an argparse ``subparsers``."""
    from collapse.lm.presets import PRESET_NAMES

    lm = subparsers.add_parser(
        "lm", help="the language-model loop (fine-tune, sample, repeat) on real text",
        description="The language-model loop: fine-tune, sample, repeat, on real text.",
    )
    lm_sub = lm.add_subparsers(dest="lm_command", metavar="{run,report}")
    lm_sub.required = True

    run = lm_sub.add_parser(
        "run", help="run or resume the loop into a run directory",
        description=(
            "Fine-tune a fresh copy of the same base model on D_t, evaluate held-out "
            "cross-entropy, sample n texts at temperature 1, build D_{t+1}; for each "
            "workflow, iteration and seed. An existing --output directory is resumed."
        ),
    )
    run.add_argument("--workflow", default=ALL, help=f"{', '.join(WORKFLOWS)} or {ALL} (default {ALL})")
    run.add_argument("--iterations", type=_int_at_least(1), required=True, metavar="T",
                     help="model-fitting iterations t = 1..T (>= 1)")
    run.add_argument("--seeds", type=_int_at_least(1), default=1, metavar="K",
                     help="replicate seeds --seed .. --seed+K-1 (>= 1, default 1)")
    run.add_argument("--seed", type=_int_at_least(0), default=0, help="first replicate seed (default 0)")
    run.add_argument("--n", type=_int_at_least(2), default=None,
                     help="real training documents = texts sampled per iteration (>= 2; default: the preset's)")
    run.add_argument("--n-eval", type=_int_at_least(1), default=None,
                     help="held-out evaluation documents (>= 1; default: the preset's)")
    run.add_argument("--preset", default="tiny", metavar="P",
                     help=f"sizes and hyperparameters: {', '.join(PRESET_NAMES)} (default tiny)")
    run.add_argument("--output", required=True, metavar="DIR", help="run directory (created, or resumed)")
    run.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                     help="a causal LM for from_pretrained (local directory or hub name) instead of the "
                          "locally pretrained default")
    run.add_argument("--dataset", default=None, metavar="SOURCE",
                     help="python-docs (default, offline), a local .txt (blank-line separated) or .jsonl "
                          "file, or a hub data set name (needs the datasets package)")
    run.add_argument("--text-field", default=None, metavar="FIELD",
                     help="the text field of a .jsonl or hub data set (default: text; hub records with "
                          "prompt and response become 'user: ...\\nassistant: ...')")
    run.add_argument("--cache-dir", default=None, metavar="DIR",
                     help="where base models are cached (default $COLLAPSE_LM_CACHE or ~/.cache/collapse-lm)")
    run.add_argument("--threads", type=_int_at_least(1), default=1,
                     help="torch CPU threads (default 1; results can differ in the last bits between "
                          "thread counts)")
    run.add_argument("--quiet", action="store_true", help="no progress bars or per-iteration lines")
    run.set_defaults(func=run_command)

    report = lm_sub.add_parser(
        "report", help="mean and standard error per iteration, growth-shape fits, figure",
        description="Summarise a run directory in the columns of `collapse simulate`.",
    )
    report.add_argument("directory", metavar="DIR", help="a run directory written by `collapse.lm run`")
    report.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    report.add_argument("--output", default=None, metavar="PATH", help="write here instead of standard output")
    report.add_argument("--plot", default=None, metavar="PNG", help="also draw the curves into this PNG file")
    report.set_defaults(func=report_command)


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``collapse.lm run``."""
    from collapse.lm.presets import get_preset, with_overrides

    preset = with_overrides(get_preset(args.preset), n=args.n, n_eval=args.n_eval)
    try:
        workflows = tuple(w.label for w in parse_workflows(args.workflow))
        for name in workflows:
            if name not in WORKFLOWS:
                raise CollapseError(f"the LM loop runs {', '.join(WORKFLOWS)} (got {name})")
    except ValueError as exc:
        raise CollapseError(f"--workflow: {exc}") from None
    from collapse.lm import progress
    from collapse.lm.run import RunConfig, check_numbers, run

    check_numbers(preset, args.iterations, args.seeds, args.seed)
    config = RunConfig(preset=preset, dataset=args.dataset, text_field=args.text_field,
                       model=args.model, seed=args.seed)
    result = run(
        config, args.output, workflows_to_run=workflows, iterations=args.iterations,
        n_seeds=args.seeds, cache_dir=args.cache_dir, threads=args.threads,
        show_progress=progress.wanted(args.quiet),
        log=None if args.quiet else (lambda m: print(f"lm: {m}", file=sys.stderr, flush=True)),
    )
    if not args.quiet:
        print(
            f"lm: {len(result.computed)} iterations computed, {len(result.reused)} reused, "
            f"{result.seconds:.1f} s; summarise with: lm report {args.output}",
            file=sys.stderr,
        )
    return 0


def report_command(args: argparse.Namespace) -> int:
    """Handler of ``collapse.lm report``."""
    from collapse.lm import report
    from collapse.simulate.tables import write_text

    table = report.summary_table(args.directory)
    text = table.render(args.format)
    if args.output:
        write_text(args.output, text)
    else:
        sys.stdout.write(text)
    if args.format == "csv":
        for note in table.notes:
            print(f"note: {note}", file=sys.stderr)
    if args.plot:
        report.plot(table, args.plot)
    return 0
