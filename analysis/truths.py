"""Ground-truth distributions with exact densities: isotropic Gaussian mixtures.

A truth is ``p0(x) = sum_k w_k N(x; m_k, s_k^2 I_d)``.  Every overlap integral the
KDE theory needs is closed-form for such a truth (``int phi_a(x-u) phi_b(x-v) dx =
phi_{sqrt(a^2+b^2)}(u-v)``), so exact expected MISE is available for the
``gaussian`` and ``blobs`` truths.  This module only *describes* truths; sampling
lives in :mod:`collapse.simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GaussianMixture:
    """Isotropic Gaussian mixture ``sum_k w_k N(m_k, s_k^2 I)``.

    Attributes
    ----------
    weights : tuple of float, shape (K,)
        Mixture weights, positive, summing to one.
    means : tuple of tuple of float, shape (K, d)
        Component means (data units).
    scales : tuple of float, shape (K,)
        Component standard deviations ``s_k`` (data units), positive.
    name : str
        Short name used on the command line and in tables.
    """

    weights: tuple[float, ...]
    means: tuple[tuple[float, ...], ...]
    scales: tuple[float, ...]
    name: str = "mixture"

    def __post_init__(self) -> None:
        k = len(self.weights)
        if k == 0 or len(self.means) != k or len(self.scales) != k:
            raise ValueError("weights, means and scales must have the same positive length")
        if any(w <= 0 for w in self.weights) or abs(sum(self.weights) - 1.0) > 1e-12:
            raise ValueError("weights must be positive and sum to 1")
        if any(s <= 0 for s in self.scales):
            raise ValueError("scales must be positive")
        if len({len(m) for m in self.means}) != 1 or len(self.means[0]) == 0:
            raise ValueError("all means must have the same positive dimension")

    @property
    def dim(self) -> int:
        return len(self.means[0])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(weights (K,), means (K, d), scales (K,))`` as float64 arrays."""
        return (
            np.asarray(self.weights, dtype=float),
            np.asarray(self.means, dtype=float),
            np.asarray(self.scales, dtype=float),
        )


def gaussian_truth(dim: int, sigma0: float = 1.0) -> GaussianMixture:
    """The standard truth ``N(0, sigma0^2 I_dim)`` as a one-component mixture."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1 (got {dim})")
    if not sigma0 > 0:
        raise ValueError(f"sigma0 must be > 0 (got {sigma0})")
    return GaussianMixture((1.0,), (tuple(0.0 for _ in range(dim)),), (float(sigma0),), "gaussian")


#: Fixed parameters of the ``blobs`` truth: three equally weighted 2-D unit-variance
#: blobs, like sklearn's ``make_blobs(n_features=2, centers=3)`` but with centres fixed
#: once here, so training and held-out points come from the same mixture (the paper's
#: code draws new random centres for its held-out set; see the docs).
BLOBS_CENTRES: tuple[tuple[float, float], ...] = ((-5.0, -3.0), (0.0, 5.0), (5.0, -2.0))
BLOBS_SCALE = 1.0


def blobs_truth() -> GaussianMixture:
    """The ``blobs`` truth: ``(1/3) sum_k N(c_k, I_2)`` with :data:`BLOBS_CENTRES`."""
    k = len(BLOBS_CENTRES)
    return GaussianMixture(
        tuple(1.0 / k for _ in range(k)), BLOBS_CENTRES, tuple(BLOBS_SCALE for _ in range(k)), "blobs"
    )
