"""Sweeps: a grid of ``collapse`` commands, one task per cell, on a Dask cluster.

``collapse sweep GRID.toml --output DIR`` (and :func:`sweep`) runs every cell of a
grid as one task of a Dask cluster: a :class:`distributed.LocalCluster` on this
machine by default, any running Dask scheduler with ``--scheduler ADDRESS`` (``dask
scheduler`` / ``dask worker``, or a ``dask-jobqueue`` ``SLURMCluster``), or the calling
process itself with ``--scheduler synchronous``.

The grid file
-------------
::

    command = "compare"            # theory | simulate | compare | lm
    setting = "gaussian"           # every command but lm
    description = "free text"      # optional; not part of the grid's identity
    [fixed]                        # options every cell shares
    iterations = 100
    replicates = 1000
    [grid]                         # the cartesian product, last key fastest
    dim = [1, 10]
    n = [10, 100]
    workflow = ["replace", "accumulate", "accumulate-subsample"]

**Keys are the command-line option names without the two leading dashes, spelled
exactly as on the command line** (``theory-scale``, ``chunk-size``; for ``lm``:
``n-eval``, ``text-field``): a cell is the command ``collapse COMMAND SETTING --KEY
VALUE ...`` (``collapse lm run ...`` for ``lm``).  Values have the option's type
(an integer for ``n``, a number for ``sigma2``, a string for ``workflow``).  The
options that say where output goes (``format``, ``output``, ``plot``,
``checkpoint``; ``quiet`` and ``seeds`` for ``lm``, whose cells run one seed each) belong
to the sweep, not to a cell.  Every cell is parsed by the real argument parser and
checked by :func:`collapse.simulate.api.check_call` before anything is submitted or
written; a bad grid is one :class:`~collapse.analysis.errors.CollapseError` naming the
key (``grid.n must be an integer >= 2 (got 1)``).

The directory
-------------
::

    DIR/manifest.json        the grid, every cell's options and equivalent command,
                             versions, the history of runs and the cells' timings
    DIR/cells/<id>.json      one finished cell: its identity, its CSV, a SHA-256
    DIR/lm/<id>/             lm cells: each a resumable ``collapse lm run`` directory
    DIR/results.csv          every cell's rows in grid order, plus one column per grid key
    DIR/.sweep.lock          held while a sweep runs: a second one on DIR is refused

A cell's ``id`` is the first 16 hex digits of the SHA-256 of the canonical JSON of
what determines its numbers (setting, problem, workflows, iterations, replicates,
seed, engine, ...; not the chunk size).  Each finished cell is written atomically
(a temporary file renamed into place), by the worker that computed it when it can
see ``DIR`` and by the client otherwise, so a killed sweep loses at most the cells in
flight, and a rerun of the same command computes only the missing ones (``N cells
computed, M reused``).  A cell file is verified before reuse: one that cannot be read,
was written for another cell, or whose CSV does not match its checksum is reported
and recomputed.  A different grid with the same ``DIR`` is refused.

Tasks are pure functions of their cell's options: the cell's ``seed`` seeds it, so
its numbers equal the single command's whichever worker runs it, and every task
runs with one BLAS thread (the cluster's parallelism is across cells).

Examples
--------
>>> import tempfile, pathlib
>>> grid = {"command": "theory", "setting": "gaussian", "fixed": {"iterations": 3},
...         "grid": {"n": [10, 100], "workflow": ["replace", "accumulate"]}}
>>> [cell.label for cell in load_grid(grid).cells][:2]
['n=10 workflow=replace', 'n=10 workflow=accumulate']
>>> out = pathlib.Path(tempfile.mkdtemp()) / "sweep"
>>> done = sweep(grid, out, scheduler="synchronous")
>>> done.computed, done.reused, sorted(p.name for p in out.iterdir() if p.name[0] != ".")
(4, 0, ['cells', 'manifest.json', 'results.csv'])
>>> load_grid({"command": "theory", "setting": "gaussian", "grid": {"n": [1]}})
Traceback (most recent call last):
...
collapse.analysis.errors.CollapseError: grid: grid.n must be an integer >= 2 (got 1)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import itertools
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from collapse.analysis.errors import CollapseError

log = logging.getLogger("collapse")

#: ``format`` of ``DIR/manifest.json`` and of each ``DIR/cells/<id>.json``.
FORMAT = "collapse-sweep/1"
CELL_FORMAT = "collapse-sweep-cell/1"
MANIFEST = "manifest.json"
RESULTS = "results.csv"
CELLS = "cells"
LM_RUNS = "lm"
LOCK = ".sweep.lock"

#: The commands a grid may run.
COMMANDS: tuple[str, ...] = ("theory", "simulate", "compare", "lm")
#: Special values of ``scheduler``: run the cells one after another in this process.
SYNCHRONOUS = "synchronous"
#: Retries of a cell whose task raised (a worker that dies is handled by the scheduler,
#: which reschedules its tasks up to ``distributed.scheduler.allowed-failures`` times).
RETRIES = 2
#: A LocalCluster's scheduler gives a task up after this many workers died running it.
ALLOWED_FAILURES = 3
#: Where a LocalCluster serves its dashboard (another free port if this one is taken).
DASHBOARD = ":8787"
#: How long to try to reach an external scheduler before giving up.
CONNECT_TIMEOUT = "20s"

_TOP_KEYS = ("command", "setting", "description", "fixed", "grid")
# Options a sweep owns, with the reason a cell may not set them.
_SWEEP_OWNED = {
    "format": "the sweep stores every cell as CSV",
    "output": "give --output DIR to collapse sweep",
    "plot": "a cell writes no figure; plot from DIR/results.csv",
    "checkpoint": "the sweep stores every finished cell itself",
    "help": "not an option of a cell",
    "version": "not an option of a cell",
}
_LM_OWNED = {
    "seeds": "an lm cell runs one seed; list them as seed = [0, 1, 2] in [grid]",
    "quiet": "lm cells always run quietly",
    "output": "give --output DIR to collapse sweep (lm cells run in DIR/lm/<id>)",
    "help": "not an option of a cell",
}
_BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------- the grid

@dataclass(frozen=True)
class Cell:
    """One cell of a grid: a single ``collapse`` command.

    Attributes
    ----------
    id : str
        16 hex digits of the SHA-256 of ``identity`` (the file name of its result).
    command : str
        ``theory``, ``simulate``, ``compare`` or ``lm``.
    values : dict
        The grid keys' values of this cell, in grid order.
    options : dict
        Every option of the cell (fixed and grid), key spelled as in the grid file.
    argv : tuple of str
        The equivalent ``collapse`` arguments (for ``lm``, without ``--output``).
    identity : dict
        What determines the cell's numbers, resolved (defaults filled in).
    cost : float
        A rough relative cost, used only to start expensive cells first.
    """

    id: str
    command: str
    values: Mapping[str, Any]
    options: Mapping[str, Any]
    argv: tuple[str, ...]
    identity: Mapping[str, Any]
    cost: float = 1.0

    @property
    def label(self) -> str:
        """``key=value ...`` of the grid keys (for messages and the manifest)."""
        return " ".join(f"{k}={_text(v)}" for k, v in self.values.items())

    def shell(self, output: str | os.PathLike | None = None) -> str:
        """The equivalent shell command (``lm`` cells: into ``output/lm/<id>``)."""
        argv = list(self.argv)
        if self.command == "lm" and output is not None:
            argv += ["--output", str(Path(output) / LM_RUNS / self.id)]
        return "collapse " + shlex.join(argv)

    def payload(self) -> dict[str, Any]:
        """What a task needs (plain data, so any worker with collapse installed runs it)."""
        return {"id": self.id, "command": self.command, "argv": list(self.argv),
                "identity": dict(self.identity), "label": self.label}


@dataclass(frozen=True)
class Grid:
    """A parsed and fully validated grid (see the module docstring).

    Attributes
    ----------
    command, setting : str
        ``setting`` is ``None`` for ``lm``.
    fixed : dict
        Options shared by every cell.
    axes : tuple of (key, values)
        The grid keys in file order, each with its tuple of values.
    cells : tuple of Cell
        The cartesian product, last key varying fastest.
    source : str
        Where the grid came from (the path, or ``grid`` for a mapping), for messages.
    description : str
    """

    command: str
    setting: str | None
    fixed: Mapping[str, Any]
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    cells: tuple[Cell, ...]
    source: str = "grid"
    description: str = ""

    @property
    def keys(self) -> tuple[str, ...]:
        """The grid keys, in order."""
        return tuple(key for key, _ in self.axes)

    def document(self) -> dict[str, Any]:
        """The grid as canonical JSON-ready data (what the manifest keeps and compares)."""
        return {"command": self.command, "setting": self.setting,
                "fixed": {k: self.fixed[k] for k in sorted(self.fixed)},
                "grid": [[key, list(values)] for key, values in self.axes]}

    @property
    def fingerprint(self) -> str:
        """SHA-256 of :meth:`document` (a grid's identity; the description is not part of it)."""
        return _sha256(_canonical(self.document()))

    def columns(self) -> tuple[str, ...]:
        """The columns of ``results.csv``: the command's, then each grid key not among them."""
        base = _command_columns(self.command)
        return base + tuple(key for key in self.keys if key not in base)


def _command_columns(command: str) -> tuple[str, ...]:
    from collapse.simulate.tables import COMPARE_COLUMNS, SIMULATE_COLUMNS, THEORY_COLUMNS

    return {"theory": THEORY_COLUMNS, "simulate": SIMULATE_COLUMNS,
            "compare": COMPARE_COLUMNS, "lm": SIMULATE_COLUMNS}[command]


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _text(value: Any) -> str:
    """A TOML value as command-line text (floats round-trip exactly)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CollapseError(f"GRID: cannot read {str(path)!r}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise CollapseError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise CollapseError(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from None


def load_grid(grid: str | os.PathLike | Mapping[str, Any] | Grid) -> Grid:
    """Parse and validate a grid: a GRID.toml path, the same data as a mapping, or a Grid.

    Every cell is parsed by the real ``collapse`` argument parser and checked as the
    command would check it; nothing is computed or written.

    Raises
    ------
    CollapseError
        One line naming the key (``grid.n``, ``fixed.iterations``, ``setting``, ...)
        and its valid values.

    Examples
    --------
    >>> g = load_grid({"command": "compare", "setting": "kde", "fixed": {"iterations": 5},
    ...                "grid": {"bandwidth": [0.1, 0.5]}})
    >>> len(g.cells), g.cells[1].argv[:4]
    (2, ('compare', 'kde', '--iterations', '5'))
    >>> load_grid({"command": "compare", "setting": "kde", "grid": {"bandwith": [0.1]}})
    Traceback (most recent call last):
    ...
    collapse.analysis.errors.CollapseError: grid: grid.bandwith: unknown key; the keys of compare kde are ...
    """
    if isinstance(grid, Grid):
        return grid
    if isinstance(grid, Mapping):
        source, data = "grid", dict(grid)
    elif isinstance(grid, (str, os.PathLike)):
        path = Path(os.fspath(grid))
        if os.fspath(grid) == "":
            raise CollapseError("GRID: the path is empty")
        if not path.is_file():
            raise CollapseError(f"GRID: no such file {os.fspath(grid)!r}")
        source, data = os.fspath(grid), _read_toml(path)
    else:
        raise CollapseError(f"grid must be a path to a GRID.toml file or a mapping (got "
                            f"{type(grid).__name__})")
    try:
        return _build(data, source)
    except CollapseError as exc:
        raise CollapseError(f"{source}: {exc}") from None


def _build(data: dict[str, Any], source: str) -> Grid:
    for key in data:
        if key not in _TOP_KEYS:
            raise CollapseError(f"{key}: unknown key; a grid file has "
                                f"{', '.join(_TOP_KEYS[:3])}, [fixed] and [grid]")
    command = data.get("command")
    if command is None:
        raise CollapseError(f"command: missing; must be one of {', '.join(COMMANDS)}")
    if not isinstance(command, str) or command not in COMMANDS:
        raise CollapseError(f"command must be one of {', '.join(COMMANDS)} (got {command!r})")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise CollapseError(f"description must be a string (got {description!r})")
    setting = data.get("setting")
    if command == "lm":
        if setting is not None:
            raise CollapseError("setting: the lm command has no setting; leave the key out")
    else:
        from collapse.simulate.settings import get, settings

        if setting is None:
            raise CollapseError(f"setting: missing; must be one of {', '.join(settings())}")
        if not isinstance(setting, str):
            raise CollapseError(f"setting must be one of {', '.join(settings())} "
                                f"(got {setting!r})")
        get(setting)  # CollapseError naming the valid settings
    fixed = data.get("fixed", {})
    if not isinstance(fixed, Mapping):
        raise CollapseError(f"fixed must be a table ([fixed] with key = value lines; got "
                            f"{fixed!r})")
    axes_data = data.get("grid")
    if axes_data is None or (isinstance(axes_data, Mapping) and not axes_data):
        raise CollapseError("grid: the grid is empty; give a [grid] table with at least one "
                            "key and a list of values (e.g. n = [10, 100])")
    if not isinstance(axes_data, Mapping):
        raise CollapseError(f"grid must be a table ([grid] with key = [values] lines; got "
                            f"{axes_data!r})")
    options = _options(command, setting)
    for key, value in fixed.items():
        _check_value(options, command, setting, f"fixed.{key}", key, value)
    axes: list[tuple[str, tuple[Any, ...]]] = []
    for key, values in axes_data.items():
        where = f"grid.{key}"
        if key in fixed:
            raise CollapseError(f"{where}: also set in [fixed]; give it in one table")
        if not isinstance(values, list):
            raise CollapseError(f"{where} must be a list of values, e.g. {key} = "
                                f"[{_toml(values)}] (got {_toml(values)}); single values go "
                                f"in [fixed]")
        if not values:
            raise CollapseError(f"{where} must be a non-empty list of values (got [])")
        seen: list[Any] = []
        for value in values:
            _check_value(options, command, setting, where, key, value)
            if any(type(value) is type(other) and value == other for other in seen):
                raise CollapseError(f"{where} lists {_toml(value)} twice")
            seen.append(value)
        axes.append((key, tuple(values)))
    where = {key: f"fixed.{key}" for key in fixed}
    where.update({key: f"grid.{key}" for key, _ in axes})
    cells: list[Cell] = []
    for combination in itertools.product(*(values for _, values in axes)):
        values = dict(zip((key for key, _ in axes), combination))
        cells.append(_cell(command, setting, dict(fixed), values, where))
    _check_distinct(cells, command)
    return Grid(command=command, setting=setting, fixed=dict(fixed), axes=tuple(axes),
                cells=tuple(cells), source=source, description=description)


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


# -- options of a command, from the real parser ------------------------------------

@dataclass(frozen=True)
class _Option:
    key: str
    flag: str
    kind: str  # integer, number, number-or-name, string, flag
    choices: tuple[str, ...] | None


_PARSER: argparse.ArgumentParser | None = None


def _parser() -> argparse.ArgumentParser:
    global _PARSER
    if _PARSER is None:
        from collapse.simulate.cli import build_parser

        _PARSER = build_parser()
    return _PARSER


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


def _leaf(command: str, setting: str | None) -> argparse.ArgumentParser:
    if command == "lm":
        return _subparser(_subparser(_parser(), "lm"), "run")
    return _subparser(_subparser(_parser(), command), setting)


def _kind(action: argparse.Action) -> str:
    if isinstance(action, argparse._StoreTrueAction):
        return "flag"
    name = getattr(action.type, "__name__", "")
    if name.startswith("integer"):
        return "integer"
    if name == "number":
        return "number"
    if name.startswith("number or"):
        return "number-or-name"
    return "string"


def _options(command: str, setting: str | None) -> dict[str, _Option]:
    owned = _LM_OWNED if command == "lm" else _SWEEP_OWNED
    out: dict[str, _Option] = {}
    for action in _leaf(command, setting)._actions:
        for flag in action.option_strings:
            if not flag.startswith("--") or flag[2:] in owned:
                continue
            choices = tuple(action.choices) if action.choices is not None else None
            out[flag[2:]] = _Option(flag[2:], flag, _kind(action), choices)
    return out


def _unknown(options: Mapping[str, _Option], command: str, setting: str | None, where: str,
             key: str) -> CollapseError:
    owned = _LM_OWNED if command == "lm" else _SWEEP_OWNED
    if key in owned:
        return CollapseError(f"{where}: not a cell option: {owned[key]}")
    spelled = key.replace("_", "-")
    if spelled != key and spelled in options:
        return CollapseError(f"{where}: unknown key; keys are spelled as on the command line: "
                             f"{spelled}")
    name = "lm run" if command == "lm" else f"{command} {setting}"
    return CollapseError(f"{where}: unknown key; the keys of {name} are "
                         f"{', '.join(sorted(options))} (the command-line options without "
                         f"their dashes)")


def _check_value(options: Mapping[str, _Option], command: str, setting: str | None,
                 where: str, key: str, value: Any) -> None:
    """The TOML type of one value (ranges and choices are the parser's and the problem's)."""
    option = options.get(key)
    if option is None:
        raise _unknown(options, command, setting, where, key)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {"integer": isinstance(value, int) and not isinstance(value, bool),
          "number": number,
          "number-or-name": number or isinstance(value, str),
          "string": isinstance(value, str),
          "flag": isinstance(value, bool)}[option.kind]
    if not ok:
        wanted = {"integer": "an integer", "number": "a number",
                  "number-or-name": "a number or a name", "string": "a string",
                  "flag": "true or false"}[option.kind]
        if option.choices:
            wanted += f" (one of {', '.join(option.choices)})"
        raise CollapseError(f"{where} must be {wanted} (got {_toml(value)})")


# -- cells --------------------------------------------------------------------------

def _argv(command: str, setting: str | None, options: Mapping[str, Any]) -> list[str]:
    argv = ["lm", "run"] if command == "lm" else [command, setting]
    for key, value in options.items():
        if isinstance(value, bool):  # a flag such as force: present or absent
            argv += [f"--{key}"] if value else []
        else:
            argv += [f"--{key}", _text(value)]
    return argv


def parse_argv(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``collapse argv`` with the real parser; CollapseError with its one-line message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return _parser().parse_args(list(argv))
    except SystemExit:
        text = err.getvalue().strip().splitlines()
        message = text[-1] if text else "invalid arguments"
        prefix = "collapse: error: "
        raise CollapseError(message[len(prefix):] if message.startswith(prefix)
                            else message) from None


def _keyed(message: str, where: Mapping[str, str]) -> str | None:
    """``message`` with its leading parameter (``n``, ``--n``, ``argument --n:``) as the key."""
    text = message
    required = "the following arguments are required: "
    if text.startswith(required):
        flags = [f.strip() for f in text[len(required):].split(",")]
        keys = ", ".join(f[2:] if f.startswith("--") else f for f in flags)
        return f"{keys}: missing; the command requires it: set it in [fixed] or [grid]"
    if text.startswith("argument "):
        text = text[len("argument "):]
        head, _, rest = text.partition(": ")
        flag = head.split("/")[0]
        key = flag[2:] if flag.startswith("--") else flag
        return f"{where[key]}: {rest}" if key in where else None
    head, sep, rest = text.partition(" ")
    name = head.rstrip(":")
    key = name[2:] if name.startswith("--") else name.replace("_", "-")
    if sep and key in where:
        return f"{where[key]}{head[len(name):]} {rest}"
    return None


def _cell(command: str, setting: str | None, fixed: dict[str, Any], values: dict[str, Any],
          where: Mapping[str, str]) -> Cell:
    options = {**fixed, **values}
    argv = _argv(command, setting, options)
    label = " ".join(f"{k}={_text(v)}" for k, v in values.items())
    try:
        args = parse_argv(argv + (["--output", "DIR", "--quiet"] if command == "lm" else []))
        identity, cost = (_lm_identity(args) if command == "lm"
                          else _command_identity(args))
    except CollapseError as exc:
        keyed = _keyed(str(exc), where)
        raise CollapseError(keyed if keyed is not None else f"cell {label}: {exc}") from None
    identity = {"format": CELL_FORMAT, "command": command, **identity}
    cell_id = _sha256(_canonical(identity))[:16]
    return Cell(id=cell_id, command=command, values=values, options=options, argv=tuple(argv),
                identity=identity, cost=cost)


def _command_identity(args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    from collapse.analysis.workflows import parse_workflows
    from collapse.simulate.cli import _checked_problem, _workflows

    problem = _checked_problem(args, paths=False)
    workflows = parse_workflows(_workflows(args))
    identity: dict[str, Any] = {"setting": problem.setting, "problem": problem.options(),
                                "workflows": [w.spec for w in workflows],
                                "iterations": args.iterations}
    cost = float(args.iterations * len(workflows) * getattr(problem, "n", 1)
                 * (getattr(problem, "dim", 1) or 1))
    if args.command != "theory":
        identity.update(replicates=args.replicates, seed=args.seed,
                        engine=getattr(args, "engine", "auto"))
        cost *= args.replicates
    if args.command == "compare":
        identity.update(alpha=args.alpha, theory_scale=args.theory_scale)
    return identity, cost


def _lm_identity(args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    # The checks of `collapse lm run` (collapse.lm.cli.run_command) without running it.
    from collapse.analysis.vocabulary import WORKFLOWS
    from collapse.lm.presets import get_preset, with_overrides
    from collapse.lm.run import check_model_spec, check_numbers

    preset = with_overrides(get_preset(args.preset), n=args.n, n_eval=args.n_eval)
    if args.workflow not in WORKFLOWS:
        raise CollapseError(f"--workflow: an lm cell runs one workflow: one of "
                            f"{', '.join(WORKFLOWS)} (got {args.workflow!r})")
    check_numbers(preset, args.iterations, 1, args.seed)
    if args.model:
        check_model_spec(args.model)
    identity = {"preset": preset.as_dict(), "workflow": args.workflow, "seed": args.seed,
                "iterations": args.iterations, "dataset": args.dataset,
                "text_field": args.text_field, "model": args.model, "threads": args.threads}
    return identity, float(args.iterations * preset.n)


def _check_distinct(cells: Sequence[Cell], command: str) -> None:
    first: dict[str, Cell] = {}
    for cell in cells:
        other = first.setdefault(cell.id, cell)
        if other is not cell:
            keys = [k for k in cell.values if cell.values[k] != other.values[k]]
            names = ", ".join(f"grid.{k}" for k in keys)
            raise CollapseError(f"{names}: cells {other.label!r} and {cell.label!r} compute the "
                                f"same numbers ({command} does not use "
                                f"{' or '.join(keys)}); give each computation once")


# --------------------------------------------------------------------------- one task

@contextlib.contextmanager
def _one_core() -> Iterator[None]:
    """One BLAS/OpenMP thread and one engine thread for this task (see :func:`run_cell`)."""
    from threadpoolctl import threadpool_limits

    from collapse.simulate.streams import thread_limit

    # A worker process serves only cells: its BLAS pools stay at one thread for good (a
    # per-task context would restore the limits of other task threads mid-cell).
    threadpool_limits(limits=1)
    with thread_limit(1):
        yield


def _in_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def _threads() -> dict[str, int]:
    """The threads this task computes with: BLAS pools (most of any) and engine chunks."""
    from threadpoolctl import threadpool_info

    from collapse.simulate.streams import thread_count

    blas = [int(p.get("num_threads", 1)) for p in threadpool_info()]
    return {"blas_threads": max(blas, default=1), "engine_threads": thread_count()}


def _worker_info() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {"host": platform.node(), "pid": os.getpid(), "environment": {
        name: os.environ.get(name) for name in _BLAS_VARIABLES + ("MALLOC_TRIM_THRESHOLD_",)}}
    try:
        from distributed import get_worker

        info["address"] = get_worker().address
    except (ImportError, ValueError):
        info["address"] = None
    return info


def run_cell(cell: Mapping[str, Any], output: str | None = None) -> dict[str, Any]:
    """The task of one cell: compute it and return its record (what ``cells/<id>.json`` holds).

    A pure function of the cell's options: the result is that of the single command
    ``cell["argv"]``, whose ``seed`` seeds it, so it does not depend on the worker.  In
    a Dask worker it runs on one core: one BLAS thread (for the whole worker process,
    which serves only cells) and one engine thread
    (:func:`collapse.simulate.streams.thread_limit`), so that workers, one per core, do
    not oversubscribe the cores; called outside a worker (``scheduler="synchronous"``)
    it runs exactly as the single command would.  When ``output`` (the sweep directory,
    absolute) is visible from the worker, the record is also written there
    atomically, so a cell finished after the client was killed is kept.
    """
    start, cpu = time.perf_counter(), time.process_time()
    worker = _in_worker()
    with _one_core() if worker else contextlib.nullcontext():
        threads = _threads()
        if cell["command"] == "lm":
            body = _run_lm(cell, output)
        else:
            body = _run_command(cell)
    text = body.pop("csv")
    record = {"format": CELL_FORMAT, "id": cell["id"], "identity": cell["identity"],
              "label": cell.get("label", ""), "csv": text, "sha256": _sha256(text), **body,
              "seconds": time.perf_counter() - start,
              # the process's CPU time over the cell (a worker runs one cell at a time)
              "cpu_seconds": time.process_time() - cpu, "worker": {**_worker_info(), **threads},
              "versions": {"collapse": _version("collapse-or-thrive")}}
    if output is not None and worker:
        with contextlib.suppress(CollapseError, OSError):
            _store(Path(output), record, only_if_dir=True)
    return record


def _run_command(cell: Mapping[str, Any]) -> dict[str, Any]:
    from collapse.simulate.cli import compute

    result = compute(parse_argv(cell["argv"]), paths=False)
    body: dict[str, Any] = {"csv": result.to_csv(), "notes": list(result.notes)}
    if cell["command"] == "compare":
        body.update(verdict=result.verdict, exit_status=result.exit_status)
    return body


def _run_lm(cell: Mapping[str, Any], output: str | None) -> dict[str, Any]:
    # One `collapse lm run` into its own resumable run directory, then `collapse lm report`.
    from collapse.lm import report

    if output is None:
        raise CollapseError("an lm cell needs the sweep directory")
    run_dir = Path(output) / LM_RUNS / cell["id"]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    args = parse_argv(list(cell["argv"]) + ["--seeds", "1", "--quiet", "--output", str(run_dir)])
    args.func(args)
    table = report.summary_table(run_dir)
    info: dict[str, Any] = {"csv": table.to_csv(), "notes": list(table.notes),
                            "run_directory": str(Path(LM_RUNS) / cell["id"])}
    with contextlib.suppress(Exception):
        import torch

        # The LM loop trains on the CPU; record whether this worker had a GPU to offer.
        info["cuda_available"] = bool(torch.cuda.is_available())
    return info


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- storage

def _cell_path(output: Path, cell_id: str) -> Path:
    return output / CELLS / f"{cell_id}.json"


def _store(output: Path, record: Mapping[str, Any], only_if_dir: bool = False) -> Path:
    """Write a cell record atomically (never a partial file; see tables.write_bytes)."""
    from collapse.simulate.tables import write_text

    path = _cell_path(output, record["id"])
    if only_if_dir and not path.parent.is_dir():
        return path
    write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n", "--output")
    return path


def load_cell(output: str | os.PathLike, cell: Cell) -> tuple[dict[str, Any] | None, str | None]:
    """The verified record of ``cell`` in sweep directory ``output``.

    Returns ``(record, None)`` for a good file, ``(None, None)`` when there is none, and
    ``(None, reason)`` for a damaged one: unreadable or truncated JSON, another
    format, another cell's identity, a CSV that fails its SHA-256 or has other columns.
    """
    path = _cell_path(Path(output), cell.id)
    if not path.exists():
        return None, None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("format") != CELL_FORMAT:
            return None, "not a cell file of this format"
        if record.get("id") != cell.id or _canonical(record.get("identity")) != _canonical(
                dict(cell.identity)):
            return None, "it was written for another cell"
        text = record.get("csv")
        if not isinstance(text, str) or _sha256(text) != record.get("sha256"):
            return None, "its rows do not match their checksum"
        header = next(csv.reader(io.StringIO(text)), [])
        if tuple(header) != _command_columns(cell.command):
            return None, f"it has columns {','.join(header)}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"cannot be read: {exc}"
    return record, None


# --------------------------------------------------------------------------- directory

def _check_directory(output: Path, grid: Grid) -> dict[str, Any] | None:
    """The existing manifest of ``output`` if it is this grid's; None for a new or empty one."""
    text = os.fspath(output)
    if text == "":
        raise CollapseError("--output: the path is empty")
    if output.exists() and not output.is_dir():
        raise CollapseError(f"--output: {text!r} exists and is not a directory")
    if not output.exists():
        parent = output.absolute().parent
        if not parent.is_dir():
            raise CollapseError(f"--output: cannot create {text!r}: directory {str(parent)!r} "
                                f"does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CollapseError(f"--output: cannot create {text!r}: directory {str(parent)!r} "
                                f"is not writable")
        return None
    if not os.access(output, os.W_OK | os.X_OK):
        raise CollapseError(f"--output: directory {text!r} is not writable")
    manifest = output / MANIFEST
    if not manifest.exists():
        if any(p.name != LOCK for p in output.iterdir()):
            raise CollapseError(f"--output: {text!r} is not empty and holds no sweep (no "
                                f"{MANIFEST}); choose a new or empty directory")
        return None
    try:
        old = json.loads(manifest.read_text(encoding="utf-8"))
        if old.get("format") != FORMAT:
            raise ValueError(f"format {old.get('format')!r}")
    except (OSError, ValueError) as exc:
        raise CollapseError(f"--output: {text!r} has an unreadable {MANIFEST} ({exc}); use "
                            f"another --output directory") from None
    if old.get("grid_sha256") != grid.fingerprint:
        raise CollapseError(f"--output: {text!r} holds a sweep of another grid "
                            f"({_difference(old.get('grid', {}), grid.document())}); use "
                            f"another --output directory or the same grid")
    return old


def _difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    for key in ("command", "setting"):
        if old.get(key) != new.get(key):
            return f"{key} is {json.dumps(old.get(key))} there but {json.dumps(new.get(key))} now"
    old_fixed, new_fixed = old.get("fixed", {}), new.get("fixed", {})
    for key in sorted(set(old_fixed) | set(new_fixed)):
        if old_fixed.get(key) != new_fixed.get(key):
            return (f"fixed.{key} is {json.dumps(old_fixed.get(key))} there but "
                    f"{json.dumps(new_fixed.get(key))} now")
    old_grid = dict((k, v) for k, v in old.get("grid", []))
    new_grid = dict((k, v) for k, v in new.get("grid", []))
    for key in list(new_grid) + [k for k in old_grid if k not in new_grid]:
        if old_grid.get(key) != new_grid.get(key):
            return (f"grid.{key} is {json.dumps(old_grid.get(key))} there but "
                    f"{json.dumps(new_grid.get(key))} now")
    return "the order of the grid keys differs"


@contextlib.contextmanager
def _locked(output: Path) -> Iterator[None]:
    """Refuse a second sweep running on the same directory (the kernel drops the lock
    when its holder dies, even by SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    handle = open(output / LOCK, "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CollapseError(f"--output: {str(output)!r} is in use by another running "
                                f"sweep") from None
        yield
    finally:
        handle.close()


def _versions(command: str) -> dict[str, str | None]:
    import platform

    names = ["collapse-or-thrive", "numpy", "scipy", "dask", "distributed"]
    if command == "lm":
        names += ["torch", "transformers"]
    out = {name: _version(name) for name in names}
    out["python"] = platform.python_version()
    return out


def _write_manifest(output: Path, manifest: Mapping[str, Any]) -> None:
    from collapse.simulate.tables import write_text

    write_text(output / MANIFEST, json.dumps(manifest, indent=1) + "\n", "--output")


def _new_manifest(grid: Grid, output: Path) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "source": grid.source,
        "description": grid.description,
        "grid": grid.document(),
        "grid_sha256": grid.fingerprint,
        "columns": list(grid.columns()),
        "cells": [{"id": c.id, "values": dict(c.values), "command": c.shell(output)}
                  for c in grid.cells],
        "created": _now(),
        "versions": _versions(grid.command),
        "runs": [],
        "status": "running",
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _results(grid: Grid, records: Mapping[str, Mapping[str, Any]]) -> str:
    """``results.csv``: each cell's rows (as the command wrote them) plus its grid values."""
    base = _command_columns(grid.command)
    extra = [key for key in grid.keys if key not in base]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(base + tuple(extra))
    for cell in grid.cells:
        rows = list(csv.reader(io.StringIO(records[cell.id]["csv"])))
        for row in rows[1:]:
            if row:
                writer.writerow(row + [_text(cell.values[key]) for key in extra])
    return buffer.getvalue()


# --------------------------------------------------------------------------- progress

class _Progress:
    """Cells done / total, rate and time left on standard error.

    On a terminal one line is redrawn; elsewhere (logs, pipes) a line is printed
    every tenth of the work, so logs stay short.
    """

    def __init__(self, total: int, reused: int, enabled: bool, stream=None) -> None:
        self.total, self.done, self.computed = total, reused, 0
        self.enabled = enabled and total > reused
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._next = 0
        if self.enabled:
            self._draw()

    def restart(self) -> None:
        """Count the rate from now (after the cluster started, before the first cell)."""
        self.start = time.perf_counter()

    def update(self) -> None:
        self.done += 1
        self.computed += 1
        if self.enabled:
            self._draw()

    def _draw(self) -> None:
        todo = self.total - self.done
        elapsed = time.perf_counter() - self.start
        rate = self.computed / elapsed if self.computed and elapsed > 0 else None
        left = f"{_duration(todo / rate)} left" if rate else "time left unknown"
        speed = f"{rate:.3g} cells/s" if rate else "- cells/s"
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        line = (f"collapse: sweep [{'#' * filled}{'.' * (width - filled)}] {self.done}/"
                f"{self.total} cells, {speed}, {left}")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if todo == 0 else ""))
            self.stream.flush()
        elif self.done >= self._next or todo == 0:
            self.stream.write(line + "\n")
            self.stream.flush()
            step = max(1, self.total // 10)
            self._next = (self.done // step + 1) * step

    def close(self) -> None:
        if self.enabled and self.tty and self.done < self.total:
            self.stream.write("\n")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# --------------------------------------------------------------------------- clusters

def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_scheduler(scheduler: str | None, workers: int | None) -> None:
    """Refuse a bad ``scheduler`` / ``workers`` combination before anything runs."""
    from collapse.analysis.checks import check_int

    if workers is not None:
        check_int("workers", workers, 1)
        if scheduler is not None:
            raise CollapseError("--workers: applies to the local cluster only; an external "
                                "scheduler (--scheduler) has the workers that joined it")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise CollapseError(f"--scheduler must be an address such as tcp://127.0.0.1:8786, a "
                            f"scheduler file, or {SYNCHRONOUS} (got {scheduler!r})")


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int, dashboard: str | None):
    """A ``distributed.Client`` of a new local cluster (``scheduler`` None) or of ``scheduler``."""
    import warnings

    import dask
    from distributed import Client, LocalCluster

    if scheduler is None:
        # Workers are started with one BLAS thread (threads_per_worker=1 each): the
        # parallelism is across cells, and n multi-threaded BLAS pools on n cores only
        # fight for them.  Set before they start, so numpy reads it at import.
        env = {name: "1" for name in _BLAS_VARIABLES}
        config = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                  # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers (against
                  # fragmentation in dataframe work); that turns off glibc's adaptive mmap
                  # threshold, so every large temporary array of the engines is a fresh
                  # mmap and its pages are faulted in again: measured 1.4x the CPU time on
                  # a Gaussian cell.  None unsets it.
                  "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
        with dask.config.set(config), warnings.catch_warnings():
            # "Port 8787 is already in use": another free port is used, and printed
            warnings.filterwarnings("ignore", message=".*already in use.*")
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=dashboard or ":0",
                                   silence_logs=logging.ERROR, env=env)
        try:
            client = Client(cluster)
        except BaseException:
            cluster.close()
            raise
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    target = scheduler.strip()
    try:
        if target.endswith(".json") and Path(target).is_file():
            client = Client(scheduler_file=target, timeout=CONNECT_TIMEOUT)
        else:
            client = Client(target, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise CollapseError(f"--scheduler: cannot connect to {target!r}: "
                            f"{' '.join(str(exc).split()) or type(exc).__name__}") from None
    try:
        yield client
    finally:
        client.close()


def _dashboard(client) -> None:
    import importlib.util

    link = getattr(client, "dashboard_link", None)
    if not link:
        return
    if importlib.util.find_spec("bokeh") is None:
        log.info("dashboard: %s (it needs bokeh>=3.1 installed where the scheduler runs)", link)
    else:
        log.info("dashboard: %s", link)


# --------------------------------------------------------------------------- the sweep

@dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` did.

    Attributes
    ----------
    output : Path
        The sweep directory.
    grid : Grid
    computed, reused, damaged : int
        Cells computed by this call, found finished, and found damaged (then
        recomputed: they are also counted as computed).
    failed : tuple of str
        One line per cell that failed (after its retries); empty when complete.
    seconds : float
        Wall-clock time of the call.
    verdicts : dict
        ``compare`` only: the number of cells per verdict.

    Examples
    --------
    >>> import collapse, tempfile, pathlib
    >>> grid = {"command": "compare", "setting": "gaussian",
    ...         "fixed": {"iterations": 3, "replicates": 200},
    ...         "grid": {"workflow": ["replace", "accumulate"]}}
    >>> done = collapse.sweep(grid, pathlib.Path(tempfile.mkdtemp()) / "s",
    ...                       scheduler="synchronous")
    >>> done.complete, done.verdicts, done.exit_status
    (True, {'CONSISTENT': 2}, 0)
    >>> # 2 workflows x 5 metrics x 3 iterations, and replace's 3 log-det quartiles x 3
    >>> done.results.name, len(done.to_frame())
    ('results.csv', 39)
    """

    output: Path
    grid: Grid
    computed: int
    reused: int
    damaged: int = 0
    failed: tuple[str, ...] = ()
    seconds: float = 0.0
    verdicts: Mapping[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every cell is stored and ``results.csv`` written."""
        return not self.failed

    @property
    def results(self) -> Path:
        """``DIR/results.csv``."""
        return self.output / RESULTS

    @property
    def exit_status(self) -> int:
        """4 if a cell failed; for ``compare``: 1 if a cell is inconsistent, else 3 if one
        could test no row; else 0."""
        if self.failed:
            return 4
        if self.verdicts.get("INCONSISTENT"):
            return 1
        if self.verdicts.get("UNTESTED"):
            return 3
        return 0

    def summary(self) -> str:
        """``N cells computed, M reused`` and what followed."""
        text = f"{self.computed} cells computed, {self.reused} reused"
        if self.damaged:
            text += f" ({self.damaged} damaged cell files recomputed)"
        if self.verdicts:
            text += "; verdicts: " + ", ".join(f"{n} {v}" for v, n in sorted(self.verdicts.items()))
        if self.failed:
            text += f"; {len(self.failed)} cells FAILED (rerun the same command to retry them)"
        return text

    def to_frame(self):
        """``results.csv`` as a pandas DataFrame (``consistent`` as nullable booleans)."""
        import pandas as pd

        if not self.results.is_file():
            raise CollapseError(f"{self.results} does not exist: the sweep is incomplete")
        frame = pd.read_csv(self.results)
        if "consistent" in frame.columns:
            frame["consistent"] = frame["consistent"].map(
                {"true": True, "false": False, True: True, False: False}).astype("boolean")
        return frame


def sweep(grid: str | os.PathLike | Mapping[str, Any] | Grid, output: str | os.PathLike, *,
          scheduler: str | None = None, workers: int | None = None, retries: int = RETRIES,
          progress: bool = False, dashboard: str | None = DASHBOARD) -> SweepResult:
    """Run every cell of a grid as one task of a Dask cluster; store each as it finishes.

    Parameters
    ----------
    grid : path, mapping or Grid
        A GRID.toml file, or the same data as a mapping (see
        :mod:`collapse.simulate.sweep` for the format).  Validated completely before
        anything is submitted or written.
    output : path
        The sweep directory: new, empty, or one this same grid wrote (resumed:
        only missing or damaged cells are computed).  A directory of another grid is
        refused.
    scheduler : str, optional
        ``None`` (default): a ``distributed.LocalCluster`` of ``workers`` processes of one
        thread each on this machine.  An address (``tcp://host:8786``) or a scheduler
        file (``.json``) of a running Dask scheduler, e.g. ``dask scheduler`` or a
        ``dask_jobqueue.SLURMCluster``'s ``scheduler_address``: its workers must have
        ``collapse`` installed and see ``output`` at the same path to keep cells the
        client does not.  ``"synchronous"``: the cells one after another in this
        process, without Dask.
    workers : int, optional
        Worker processes of the local cluster (default: the cores available; never
        more than the cells to compute).
    retries : int
        Retries of a cell whose task raised (default 2).  Tasks of a worker that died
        are rescheduled by the scheduler itself.
    progress : bool
        Draw cells done / total, rate and time left on standard error.
    dashboard : str or None
        Address of the local cluster's dashboard (default ``:8787``; another port if it
        is taken); its link is logged when available.

    Returns
    -------
    SweepResult
        Counts (``computed``, ``reused``), ``exit_status`` and ``to_frame()`` of
        ``DIR/results.csv``: the command's columns plus one per grid key (a grid key
        that already is a column, such as ``workflow``, is not repeated).

    Examples
    --------
    >>> import collapse, tempfile, pathlib
    >>> grid = {"command": "theory", "setting": "gaussian", "fixed": {"iterations": 2},
    ...         "grid": {"dim": [1, 10], "n": [10, 100]}}
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "theory"
    >>> done = collapse.sweep(grid, out, scheduler="synchronous")
    >>> done.summary()
    '4 cells computed, 0 reused'
    >>> frame = done.to_frame()
    >>> list(frame.columns)
    ['setting', 'workflow', 'iteration', 'metric', 'value', 'dim', 'n']
    >>> row = frame.query("dim == 1 and n == 10 and workflow == 'replace' and iteration == 2")
    >>> row.query("metric == 'mean_sq_error'")["value"].item()
    0.19
    >>> collapse.sweep(grid, out, scheduler="synchronous").summary()
    '0 cells computed, 4 reused'
    """
    from collapse.analysis.checks import check_int

    start = time.perf_counter()
    grid = load_grid(grid)
    retries = check_int("retries", retries, 0)
    check_scheduler(scheduler, workers)
    output = Path(os.fspath(output))
    existing = _check_directory(output, grid)
    folder = output.absolute()  # workers may run elsewhere: they get the absolute path
    records, todo, damaged = _scan(output, grid) if existing is not None else (
        {}, list(grid.cells), 0)
    reused = len(records)
    with contextlib.ExitStack() as stack:
        connection = None
        if todo and scheduler not in (None, SYNCHRONOUS):
            # connect first: an unreachable scheduler is refused with nothing written
            connection = stack.enter_context(_client(scheduler, 0, dashboard))
        output.mkdir(exist_ok=True)
        stack.enter_context(_locked(output))
        manifest = dict(existing) if existing is not None else _new_manifest(grid, output)
        run_entry: dict[str, Any] = {"started": _now(), "cells_to_compute": len(todo),
                                     "reused": reused, "damaged": damaged}
        manifest["status"] = "running"
        manifest.setdefault("runs", []).append(run_entry)
        _write_manifest(output, manifest)
        (output / CELLS).mkdir(exist_ok=True)
        failed: list[str] = []
        bar = _Progress(len(grid.cells), reused, progress)
        try:
            if todo and scheduler == SYNCHRONOUS:
                run_entry["scheduler"] = "synchronous (this process, one cell after another)"
                for cell in todo:
                    try:
                        record = run_cell(cell.payload(), str(folder))
                    except Exception as exc:  # a failed cell must not lose the others
                        _failed(failed, cell, exc)
                        continue
                    _keep(output, cell, record, records)
                    bar.update()
            elif todo:
                if connection is None:
                    count = min(workers or _default_workers(), len(todo))
                    connection = stack.enter_context(_client(None, count, dashboard))
                _distribute(connection, todo, folder, output, retries, records, failed, bar,
                            run_entry)
        except KeyboardInterrupt:
            log.info("interrupted: %d finished cells are kept in %s; rerun the same command to "
                     "compute the rest", len(records), output / CELLS)
            run_entry.update(finished=_now(), interrupted=True, computed=len(records) - reused)
            manifest["status"] = "incomplete"
            _write_manifest(output, manifest)
            raise
        finally:
            bar.close()
        return _finish(grid, output, manifest, run_entry, records, reused, damaged, failed,
                       start)


def _scan(output: Path, grid: Grid) -> tuple[dict[str, dict[str, Any]], list[Cell], int]:
    """The verified finished cells, the cells to compute, and how many files were damaged."""
    records: dict[str, dict[str, Any]] = {}
    todo: list[Cell] = []
    damaged = 0
    for cell in grid.cells:
        record, reason = load_cell(output, cell)
        if record is not None:
            records[cell.id] = record
            continue
        if reason is not None:
            damaged += 1
            log.warning("cell %s (%s) is damaged: %s; recomputing",
                        _cell_path(output, cell.id), cell.label, reason)
        todo.append(cell)
    return records, todo, damaged


def _failed(failed: list[str], cell: Cell, exc: BaseException) -> None:
    line = f"{cell.label}: {type(exc).__name__}: {' '.join(str(exc).split())}"
    failed.append(line)
    log.error("cell failed: %s", line)


def _finish(grid: Grid, output: Path, manifest: dict[str, Any], run_entry: dict[str, Any],
            records: dict[str, dict[str, Any]], reused: int, damaged: int, failed: list[str],
            start: float) -> SweepResult:
    computed = len(records) - reused
    complete = len(records) == len(grid.cells)
    seconds = time.perf_counter() - start
    run_entry.update(finished=_now(), computed=computed, failed=len(failed),
                     wall_seconds=round(seconds, 3))
    if failed:
        run_entry["failures"] = failed
    verdicts: dict[str, int] = {}
    for record in records.values():
        if "verdict" in record:
            verdicts[record["verdict"]] = verdicts.get(record["verdict"], 0) + 1
    if complete:
        from collapse.simulate.tables import write_text

        write_text(output / RESULTS, _results(grid, records), "--output")
        cell_seconds = {c.id: round(float(records[c.id].get("seconds", 0.0)), 4)
                        for c in grid.cells}
        cpu = sum(float(records[c.id].get("cpu_seconds", 0.0)) for c in grid.cells)
        manifest["timings"] = {"cell_seconds_total": round(sum(cell_seconds.values()), 3),
                               "cell_cpu_seconds_total": round(cpu, 3),
                               "cell_seconds": cell_seconds}
        manifest["worker_versions"] = sorted({str(r.get("versions", {}).get("collapse"))
                                              for r in records.values()})
        _clean_temporaries(output / CELLS)
    manifest["status"] = "complete" if complete else "incomplete"
    by_id = {c.id: c for c in grid.cells}
    for entry in manifest.get("cells", []):
        record = records.get(entry.get("id"))
        if record is not None and "verdict" in record:
            entry["verdict"] = record["verdict"]
    if verdicts:
        manifest["verdicts"] = verdicts
        for verdict in ("INCONSISTENT", "UNTESTED"):
            labels = [by_id[cid].label for cid, r in records.items()
                      if r.get("verdict") == verdict and cid in by_id]
            if labels:
                log.info("%s cells: %s", verdict.lower(), "; ".join(sorted(labels)))
    _write_manifest(output, manifest)
    result = SweepResult(output=output, grid=grid, computed=computed, reused=reused,
                         damaged=damaged, failed=tuple(failed), seconds=seconds,
                         verdicts=verdicts)
    log.info("%s%s", result.summary(), f"; wrote {output / RESULTS}" if complete else "")
    return result


def _keep(output: Path, cell: Cell, record: dict[str, Any], records: dict) -> None:
    """Store a finished cell unless its worker already did (then verify what it wrote)."""
    found, _ = load_cell(output, cell)
    if found is None or found.get("sha256") != record.get("sha256"):
        _store(output, record)
    records[cell.id] = record


def _distribute(client, todo: Sequence[Cell], folder: Path, output: Path, retries: int,
                records: dict, failed: list, bar: _Progress, run_entry: dict) -> None:
    from distributed import as_completed

    info = client.scheduler_info()
    workers = info.get("workers", {})
    run_entry["scheduler"] = client.scheduler.address
    run_entry["workers"] = len(workers)
    _dashboard(client)
    if not workers:
        log.info("waiting for workers to join %s", client.scheduler.address)
    # Expensive cells first (a heuristic: it shortens the tail, never changes a number).
    ranked = sorted(todo, key=lambda c: -c.cost)
    bar.restart()
    futures = {}
    for rank, cell in enumerate(ranked):
        future = client.submit(run_cell, cell.payload(), str(folder), pure=False,
                               retries=retries, priority=len(ranked) - rank,
                               key=f"collapse-cell-{cell.id}-{os.urandom(4).hex()}")
        futures[future] = cell
    try:
        for future in as_completed(futures):
            cell = futures.pop(future)
            try:
                record = future.result()
            except Exception as exc:  # reported per cell; the others go on
                _failed(failed, cell, exc)
                continue
            _keep(output, cell, record, records)
            bar.update()
    finally:
        if futures:
            client.cancel(list(futures))


def _clean_temporaries(folder: Path) -> None:
    # Temporary files of writers killed mid-write (tables.write_bytes names them .NAME.*.tmp).
    for path in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()
