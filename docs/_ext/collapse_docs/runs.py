"""Figures and command outputs made at build time by the real ``collapse`` command.

Each entry of :data:`RUNS` is an argument list for :func:`collapse.simulate.cli.main`
(small but honest settings: every workflow, thousands of replicates where cheap).
:func:`execute` runs it in-process with ``--plot`` into the generated directory and
keeps its standard output, exit status and a cache key.  The key hashes the
arguments and every ``.py`` file of ``collapse.analysis/`` and ``collapse.simulate/``, so a change of
the code re-runs the figures at the next build and an unchanged tree reuses them.

:func:`check_command` validates a documented shell command against the real
argument parser, so the pages cannot show a command that ``collapse`` rejects.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[3]
#: Where generated figures and outputs go (git-ignored; safe to delete).
GENERATED = ROOT / "docs" / "_generated"
_SOURCE_DIRS = ("analysis", "simulate")


@dataclass(frozen=True)
class Run:
    """One ``collapse`` invocation shown on a page (``argv`` without the program name)."""

    argv: tuple[str, ...]
    plot: bool = True
    expect_status: int | None = None  # None: any status is shown as it is

    @property
    def command(self) -> str:
        return "collapse " + " ".join(shlex.quote(a) for a in self.argv)


def _gaussian(*extra: str) -> tuple[str, ...]:
    return ("compare", "gaussian", "--workflow", "all", *extra)


#: Runs used by the pages, by name.
RUNS: dict[str, Run] = {
    "gaussian-mle": Run(_gaussian("--n", "20", "--dim", "2", "--iterations", "60",
                                  "--replicates", "2000", "--seed", "0")),
    "gaussian-unbiased": Run(_gaussian("--covariance", "unbiased", "--n", "5", "--dim", "1",
                                       "--iterations", "100", "--replicates", "4000", "--seed", "0")),
    "kde-gaussian": Run(("compare", "kde", "--workflow", "all", "--truth", "gaussian", "--n", "32",
                         "--bandwidth", "0.5", "--iterations", "30", "--replicates", "400",
                         "--seed", "0")),
    "kde-blobs": Run(("compare", "kde", "--workflow", "all", "--truth", "blobs", "--n", "100",
                      "--bandwidth", "0.5", "--iterations", "20", "--replicates", "100",
                      "--seed", "0")),
    "kde-moons": Run(("simulate", "kde", "--workflow", "all", "--truth", "moons", "--n", "100",
                      "--bandwidth", "0.1", "--iterations", "20", "--replicates", "40",
                      "--seed", "0")),
    "compare-example": Run(_gaussian("--n", "20", "--dim", "2", "--iterations", "20",
                                     "--replicates", "1000", "--seed", "0"), plot=False),
    "compare-negative-control": Run(_gaussian("--n", "20", "--dim", "2", "--iterations", "20",
                                              "--replicates", "1000", "--seed", "0",
                                              "--theory-scale", "1.05"),
                                    plot=False, expect_status=1),
}


@dataclass(frozen=True)
class RunResult:
    """What a run left: the figure (or None), its standard output and exit status."""

    name: str
    run: Run
    figure: Path | None
    stdout: str
    status: int
    reused: bool


def source_digest() -> str:
    """Hash of every ``.py`` file under ``collapse.analysis/`` and ``collapse.simulate/`` (path and bytes)."""
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
            return RunResult(name, run, figure, saved["stdout"], saved["status"], True)
    from collapse.simulate.cli import main

    argv = list(run.argv) + (["--plot", str(figure)] if figure is not None else [])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    stdout = out.getvalue()
    # A unique temporary name: two builds (make docs and a test) may share this cache.
    fd, tmp = tempfile.mkstemp(dir=outdir, prefix=f".{name}.", suffix=".json.tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump({"key": key, "argv": argv, "stdout": stdout, "status": status,
                   "stderr": err.getvalue()}, handle)
    os.replace(tmp, record)
    return RunResult(name, run, figure, stdout, status, False)


def verdict(stdout: str) -> str | None:
    """The ``verdict: ...`` line of a ``compare`` run, if any."""
    match = re.search(r"^verdict: (\S+)", stdout, flags=re.M)
    return match[1] if match else None


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
    """``None`` if the real ``collapse`` parser accepts ``argv``, else its error message."""
    from collapse.simulate.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(list(argv))
    except SystemExit as exc:
        if exc.code not in (0, None):
            return err.getvalue().strip() or f"exit status {exc.code}"
    return None
