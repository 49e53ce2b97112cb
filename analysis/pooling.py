"""Exact second moments of an estimator that averages batch estimates (any workflow rule).

Both the regression setting (ordinary least squares on copies of one design) and the
discrete setting (empirical frequencies) fit model ``t`` by an estimator that is
*linear in the batches*: every batch ``b`` of ``D_t`` has its own estimate ``theta_b``
(the OLS fit of its labels, or its frequency vector) and the fit of a union of ``c``
whole batches of equal size is their average, ``theta_hat_t = (1/c) sum_b theta_b``.
Writing every estimate as a deviation from the truth ``theta0``,

* the real batch (batch 0) has deviation ``e0`` with ``E||e0||^2 = rho``; a fresh real
  batch drawn for model ``t`` has an independent deviation with the same second moment;
* the synthetic batch drawn from model ``j`` has deviation ``b_j = delta_j + eps_j``,
  where ``delta_j = theta_hat_j - theta0`` and the sampling noise ``eps_j`` has mean zero
  given the past and ``E||eps_j||^2 = v(E||delta_j||^2)``;
* a uniformly random ``m``-subset of a pool of ``N`` points whose own estimate has
  deviation ``pi`` adds noise ``eta`` with mean zero given the pool and
  ``E||eta||^2 = u(E||pi||^2, N, m)``.

The noises are martingale differences, orthogonal to everything before them, so the
second moments ``D_t = E||delta_t||^2`` obey an exact *linear* recursion through the
Gram matrix ``E<b_i, b_j>`` of the batches a rule keeps, ``E<b_j, e0>``, and
``E<b_t, b_j> = E<delta_t, b_j>``, ``E||b_t||^2 = D_t + v(D_t)``.  Model 1 is the real
batch: ``D_1 = rho``.  For model ``t >= 2`` with synthetic part ``Y = sum_{j in W_t} b_j``
(``k = |W_t|`` batches) and real part ``R`` (``e0``, a fresh batch, or none):

* whole batches: ``delta_t = (R + Y)/c``, ``c = k + [real]``;
* a simple random ``m``-subsample of the ``c n`` pool points:
  ``delta_t = (R + Y)/c + eta``;
* a stratified subsample of ``m_r`` real and ``m_s`` synthetic points:
  ``delta_t = (m_r (R + eta_r) + m_s (Y/k + eta_s))/m``.

:func:`pooled_moments` runs that recursion in any exact arithmetic (``Fraction``,
50-digit ``mpmath``, sympy).  The regression and discrete settings differ only in
``rho``, ``v`` and ``u``: regression has ``v = rho`` (label noise on the same design) and
no exact ``u`` (a subsample changes the design); the discrete setting has
``v(D) = (H0 - D)/n`` and ``u(P, N, m) = (H0 - P)(N - m)/(m (N - 1))`` with
``H0 = 1 - sum_i p0_i^2``.

Examples
--------
>>> from fractions import Fraction
>>> from collapse.analysis.workflows import Workflow
>>> one = Fraction(1)
>>> pooled_moments(Workflow.parse("replace"), 10, 3, real_variance=one,
...                noise_variance=lambda D: one)
[Fraction(1, 1), Fraction(2, 1), Fraction(3, 1)]
>>> pooled_moments(Workflow.parse("accumulate"), 10, 3, real_variance=one,
...                noise_variance=lambda D: one)
[Fraction(1, 1), Fraction(5, 4), Fraction(49, 36)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collapse.analysis.errors import CollapseError
from collapse.analysis.workflows import Workflow

__all__ = ["as_workflow", "keeps_whole_batches", "pooled_moments"]

NoiseVariance = Callable[[Any], Any]
SubsampleVariance = Callable[[Any, int, int], Any]


def as_workflow(workflow: Any, n: int | None = None) -> Workflow:
    """A :class:`Workflow` from a rule or its spec string, checked against ``n`` if given."""
    if isinstance(workflow, str):
        workflow = Workflow.parse(workflow)
    if not isinstance(workflow, Workflow):
        raise CollapseError(f"workflow must be a Workflow or a spec string (got {workflow!r})")
    return workflow if n is None else workflow.check(n)


def keeps_whole_batches(workflow: Workflow) -> bool:
    """Whether ``D_t`` is a union of whole batches (no subsample) for every ``t``."""
    return workflow.size is None


def _subsample(u: SubsampleVariance | None, second: Any, pool: int, m: int, zero: Any) -> Any:
    if m == 0 or m >= pool:  # nothing drawn, or the whole pool: no subsampling noise
        return zero
    if u is None:
        raise CollapseError("this rule subsamples its pool, which has no exact linear "
                            "second-moment theory in this setting")
    return u(second, pool, m)


def pooled_moments(workflow: Workflow, n: int, iterations: int, *, real_variance: Any,
                   noise_variance: NoiseVariance,
                   subsample_variance: SubsampleVariance | None = None,
                   normalize: Callable[[Any], Any] | None = None) -> list[Any]:
    """``D_t = E||theta_hat_t - theta0||^2`` for ``t = 1..iterations`` (see the module docstring).

    Parameters
    ----------
    workflow : Workflow
        The rule for ``D_t`` (any rule of :mod:`collapse.analysis.workflows`).
    n : int
        Points per batch (only subsample pool sizes depend on it).
    iterations : int
        Number of models.
    real_variance : number
        ``rho = E||e0||^2`` of a real batch's deviation; its type fixes the arithmetic.
    noise_variance : callable
        ``v(D)``: second moment of the sampling noise of a batch drawn from a model with
        ``E||delta||^2 = D``.
    subsample_variance : callable, optional
        ``u(P, N, m)``: second moment of the noise an ``m``-subset of a pool of ``N``
        points adds, for a pool deviation with second moment ``P``.  Needed only by
        rules with ``size``; :class:`CollapseError` if such a rule is given without it.
    normalize : callable, optional
        Applied to every new second moment (e.g. ``sympy.cancel``).

    Returns
    -------
    list
        ``[D_1, ..., D_iterations]`` in the arithmetic of ``real_variance``.
    """
    norm = normalize if normalize is not None else (lambda x: x)
    rho = real_variance
    zero = rho * 0
    one = zero + 1
    real = workflow.real
    counts = workflow.stratified_counts(n)
    m = workflow.subsample_size(n)
    window = workflow.window

    out = [rho]
    if iterations <= 1:
        return out[:iterations]
    # Batch 1, drawn from model 1 (delta_1 = e0).
    d1 = rho
    b_sq = norm(d1 + noise_variance(d1))
    b_e0 = rho
    # Synthetic part: yy = E||Y||^2, ye = E<Y, e0>; with a window, also per-batch rows.
    yy, ye = b_sq, b_e0
    order = [1]
    gram: dict[tuple[int, int], Any] = {(1, 1): b_sq}
    with_e0 = {1: b_e0}
    with_y = {1: b_sq}  # E<Y, b_j> for the batches j of the current window

    for t in range(2, iterations + 1):
        k = len(workflow.synthetic_batches(t))
        if real == "original":
            rr, ry, re0 = rho, ye, rho
            r_b = dict(with_e0)
        elif real == "fresh":
            rr, ry, re0 = rho, zero, zero
            r_b = {j: zero for j in order}
        else:
            rr = ry = re0 = zero
            r_b = {j: zero for j in order}
        has_real = real != "none"
        if counts is None:
            c = k + (1 if has_real else 0)
            pool_sq = norm((rr + 2 * ry + yy) / (c * c))
            d_t = norm(pool_sq + (zero if m is None else
                                  _subsample(subsample_variance, pool_sq, c * n, m, zero)))
            # E<delta, X> = E<(R + Y)/c, X>: the subsample noise is orthogonal to the past
            w_r = w_y = one / c
        else:
            m_r, m_s = counts
            total = m_r + m_s
            w_r = one * m_r / total
            w_y = one * m_s / (total * k)
            mean_sq = w_r * w_r * rr + 2 * w_r * w_y * ry + w_y * w_y * yy
            noise = (w_r * w_r * _subsample(subsample_variance, rr, n, m_r, zero)
                     + (one * m_s / total) ** 2
                     * _subsample(subsample_variance, yy / (k * k), k * n, m_s, zero))
            d_t = norm(mean_sq + noise)
        out.append(d_t)
        if t == iterations:
            break
        # The new batch b_t = delta_t + eps_t.
        new_sq = norm(d_t + noise_variance(d_t))
        new_e0 = norm(w_r * re0 + w_y * ye)
        new_y = norm(w_r * ry + w_y * yy)  # E<b_t, Y_t>
        if window is None:
            yy = norm(yy + 2 * new_y + new_sq)
            ye = norm(ye + new_e0)
            continue
        rows = {j: norm(w_r * r_b[j] + w_y * with_y[j]) for j in order}  # E<b_t, b_j>
        for j, value in rows.items():
            gram[t, j] = gram[j, t] = value
        gram[t, t] = new_sq
        with_e0[t] = new_e0
        order.append(t)
        # Y_{t+1} = Y_t + b_t - (the batches that leave the window)
        with_y = {j: norm(with_y[j] + rows[j]) for j in order[:-1]}
        with_y[t] = norm(new_y + new_sq)
        yy = norm(yy + 2 * new_y + new_sq)
        ye = norm(ye + new_e0)
        keep = set(workflow.synthetic_batches(t + 1))
        for old in [j for j in order if j not in keep]:
            yy = norm(yy - 2 * with_y[old] + gram[old, old])
            ye = norm(ye - with_e0[old])
            order.remove(old)
            for j in order:
                with_y[j] = norm(with_y[j] - gram[old, j])
            del with_y[old], with_e0[old]
            for j in order + [old]:
                gram.pop((old, j), None)
                gram.pop((j, old), None)
    return out
