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


@functools.lru_cache(maxsize=None)
def _regression(workflow: str, dim: int, n: int, iterations: int) -> tuple[float, ...]:
    from collapse.analysis.regression import regression_theory

    values, _ = regression_theory(workflow, dim=dim, n=n, sigma2=1.0, iterations=iterations)
    return values["test_mse"]


def regression_value(workflow: str, dim: int, n: int, step: int) -> float:
    """``E test_mse_t`` at ``sigma2 = 1`` from :func:`collapse.analysis.regression.regression_theory`."""
    return _regression(workflow, dim, n, max(step, 10))[step - 1]


@functools.lru_cache(maxsize=None)
def _discrete(workflow: str, categories: int, n: int, iterations: int) -> dict[str, tuple[float, ...]]:
    from collapse.analysis.discrete import discrete_theory

    return discrete_theory(workflow, categories=categories, n=n, truth="uniform",
                           iterations=iterations)[0]


@functools.lru_cache(maxsize=None)
def discrete_collapse_time(which: str, categories: int, n: int) -> float:
    """Exact or Kimura's expected collapse time under replace (uniform truth)."""
    from collapse.analysis.discrete import collapse_time

    result = collapse_time(categories=categories, n=n, truth="uniform")
    value = result.exact if which == "exact" else result.kimura
    return math.nan if value is None else value


def discrete_limit_ratio(workflow: str, n: int) -> float:
    """``lim E H_t / H0`` from :func:`collapse.analysis.discrete_symbolic.discrete_limit`."""
    from collapse.analysis import discrete_symbolic as ds

    return float(sp.N((ds.discrete_limit("gini_diversity", workflow) / ds.H0).subs(ds.n, n)))


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
    (re.compile(rf"regression\.({_WORKFLOW}|fresh)\.d(\d+)\.n(\d+)\.t(\d+)"),
     lambda m: regression_value(m[1], int(m[2]), int(m[3]), int(m[4]))),
    (re.compile(r"discrete\.collapse-time\.(exact|kimura)\.k(\d+)\.n(\d+)"),
     lambda m: discrete_collapse_time(m[1], int(m[2]), int(m[3]))),
    (re.compile(rf"discrete\.lim\.({_WORKFLOW}|fresh)\.n(\d+)"),
     lambda m: discrete_limit_ratio(m[1], int(m[2]))),
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


#: The authors' published Monte Carlo (600 runs, d = 10, n = 100, sigma2 = 1):
#: (workflow, t, their mean test error).
REGRESSION_PUBLISHED = (("replace", 1, 0.111), ("replace", 5, 0.559), ("replace", 10, 1.117),
                        ("accumulate", 10, 0.172))


def regression_published_table() -> TableData:
    header = ["workflow", "t", "published Monte Carlo", "exact here", "published / exact"]
    rows = []
    for workflow, step, published in REGRESSION_PUBLISHED:
        exact = regression_value(workflow, 10, 100, step)
        rows.append([workflow, str(step), fmt(published), fmt(exact), fmt(published / exact, 3)])
    return TableData(header, rows, ("analysis.regression.regression_theory",))


REGRESSION_T = (1, 10, 100, 1000)


def regression_long_run() -> TableData:
    header = ["workflow"] + [f"t = {t}" for t in REGRESSION_T]
    rows = [[w] + [fmt(_regression(w, 10, 100, max(REGRESSION_T))[t - 1]) for t in REGRESSION_T]
            for w in ("replace", "accumulate", "fresh")]
    return TableData(header, rows, ("analysis.regression.regression_theory",))


#: The authors' measured replace collapse times (K = 10, uniform; run until the
#: entropy fell below 1e-8): (n, iterations).
DISCRETE_PUBLISHED = ((10, 17), (100, 200), (1000, 1800), (10_000, 17_000), (100_000, 200_000))


def discrete_collapse_table() -> TableData:
    header = ["n", "published", "Kimura", "exact here", "published / Kimura"]
    rows = []
    for n_, published in DISCRETE_PUBLISHED:
        kimura = discrete_collapse_time("kimura", 10, n_)
        exact = discrete_collapse_time("exact", 10, n_)
        rows.append([str(n_), fmt(published), fmt(kimura), "—" if math.isnan(exact) else fmt(exact),
                     fmt(published / kimura, 3)])
    return TableData(header, rows, ("analysis.discrete.collapse_time",
                                    "analysis.discrete.kimura_collapse_time"))


DISCRETE_T = (1, 10, 100)


def discrete_long_run() -> TableData:
    from collapse.analysis.vocabulary import ENTROPY, GINI_DIVERSITY, SURVIVING_CATEGORIES

    header = ["metric", "workflow"] + [f"t = {t}" for t in DISCRETE_T]
    rows = []
    for metric in (GINI_DIVERSITY, ENTROPY, SURVIVING_CATEGORIES):
        for workflow in WORKFLOWS:
            series = _discrete(workflow, 10, 10, max(DISCRETE_T))[metric]
            rows.append([metric, workflow] + [fmt(series[t - 1]) for t in DISCRETE_T])
    return TableData(header, rows, ("analysis.discrete.discrete_theory",))


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
    "regression-published": regression_published_table,
    "regression-long-run": regression_long_run,
    "discrete-collapse-time": discrete_collapse_table,
    "discrete-long-run": discrete_long_run,
}


@functools.lru_cache(maxsize=None)
def table(name: str) -> TableData:
    try:
        builder = TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}") from None
    return builder()


__all__ = ["fmt", "value", "table", "TABLES", "TableData", "gauss_ratio", "gauss_limit"]
