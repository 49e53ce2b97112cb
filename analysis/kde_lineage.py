"""Single lineages of iterated Gaussian-kernel density estimation (KDE).

Setting (DESIGN.md sections 1 and 3).  Model ``t`` is the Gaussian KDE with fixed
bandwidth ``h`` of its training set ``D_t``; sampling from it picks a uniform point
of ``D_t`` (the *parent*) and adds ``N(0, h^2 I_d)`` noise.  Write ``B_0`` for the
``n`` real points and ``B_t`` (``t >= 1``) for the ``n`` points drawn from model
``t``; the pool ``P_t = B_0 u ... u B_{t-1}`` has ``t n`` points.  Following parents
back, every point reaches one real point, its *root*, after ``K`` noise steps
(real points: ``K = 0``).  Given ``K`` and the root ``r``, the point is
``r + N(0, K h^2 I)`` with the noise independent of ``r``, because parent choices
never look at positions.

Law of ``K`` for a point *drawn from model t* (a point of ``B_t``):

* ``replace``: the parent is in ``B_{t-1}``, so ``K = t``.
* ``accumulate`` and ``accumulate-subsample``: the parent is a uniform point of the
  pool ``P_t`` (for ``accumulate-subsample`` it is uniform in a uniform ``n``-subset
  of the pool, hence again uniform in the pool), so its batch ``J`` is uniform on
  ``{0, ..., t-1}`` and ``K_t = 1 + K_J``.  Hence
  ``P_t(k) = (1/t) sum_{j<t} P_j(k-1) = ((t-1)/t) P_{t-1}(k) + (1/t) P_{t-1}(k-1)``,
  whose generating function is ``E z^K = z (z+1) ... (z+t-1) / t!`` (a rising
  factorial): ``P(K = k) = |s(t, k)| / t!`` with unsigned Stirling numbers of the
  first kind, and ``K`` is a sum of independent ``Bernoulli(1/i)``, ``i = 1..t``.
  So ``E K = H_t`` (harmonic number) and ``Var K = H_t - H_t^(2)``.

Law of ``K_D`` for a *uniform point of the training set* ``D_t`` (needed for the
cross term of the MISE): ``replace`` ``K_D = t - 1``; ``accumulate`` a uniform
point of the pool, whose batch is uniform on ``{0..t-1}``, so ``K_D = K_t - 1``
in law; ``accumulate-subsample`` the same, because the subsample is drawn
independently of the pool's contents.

The expected model density is the law of a point drawn from model ``t``:
``E p_hat_t = p0 * E_K phi_{h sqrt K}`` (``*`` = convolution), a Gaussian-mixture
blur of the truth whose covariance exceeds the truth's by ``E K h^2 I``:
``t h^2`` (replace, linear growth) versus ``H_t h^2 = h^2 (log t + gamma + 1/(2t)
+ O(t^-2))`` (the other two, logarithmic growth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy

from collapse.analysis.truths import GaussianMixture
from collapse.analysis.checks import check_int, check_workflow
from collapse.analysis.vocabulary import REPLACE

#: Euler-Mascheroni constant ``gamma = lim (H_t - log t)``.
EULER_GAMMA = 0.57721566490153286060651209


def check_iteration(t: int, name: str = "t") -> int:
    """Return ``t`` if it is an integer ``>= 1`` (a model-fitting iteration), else raise."""
    return check_int(name, t, 1)


_STIRLING_ROWS: list[tuple[int, ...]] = [(1,)]


def stirling_first_unsigned(t: int) -> tuple[int, ...]:
    """Row ``(|s(t,0)|, ..., |s(t,t)|)`` of unsigned Stirling numbers of the first kind.

    Recurrence ``|s(m+1,k)| = m |s(m,k)| + |s(m,k-1)|``, ``|s(0,0)| = 1`` (exact integers,
    rows cached): the coefficients of the rising factorial ``z (z+1) ... (z+t-1)``.
    """
    if t < 0:
        raise ValueError(f"t must be >= 0 (got {t})")
    while len(_STIRLING_ROWS) <= t:
        m, row = len(_STIRLING_ROWS) - 1, _STIRLING_ROWS[-1]
        _STIRLING_ROWS.append(tuple((m * row[k] if k <= m else 0) + (row[k - 1] if k >= 1 else 0)
                                    for k in range(m + 2)))
    return _STIRLING_ROWS[t]


def lineage_law(workflow: str, t: int) -> dict[int, Fraction]:
    """Exact law of ``K`` for a point drawn from model ``t``: ``{k: P(K = k)}``.

    ``K`` = number of kernel-noise steps from the point to its real ancestor.
    ``replace``: ``{t: 1}``.  ``accumulate``, ``accumulate-subsample``:
    ``P(K = k) = |s(t,k)| / t!`` for ``k = 1..t`` (unsigned Stirling numbers of the
    first kind), ``E K = H_t``.  See the module docstring for the derivation.
    """
    check_workflow(workflow)
    t = check_iteration(t)
    if workflow == REPLACE:
        return {t: Fraction(1)}
    row = stirling_first_unsigned(t)
    total = math.factorial(t)
    return {k: Fraction(row[k], total) for k in range(1, t + 1)}


def data_point_law(workflow: str, t: int) -> dict[int, Fraction]:
    """Exact law of ``K_D`` for a uniformly random point of the training set ``D_t``.

    ``replace``: ``K_D = t - 1``.  ``accumulate`` / ``accumulate-subsample``: the
    point's batch ``J`` is uniform on ``{0..t-1}`` and ``K_D = K_J`` (``K_0 = 0``),
    i.e. ``P(K_D = k) = (1/t) sum_{j<t} P_j(k)``, which equals ``|s(t, k+1)| / t!``
    (``K_D + 1`` has the law of :func:`lineage_law`).  Computed here from the batch
    mixture, not from that identity (the tests compare the two).
    """
    check_workflow(workflow)
    t = check_iteration(t)
    if workflow == REPLACE:
        return {t - 1: Fraction(1)}
    law: dict[int, Fraction] = {0: Fraction(1, t)}  # batch 0: real points
    for j in range(1, t):
        for k, p in lineage_law(workflow, j).items():
            law[k] = law.get(k, Fraction(0)) + p / t
    return dict(sorted(law.items()))


def lineage_law_table(workflow: str, iterations: int, *, data_point: bool = False) -> np.ndarray:
    """Float table ``L[t-1, k] = P(K = k)`` for ``t = 1..iterations``, ``k = 0..iterations``.

    ``data_point=False``: ``K`` of a point drawn from model ``t`` (:func:`lineage_law`);
    ``True``: ``K_D`` of a uniform point of ``D_t`` (:func:`data_point_law`), i.e. the
    same row shifted down by one step.  Computed in float64 by the batch recursion
    ``P_t(k) = ((t-1)/t) P_{t-1}(k) + (1/t) P_{t-1}(k-1)`` (convex combinations, so no
    cancellation; the tests compare it with the exact Fractions).
    """
    check_workflow(workflow)
    iterations = check_iteration(iterations, "iterations")
    table = np.zeros((iterations, iterations + 1))
    if workflow == REPLACE:
        table[np.arange(iterations), np.arange(1, iterations + 1)] = 1.0
    else:
        row = np.zeros(iterations + 1)
        row[0] = 1.0  # K_0 = 0 for real points
        for t in range(1, iterations + 1):
            row[1:] = ((t - 1) / t) * row[1:] + (1 / t) * row[:-1]
            row[0] = 0.0
            table[t - 1] = row
    if data_point:
        table[:, :-1] = table[:, 1:].copy()
        table[:, -1] = 0.0
    return table


# ---------------------------------------------------------------------------
# sympy forms (for the docs and for the tests' identities)


def lineage_pgf_symbolic(workflow: str, t, z: sympy.Symbol | None = None) -> sympy.Expr:
    """Probability generating function ``E z^K`` of :func:`lineage_law`.

    ``replace``: ``z^t``; otherwise the rising factorial ``z^(t) / t! =
    z (z+1) ... (z+t-1) / t!`` (``sympy.rf``).  ``t`` may be a sympy symbol.
    """
    check_workflow(workflow)
    z = sympy.Symbol("z") if z is None else z
    if workflow == REPLACE:
        return z**t
    return sympy.rf(z, t) / sympy.factorial(t)


def lineage_law_symbolic(workflow: str, t: int) -> dict[int, sympy.Expr]:
    """Law of ``K`` as sympy numbers: ``stirling(t, k, kind=1, signed=False) / t!``.

    ``replace`` gives ``{t: 1}``.  Uses sympy's own Stirling numbers, so it is an
    independent route to :func:`lineage_law`.
    """
    from sympy.functions.combinatorial.numbers import stirling

    check_workflow(workflow)
    t = check_iteration(t)
    if workflow == REPLACE:
        return {t: sympy.Integer(1)}
    return {k: stirling(t, k, kind=1, signed=False) / sympy.factorial(t) for k in range(1, t + 1)}


def lineage_mean_symbolic(workflow: str, t) -> sympy.Expr:
    """``E K`` for a point drawn from model ``t``: ``t`` (replace) or ``harmonic(t)``.

    ``t`` may be an integer or a sympy symbol.  Derivation: ``E K = d/dz E z^K at z=1``;
    for the rising factorial the log-derivative at 1 is ``sum_{i=1}^{t} 1/i = H_t``.
    """
    check_workflow(workflow)
    return sympy.sympify(t) if workflow == REPLACE else sympy.harmonic(t)


def lineage_variance_symbolic(workflow: str, t) -> sympy.Expr:
    """``Var K``: ``0`` (replace) or ``H_t - H_t^(2)`` (sum of Bernoulli(1/i) variances)."""
    check_workflow(workflow)
    if workflow == REPLACE:
        return sympy.Integer(0)
    return sympy.harmonic(t) - sympy.harmonic(t, 2)


# ---------------------------------------------------------------------------
# the expected model density: a Gaussian-mixture blur of the truth


@dataclass(frozen=True)
class DensityBlur:
    """Blur of the truth in the expected model density ``E p_hat_t = p0 * E_K phi_{h sqrt K}``.

    Attributes
    ----------
    workflow, t, bandwidth :
        The configuration (``bandwidth`` = ``h``, data units).
    mean_steps : Fraction
        ``E K`` exactly: ``t`` (replace) or ``H_t``.
    var_steps : Fraction
        ``Var K`` exactly: ``0`` (replace) or ``H_t - H_t^(2)``.
    blur_variance : float
        ``E K h^2``, squared data units: the per-coordinate variance that
        ``E p_hat_t`` adds to the truth's.
    asymptotic_blur_variance : float
        Leading large-``t`` form: ``t h^2`` (replace, exact) or
        ``h^2 (log t + gamma)`` (error ``h^2 (1/(2t) + O(t^-2))``).
    asymptotic : str
        That form in words.
    """

    workflow: str
    t: int
    bandwidth: float
    mean_steps: Fraction
    var_steps: Fraction
    blur_variance: float
    asymptotic_blur_variance: float
    asymptotic: str


def harmonic_number(t: int, order: int = 1) -> Fraction:
    """``H_t^(order) = sum_{i=1}^{t} i^-order`` exactly."""
    return sum((Fraction(1, i**order) for i in range(1, t + 1)), Fraction(0))


def check_bandwidth(bandwidth: float) -> float:
    """Return ``bandwidth`` as a float if it is finite and ``> 0``, else raise ValueError."""
    value = float(bandwidth)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"bandwidth must be a finite number > 0 (got {bandwidth!r})")
    return value


def expected_density_variance(workflow: str, t: int, bandwidth: float) -> DensityBlur:
    """Variance growth of the expected model density: ``E K h^2`` per coordinate.

    ``Cov(E p_hat_t) = Cov(p0) + E K h^2 I``, with ``E K h^2 = t h^2`` under
    replace (linear growth) and ``H_t h^2 ~ h^2 (log t + gamma)`` under accumulate
    and accumulate-subsample (logarithmic growth); ``H_t - log t - gamma =
    1/(2t) - 1/(12 t^2) + O(t^-4)``.
    """
    check_workflow(workflow)
    t = check_iteration(t)
    h = check_bandwidth(bandwidth)
    if workflow == REPLACE:
        mean, var = Fraction(t), Fraction(0)
        asym, words = t * h * h, "t h^2 (exact, linear in t)"
    else:
        mean = harmonic_number(t)
        var = mean - harmonic_number(t, 2)
        asym = h * h * (math.log(t) + EULER_GAMMA)
        words = "h^2 (log t + gamma), error h^2 (1/(2t) + O(t^-2)) (logarithmic in t)"
    return DensityBlur(workflow, t, h, mean, var, float(mean) * h * h, asym, words)


def expected_density(workflow: str, t: int, bandwidth: float,
                     truth: GaussianMixture) -> GaussianMixture:
    """``E p_hat_t`` as an isotropic Gaussian mixture.

    ``E p_hat_t(x) = sum_k P(K=k) sum_c w_c N(x; m_c, (s_c^2 + k h^2) I)``: the law of a
    point drawn from model ``t`` (its root from the truth, then ``K`` noise steps).
    """
    h = check_bandwidth(bandwidth)
    law = lineage_law(workflow, t)
    weights, means, scales = [], [], []
    for k, p in law.items():
        for w, m, s in zip(truth.weights, truth.means, truth.scales):
            weights.append(float(p) * w)
            means.append(tuple(m))
            scales.append(math.sqrt(s * s + k * h * h))
    total = sum(weights)
    # Rounding of many small products can leave |sum - 1| ~ 1e-15; renormalise.
    return GaussianMixture(tuple(w / total for w in weights), tuple(means), tuple(scales),
                           f"{truth.name}-blurred")


__all__ = [
    "EULER_GAMMA", "DensityBlur",
    "check_bandwidth", "check_iteration", "data_point_law", "expected_density", "expected_density_variance",
    "harmonic_number", "lineage_law", "lineage_law_symbolic", "lineage_law_table",
    "lineage_mean_symbolic", "lineage_pgf_symbolic", "lineage_variance_symbolic",
    "stirling_first_unsigned",
]
