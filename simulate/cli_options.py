"""Command-line options of each setting, mapped onto the fields of its problem dataclass.

An option parses only the *syntax* of its value (an integer, a number, a name); every
range check happens once, where the problem is made
(:mod:`collapse.analysis.problems`), and the command line names the option in the
message (``--n must be an integer >= 2 (got 1)``).  Defaults are the dataclass
defaults, so they are written down once.

A new setting adds its options to :data:`OPTIONS` (or :func:`register_options`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import (
    BANDWIDTH_RULES,
    COVARIANCE_ESTIMATORS,
    DISCRETE_TRUTHS,
    TRUTHS,
)

COMMANDS = ("theory", "simulate", "compare", "value")


def integer(text: str) -> int:
    """``type=`` for integers, also written like ``1e6`` (``1.5`` is refused)."""
    try:
        return int(text)
    except (TypeError, ValueError):
        pass
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    raise argparse.ArgumentTypeError(f"must be an integer (got {text!r})")


def sizes(text: str) -> list[int]:
    """``type=`` for a comma-separated list of integers (``0,10,100``); ranges are checked
    where the sizes are used."""
    parts = [part.strip() for part in text.split(",")]
    try:
        if not all(parts):
            raise ValueError
        return [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a comma-separated list of integers (got {text!r})") from None


def number(text: str) -> float:
    """``type=`` for finite numbers."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text!r})")
    return value


def number_or(*names: str) -> Callable[[str], float | str]:
    """``type=`` for a finite number or one of ``names``."""
    def parse(text: str) -> float | str:
        if text in names:
            return text
        try:
            return number(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"must be a number or one of {', '.join(names)} (got {text!r})") from None

    parse.__name__ = f"number or {'/'.join(names)}"
    return parse


def name_or_probabilities(*names: str) -> Callable[[str], str | tuple[float, ...]]:
    """``type=`` for one of ``names`` or a comma-separated list of numbers (``0.5,0.3,0.2``);
    whether the numbers are probabilities is checked by the problem."""
    def parse(text: str) -> str | tuple[float, ...]:
        if text in names:
            return text
        parts = [part.strip() for part in text.split(",")]
        try:
            if not all(parts):
                raise argparse.ArgumentTypeError
            return tuple(number(part) for part in parts)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"must be one of {', '.join(names)} or comma-separated probabilities such "
                f"as 0.5,0.3,0.2 (got {text!r})") from None

    parse.__name__ = f"{'/'.join(names)} or probabilities"
    return parse


@dataclass(frozen=True)
class Option:
    """One setting option: ``--flag`` fills problem field ``field``."""

    flag: str
    field: str
    type: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] | None = None
    commands: tuple[str, ...] = COMMANDS
    metavar: str | None = None
    default_text: str | None = None  #: shown as the default where the field's is None


OPTIONS: dict[str, tuple[Option, ...]] = {
    "gaussian": (
        Option("--dim", "dim", integer, "dimension d of the data"),
        Option("--sigma2", "sigma2", number, "the truth is N(0, sigma2 I_d)"),
        Option("--covariance", "covariance", str,
               "covariance divisor: m (mle, as in the paper's code) or m-1 (unbiased)",
               choices=COVARIANCE_ESTIMATORS),
    ),
    "kde": (
        Option("--truth", "truth", str,
               "true distribution: gaussian N(0, sigma0^2 I); blobs, a fixed 3-blob 2-D "
               "mixture; moons, circles, swiss-roll as in sklearn with noise 0.05 (Monte "
               "Carlo only)", choices=TRUTHS),
        Option("--dim", "dim", integer, "dimension (gaussian truth only; others are fixed)"),
        Option("--sigma0", "sigma0", number, "standard deviation of the gaussian truth"),
        Option("--bandwidth", "bandwidth", number_or(*BANDWIDTH_RULES),
               "kernel bandwidth h > 0, or scott / silverman re-estimated every iteration "
               "as sklearn does (Monte Carlo only)", metavar="H"),
        Option("--heldout", "heldout", integer,
               "held-out real points for test_nll (as in the paper)",
               commands=("simulate", "compare", "value")),
    ),
    "regression": (
        Option("--dim", "dim", integer, "columns d of the design"),
        Option("--sigma2", "sigma2", number, "label-noise variance"),
        Option("--design-seed", "design_seed", integer,
               "one design from this seed, shared by every replicate (theory conditional on "
               "it); without it every replicate draws its own and theory averages over "
               "designs", metavar="SEED", default_text="none"),
    ),
    "discrete": (
        Option("--categories", "categories", integer, "number of categories K",
               metavar="K", default_text="10, or the length of a --truth vector"),
        Option("--truth", "truth", name_or_probabilities(*DISCRETE_TRUTHS),
               "true distribution: uniform, zipf (p_i proportional to 1/i), or "
               "comma-separated probabilities such as 0.5,0.3,0.2", metavar="TRUTH"),
    ),
}


def register_options(setting: str, options: tuple[Option, ...]) -> None:
    """Declare the command-line options of a new setting."""
    OPTIONS[setting] = tuple(options)


