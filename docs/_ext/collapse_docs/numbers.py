"""Numbers and tables of the pages, computed at build time from ``collapse.analysis``/``collapse.simulate``.

:func:`value` answers the ``collapse-value`` role: a small grammar of dotted names,
for example ``gauss.lim.b.accumulate.mle.n100`` (the ``t -> infinity`` limit of
``b_t`` for accumulate, MLE, ``n = 100``), so prose never carries a number that
the code did not produce.  :data:`TABLES` answers the ``collapse-table``
directive.  Every cell is either text or a sympy expression (shown as math).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import sympy as sp

from collapse.analysis import gaussian_symbolic as gs
from collapse.analysis.gaussian import gaussian_theory, replace_one_step
from collapse.analysis.gaussian_symbolic import limit_values
from collapse.analysis.kde import expected_density_variance, expected_mise
from collapse.analysis.truths import blobs_truth, gaussian_truth
from collapse.analysis.vocabulary import (
    COV_TRACE_RATIO,
    COVARIANCE_ESTIMATORS,
    MEAN_SQ_ERROR,
    MLE,
    UNBIASED,
    WORKFLOWS,
)
from collapse_docs import formulas

_WORKFLOW = "|".join(re.escape(w) for w in WORKFLOWS)
_COV = "|".join(COVARIANCE_ESTIMATORS)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def fmt(x: Any, digits: int = 4) -> str:
    """A number as the pages print it: ``digits`` significant digits, ``∞`` for infinity,
    powers of ten as ``2.656×10⁻⁵``."""
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == int(x) and abs(x) < 1e6:
        return str(int(x))
    text = f"{x:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}×10{str(int(exponent)).translate(_SUPERSCRIPT)}"
    return text.replace("-", "−")


@functools.lru_cache(maxsize=None)
def _gauss_series(workflow: str, n: int, covariance: str, iterations: int) -> dict[str, tuple[float, ...]]:
    # dim = 1 and sigma2 = 1, so mean_sq_error is a_t itself (mean_sq_error = d sigma2 a_t).
    return gaussian_theory(workflow, n=n, dim=1, iterations=iterations, sigma2=1.0,
                           covariance=covariance).values


def gauss_ratio(which: str, workflow: str, covariance: str, n: int, t: int) -> float:
    """``a_t`` (``which = "a"``) or ``b_t`` (``"b"``) from :func:`collapse.analysis.gaussian.gaussian_theory`."""
    series = _gauss_series(workflow, n, covariance, max(t, 1000))
    return series[MEAN_SQ_ERROR if which == "a" else COV_TRACE_RATIO][t - 1]


@functools.lru_cache(maxsize=None)
def gauss_limit(which: str, workflow: str, covariance: str, n: int) -> float:
    key = gs.MEAN_ERROR_RATIO if which == "a" else COV_TRACE_RATIO
    return limit_values(workflow, n, covariance)[key]


@functools.lru_cache(maxsize=None)
def _mise(truth: str, workflow: str, n: int, h: float, iterations: int) -> tuple[float, ...]:
    mixture = gaussian_truth(1, 1.0) if truth == "gaussian" else blobs_truth()
    return tuple(expected_mise(workflow, n=n, bandwidth=h, iterations=iterations, truth=mixture))


def _cli_default(command: str, setting: str, dest: str) -> Any:
    from collapse.simulate.cli import build_parser

    args = build_parser().parse_args([command, setting])
    return getattr(args, dest.replace("-", "_"))


# (pattern, function of the match) pairs of the value grammar.
_GRAMMAR: list[tuple[re.Pattern, Callable[[re.Match], float]]] = [
    (re.compile(rf"gauss\.(a|b)\.({_WORKFLOW})\.({_COV})\.n(\d+)\.t(\d+)"),
     lambda m: gauss_ratio(m[1], m[2], m[3], int(m[4]), int(m[5]))),
    (re.compile(rf"gauss\.lim\.(a|b)\.({_WORKFLOW})\.({_COV})\.n(\d+)"),
     lambda m: gauss_limit(m[1], m[2], m[3], int(m[4]))),
    (re.compile(r"gauss\.known-cov-limit\.n(\d+)"),
     lambda m: float(sp.N(gs.accumulate_known_covariance_mean_error(sp.oo).subs(gs.n, int(m[1]))))),
    (re.compile(r"gauss\.replace\.log-det-drift\.n(\d+)\.d(\d+)"),
     lambda m: float(replace_one_step(int(m[1]), int(m[2])).log_det_drift)),
    (re.compile(r"gauss\.replace\.r\.n(\d+)\.d(\d+)"),
     lambda m: float(replace_one_step(int(m[1]), int(m[2])).inv_factor)),
    (re.compile(r"gauss\.subsample-growth-exponent\.n(\d+)"),
     lambda m: float(gs.pool_trace_asymptotics("accumulate-subsample", UNBIASED)[1].subs(gs.n, int(m[1])))),
    (re.compile(rf"kde\.mise\.(gaussian|blobs)\.({_WORKFLOW})\.n(\d+)\.h([0-9.]+)\.t(\d+)"),
     lambda m: _mise(m[1], m[2], int(m[3]), float(m[4]), int(m[5]))[int(m[5]) - 1]),
    (re.compile(rf"kde\.steps\.({_WORKFLOW})\.t(\d+)"),
     lambda m: float(expected_density_variance(m[1], int(m[2]), 1.0).mean_steps)),
    (re.compile(r"stats\.heavy-tail-skew"),
     lambda m: float(__import__("collapse.simulate.stats", fromlist=["HEAVY_TAIL_SKEW"]).HEAVY_TAIL_SKEW)),
    (re.compile(r"cli\.default\.(\w+)\.(\w+)\.([\w-]+)"),
     lambda m: float(_cli_default(m[1], m[2], m[3]))),
]


def value(name: str) -> str:
    """The number called ``name``, formatted (see the module docstring); ``ratio X Y`` is X/Y."""
    name = " ".join(name.split())
    if name.startswith("ratio "):
        parts = name.split(" ")
        if len(parts) != 3:
            raise ValueError(f"ratio needs two value names (got {name!r})")
        return fmt(raw_value(parts[1]) / raw_value(parts[2]), 3)
    return fmt(raw_value(name))


def raw_value(name: str) -> float:
    """The unformatted number called ``name``."""
    for pattern, compute in _GRAMMAR:
        match = pattern.fullmatch(name)
        if match:
            return float(compute(match))
    raise ValueError(f"unknown value {name!r}")


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableData:
    """A table for the ``collapse-table`` directive: cells are text or sympy (math)."""

    header: list[str]
    rows: list[list[Any]]
    sources: tuple[str, ...]
    problems: tuple[str, ...] = field(default=())


LONG_RUN_T = (1, 10, 100, 1000)
LONG_RUN_N = (10, 100)


def _long_run(which: str) -> TableData:
    header = ["n", "workflow", "estimator"] + [f"t = {t}" for t in LONG_RUN_T] + ["t → ∞"]
    rows = []
    for n in LONG_RUN_N:
        for covariance in (MLE, UNBIASED):
            for workflow in WORKFLOWS:
                cells = [fmt(gauss_ratio(which, workflow, covariance, n, t)) for t in LONG_RUN_T]
                rows.append([str(n), workflow, "MLE" if covariance == MLE else "m−1", *cells,
                             fmt(gauss_limit(which, workflow, covariance, n))])
    return TableData(header, rows, ("analysis.gaussian.gaussian_theory", "analysis.gaussian_symbolic.limit_values"))


def pool_coefficients_table() -> TableData:
    rows = [[w, "MLE" if c == MLE else "m−1", g, h] for w, c, g, h in formulas.pool_coefficient_rows()]
    return TableData(["workflow", "estimator", sp.Symbol("g_t"), sp.Symbol("h_t")], rows, ("analysis.gaussian.pool_coefficients",))


def small_t_table() -> TableData:
    rows = [[str(t), w, a, b] for t, w, a, b in formulas.small_t_rows(MLE)]
    return TableData(["t", "workflow", sp.Symbol("a_t"), sp.Symbol("b_t")], rows,
                     ("analysis.gaussian_symbolic.symbolic_moments",))


def lineage_law_table() -> TableData:
    header, rows, problems = formulas.lineage_law_rows()
    return TableData(header, rows, ("analysis.kde_lineage.lineage_law_symbolic",
                                    "analysis.kde_lineage.lineage_law"), tuple(problems))


def pair_law_table() -> TableData:
    header, rows, problems = formulas.pair_law_rows(3)
    return TableData(header, rows, ("analysis.kde_pairs.pair_law_symbolic",), tuple(problems))


KDE_T = (1, 10, 100)


def kde_long_run() -> TableData:
    header = ["truth", "workflow"] + [f"t = {t}" for t in KDE_T]
    rows = []
    for truth in ("gaussian", "blobs"):
        for workflow in WORKFLOWS:
            series = _mise(truth, workflow, 100, 0.5, max(KDE_T))
            rows.append([truth, workflow] + [fmt(series[t - 1]) for t in KDE_T])
    return TableData(header, rows, ("analysis.kde.expected_mise",))


BLUR_T = (1, 10, 100, 1000)


def kde_steps_table() -> TableData:
    header = ["workflow"] + [f"t = {t}" for t in BLUR_T]
    rows = [[w] + [fmt(expected_density_variance(w, t, 1.0).mean_steps) for t in BLUR_T]
            for w in WORKFLOWS]
    return TableData(header, rows, ("analysis.kde_lineage.expected_density_variance",))


#: Every computed table, by the name the pages use.
TABLES: dict[str, Callable[[], TableData]] = {
    "gaussian-long-run-trace": lambda: _long_run("b"),
    "gaussian-long-run-mean": lambda: _long_run("a"),
    "gaussian-pool-coefficients": pool_coefficients_table,
    "gaussian-small-t": small_t_table,
    "kde-lineage-law": lineage_law_table,
    "kde-pair-law": pair_law_table,
    "kde-long-run": kde_long_run,
    "kde-steps": kde_steps_table,
}


@functools.lru_cache(maxsize=None)
def table(name: str) -> TableData:
    try:
        builder = TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}") from None
    return builder()


__all__ = ["fmt", "value", "table", "TABLES", "TableData", "gauss_ratio", "gauss_limit"]
