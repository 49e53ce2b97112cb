"""Symbolic (sympy) side of the Gaussian theory: closed forms, products and limits.

Symbols: ``n`` (points per model, integer >= 2), ``d`` (dimension), ``t`` (iteration),
``sigma2`` (truth ``N(0, sigma2 I_d)``).  Ratios are per unit ``tr Sigma0``:
``a_t = E||mu_hat_t - mu0||^2 / tr Sigma0``, ``b_t = E tr Sigma_hat_t / tr Sigma0``.

Replace (derived here with ``sympy.rsolve`` from one-step Wishart facts)
--------------------------------------------------------------------------
Given model ``t``, ``nu Sigma_hat_{t+1} = A W A^T`` with ``A A^T = Sigma_hat_t``,
``W ~ Wishart_d(n-1, I)`` independent of the past, and ``nu = n`` (MLE) or ``n-1``.
Textbook Wishart moments (``m`` degrees of freedom): ``E W = m I``,
``E det W = m (m-1) ... (m-d+1)``, ``E log det W = sum_{i=1}^d psi((m-i+1)/2) + d log 2``,
``E W^{-1} = I / (m-d-1)``.  They give one-step recursions

* ``b_{t+1} = c b_t``, ``c = (n-1)/nu``; ``a_{t+1} = a_t + b_t / n`` (new mean = old mean
  plus noise of covariance ``Sigma_hat_t / n``);
* ``E det``-ratio: ``D_{t+1} = rho D_t``, ``rho = prod_{i=1}^d (n-i)/nu``;
* ``E log det``-ratio: ``L_{t+1} = L_t + sum_{i=1}^d [psi((n-i)/2) + log(2/nu)]``;
* ``E tr(Sigma_hat^{-1} Sigma0)``: ``I_{t+1} = r I_t``, ``r = nu/(n-d-2)``, ``I_0 = d``;
* ``q_t = E (mu_hat_t-mu0)^T Sigma_hat_t^{-1} (mu_hat_t-mu0)``: with ``v = A^{-1}(mu_hat_{t+1}
  - mu0) = A^{-1}(mu_hat_t - mu0) + z/sqrt(n)``, ``z ~ N(0, I)`` independent of ``W`` (sample
  mean and covariance of a Gaussian sample are independent), ``q_{t+1} = E v^T E[(W/nu)^{-1}] v
  = r (q_t + d/n)``, ``q_0 = 0``.

Accumulate and accumulate-subsample (products)
----------------------------------------------
With ``p_t = E tr P_t / tr Sigma0`` for the pool covariance ``P_t`` (divisor ``t n``), the
pooled-variance identity ``(t+1) P_{t+1} = t P_t + S_t + (t/(t+1)) (xbar_t - m_t)(...)^T``
and the conditional moments of :mod:`collapse.analysis.gaussian` close on ``p`` alone:

    p_{t+1} = R(t) p_t,   R(t) = [t + ((n-1)/n) g_t + (t/(t+1)) (h_t + g_t/n)] / (t+1),

from ``p_1 = (n-1)/n``, so ``b_t = g_t p_1 prod_{k=1}^{t-1} R(k)``, a ratio of Gamma
functions (``R`` is rational in ``k``).  The pool mean ``alpha_t = E||m_t - mu0||^2``
obeys ``alpha_{t+1} = alpha_t + (h_t + g_t/n) p_t / (t+1)^2``, ``alpha_1 = 1/n``, and
``a_t = alpha_t + h_t p_t``.  Limits follow from ``prod_{k>=k0} prod_i (k-alpha_i) /
prod_j (k-beta_j) = prod_j Gamma(k0-beta_j) / prod_i Gamma(k0-alpha_i)`` when the root sums
agree; infinite sums of such products are generalized hypergeometric series at ``z = 1``.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from collapse.analysis.gaussian import moment_ratio_recursion, pool_coefficients
from collapse.analysis.checks import check_workflow
from collapse.analysis.vocabulary import (
    COV_DET_RATIO,
    COV_TRACE_RATIO,
    COVARIANCE_ESTIMATORS,
    LOG_COV_DET_RATIO,
    MEAN_SQ_ERROR,
    MLE,
    REPLACE,
    TEST_NLL,
)

#: Points per model (integer >= 2).
n = sp.Symbol("n", positive=True, integer=True)
#: Dimension.
d = sp.Symbol("d", positive=True, integer=True)
#: Model-fitting iteration (``t = 0`` is the truth itself).
t = sp.Symbol("t", nonnegative=True, integer=True)
#: Truth variance per coordinate.
sigma2 = sp.Symbol("sigma2", positive=True)
_i = sp.Symbol("i", positive=True, integer=True)
_k = sp.Symbol("k", positive=True, integer=True)

#: Keys of :func:`replace_closed_forms` and :func:`limits` that are not CLI metric names.
MEAN_ERROR_RATIO = "mean_error_ratio"  #: ``E||mu_hat_t - mu0||^2 / tr Sigma0``
INV_COV_TRACE = "inv_cov_trace"  #: ``E tr(Sigma_hat_t^{-1} Sigma0)``
MAHALANOBIS_MEAN = "q"  #: ``q_t = E (mu_hat_t-mu0)^T Sigma_hat_t^{-1} (mu_hat_t-mu0)``


def _check_covariance(covariance: str) -> str:
    if covariance not in COVARIANCE_ESTIMATORS:
        raise ValueError(f"unknown covariance {covariance!r}; choose from "
                         f"{', '.join(COVARIANCE_ESTIMATORS)}")
    return covariance


# --------------------------------------------------------------------------- small t, symbolic n


def symbolic_moments(workflow: str, t: int, covariance: str = MLE) -> tuple[sp.Expr, sp.Expr]:
    """``(a_t, b_t)`` as rational functions of the symbol :data:`n` (factored).

    Runs the exact scalar recursion of :mod:`collapse.analysis.gaussian` over ``Q(n)``; cheap for
    ``t`` up to about 10.
    """
    check_workflow(workflow)
    _check_covariance(covariance)
    if int(t) < 1:
        raise ValueError(f"t must be an integer >= 1 (got {t})")
    a = b = None
    for a, b in moment_ratio_recursion(workflow, n, int(t), covariance, sp.Integer(1), sp.cancel):
        pass
    return sp.factor(a), sp.factor(b)


# --------------------------------------------------------------------------- Wishart facts


def wishart_moments(m: Any, dim: Any) -> dict[str, sp.Expr]:
    """Textbook moments of ``W ~ Wishart_dim(m, I)`` used by the replace derivation.

    ``trace``: ``E tr W / dim = m``; ``det``: ``E det W = prod_{i=1}^{dim} (m-i+1)``;
    ``log_det``: ``E log det W = sum_{i=1}^{dim} psi((m-i+1)/2) + dim log 2``;
    ``inverse``: ``E W^{-1} = I/(m - dim - 1)`` (scalar factor; needs ``m > dim + 1``).
    """
    return {
        "trace": sp.sympify(m),
        "det": sp.ff(m, dim),
        "log_det": sp.Sum(sp.digamma((m - _i + 1) / 2), (_i, 1, dim)) + dim * sp.log(2),
        "inverse": 1 / (m - dim - 1),
    }


def _divisor(covariance: str) -> sp.Expr:
    return n if covariance == MLE else n - 1


def _solve_linear(coefficient: sp.Expr, inhomogeneous: sp.Expr, initial: sp.Expr,
                  tidy: bool = False) -> sp.Expr:
    """Solve ``f(t+1) = coefficient f(t) + inhomogeneous(t)``, ``f(0) = initial``, by rsolve.

    A constant coefficient is replaced by a placeholder symbol during rsolve (sympy
    handles ``c**t`` with an opaque ``c`` more reliably) and substituted back.
    """
    f = sp.Function("f")
    coefficient = sp.sympify(coefficient)
    if coefficient.has(t):
        raise ValueError("only constant coefficients are needed here")
    c = sp.Integer(1) if coefficient == 1 else sp.Symbol("c_placeholder", positive=True)
    solution = sp.rsolve(f(t + 1) - c * f(t) - inhomogeneous.subs(coefficient, c), f(t),
                         {f(0): initial})
    if solution is None:  # pragma: no cover - rsolve handles every case used here
        raise ArithmeticError("rsolve found no solution")
    if tidy:
        # Simplify the prefactor while c is opaque, so c**t survives as one power.
        solution = sp.factor(sp.simplify(solution.subs(c, coefficient).subs(
            coefficient ** t, c ** t)))
        solution = sp.factor(sp.simplify(solution), c ** t)
    return solution.subs(c, coefficient)


def replace_closed_forms(covariance: str = MLE) -> dict[str, sp.Expr]:
    """Closed forms for replace in :data:`n`, :data:`d`, :data:`t` (and :data:`sigma2`).

    Keys: ``mean_error_ratio`` (``a_t``), ``cov_trace_ratio`` (``b_t``), ``cov_det_ratio``,
    ``log_cov_det_ratio`` (nats), ``inv_cov_trace`` (``E tr(Sigma_hat_t^{-1} Sigma0)``),
    ``q`` (``q_t``) and ``test_nll`` (nats per point, truth ``N(0, sigma2 I_d)``).  Each
    is solved with ``sympy.rsolve`` from the one-step recursion in the module docstring;
    MLE: ``a_t = 1 - ((n-1)/n)^t``, ``b_t = ((n-1)/n)^t``, ``q_t = d (r^t - 1)/(d+2)``;
    divisor ``m-1``: ``a_t = t/n``, ``b_t = 1``, ``q_t = d (n-1)(r^t-1)/(n (d+1))``,
    with ``r = nu/(n-d-2)``.  ``inv_cov_trace``, ``q`` and ``test_nll`` hold for
    ``n > d + 2`` (otherwise the expectations are infinite); ``log_cov_det_ratio``
    for ``n > d``.
    """
    _check_covariance(covariance)
    nu = _divisor(covariance)
    w = wishart_moments(n - 1, d)
    c = sp.cancel(w["trace"] / nu)
    b = _solve_linear(c, sp.Integer(0), sp.Integer(1))
    a = _solve_linear(sp.Integer(1), b / n, sp.Integer(0))
    rho = w["det"] / nu ** d
    det = _solve_linear(rho, sp.Integer(0), sp.Integer(1))
    drift = w["log_det"] - d * sp.log(nu)  # E log det(W/nu), per step
    log_det = _solve_linear(sp.Integer(1), drift, sp.Integer(0))
    r = nu * w["inverse"]
    inv = _solve_linear(r, sp.Integer(0), d)
    q = _solve_linear(r, r * d / n, sp.Integer(0), tidy=True)
    nll = (d * sp.log(2 * sp.pi) + d * sp.log(sigma2) + log_det + inv + q) / 2
    return {
        MEAN_ERROR_RATIO: sp.simplify(sp.powsimp(a, force=True)),
        COV_TRACE_RATIO: sp.powsimp(b, force=True),
        COV_DET_RATIO: det,
        LOG_COV_DET_RATIO: log_det,
        INV_COV_TRACE: inv,
        MAHALANOBIS_MEAN: q,
        TEST_NLL: nll,
    }


# --------------------------------------------------------------------------- known covariance


def accumulate_known_covariance_mean_error(t_value: Any = t) -> sp.Expr:
    """``E||m_t - mu0||^2 / tr Sigma0`` for accumulate when ``Sigma0`` is known (not fitted).

    Every model samples with covariance ``Sigma0``, so in the recursion of
    :mod:`collapse.analysis.gaussian` ``b_t = 1``, ``A_{t+1} = (1 + 1/t)^2 A_t + 1/n``, and
    ``alpha_t = A_t / t^2`` has increments ``1/(n (t+1)^2)``:
    ``alpha_t = (1/n) sum_{k=1}^t 1/k^2 -> pi^2/(6 n)``.  ``t_value`` may be an integer,
    the symbol :data:`t`, or ``sympy.oo`` (the limit).
    """
    big_a = sp.Symbol("A", positive=True)
    tt = sp.Symbol("tau", positive=True, integer=True)
    increment = sp.simplify(((1 + 1 / tt) ** 2 * big_a + 1 / n) / (tt + 1) ** 2 - big_a / tt ** 2)
    # alpha_1 = 1/n is the k = 1 term; the increment from tau = k-1 is the k-th term.
    term = sp.simplify(increment.subs(tt, _k - 1))
    if term.has(big_a):  # pragma: no cover - the algebra above cancels A
        raise ArithmeticError("increment depends on A")
    return sp.summation(term, (_k, 1, t_value))


# --------------------------------------------------------------------------- products


def pool_trace_ratio(workflow: str, covariance: str = MLE) -> sp.Expr:
    """``R(t) = p_{t+1} / p_t`` for the pool trace, as a factored rational function of ``t``."""
    g, h = pool_coefficients(workflow, n, t, covariance, sp.Integer(1))
    ratio = (t + (n - 1) / n * g + t / (t + 1) * (h + g / n)) / (t + 1)
    return sp.factor(sp.cancel(ratio), t)


def _linear_factors(poly_expr: sp.Expr, var: sp.Symbol) -> tuple[sp.Expr, list[sp.Expr]]:
    """``(leading coefficient, roots with multiplicity)`` of a polynomial in ``var``."""
    poly = sp.Poly(sp.expand(poly_expr), var)
    roots = sp.roots(poly)
    flat = [root for root, mult in roots.items() for _ in range(mult)]
    if len(flat) != poly.degree():
        raise ArithmeticError(f"could not split {poly_expr} into linear factors")
    return poly.LC(), flat


def _rational_parts(ratio: sp.Expr, var: sp.Symbol) -> tuple[sp.Expr, list[sp.Expr], list[sp.Expr]]:
    """``ratio = C prod (var - num_i) / prod (var - den_j)`` with common roots cancelled."""
    num, den = sp.fraction(sp.cancel(sp.together(ratio)))
    c_num, num_roots = _linear_factors(num, var)
    c_den, den_roots = _linear_factors(den, var)
    kept = []
    for root in num_roots:
        match = next((j for j, other in enumerate(den_roots)
                      if sp.simplify(root - other) == 0), None)
        if match is None:
            kept.append(root)
        else:
            den_roots.pop(match)
    return sp.simplify(c_num / c_den), kept, den_roots


def gamma_product(ratio: sp.Expr, var: sp.Symbol, lower: Any, upper: Any) -> sp.Expr:
    """``prod_{var=lower}^{upper} ratio`` as Gamma functions (``ratio`` rational in ``var``).

    ``prod_k (k - x) = Gamma(upper + 1 - x) / Gamma(lower - x)``; needs ``lower - x``
    off the non-positive integers for every root ``x``.
    """
    c, num_roots, den_roots = _rational_parts(ratio, var)
    out = c ** (upper - lower + 1)
    for x in num_roots:
        out *= sp.gamma(upper + 1 - x) / sp.gamma(lower - x)
    for x in den_roots:
        out *= sp.gamma(lower - x) / sp.gamma(upper + 1 - x)
    return out


def infinite_gamma_product(ratio: sp.Expr, var: sp.Symbol, lower: Any) -> tuple[sp.Expr, sp.Expr]:
    """``(C, beta)`` with ``prod_{var=lower}^{T} ratio ~ C T^beta`` as ``T -> infinity``.

    For ``ratio = prod (k - x_i) / prod (k - y_j)`` (leading coefficient 1, equal degrees),
    ``Gamma(T+1-x)/Gamma(T+1-y) ~ T^(y-x)`` gives ``beta = sum y_j - sum x_i`` and
    ``C = prod Gamma(lower - y_j) / prod Gamma(lower - x_i)``; ``beta = 0`` means the
    infinite product converges to ``C``.
    """
    c, num_roots, den_roots = _rational_parts(ratio, var)
    if sp.simplify(c - 1) != 0 or len(num_roots) != len(den_roots):
        raise ArithmeticError("the ratio does not tend to 1 like 1 + O(1/k)")
    beta = sp.simplify(sum(den_roots) - sum(num_roots))
    const = sp.Integer(1)
    for x in num_roots:
        const /= sp.gamma(lower - x)
    for y in den_roots:
        const *= sp.gamma(lower - y)
    return const, beta


def hypergeometric_tail(first_term: sp.Expr, term_ratio: sp.Expr, var: sp.Symbol,
                        lower: Any) -> sp.Expr:
    """``sum_{var >= lower} T(var)`` with ``T(lower) = first_term`` and rational ``T(k+1)/T(k)``.

    ``T(lower + m) = T(lower) C^m prod (lower - x_i)_m / prod (lower - y_j)_m``, i.e.
    ``T(lower) pFq([lower - x_i] + [1]; [lower - y_j]; C)`` (a 1 upstairs supplies ``m!``).
    """
    c, num_roots, den_roots = _rational_parts(term_ratio, var)
    upper_params = [sp.simplify(lower - x) for x in num_roots] + [sp.Integer(1)]
    lower_params = [sp.simplify(lower - y) for y in den_roots]
    for p in list(upper_params):  # cancel equal parameters (keeps the series identical)
        match = next((j for j, q in enumerate(lower_params) if sp.simplify(p - q) == 0), None)
        if match is not None:
            upper_params.remove(p)
            lower_params.pop(match)
    return first_term * sp.hyper(upper_params, lower_params, c)


def pool_trace(workflow: str, covariance: str = MLE, t_value: Any = t) -> sp.Expr:
    """``p_t = p_1 prod_{k=1}^{t-1} R(k)`` in Gamma form, ``p_1 = (n-1)/n``."""
    ratio = pool_trace_ratio(workflow, covariance)
    return (n - 1) / n * gamma_product(ratio.subs(t, _k), _k, 1, t_value - 1)


def trace_ratio_closed_form(workflow: str, covariance: str = MLE, t_value: Any = t) -> sp.Expr:
    """``b_t = E tr Sigma_hat_t / tr Sigma0`` in closed form (Gamma functions), ``t >= 1``."""
    check_workflow(workflow)
    _check_covariance(covariance)
    if workflow == REPLACE:
        return replace_closed_forms(covariance)[COV_TRACE_RATIO].subs(t, t_value)
    g, _ = pool_coefficients(workflow, n, t_value, covariance, sp.Integer(1))
    return g * pool_trace(workflow, covariance, t_value)


def mean_error_closed_form(workflow: str, covariance: str = MLE, t_value: Any = t) -> sp.Expr:
    """``a_t = E||mu_hat_t - mu0||^2 / tr Sigma0``, ``t >= 1``.

    MLE: ``a_t = 1 - b_t``, because the expected second moment of every training set
    about ``mu0`` equals ``tr Sigma0`` (each point's conditional second moment is the
    model's, ``||mu_hat - mu0||^2 + tr Sigma_hat``, and a MLE fit reproduces its training
    set's).  Divisor ``m-1``: ``a_t = alpha_t + h_t p_t`` with
    ``alpha_t = 1/n + sum_{k=1}^{t-1} (h_k + g_k/n) p_k / (k+1)^2``.
    """
    check_workflow(workflow)
    _check_covariance(covariance)
    if workflow == REPLACE:
        return replace_closed_forms(covariance)[MEAN_ERROR_RATIO].subs(t, t_value)
    if covariance == MLE:
        return 1 - trace_ratio_closed_form(workflow, covariance, t_value)
    g_k, h_k = pool_coefficients(workflow, n, _k, covariance, sp.Integer(1))
    alpha = 1 / n + sp.Sum((h_k + g_k / n) * pool_trace(workflow, covariance, _k) / (_k + 1) ** 2,
                           (_k, 1, t_value - 1))
    _, h_t = pool_coefficients(workflow, n, t_value, covariance, sp.Integer(1))
    return alpha + h_t * pool_trace(workflow, covariance, t_value)


# --------------------------------------------------------------------------- limits


def _replace_limits(covariance: str) -> dict[str, sp.Expr]:
    forms = replace_closed_forms(covariance)
    out = {}
    for key in (MEAN_ERROR_RATIO, COV_TRACE_RATIO):
        expr = _drop_decaying_powers(sp.powsimp(sp.expand(forms[key]), force=True))
        out[key] = sp.limit(expr, t, sp.oo)
    return out


def _drop_decaying_powers(expr: sp.Expr) -> sp.Expr:
    """Replace every ``c**t`` with ``0 <= c < 1`` (provable from the symbols' assumptions)
    by 0.  sympy's ``limit`` cannot decide the sign of ``log((n-1)/n)`` by itself."""
    def decays(e: sp.Expr) -> bool:
        return (e.is_Pow and e.exp == t and not e.base.has(t)
                and bool(sp.cancel(e.base - 1).is_negative)
                and bool(sp.together(e.base).is_nonnegative))
    return expr.replace(decays, lambda e: sp.Integer(0))


def pool_trace_asymptotics(workflow: str, covariance: str = MLE) -> tuple[sp.Expr, sp.Expr]:
    """``(C, beta)`` with ``p_t ~ C t^beta``: ``beta = 0`` (converges) except for
    accumulate-subsample with divisor ``m-1``, where ``beta = 1/n`` (slow divergence)."""
    ratio = pool_trace_ratio(workflow, covariance).subs(t, _k)
    const, beta = infinite_gamma_product(ratio, _k, 1)
    # No simplify here: its Gamma argument shifts create removable singularities at n = 2.
    return (n - 1) / n * const, beta


def limits(workflow: str, covariance: str = MLE) -> dict[str, sp.Expr]:
    """``t -> infinity`` limits of ``a_t`` (``mean_error_ratio``) and ``b_t``
    (``cov_trace_ratio``) as expressions in :data:`n` (``sympy.oo`` when divergent).

    * replace: MLE ``a -> 1``, ``b -> 0``; divisor ``m-1``: ``a = t/n -> oo``, ``b = 1``.
    * accumulate: MLE ``b -> prod_{k>=1} (1 - 1/(n k^2)) = sqrt(n) sin(pi/sqrt(n))/pi``,
      ``a -> 1 - b`` (``~ pi^2/(6n)``); divisor ``m-1``: ``b -> Gamma(2-1/n) /
      (Gamma(2-r_+) Gamma(2-r_-))``, ``r_+- = (1 +- sqrt(1+4n))/(2n)``, and
      ``a -> (1/n) [1 + (1/4) 4F3(1, 2, 2-r_+, 2-r_-; 3, 3, 2-1/n; 1)]``.
    * accumulate-subsample: MLE ``b -> ((n-1)/n)^2 Gamma(1-1/n) / (Gamma(1-s_+)
      Gamma(1-s_-))``, ``s_+- = (-(2n-1) +- sqrt(3(4n-1)))/(2n)``, and ``a -> 1 - b``;
      divisor ``m-1``: ``b_t ~ p_t ~ C t^(1/n)`` with ``C = ((n-1)/n) Gamma(1-1/n) /
      (Gamma(2 - sqrt(3/n)) Gamma(2 + sqrt(3/n)))`` (:func:`pool_trace_asymptotics`), so
      both ``a`` and ``b`` diverge, slowly.
    """
    check_workflow(workflow)
    _check_covariance(covariance)
    if workflow == REPLACE:
        return _replace_limits(covariance)
    const, beta = pool_trace_asymptotics(workflow, covariance)
    if beta != 0:
        if not beta.is_positive:  # pragma: no cover - only 0 or 1/n occur
            raise ArithmeticError(f"unexpected growth exponent {beta}")
        return {MEAN_ERROR_RATIO: sp.oo, COV_TRACE_RATIO: sp.oo}
    g_inf = sp.limit(pool_coefficients(workflow, n, t, covariance, sp.Integer(1))[0], t, sp.oo)
    h_inf = sp.limit(pool_coefficients(workflow, n, t, covariance, sp.Integer(1))[1], t, sp.oo)
    b_inf = g_inf * const
    # gammasimp turns the accumulate-MLE product into sqrt(n) sin(pi/sqrt(n))/pi; elsewhere
    # its argument shifts introduce removable singularities (e.g. a 1/(n-2)), so keep those
    # in the unshifted Gamma form.
    reduced = sp.simplify(sp.gammasimp(b_inf))
    if not reduced.has(sp.gamma):
        b_inf = reduced
    if covariance == MLE:
        a_inf = 1 - b_inf
    else:
        a_inf = _pool_mean_limit(workflow, covariance) + h_inf * const
    return {MEAN_ERROR_RATIO: a_inf, COV_TRACE_RATIO: b_inf}


def _pool_mean_limit(workflow: str, covariance: str) -> sp.Expr:
    """``alpha_inf = 1/n + sum_{k>=1} u_k p_k``, ``u_k = (h_k + g_k/n)/(k+1)^2``, as a
    hypergeometric series (the term ratio ``u_{k+1} R(k) / u_k`` is rational in ``k``)."""
    g_k, h_k = pool_coefficients(workflow, n, _k, covariance, sp.Integer(1))
    u = (h_k + g_k / n) / (_k + 1) ** 2
    ratio = pool_trace_ratio(workflow, covariance).subs(t, _k)
    term_ratio = sp.cancel(u.subs(_k, _k + 1) * ratio / u)
    first = sp.simplify(u.subs(_k, 1) * (n - 1) / n)
    return 1 / n + hypergeometric_tail(first, term_ratio, _k, 1)


def limit_values(workflow: str, n_value: int, covariance: str = MLE,
                 digits: int = 30) -> dict[str, float]:
    """:func:`limits` evaluated at ``n = n_value`` (floats; ``inf`` where divergent)."""
    if int(n_value) < 2:
        raise ValueError(f"n must be an integer >= 2 (got {n_value})")
    out = {}
    for key, expr in limits(workflow, covariance).items():
        value = sp.sympify(expr).subs(n, int(n_value))
        out[key] = float("inf") if value == sp.oo else float(sp.N(value, digits))
    return out


# --------------------------------------------------------------------------- one entry point


def formula(metric: str, workflow: str, covariance: str = MLE) -> sp.Expr:
    """sympy expression of ``metric`` for ``workflow`` (symbols ``n, d, t, sigma2``).

    ``mean_sq_error`` is absolute (``d sigma2 a_t``); ``cov_trace_ratio`` for every
    workflow; ``cov_det_ratio``, ``log_cov_det_ratio`` and ``test_nll`` for replace only.
    Also accepts ``mean_error_ratio``, ``inv_cov_trace`` and ``q`` (replace).  Raises
    ``ValueError`` where no exact theory exists.
    """
    check_workflow(workflow)
    _check_covariance(covariance)
    if metric == MEAN_SQ_ERROR:
        return d * sigma2 * mean_error_closed_form(workflow, covariance)
    if metric == MEAN_ERROR_RATIO:
        return mean_error_closed_form(workflow, covariance)
    if metric == COV_TRACE_RATIO:
        return trace_ratio_closed_form(workflow, covariance)
    if workflow == REPLACE:
        forms = replace_closed_forms(covariance)
        if metric in forms:
            return forms[metric]
    raise ValueError(f"no exact formula for metric {metric!r} under workflow {workflow!r}")


__all__ = [
    "n", "d", "t", "sigma2",
    "MEAN_ERROR_RATIO", "INV_COV_TRACE", "MAHALANOBIS_MEAN",
    "symbolic_moments", "wishart_moments", "replace_closed_forms",
    "accumulate_known_covariance_mean_error", "pool_trace_ratio", "gamma_product",
    "infinite_gamma_product", "hypergeometric_tail", "pool_trace", "trace_ratio_closed_form",
    "mean_error_closed_form", "pool_trace_asymptotics", "limits", "limit_values", "formula",
]