def _default(problem_type: type, name: str) -> Any:
    for f in dataclasses.fields(problem_type):
        if f.name == name:
            return f.default
    raise KeyError(name)


def add_setting_arguments(parser: argparse.ArgumentParser, setting, command: str) -> None:
    """Add ``setting``'s options for ``command`` (and ``--engine`` where it has several)."""
    group = parser.add_argument_group(f"{setting.name} setting")
    for option in OPTIONS.get(setting.name, ()):
        if command not in option.commands:
            continue
        default = _default(setting.problem_type, option.field)
        shown = option.default_text or ("per truth" if default is None else default)
        group.add_argument(option.flag, dest=f"p_{option.field}", type=option.type,
                           choices=option.choices, default=None, metavar=option.metavar,
                           help=f"{option.help} (default {shown})")
    if command in ("simulate", "compare") and len(setting.engines) > 1:
        group.add_argument("--engine", choices=setting.engines, default=setting.engines[0],
                           help="Monte Carlo engine: " + ", ".join(setting.engines)
                                + " (default %(default)s)")


def as_option(message: str, flags: dict[str, str]) -> str:
    """Rewrite a message that starts with a parameter's name to start with its option."""
    head, sep, rest = message.partition(" ")
    name = head.rstrip(":")
    if sep and name in flags:
        return f"{flags[name]}{head[len(name):]} {rest}"
    return message


def problem_from_args(setting, args: argparse.Namespace, command: str):
    """The problem described by the parsed options (CollapseError naming the option)."""
    fields: dict[str, Any] = {}
    flags = {"n": "--n"}
    if getattr(args, "n", None) is not None:  # `collapse value` has no --n
        fields["n"] = args.n
    for option in OPTIONS.get(setting.name, ()):
        flags[option.field] = option.flag
        value = getattr(args, f"p_{option.field}", None)
        if value is not None:
            fields[option.field] = value
    try:
        return setting.problem_type(**fields)
    except CollapseError as exc:
        raise CollapseError(as_option(str(exc), flags)) from None


def argv_for(command: str, problem, workflow: Any = None, **settings: Any) -> list[str]:
    """The ``collapse`` arguments (without the program name) of an API call.

    Problem fields and settings equal to their defaults are left out, so the command
    is as short as the call.  ``settings`` take the API's names (``iterations``,
    ``replicates``, ``seed``, ``alpha``, ``theory_scale``, ``engine``; for ``value``,
    ``generator_n``, ``real_sizes``, ``synthetic_sizes``).  ``workflow`` is one string or a
    sequence of them (one ``--workflow`` each).

    Examples
    --------
    >>> from collapse.analysis.problems import Gaussian
    >>> argv_for("compare", Gaussian(dim=2, n=20), "replace", iterations=5, replicates=500)
    ['compare', 'gaussian', '--workflow', 'replace', '--n', '20', '--dim', '2', '--iterations', '5', '--replicates', '500']
    >>> argv_for("value", Gaussian(dim=2), generator_n=20, real_sizes=[0, 20],
    ...          synthetic_sizes=[0, 40])
    ['value', 'gaussian', '--dim', '2', '--generator-n', '20', '--real-sizes', '0,20', '--synthetic-sizes', '0,40']
    """
    argv = [command, problem.setting]
    if isinstance(workflow, str):
        workflow = [workflow]
    for rule in workflow or ():
        if rule != "all":
            argv += ["--workflow", str(rule)]
    defaults = {f.name: f.default for f in dataclasses.fields(problem)}
    if problem.n != defaults.get("n") and command != "value":  # value has no --n
        argv += ["--n", str(problem.n)]
    for option in OPTIONS.get(problem.setting, ()):
        value = getattr(problem, option.field)
        if command in option.commands and value != _implied(problem, option.field, defaults):
            argv += [option.flag, _text(value)]
    flags = {"iterations": ("--iterations", 100), "replicates": ("--replicates", 1000),
             "seed": ("--seed", 0), "alpha": ("--alpha", 0.01),
             "theory_scale": ("--theory-scale", 1.0), "engine": ("--engine", "auto"),
             "generator_n": ("--generator-n", None), "real_sizes": ("--real-sizes", None),
             "synthetic_sizes": ("--synthetic-sizes", None)}
    if command == "value":
        flags["replicates"] = ("--replicates", None)
    for name, value in settings.items():
        flag, default = flags[name]
        if value is not None and value != default:
            argv += [flag, _text(value)]
    return argv


def _implied(problem, name: str, defaults: dict[str, Any]) -> Any:
    """The value field ``name`` takes when its option is left out (it may depend on others)."""
    if defaults.get(name) is not None:
        return defaults[name]
    others = {k: v for k, v in problem.options().items() if k != name}
    try:
        return getattr(type(problem)(**others), name)
    except CollapseError:
        return object()  # no implied value: always spell it out


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple, range)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, float):
        # the short form where it reads back as the same number, else every digit
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)
