"""Batched dense linear algebra on stacks of small matrices, shape ``(R, k, k)``.

Helpers of :mod:`collapse.simulate.gaussian`.  Every function works slice by slice (one
replicate per leading index) with whole-stack numpy operations, and the result for
one slice never depends on the other slices, so the Monte Carlo engines give
bit-for-bit identical replicates whatever the chunk of replicates they run in.

numpy has a batched Cholesky factorisation but no batched triangular solve; the
test NLL of a Gaussian model needs ``tr(Sigma^{-1})`` and ``mu^T Sigma^{-1} mu``,
which with ``Sigma = L L^T`` are ``||L^{-1}||_F^2`` and ``||L^{-1} mu||^2``, so
:func:`tri_inv` inverts stacks of lower-triangular matrices by blocked recursion
(the off-diagonal block of the inverse is ``-C^{-1} B A^{-1}`` for
``L = [[A, 0], [B, C]]``), with vectorised forward substitution on the leaves.
That costs ``O(k^3)`` batched BLAS work and ``O(k)`` Python steps, against the
``O(k^3)`` LU of ``np.linalg.inv`` which is several times slower here.
"""

from __future__ import annotations

import numpy as np

#: Leaves of the recursion in :func:`tri_inv` are at most this wide.
_LEAF = 16


def _forward_substitution_inverse(lower: np.ndarray) -> np.ndarray:
    """Inverse of a stack of small lower-triangular matrices, row by row.

    Row ``i`` of ``X = L^{-1}`` solves ``sum_{j<=i} L_ij X_j = e_i``:
    ``X_i = (e_i - sum_{j<i} L_ij X_j) / L_ii``.
    """
    reps, k, _ = lower.shape
    inverse = np.zeros_like(lower)
    for i in range(k):
        if i:
            row = -np.einsum("rj,rjc->rc", lower[:, i, :i], inverse[:, :i, :])
        else:
            row = np.zeros((reps, k))
        row[:, i] += 1.0
        inverse[:, i, :] = row / lower[:, i, i, None]
    return inverse


def tri_inv(lower: np.ndarray) -> np.ndarray:
    """Inverse of every matrix of a stack ``(R, k, k)`` of lower-triangular matrices.

    A zero or non-finite diagonal gives non-finite entries and no warning: callers
    mark such replicates singular themselves.  Only the lower triangle of the input
    is read.
    """
    k = lower.shape[-1]
    with np.errstate(all="ignore"):
        if k <= _LEAF:
            return _forward_substitution_inverse(lower)
        h = k // 2
        first = tri_inv(lower[:, :h, :h])
        last = tri_inv(lower[:, h:, h:])
        inverse = np.zeros_like(lower)
        inverse[:, :h, :h] = first
        inverse[:, h:, h:] = last
        inverse[:, h:, :h] = -np.matmul(last, np.matmul(lower[:, h:, :h], first))
        return inverse


def psd_factor(sym: np.ndarray) -> np.ndarray:
    """A square root ``A`` with ``A A^T = sym`` for symmetric PSD matrices ``(R, k, k)``.

    By eigendecomposition ``sym = V diag(lam) V^T``, ``A = V diag(sqrt(max(lam, 0)))``:
    eigenvalues that rounding made slightly negative are clipped to zero.  Used
    only where a Cholesky factorisation fails.
    """
    eigenvalues, vectors = np.linalg.eigh(sym)
    return vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))[:, None, :]


def safe_cholesky(sym: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Cholesky factors of a stack of symmetric matrices, with a per-slice fallback.

    Returns ``(factor, failed)``: ``factor[r] @ factor[r].T == sym[r]`` for every
    slice; ``factor[r]`` is the lower Cholesky factor where that exists, else the
    eigenvalue square root of :func:`psd_factor` (not triangular), and ``failed``
    is ``None`` when every slice factorised or a boolean mask of the slices that
    did not (numerically singular: not positive definite to working precision).
    numpy's batched Cholesky fails for the whole stack if one slice fails, so the
    failing slices are isolated by bisection: ``O(f log R)`` extra calls for ``f``
    failures, and every slice that factorises gets exactly the factor it would get
    on its own.
    """
    try:
        return np.linalg.cholesky(sym), None
    except np.linalg.LinAlgError:
        pass
    factor = np.empty_like(sym)
    failed = np.zeros(sym.shape[0], dtype=bool)

    def bisect(lo: int, hi: int) -> None:
        try:
            factor[lo:hi] = np.linalg.cholesky(sym[lo:hi])
            return
        except np.linalg.LinAlgError:
            if hi - lo == 1:
                factor[lo:hi] = psd_factor(sym[lo:hi])
                failed[lo] = True
                return
        mid = (lo + hi) // 2
        bisect(lo, mid)
        bisect(mid, hi)

    bisect(0, sym.shape[0])
    return factor, failed
