"""The ``kde`` setting: Gaussian kernel density estimation with bandwidth ``h``.

Model ``t`` is ``p_hat_t(x) = (1/|D_t|) sum_{y in D_t} phi_h(x - y)``; sampling picks a
uniform point of ``D_t`` and adds ``N(0, h^2 I)`` noise.  Exact expected MISE
(:func:`collapse.analysis.kde.kde_theory`) exists for a fixed bandwidth and a Gaussian or
Gaussian-mixture truth (``gaussian``, ``blobs``); the paper's held-out NLL and the
sklearn datasets are Monte Carlo only (:func:`collapse.simulate.kde.simulate_kde`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from collapse.analysis.vocabulary import KDE, MISE, TEST_NLL
from collapse.simulate.argtypes import int_at_least, positive_float
from collapse.analysis.errors import CollapseError
from collapse.simulate.settings import Setting, TheoryResult, register

TRUTH_NAMES = ("gaussian", "blobs", "moons", "circles", "swiss-roll")
BANDWIDTH_RULES = ("scott", "silverman")
_FIXED_DIM = {"blobs": 2, "moons": 2, "circles": 2, "swiss-roll": 3}


def _bandwidth(text: str) -> float | str:
    if text in BANDWIDTH_RULES:
        return text
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a number > 0 or one of {', '.join(BANDWIDTH_RULES)} (got {text})"
        ) from None


@dataclass(frozen=True)
class KDEConfig:
    """KDE setting: ``n`` points per model, bandwidth ``h`` (or a rule), named truth."""

    n: int
    dim: int
    bandwidth: float | str
    truth: str
    sigma0: float = 1.0
    heldout: int = 500


class KDESetting(Setting):
    name = KDE
    help = "Gaussian kernel density estimation (fixed bandwidth or scott/silverman)"

    def add_arguments(self, parser: argparse.ArgumentParser, command: str) -> None:
        group = parser.add_argument_group("kde setting")
        group.add_argument("--truth", choices=TRUTH_NAMES, default="gaussian",
                           help="true distribution (default gaussian; blobs is a fixed 3-blob "
                                "2-D mixture; moons, circles, swiss-roll as in sklearn, noise "
                                "0.05, Monte Carlo only)")
        group.add_argument("--dim", type=int_at_least(1), default=None,
                           help="dimension (gaussian truth only; default 1, others fixed)")
        group.add_argument("--sigma0", type=positive_float, default=1.0,
                           help="truth N(0, sigma0^2 I) for --truth gaussian (default 1)")
        group.add_argument("--bandwidth", type=_bandwidth, default=0.5,
                           help="kernel bandwidth h > 0, or scott / silverman re-estimated each "
                                "iteration as sklearn does (Monte Carlo only) (default 0.5)")
        if command != "theory":
            group.add_argument("--heldout", type=int_at_least(1), default=500,
                               help="held-out real points for test_nll (default 500, as in the "
                                    "paper)")

    def configure(self, args: argparse.Namespace) -> KDEConfig:
        truth = args.truth
        dim = args.dim
        if truth in _FIXED_DIM:
            if dim is not None and dim != _FIXED_DIM[truth]:
                raise CollapseError(f"--dim must be {_FIXED_DIM[truth]} for --truth {truth} "
                                 f"(got {dim})")
            dim = _FIXED_DIM[truth]
        elif dim is None:
            dim = 1
        return KDEConfig(n=args.n, dim=dim, bandwidth=args.bandwidth, truth=truth,
                         sigma0=args.sigma0, heldout=getattr(args, "heldout", 500))

    def describe(self, config: KDEConfig) -> str:
        h = config.bandwidth if isinstance(config.bandwidth, str) else f"{config.bandwidth:g}"
        extra = f", sigma0={config.sigma0:g}" if config.truth == "gaussian" else ""
        return f"KDE: truth={config.truth}{extra}, d={config.dim}, n={config.n}, h={h}"

    def _mixture(self, config: KDEConfig):
        from collapse.analysis.truths import blobs_truth, gaussian_truth

        if config.truth == "gaussian":
            return gaussian_truth(config.dim, config.sigma0)
        if config.truth == "blobs":
            return blobs_truth()
        return None

    def theory(self, config: KDEConfig, workflow: str, iterations: int) -> TheoryResult:
        mixture = self._mixture(config)
        if mixture is None:
            return TheoryResult({}, (f"no exact theory for --truth {config.truth} "
                                     "(not a Gaussian mixture): Monte Carlo only",))
        if isinstance(config.bandwidth, str):
            return TheoryResult({}, (f"no exact theory for --bandwidth {config.bandwidth} "
                                     "(data-dependent bandwidth): Monte Carlo only",))
        from collapse.analysis.kde import kde_theory

        result = kde_theory(workflow, n=config.n, bandwidth=config.bandwidth,
                            iterations=iterations, truth=mixture)
        return TheoryResult(values=result.values, notes=tuple(result.notes))

    def simulate(self, config: KDEConfig, workflow: str, *, iterations: int, replicates: int,
                 seed: int, chunk_size: int | None) -> dict[str, np.ndarray]:
        from collapse.simulate.kde import simulate_kde

        return simulate_kde(workflow, n=config.n, iterations=iterations, replicates=replicates,
                            truth=config.truth, dim=config.dim, sigma0=config.sigma0,
                            bandwidth=config.bandwidth, heldout=config.heldout, seed=seed,
                            chunk_size=chunk_size)

    def lower_bounds(self, config: KDEConfig) -> dict[str, float | None]:
        return {MISE: 0.0, TEST_NLL: None}


register(KDESetting())
