"""Samplers for the ground truths of the KDE setting.

A *truth* is the distribution the real data come from.  Five are available
(:data:`TRUTHS`):

``gaussian``
    ``N(0, sigma0^2 I_dim)``; exact theory applies (:func:`collapse.analysis.truths.gaussian_truth`).
``blobs``
    ``(1/3) sum_k N(c_k, I_2)`` with the fixed centres of :func:`collapse.analysis.truths.blobs_truth`;
    exact theory applies.  Points are drawn i.i.d. from the mixture (component
    counts multinomial), which is what the exact theory assumes.  This departs
    from sklearn's ``make_blobs`` in two ways: sklearn draws random centres on
    every call (the paper's held-out points therefore come from other blobs
    than its training points), and it splits ``n`` into equal per-centre counts.
``moons``, ``circles``
    sklearn's ``make_moons`` / ``make_circles`` (``factor=0.8``) with
    ``noise=0.05``, 2-D, re-implemented from sklearn's definition: a *fixed design*
    of evenly spaced points on the arcs (not i.i.d. positions) plus i.i.d.
    ``N(0, 0.05^2 I_2)`` noise, shuffled.  With ``N`` points, ``N // 2`` lie on the
    outer arc at angles ``linspace(0, pi, N // 2)`` (moons: ``(cos a, sin a)``) or
    ``linspace(0, 2 pi, N // 2, endpoint=False)`` (circles: the unit circle), the
    other ``N - N // 2`` on the inner arc (moons: ``(1 - cos a, 1/2 - sin a)`` for
    ``a`` in ``linspace(0, pi, .)``; circles: ``0.8 (cos a, sin a)``).  No density
    in closed form, so Monte Carlo only (``mixture`` is ``None``).
``swiss-roll``
    sklearn's ``make_swiss_roll`` (``hole=False``) with ``noise=0.05``, 3-D:
    ``s = 1.5 pi (1 + 2 U)``, ``y = 21 V`` with ``U, V ~ Uniform(0, 1)`` i.i.d.,
    the point ``(s cos s, y, s sin s)`` plus ``N(0, 0.05^2 I_3)`` noise.

Because moons and circles are fixed designs, one *dataset* is the unit of
sampling: :meth:`Sampler.sample` with ``shape = (..., N)`` returns independent
datasets of ``N`` points each (the last axis of ``shape`` is the dataset size),
exactly as ``N`` points of one sklearn call.  For the i.i.d. truths the split is
immaterial.  Units: data units throughout (sklearn's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from collapse.analysis.checks import check_int
from collapse.analysis.errors import CollapseError
from collapse.analysis.truths import GaussianMixture, blobs_truth, gaussian_truth
from collapse.analysis.vocabulary import (
    BLOBS,
    CIRCLES,
    FIXED_DIMS,
    GAUSSIAN_TRUTH,
    MOONS,
    SWISS_ROLL,
    TRUTHS,
)

#: Standard deviation of the isotropic noise of the sklearn-style datasets (the paper's value).
SKLEARN_NOISE = 0.05
#: Inner/outer radius ratio of ``circles`` (sklearn's default ``factor``).
CIRCLES_FACTOR = 0.8


SampleFn = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


@dataclass(frozen=True)
class Sampler:
    """A truth that can be sampled.

    Attributes
    ----------
    name : str
        One of :data:`TRUTHS`.
    dim : int
        Dimension ``d`` of a point.
    mixture : GaussianMixture or None
        The exact density as an isotropic Gaussian mixture when it has one
        (``gaussian``, ``blobs``), else ``None`` (no exact MISE).
    """

    name: str
    dim: int
    mixture: GaussianMixture | None
    _draw: SampleFn

    def sample(self, rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
        """Independent datasets as a float64 array of shape ``(*shape, dim)``.

        The last entry of ``shape`` is the number of points of one dataset (one
        sklearn call for ``moons`` / ``circles``); leading entries index
        independent datasets.  All randomness comes from ``rng``.
        """
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if len(shape) == 0 or any(int(s) < 0 for s in shape):
            raise ValueError(f"shape must be a non-empty tuple of sizes >= 0 (got {shape})")
        return self._draw(rng, tuple(int(s) for s in shape))


def truth_dim(name: str) -> int | None:
    """The fixed dimension of truth ``name``, or ``None`` for ``gaussian`` (any ``dim``)."""
    _check_truth(name)
    return FIXED_DIMS.get(name)


def make_truth_sampler(name: str, *, dim: int = 2, sigma0: float = 1.0) -> Sampler:
    """The sampler of truth ``name`` (see the module docstring for the definitions).

    ``dim`` and ``sigma0`` parametrise ``gaussian`` only (``N(0, sigma0^2 I_dim)``);
    for a truth of fixed dimension ``dim`` must equal that dimension and
    ``sigma0`` must be left at 1.  Raises :class:`collapse.simulate.errors.CollapseError` (a
    ``ValueError``) naming the offending parameter.
    """
    _check_truth(name)
    dim = check_int("dim", dim, 1)
    sigma0 = _check_positive("sigma0", sigma0)
    if name == GAUSSIAN_TRUTH:
        return Sampler(name, dim, gaussian_truth(dim, sigma0), _mixture_draw(gaussian_truth(dim, sigma0)))
    fixed = FIXED_DIMS[name]
    if dim != fixed:
        raise CollapseError(f"dim must be {fixed} for truth {name!r} (got {dim})")
    if sigma0 != 1.0:
        raise CollapseError(f"sigma0 applies only to truth {GAUSSIAN_TRUTH!r} (got {sigma0} for {name!r})")
    if name == BLOBS:
        mixture = blobs_truth()
        return Sampler(name, fixed, mixture, _mixture_draw(mixture))
    draw = {MOONS: _moons, CIRCLES: _circles, SWISS_ROLL: _swiss_roll}[name]
    return Sampler(name, fixed, None, draw)


# --------------------------------------------------------------------------- draws


def sample_mixture(mixture: GaussianMixture, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """I.i.d. points of ``sum_k w_k N(m_k, s_k^2 I)``: component ``k ~ w``, then ``m_k + s_k Z``."""
    weights, means, scales = mixture.arrays()
    z = rng.standard_normal((*shape, mixture.dim))
    if len(weights) == 1:
        return means[0] + scales[0] * z
    k = rng.choice(len(weights), size=shape, p=weights)
    return means[k] + scales[k][..., None] * z


def _mixture_draw(mixture: GaussianMixture) -> SampleFn:
    return lambda rng, shape: sample_mixture(mixture, rng, shape)


def moons_design(n_points: int) -> np.ndarray:
    """The noise-free, unshuffled ``make_moons(n_points)`` design, shape ``(n_points, 2)``."""
    n_out = n_points // 2
    n_in = n_points - n_out
    a_out = np.linspace(0.0, np.pi, n_out)
    a_in = np.linspace(0.0, np.pi, n_in)
    outer = np.stack([np.cos(a_out), np.sin(a_out)], axis=-1)
    inner = np.stack([1.0 - np.cos(a_in), 1.0 - np.sin(a_in) - 0.5], axis=-1)
    return np.concatenate([outer, inner])


def circles_design(n_points: int, factor: float = CIRCLES_FACTOR) -> np.ndarray:
    """The noise-free, unshuffled ``make_circles(n_points, factor=factor)`` design, ``(n_points, 2)``."""
    n_out = n_points // 2
    n_in = n_points - n_out
    # endpoint=False so that the first and last points of a circle do not coincide
    a_out = np.linspace(0.0, 2.0 * np.pi, n_out, endpoint=False)
    a_in = np.linspace(0.0, 2.0 * np.pi, n_in, endpoint=False)
    outer = np.stack([np.cos(a_out), np.sin(a_out)], axis=-1)
    inner = factor * np.stack([np.cos(a_in), np.sin(a_in)], axis=-1)
    return np.concatenate([outer, inner])


def swiss_roll_points(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Noise-free swiss-roll points from uniforms ``u, v`` in ``[0, 1)``: shape ``(*u.shape, 3)``.

    ``s = 1.5 pi (1 + 2 u)``, point ``(s cos s, 21 v, s sin s)`` (sklearn, ``hole=False``).
    """
    s = 1.5 * np.pi * (1.0 + 2.0 * u)
    return np.stack([s * np.cos(s), 21.0 * v, s * np.sin(s)], axis=-1)


def _shuffled_design(design: np.ndarray, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # every dataset is the design in an independent random order, plus noise
    order = np.argsort(rng.random(shape), axis=-1)
    points = design[order]
    points += SKLEARN_NOISE * rng.standard_normal(points.shape)
    return points


def _moons(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return _shuffled_design(moons_design(shape[-1]), rng, shape)


def _circles(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return _shuffled_design(circles_design(shape[-1]), rng, shape)


def _swiss_roll(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    points = swiss_roll_points(rng.random(shape), rng.random(shape))
    points += SKLEARN_NOISE * rng.standard_normal(points.shape)
    return points


# --------------------------------------------------------------------------- checks


def _check_truth(name: str) -> None:
    if name not in TRUTHS:
        raise CollapseError(f"truth must be one of {', '.join(TRUTHS)} (got {name!r})")




def _check_positive(param: str, value: object) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CollapseError(f"{param} must be a positive finite number (got {value!r})") from None
    if not (np.isfinite(number) and number > 0):
        raise CollapseError(f"{param} must be a positive finite number (got {value!r})")
    return number
