"""Symbolic (sympy) side of the regression theory: closed forms and limits of ``E test_mse_t``.

Symbols: ``n`` (rows), ``d`` (columns), ``t`` (model-fitting iteration), ``sigma2``
(label noise) and ``tau`` (``tr (X^T X)^{-1}`` of a given design).  With the error
ratio ``s_t`` of :mod:`collapse.analysis.regression` (``rho = alpha = 1``, ``beta = 0`` in
:mod:`collapse.analysis.pooling_symbolic`):

    E test_mse_t = sigma2 d/(n - d - 1) s_t        (averaged over designs, n >= d + 2)
    E[test_mse_t | X] = sigma2 tau s_t             (a full-rank design, tau = tr (X^T X)^{-1})

Examples
--------
>>> regression_formula("test_mse", "replace")
d*sigma2*t/(-d + n - 1)
>>> regression_limit("test_mse", "accumulate")
pi**2*d*sigma2/(6*(-d + n - 1))
"""

from __future__ import annotations

import sympy as sp

from collapse.analysis.checks import check_choice
from collapse.analysis.gaussian_symbolic import d, n, sigma2, t
from collapse.analysis.pooling import as_workflow
from collapse.analysis.pooling_symbolic import pooled_closed_form, pooled_limit
from collapse.analysis.vocabulary import REGRESSION_METRICS
from collapse.analysis.workflows import Workflow

__all__ = [
    "d",
    "error_ratio",
    "n",
    "regression_formula",
    "regression_limit",
    "sigma2",
    "t",
    "tau",
]

#: ``tr (X^T X)^{-1}`` of a given full-rank design.
tau = sp.Symbol("tau", positive=True)


def error_ratio(workflow: Workflow | str) -> sp.Expr:
    """``s_t`` in closed form (whole batches, ``synthetic=latest`` or ``all``)."""
    return pooled_closed_form(as_workflow(workflow), 1, 1, 0)


def _scale(given_design: bool) -> sp.Expr:
    return sigma2 * tau if given_design else sigma2 * d / (n - d - 1)


def regression_formula(metric: str, workflow: Workflow | str, *,
                       given_design: bool = False) -> sp.Expr:
    """``E test_mse_t`` in :data:`n`, :data:`d`, :data:`t`, :data:`sigma2` (or :data:`tau`).

    Raises :class:`collapse.analysis.errors.CollapseError` for rules without a closed
    form (subsamples: no exact theory; windows ``K >= 2``: exact values only).
    """
    check_choice("metric", metric, REGRESSION_METRICS)
    return _scale(given_design) * error_ratio(workflow)


def regression_limit(metric: str, workflow: Workflow | str, *,
                     given_design: bool = False) -> sp.Expr:
    """``lim_{t -> oo} E test_mse_t``: ``oo`` for replace, ``pi^2/6`` times the first error
    for accumulate (``sum 1/i^2``), ``2/3`` of it with fresh data."""
    check_choice("metric", metric, REGRESSION_METRICS)
    limit = pooled_limit(as_workflow(workflow), 1, 1, 0)
    return sp.oo if limit == sp.oo else _scale(given_design) * limit
