"""Symbolic (sympy) side of the discrete theory: closed forms and limits of ``E H_t``.

``H = 1 - sum_i p_i^2`` (Gini-Simpson diversity).  Symbols: ``n`` (points per model),
``t`` (model-fitting iteration) and ``H0`` (the truth's diversity).  Per unit ``H0`` the
pooled recursion of :mod:`collapse.analysis.pooling_symbolic` has ``rho = alpha = 1/n``
and ``beta = -1/n`` (multinomial noise ``E||q - p||^2 = H(p)/n``), and
``E H_t = H0 (1 - D_t)``.  This gives

* replace: ``E H_t = H0 (1 - 1/n)^t`` (the Wright-Fisher loss of heterozygosity, one
  factor per sampling step, the first being the real sample);
* accumulate: ``E H_t = H0 prod_{s=1}^t (1 - 1/(n s^2)) = H0 Gamma(t+1-x) Gamma(t+1+x) /
  (Gamma(1-x) Gamma(1+x) Gamma(t+1)^2)`` with ``x = 1/sqrt(n)``, tending to
  ``H0 sin(pi x)/(pi x)`` by the reflection formula;
* fresh: ``E H_t -> H0 (3n - 1)/(3n + 1)``; ``real=original,synthetic=latest``:
  ``-> 3 H0 (n - 1)/(3n + 1)``; ``real=none,synthetic=all``: ``-> H0 (1 - 1/n) sin(pi x)/(pi x)``;
  ``real=fresh,synthetic=all`` keeps an unevaluated sum of Gamma ratios (no limit derived).

Examples
--------
>>> discrete_formula("gini_diversity", "replace")
H0*((n - 1)/n)**t
>>> discrete_limit("gini_diversity", "accumulate")
H0*sqrt(n)*sin(pi/sqrt(n))/pi
"""

from __future__ import annotations

import sympy as sp

from collapse.analysis.checks import check_choice
from collapse.analysis.gaussian_symbolic import n, t
from collapse.analysis.pooling import as_workflow
from collapse.analysis.pooling_symbolic import pooled_closed_form, pooled_limit
from collapse.analysis.vocabulary import GINI_DIVERSITY
from collapse.analysis.workflows import Workflow

__all__ = ["H0", "discrete_formula", "discrete_limit", "n", "t"]

#: Gini-Simpson diversity of the truth, ``1 - sum_i p0_i^2``.
H0 = sp.Symbol("H0", positive=True)


def discrete_formula(metric: str, workflow: Workflow | str) -> sp.Expr:
    """``E gini_diversity_t`` in :data:`n`, :data:`t`, :data:`H0` (whole batches with
    ``synthetic=latest`` or ``all``; :class:`CollapseError` otherwise)."""
    check_choice("metric", metric, (GINI_DIVERSITY,))
    second = pooled_closed_form(as_workflow(workflow), 1 / n, 1 / n, -1 / n)
    return H0 * (1 - second if second.has(sp.Sum) else sp.simplify(1 - second))


def discrete_limit(metric: str, workflow: Workflow | str) -> sp.Expr:
    """``lim_{t -> oo} E gini_diversity_t`` (the infinite product in Gamma form)."""
    check_choice("metric", metric, (GINI_DIVERSITY,))
    second = pooled_limit(as_workflow(workflow), 1 / n, 1 / n, -1 / n)
    return H0 * sp.simplify(1 - second)
