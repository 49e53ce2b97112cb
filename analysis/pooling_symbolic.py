"""Closed forms (sympy) of the pooled second-moment recursion for whole-batch rules.

:mod:`collapse.analysis.pooling` tracks ``D_t = E||delta_t||^2`` through the Gram matrix of
the batches a rule keeps.  For whole batches and ``synthetic=latest`` or
``synthetic=all`` the Gram matrix collapses to one scalar, so ``D_t`` solves a
first-order linear recursion.  With real-batch second moment ``rho`` and sampling noise
``v(D) = alpha + beta D`` (regression: ``alpha = rho``, ``beta = 0``; discrete, per unit
``H0``: ``rho = alpha = 1/n``, ``beta = -1/n``), the derivations are:

``real=none,synthetic=latest`` (replace)
    ``delta_{t+1} = delta_t + eps_t``: ``D_{t+1} = (1 + beta) D_t + alpha``.
``real=fresh,synthetic=latest``
    ``delta_{t+1} = (f_{t+1} + delta_t + eps_t)/2`` with an independent fresh batch:
    ``D_{t+1} = (rho + alpha + (1 + beta) D_t)/4``.
``real=original,synthetic=latest``
    ``delta_{t+1} = (e0 + delta_t + eps_t)/2``; ``C_t = E<delta_t, e0>`` obeys
    ``C_{t+1} = (rho + C_t)/2`` from ``C_1 = rho``, so ``C_t = rho`` and
    ``D_{t+1} = (3 rho + alpha + (1 + beta) D_t)/4``.
``real=original,synthetic=all`` (accumulate)
    the pool sum ``M_t = t delta_t`` gains ``b_t = delta_t + eps_t``:
    ``delta_{t+1} = delta_t + eps_t/(t+1)``, ``D_{t+1} = D_t + (alpha + beta D_t)/(t+1)^2``.
``real=none,synthetic=all``
    ``U_t = (t-1) delta_t`` for ``t >= 2`` and ``b_1 = e0 + eps_1``:
    ``delta_{t+1} = delta_t + eps_t/t``, ``D_{t+1} = D_t + (alpha + beta D_t)/t^2`` (``t >= 1``).
``real=fresh,synthetic=all``
    ``delta_t = (f_t + U_t)/t``; ``x_t = E||U_t||^2`` obeys
    ``x_{t+1} = [(1 + 1/t)^2 + beta/t^2] x_t + (1 + beta) rho/t^2 + alpha`` from
    ``x_2 = (1 + beta) rho + alpha``, and ``D_t = (rho + x_t)/t^2``.

All start from ``D_1 = rho``.  :func:`solve_first_order` solves
``x_{t+1} = a(t) x_t + b(t)``: constant ``a`` by ``sympy.rsolve``; rational ``a`` by the
product ``P(t) = prod_{s=t0}^{t-1} a(s)`` in Gamma form and the sum of ``b(s)/P(s+1)``
(in partial fractions, as generalised harmonic numbers where it is rational).

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> pooled_closed_form(Workflow.parse("accumulate"), 1, 1, 0)
harmonic(t, 2)
>>> pooled_closed_form(Workflow.parse("replace"), 1, 1, 0)
t
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from collapse.analysis.errors import CollapseError
from collapse.analysis.gaussian_symbolic import gamma_product, t
from collapse.analysis.workflows import Workflow

__all__ = [
    "Recurrence",
    "first_order_recurrence",
    "harmonic_sum",
    "has_closed_form",
    "pooled_closed_form",
    "pooled_limit",
    "solve_first_order",
    "t",
]

_s = sp.Symbol("s", positive=True, integer=True)


@dataclass(frozen=True)
class Recurrence:
    """``x_{t+1} = a(t) x_t + b(t)`` for ``t >= t0`` from ``x_{t0} = x0``; ``D_t = second(x_t, t)``
    for ``t >= t0`` and ``D_1 = rho``."""

    t0: int
    x0: sp.Expr
    a: sp.Expr
    b: sp.Expr
    rho: sp.Expr
    via_pool_sum: bool  # x is E||U_t||^2 (fresh, all) rather than D_t itself

    def second(self, x: sp.Expr, time: Any = t) -> sp.Expr:
        return (self.rho + x) / time ** 2 if self.via_pool_sum else x


def has_closed_form(workflow: Workflow) -> bool:
    """Whole batches with ``synthetic=latest`` or ``synthetic=all``."""
    return workflow.size is None and workflow.window in (None, 1)


def first_order_recurrence(workflow: Workflow, rho: Any, alpha: Any, beta: Any) -> Recurrence:
    """The scalar recursion of ``workflow`` (see the module docstring)."""
    if not has_closed_form(workflow):
        raise CollapseError(f"workflow {workflow.label}: closed forms exist for whole batches "
                            f"with synthetic=latest or synthetic=all only; its exact values "
                            f"come from the Gram-matrix recursion")
    rho, alpha, beta = (sp.sympify(v) for v in (rho, alpha, beta))
    real, latest = workflow.real, workflow.window == 1
    if latest:
        extra = {"none": 0, "fresh": rho + alpha, "original": 3 * rho + alpha}[real]
        scale = 1 if real == "none" else sp.Rational(1, 4)
        return Recurrence(1, rho, scale * (1 + beta), scale * (alpha if real == "none" else extra),
                          rho, False)
    if real == "original":
        return Recurrence(1, rho, 1 + beta / (t + 1) ** 2, alpha / (t + 1) ** 2, rho, False)
    if real == "none":
        return Recurrence(1, rho, 1 + beta / t ** 2, alpha / t ** 2, rho, False)
    return Recurrence(2, (1 + beta) * rho + alpha, (1 + 1 / t) ** 2 + beta / t ** 2,
                      (1 + beta) * rho / t ** 2 + alpha, rho, True)


def harmonic_sum(summand: sp.Expr, var: sp.Symbol, lower: int, upper: sp.Expr) -> sp.Expr:
    """``sum_{var=lower}^{upper} summand`` for ``summand`` rational in ``var`` and
    ``upper = t + c`` (``c`` an integer), as generalised harmonic numbers ``H(t, k)``.

    Each partial fraction ``c (var + a)^(-k)`` (integer ``a``) sums to
    ``c [H(upper + a, k) - H(lower + a - 1, k)]``, and ``H(t + c', k)`` is written as
    ``H(t, k)`` plus or minus its finitely many boundary terms; a polynomial part must
    vanish.  Raises :class:`ArithmeticError` otherwise.
    """
    shift = sp.simplify(upper - t)
    if not shift.is_integer:
        raise ArithmeticError("the upper limit must be t plus an integer")
    total = sp.Integer(0)
    for term in sp.Add.make_args(sp.apart(sp.cancel(summand), var)):
        if term.is_polynomial(var):
            total += sp.summation(term, (var, lower, upper))
            continue
        coeff, rest = term.as_independent(var)
        base, power = rest.as_base_exp()
        k = -power
        offset = sp.simplify(base - var)
        if not (k.is_integer and k >= 1 and offset.is_integer):
            raise ArithmeticError(f"cannot sum {term} in closed form")
        top = int(shift + offset)  # harmonic(t + top, k)
        value = sp.harmonic(t, k) - sp.harmonic(lower + offset - 1, k)
        if top > 0:
            value += sum(1 / (t + j) ** k for j in range(1, top + 1))
        else:
            value -= sum(1 / (t - j) ** k for j in range(-top))
        total += coeff * value
    return total


def solve_first_order(t0: int, x0: sp.Expr, a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """``x_t`` for ``t >= t0`` from ``x_{t+1} = a(t) x_t + b(t)``, ``x_{t0} = x0``.

    ``x_t = P(t) [x0 + sum_{s=t0}^{t-1} b(s)/P(s+1)]`` with ``P(t) = prod_{s=t0}^{t-1} a(s)``;
    when ``b = (1 - a) x*`` for a constant ``x*`` this is ``x* + (x0 - x*) P(t)``.
    """
    a, b = sp.sympify(a), sp.sympify(b)
    if a == 1:
        return sp.simplify(x0 + harmonic_sum(b.subs(t, _s), _s, t0, t - 1))
    if not a.has(t) and not b.has(t):
        f = sp.Function("f")
        c = sp.Symbol("c_placeholder", positive=True)
        solution = sp.rsolve(f(t + 1) - c * f(t) - b, f(t), {f(t0): x0})
        if solution is None:  # pragma: no cover - constant coefficients always solve
            raise ArithmeticError("rsolve found no solution")
        return sp.simplify(solution.subs(c, a))
    product = gamma_product(a.subs(t, _s), _s, t0, t - 1)
    fixed = sp.simplify(b / (1 - a))
    if not fixed.has(t):  # b = (1 - a) x*: x_t - x* solves the homogeneous recursion
        return sp.simplify(fixed + (x0 - fixed) * product)
    step = sp.gammasimp(b.subs(t, _s) / product.subs(t, _s + 1))
    if step.is_rational_function(_s):
        sum_part = harmonic_sum(step, _s, t0, t - 1)
        return sp.simplify(sp.gammasimp(product * (x0 + sum_part)))
    # not summable in closed form: keep the sum (``.doit()`` evaluates it at a given t)
    return product * (x0 + sp.Sum(step, (_s, t0, t - 1)))


def pooled_closed_form(workflow: Workflow, rho: Any, alpha: Any, beta: Any) -> sp.Expr:
    """``D_t`` in closed form for ``t >= 1`` (``t >= 2`` for ``real=fresh,synthetic=all``,
    whose ``D_1 = rho``); see the module docstring for the recursions."""
    rec = first_order_recurrence(workflow, rho, alpha, beta)
    x = solve_first_order(rec.t0, rec.x0, rec.a, rec.b)
    second = rec.second(x)
    return second if second.has(sp.Sum) else sp.simplify(second)


def pooled_limit(workflow: Workflow, rho: Any, alpha: Any, beta: Any) -> sp.Expr:
    """``lim_{t -> infinity} D_t`` (``sympy.oo`` where it diverges).

    With ``a = 1`` the closed form is a sum of harmonic numbers and ``sympy.limit`` gives
    ``H(t, 2) -> pi^2/6``; with
    ``b = (1 - a) x*`` the limit is ``x* + (x0 - x*) prod_{s >= t0} a(s)``, the infinite
    product in Gamma form (:func:`collapse.analysis.gaussian_symbolic.infinite_gamma_product`,
    which is how ``prod_s (1 - 1/(n s^2)) = sin(pi/sqrt n)/(pi/sqrt n)`` comes out); constant
    coefficients ``|a| < 1`` give the fixed point ``b/(1 - a)``, and ``a = 1`` a linear
    divergence.  Raises :class:`CollapseError`
    where none of these applies.
    """
    from collapse.analysis.gaussian_symbolic import infinite_gamma_product

    rec = first_order_recurrence(workflow, rho, alpha, beta)
    a, b = sp.sympify(rec.a), sp.sympify(rec.b)
    if not a.has(t) and not b.has(t):
        if a == 1:
            return rec.x0 if b == 0 else sp.oo * sp.sign(b)
        if sp.simplify(a - 1).is_negative and sp.simplify(a + 1).is_positive:
            return sp.simplify(b / (1 - a))  # a contraction: the fixed point
        raise CollapseError(f"workflow {workflow.label}: the recursion is not a contraction")
    if a == 1:  # a sum of generalised harmonic numbers: sympy's limit (pi^2/6 for H(t, 2))
        return sp.simplify(sp.limit(pooled_closed_form(workflow, rho, alpha, beta), t, sp.oo))
    fixed = sp.simplify(b / (1 - a))
    if not rec.via_pool_sum and not fixed.has(t):
        const, exponent = infinite_gamma_product(sp.cancel(a.subs(t, _s)), _s, rec.t0)
        if sp.simplify(exponent) != 0:
            raise CollapseError(f"workflow {workflow.label}: the product does not converge")
        return sp.simplify(fixed + (rec.x0 - fixed) * sp.gammasimp(const))
    form = pooled_closed_form(workflow, rho, alpha, beta)
    if not form.has(sp.Sum, sp.gamma):
        # harmonic numbers and rational functions only: sympy's limit is reliable there
        # (it is not for ratios of Gamma functions of t with symbolic shifts)
        return sp.simplify(sp.limit(form, t, sp.oo))
    raise CollapseError(f"workflow {workflow.label}: no closed-form limit is derived; "
                        f"the exact values come from the recursion")
