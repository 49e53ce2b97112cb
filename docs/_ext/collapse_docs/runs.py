"""Figures and command outputs made at build time through the Python API.

Each entry of :data:`RUNS` is an API call (a problem, a workflow and settings: small
but honest, every workflow, thousands of replicates where cheap).  :func:`execute`
calls :func:`collapse.theory`, :func:`collapse.simulate` or :func:`collapse.compare`,
saves the figure, and keeps what the equivalent ``collapse`` command prints, its exit
status, the verdict and the counts of tested and set-aside rows, with a cache key.
The key hashes the call and every ``.py`` file of ``analysis/`` and ``simulate/``, so a
change of the code re-runs the figures at the next build and an unchanged tree
reuses them.

:func:`check_command` validates a documented shell command against the real
command line (parser and every option check), so the pages cannot show a command
that ``collapse`` rejects.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from collapse.analysis.problems import KDE, Discrete, Gaussian, Problem, Regression

ROOT = Path(__file__).resolve().parents[3]
#: Where generated figures and outputs go (git-ignored; safe to delete).
GENERATED = ROOT / "docs" / "_generated"
_SOURCE_DIRS = ("analysis", "simulate")


@dataclass(frozen=True)
class Run:
    """One API call shown on a page, with the equivalent ``collapse`` command."""

    command: str
    problem: Problem
    workflow: str | tuple[str, ...] = "all"  # a tuple: one --workflow per rule
    settings: tuple[tuple[str, Any], ...] = ()
    plot: bool = True
    expect_status: int | None = None  # None: any status is shown as it is

    @property
    def argv(self) -> list[str]:
        from collapse.simulate.cli_options import argv_for

        return argv_for(self.command, self.problem, self.workflow, **dict(self.settings))

    @property
    def shell(self) -> str:
        return "collapse " + " ".join(shlex.quote(a) for a in self.argv)

    def call(self):
        import collapse

        if self.command == "value":
            return collapse.value(self.problem, **dict(self.settings))
        function = {"theory": collapse.theory, "simulate": collapse.simulate,
                    "compare": collapse.compare}[self.command]
        workflow = list(self.workflow) if isinstance(self.workflow, tuple) else self.workflow
        return function(self.problem, workflow, **dict(self.settings))


def _compare(problem: Problem, **settings: Any) -> Run:
    return Run("compare", problem, settings=tuple(settings.items()))


def _value(problem: Problem, **settings: Any) -> Run:
    return Run("value", problem, workflow=(), settings=tuple(settings.items()))


#: The rules of the workflows page's figure: the peers' loops, one spec each.
RULE_SPECS = ("fresh", "real=original,synthetic=window:3",
              "real=original,synthetic=all,size=25,real-fraction=0.2", "real=fresh,synthetic=all",
              "real=none,synthetic=window:3")


#: Runs used by the pages, by name.
RUNS: dict[str, Run] = {
    # d = 10, n = 100 (a point of the paper's grid) and 10,000 replicates: every
    # mean-error, trace and log-det row is tested; at n = 20, d = 2 and 2,000 replicates
    # only 3 of replace's 60 mean-error rows and 17 of accumulate-subsample's were.
    "gaussian-mle": _compare(Gaussian(n=100, dim=10), iterations=60, replicates=10000),
    # Theory only: at n = 5 no feasible Monte Carlo tests these means (measured: 53 of 90
    # mean-error rows tested over 30 iterations at 20,000 replicates, 15 of 300 over 100
    # at 4,000), and a figure of mostly set-aside rows would break the 90% standard.
    "gaussian-unbiased": Run("theory", Gaussian(n=5, dim=1, covariance="unbiased"),
                             settings=(("iterations", 100),)),
    # Sized so that every MISE row is tested (the skewness of one KDE's squared error
    # needs about 2,000 replicates); the held-out NLL is Monte Carlo only.
    "kde-gaussian": _compare(KDE(truth="gaussian", n=10, bandwidth=0.5, heldout=100),
                             iterations=30, replicates=2000),
    "kde-blobs": _compare(KDE(truth="blobs", n=32, bandwidth=0.5, heldout=100), iterations=30,
                          replicates=2000),
    "kde-moons": Run("simulate", KDE(truth="moons", n=100, bandwidth=0.1),
                     settings=(("iterations", 20), ("replicates", 40))),
    "quickstart-theory": Run("theory", Gaussian(n=10, dim=1), settings=(("iterations", 5),),
                             plot=False),
    "quickstart-compare": Run("compare", Gaussian(n=20, dim=2),
                              settings=(("iterations", 10), ("replicates", 2000)), plot=False),
    # n = 100, d = 10 (a point of the paper's grid): every mean-error and trace row, and
    # replace's test loss, is tested (at n = 20, d = 2 and 1,000 replicates none of the 60 mean-error rows was)
    "compare-example": Run("compare", Gaussian(n=100, dim=10),
                           settings=(("iterations", 20), ("replicates", 2000)), plot=False),
    "compare-negative-control": Run("compare", Gaussian(n=100, dim=10),
                                    settings=(("iterations", 20), ("replicates", 2000),
                                              ("theory_scale", 1.05)),
                                    plot=False, expect_status=1),
    # n = 100, d = 10, 4,000 replicates: all 360 rows tested (at n = 20, d = 2 and 2,000
    # replicates four rules' mean-error panels rested on 7 to 23 of 30 tested rows).
    "rules-gaussian": Run("compare", Gaussian(n=100, dim=10),
                          workflow=("accumulate",) + RULE_SPECS,
                          settings=(("iterations", 30), ("replicates", 4000))),
    "rules-kde": Run("compare", KDE(truth="gaussian", n=20, bandwidth=0.5, heldout=50),
                     workflow=("accumulate",) + RULE_SPECS,
                     settings=(("iterations", 15), ("replicates", 2000))),
    "regression-paper": _compare(Regression(dim=10, n=100), iterations=20, replicates=2000),
    "discrete-paper": _compare(Discrete(categories=10, n=10), iterations=40, replicates=2000),
    "value-gaussian": _value(Gaussian(dim=1), generator_n=100,
                             real_sizes=(0, 10, 25, 40, 50, 60, 75, 90, 100),
                             synthetic_sizes=(0, 10, 25, 50, 100, 250, 1000, 10000)),
    "value-gaussian-mc": _value(Gaussian(dim=2), generator_n=40, real_sizes=(0, 10, 20, 30, 40),
                                synthetic_sizes=(0, 10, 40, 160), replicates=2000),
    "value-kde": _value(KDE(truth="gaussian", bandwidth=0.5, heldout=100), generator_n=50,
                        real_sizes=(0, 5, 10, 20, 30, 40, 50),
                        synthetic_sizes=(0, 5, 20, 50, 200), replicates=2000),
}


@dataclass(frozen=True)
class RunResult:
    """What a run left: the figure (or None), the command's standard output, exit status,
    and (for ``compare``) the verdict with the rows tested and set aside by reason."""

    name: str
    run: Run
    figure: Path | None
    stdout: str
    status: int
    reused: bool
    verdict: str | None = None
    tested: int = 0
    set_aside: dict[str, int] = field(default_factory=dict)


def source_digest() -> str:
    """Hash of every ``.py`` file under ``analysis/`` and ``simulate/`` (path and bytes)."""
    digest = hashlib.sha256()
    for folder in _SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _key(run: Run) -> str:
    payload = json.dumps({"argv": run.argv, "plot": run.plot, "code": source_digest()})
    return hashlib.sha256(payload.encode()).hexdigest()


def execute(name: str, outdir: Path = GENERATED) -> RunResult:
    """Run :data:`RUNS` ``[name]`` (or reuse its result if the key is unchanged)."""
    run = RUNS[name]
    outdir.mkdir(parents=True, exist_ok=True)
    figure = outdir / f"{name}.png" if run.plot else None
    record = outdir / f"{name}.json"
    key = _key(run)
    if record.exists() and (figure is None or figure.exists()):
        saved = json.loads(record.read_text())
        if saved.get("key") == key:
            return RunResult(name, run, figure, saved["stdout"], saved["status"], True,
                             saved.get("verdict"), saved.get("tested", 0),
                             saved.get("set_aside", {}))
    result = run.call()
    if run.command in ("compare", "value"):
        stdout, status = result.summary(), result.exit_status
        verdict, tested, aside = result.verdict, result.tested, result.set_aside
    else:
        stdout, status, verdict, tested, aside = result.to_text(), 0, None, 0, {}
    if figure is not None:
        result.save_plot(figure)
    # A unique temporary name: two builds (make docs and a test) may share this cache.
    fd, tmp = tempfile.mkstemp(dir=outdir, prefix=f".{name}.", suffix=".json.tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump({"key": key, "argv": run.argv, "stdout": stdout, "status": status,
                   "verdict": verdict, "tested": tested, "set_aside": aside}, handle)
    os.replace(tmp, record)
    return RunResult(name, run, figure, stdout, status, False, verdict, tested, aside)


# --------------------------------------------------------------------------- documented commands


_FOR = re.compile(r"^\s*for\s+(\w+)\s+in\s+(.+?)\s*;\s*do\s*$")


def commands_in(snippet: str) -> list[list[str]]:
    """Every ``collapse ...`` command of a shell snippet, as argument lists.

    Continuation lines (trailing backslash) are joined; ``for VAR in a b c; do`` loops
    are expanded so that ``$VAR`` / ``${VAR}`` take each listed value in turn.
    """
    text = re.sub(r"\\\n", " ", snippet)
    loops: dict[str, list[str]] = {}
    found: list[list[str]] = []
    for line in text.splitlines():
        loop = _FOR.match(line)
        if loop:
            loops[loop[1]] = shlex.split(loop[2])
            continue
        stripped = line.strip()
        if not stripped.startswith("collapse "):
            continue
        variants = [stripped]
        for var, values in loops.items():
            pattern = re.compile(r"\$\{?" + var + r"\}?")
            if any(pattern.search(v) for v in variants):
                variants = [pattern.sub(value, v) for v in variants for value in values]
        for variant in variants:
            words = shlex.split(variant, comments=True)
            found.append(words[1:])
    return found


def check_command(argv: Sequence[str]) -> str | None:
    """``None`` if ``collapse argv`` would be accepted, else its error message.

    A documented ``collapse sweep GRID.toml`` names a grid of the repository
    (``sweeps/*.toml``) from its root; it is read from there, wherever the check runs.
    """
    from collapse.simulate.cli import validate

    argv = list(argv)
    if len(argv) >= 2 and argv[0] == "sweep" and not os.path.isabs(argv[1]):
        argv[1] = str(ROOT / argv[1])
    return validate(argv)
