"""Exact theory of iterated Gaussian-kernel density estimation (DESIGN.md section 3).

Model ``t`` is ``p_hat_t(x) = (1/|D_t|) sum_{y in D_t} phi_h(x - y)``, ``phi_s`` the
``N(0, s^2 I_d)`` density, fixed bandwidth ``h``.  Training sets per workflow as in
:mod:`collapse.analysis.vocabulary`; ``|D_t| = n`` (replace, accumulate-subsample) or ``t n``
(accumulate).  Lineage laws live in :mod:`collapse.analysis.kde_lineage`, pair laws in
:mod:`collapse.analysis.kde_pairs`; this module assembles the expected MISE.

**Expected MISE.**  ``E int (p_hat_t - p0)^2 dx = E int p_hat_t^2 - 2 E int p_hat_t p0 +
int p0^2``.  Every term is a Gaussian overlap,
``int phi_a(x - u) phi_b(x - v) dx = phi_{sqrt(a^2 + b^2)}(u - v)``, and for an isotropic
mixture truth ``p0 = sum_c w_c N(m_c, s_c^2 I)`` with ``r, r'`` iid from ``p0``

    ``Omega(v) := E phi_{sqrt v}(r - r')
    = sum_{c,c'} w_c w_c' phi_{sqrt(s_c^2 + s_c'^2 + v)}(m_c - m_c')``

(the overlap of ``p0`` with ``p0`` blurred by variance ``v``; ``int p0^2 = Omega(0)``).
With ``N = |D_t|``:

* ``E int p_hat_t^2 = (1/N) (4 pi h^2)^(-d/2) + (1 - 1/N) E_pair phi_{h sqrt 2}(y - y')``, the
  second expectation over a uniform pair of distinct points of ``D_t`` with the law
  of :func:`collapse.analysis.kde_pairs.pair_law`: coalesced pairs contribute
  ``(2 pi (S+2) h^2)^(-d/2)`` and pairs with distinct roots ``Omega((S+2) h^2)``;
* ``E int p_hat_t p0 = E Omega((K_D + 1) h^2)``, ``K_D`` the steps of a uniform point of
  ``D_t`` (:func:`collapse.analysis.kde_lineage.data_point_law`).

All in units of inverse data volume (``length^-d``).  The laws are exact rationals;
:func:`expected_mise` rounds them to float64 once (float dynamic programme, checked
against the exact one to ``1e-12`` in the tests) and costs ``O(T^2 (T + K^2))`` for
``T`` iterations and ``K`` mixture components: milliseconds at ``T = 100``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from collapse.analysis.kde_lineage import (
    EULER_GAMMA,
    DensityBlur,
    check_bandwidth,
    check_iteration,
    data_point_law,
    expected_density,
    expected_density_variance,
    harmonic_number,
    lineage_law,
    lineage_law_symbolic,
    lineage_law_table,
    lineage_mean_symbolic,
    lineage_pgf_symbolic,
    lineage_variance_symbolic,
    stirling_first_unsigned,
)
from collapse.analysis.kde_pairs import (
    PairLawTable,
    check_n,
    pair_law,
    pair_law_symbolic,
    pair_law_table,
)
from collapse.analysis.truths import GaussianMixture, gaussian_truth
from collapse.analysis.checks import check_workflow
from collapse.analysis.vocabulary import ACCUMULATE, KDE, MISE, TEST_NLL


def training_set_size(workflow: str, n: int, t: int) -> int:
    """``|D_t|``: ``t n`` under accumulate, ``n`` otherwise."""
    check_workflow(workflow)
    return t * n if workflow == ACCUMULATE else n


def truth_overlap(truth: GaussianMixture, extra_variance) -> np.ndarray:
    """``Omega(v) = int p0(x) (p0 * phi_{sqrt v})(x) dx`` for each ``v`` in ``extra_variance``.

    ``= sum_{c,c'} w_c w_c' (2 pi V)^(-d/2) exp(-|m_c - m_c'|^2 / (2 V))``,
    ``V = s_c^2 + s_c'^2 + v`` (``v`` in squared data units, ``>= 0``); ``Omega(0) = int p0^2``.
    """
    w, m, s = truth.arrays()
    v = np.atleast_1d(np.asarray(extra_variance, dtype=float))
    d = truth.dim
    dist2 = ((m[:, None, :] - m[None, :, :]) ** 2).sum(axis=-1)
    var = (s[:, None] ** 2 + s[None, :] ** 2)[:, :, None] + v[None, None, :]
    terms = (w[:, None] * w[None, :])[:, :, None] * (2 * np.pi * var) ** (-d / 2) \
        * np.exp(-dist2[:, :, None] / (2 * var))
    return terms.sum(axis=(0, 1))


@dataclass(frozen=True)
class MiseTerms:
    """The three parts of the expected MISE per iteration (arrays over ``t = 1..T``).

    ``mise = square - 2 cross + truth_square``, where ``square = E int p_hat_t^2``,
    ``cross = E int p_hat_t p0`` and ``truth_square = int p0^2``; units ``length^-d``.
    """

    square: np.ndarray
    cross: np.ndarray
    truth_square: float

    @property
    def mise(self) -> np.ndarray:
        return self.square - 2.0 * self.cross + self.truth_square


def expected_mise_terms(workflow: str, *, n: int, bandwidth: float, iterations: int,
                        truth: GaussianMixture) -> MiseTerms:
    """The parts of :func:`expected_mise` (see the module docstring for the formulas)."""
    check_workflow(workflow)
    n = check_n(n)
    h = check_bandwidth(bandwidth)
    T = check_iteration(iterations, "iterations")
    d = truth.dim
    pairs = pair_law_table(workflow, n, T)
    steps = np.arange(pairs.coalesced.shape[1])
    coalesced_overlap = (2 * np.pi * (steps + 2) * h * h) ** (-d / 2)
    distinct_overlap = truth_overlap(truth, (steps + 2) * h * h)
    pair_mean = pairs.coalesced @ coalesced_overlap + pairs.distinct @ distinct_overlap
    sizes = np.array([training_set_size(workflow, n, t) for t in range(1, T + 1)], dtype=float)
    square = (4 * np.pi * h * h) ** (-d / 2) / sizes + (1 - 1 / sizes) * pair_mean
    point = lineage_law_table(workflow, T, data_point=True)
    cross = point @ truth_overlap(truth, (np.arange(point.shape[1]) + 1) * h * h)
    return MiseTerms(square, cross, float(truth_overlap(truth, 0.0)[0]))


def expected_mise(workflow: str, *, n: int, bandwidth: float, iterations: int,
                  truth: GaussianMixture) -> list[float]:
    """Exact ``E int (p_hat_t - p0)^2 dx`` for ``t = 1..iterations`` (units ``length^-d``).

    ``= (1/N)(4 pi h^2)^(-d/2) + (1 - 1/N) sum_S [P(coal, S) (2 pi (S+2) h^2)^(-d/2)
    + P(not coal, S) Omega((S+2) h^2)] - 2 sum_k P(K_D = k) Omega((k+1) h^2) + Omega(0)``,
    ``N = |D_t|``, ``Omega`` = :func:`truth_overlap`; the pair law from
    :func:`collapse.analysis.kde_pairs.pair_law_table` (float64 dynamic programme).
    """
    return [float(x) for x in expected_mise_terms(
        workflow, n=n, bandwidth=bandwidth, iterations=iterations, truth=truth).mise]


def replace_stationary_square(*, n: int, bandwidth: float, dim: int) -> float:
    """``lim_t E int p_hat_t^2`` under replace (units ``length^-d``).

    Under replace a distinct pair of ``D_t`` coalesces ``j`` generations back with
    probability ``(1/n)(1-1/n)^(j-1)`` (then ``S = 2j``), and with probability
    ``(1-1/n)^(t-1) -> 0`` not at all, so the pair law converges to the coalesced
    geometric law and
    ``E int p_hat_inf^2 = (4 pi h^2)^(-d/2) [1/n + (1-1/n)(1/n) sum_{j>=1} (1-1/n)^(j-1) (j+1)^(-d/2)]``
    (the kernel-sum of a cluster of coalesced points; the series is summed until its
    geometric tail is below 1e-17 of the total).
    """
    n = check_n(n)
    h = check_bandwidth(bandwidth)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1 (got {dim!r})")
    q = 1.0 - 1.0 / n
    j = np.arange(1, int(45 * n) + 2)  # q^(45 n) < e^-45 ~ 3e-20
    series = float(np.sum(q ** (j - 1.0) * (j + 1.0) ** (-dim / 2)))
    return (4 * np.pi * h * h) ** (-dim / 2) * (1 / n + q * series / n)


def replace_mise_limit(*, n: int, bandwidth: float, truth: GaussianMixture) -> float:
    """``lim_t E int (p_hat_t - p0)^2`` under replace: ``int p0^2 + lim E int p_hat_t^2``.

    The cross term ``E int p_hat_t p0 = Omega(t h^2)`` tends to zero like
    ``(t h^2)^(-d/2)``: the collapsed model is a tight cluster (finite ``E int p_hat^2``)
    that has wandered off the truth, worse than the zero function (whose ISE is
    ``int p0^2``).
    """
    square = replace_stationary_square(n=n, bandwidth=bandwidth, dim=truth.dim)
    return float(truth_overlap(truth, 0.0)[0]) + square


# ---------------------------------------------------------------------------
# sympy form for the Gaussian truth (for the docs)

#: Symbols of :func:`symbolic_mise`: points per batch, bandwidth, truth standard deviation.
N_SYMBOL, H_SYMBOL, SIGMA0_SYMBOL = sympy.symbols("n h sigma0", positive=True)


def symbolic_mise(workflow: str, t: int, dim: int = 1) -> sympy.Expr:
    """Exact ``E int (p_hat_t - p0)^2`` for the truth ``N(0, sigma0^2 I_dim)`` in sympy.

    A function of the symbols ``n``, ``h``, ``sigma0`` (:data:`N_SYMBOL`,
    :data:`H_SYMBOL`, :data:`SIGMA0_SYMBOL`), built from the pair law with ``n``
    symbolic (:func:`collapse.analysis.kde_pairs.pair_law_symbolic`) and the data-point law;
    with ``G(v) = (2 pi v)^(-dim/2)`` (a Gaussian overlap at zero separation):
    ``(1/N) G(2h^2) + (1-1/N) E[coal G(S h^2 + 2h^2) + (1-coal) G(2 sigma0^2 + (S+2) h^2)]
    - 2 E G(2 sigma0^2 + (K_D+1) h^2) + G(2 sigma0^2)``.  Meant for small ``t``
    (``<= 3``): the number of terms grows like ``t^2``.
    """
    check_workflow(workflow)
    t = check_iteration(t)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1 (got {dim!r})")
    n, h, s0 = N_SYMBOL, H_SYMBOL, SIGMA0_SYMBOL

    def overlap(variance: sympy.Expr) -> sympy.Expr:
        return (2 * sympy.pi * variance) ** sympy.Rational(-dim, 2)

    size = t * n if workflow == ACCUMULATE else n
    # Coefficient of each overlap G(variance), kept apart so each can be factored.
    coefficients: dict[sympy.Expr, sympy.Expr] = {}

    def add(variance: sympy.Expr, coefficient: sympy.Expr) -> None:
        coefficients[variance] = coefficients.get(variance, sympy.Integer(0)) + coefficient

    add(2 * h**2, 1 / size)
    for (coalesced, steps), p in pair_law_symbolic(workflow, t, n).items():
        add((steps + 2) * h**2 + (0 if coalesced else 2 * s0**2), (1 - 1 / size) * p)
    for k, p in data_point_law(workflow, t).items():
        add(2 * s0**2 + (k + 1) * h**2, -2 * sympy.Rational(p.numerator, p.denominator))
    add(2 * s0**2, sympy.Integer(1))
    return sympy.Add(*(sympy.factor(sympy.cancel(c)) * (2 * sympy.pi * v) ** sympy.Rational(-dim, 2)
                       for v, c in coefficients.items()))


# ---------------------------------------------------------------------------
# theory adapter for the command line


@dataclass(frozen=True)
class KDETheory:
    """Exact expectations of one KDE workflow, per iteration ``t = 1..iterations``.

    ``values[metric][t-1]``; only :data:`collapse.analysis.vocabulary.MISE` has exact theory
    (``test_nll`` is Monte Carlo only, so it is absent).
    """

    workflow: str
    n: int
    bandwidth: float
    truth_name: str
    dim: int
    iterations: int
    values: dict[str, tuple[float, ...]]
    notes: tuple[str, ...]


def kde_theory(workflow: str, *, n: int, bandwidth: float, iterations: int,
               truth: GaussianMixture) -> KDETheory:
    """:func:`expected_mise` packaged for ``collapse theory kde``."""
    check_workflow(workflow)
    values = {MISE: tuple(expected_mise(workflow, n=n, bandwidth=bandwidth,
                                        iterations=iterations, truth=truth))}
    blur = expected_density_variance(workflow, iterations, bandwidth)
    notes = (
        f"{KDE} {MISE}: exact E int (p_hat_t - p0)^2 dx from Gaussian overlaps and the exact "
        f"pair/lineage laws of the genealogy (float64 dynamic programme)",
        f"{TEST_NLL} has no closed form: Monte Carlo only",
        f"expected model density = truth blurred by variance E K h^2 = {blur.blur_variance:.6g} "
        f"at t={iterations} ({blur.asymptotic})",
    )
    return KDETheory(workflow, int(n), float(bandwidth), truth.name, truth.dim, int(iterations),
                     values, notes)


__all__ = [
    "EULER_GAMMA", "DensityBlur", "KDETheory", "MiseTerms", "PairLawTable", "N_SYMBOL",
    "H_SYMBOL", "SIGMA0_SYMBOL", "data_point_law", "expected_density",
    "expected_density_variance", "expected_mise", "expected_mise_terms", "gaussian_truth",
    "harmonic_number", "kde_theory", "lineage_law", "lineage_law_symbolic", "lineage_law_table",
    "lineage_mean_symbolic", "lineage_pgf_symbolic", "lineage_variance_symbolic", "pair_law",
    "pair_law_symbolic", "pair_law_table", "replace_mise_limit", "replace_stationary_square",
    "stirling_first_unsigned", "symbolic_mise",
    "training_set_size", "truth_overlap",
]
