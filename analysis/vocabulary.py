"""The one vocabulary of the project: workflow, setting and metric names.

Every command, file format and page uses exactly these spellings; other modules
import them from here instead of repeating string literals.

Workflows (model-fitting iteration ``t = 1, 2, ...``; ``n`` samples drawn from every
model; model 1 is always fitted on the ``n`` real samples alone):

``replace``
    ``D_t`` is the ``n`` samples drawn from model ``t-1``.
``accumulate``
    ``D_t`` is the real samples plus every sample drawn from models ``1..t-1``
    (``t*n`` points).
``accumulate-subsample``
    ``D_t`` is a uniformly random ``n``-subset, without replacement, of that
    accumulated pool.
"""

from __future__ import annotations

import operator

REPLACE = "replace"
ACCUMULATE = "accumulate"
ACCUMULATE_SUBSAMPLE = "accumulate-subsample"

#: The three workflows, in the order used for every table and figure.
WORKFLOWS: tuple[str, ...] = (REPLACE, ACCUMULATE, ACCUMULATE_SUBSAMPLE)

#: ``--workflow all`` expands to :data:`WORKFLOWS`.
ALL = "all"

GAUSSIAN = "gaussian"
KDE = "kde"
LM = "lm"
SETTINGS: tuple[str, ...] = (GAUSSIAN, KDE, LM)

# Gaussian metrics (per model-fitting iteration t).
MEAN_SQ_ERROR = "mean_sq_error"  #: ``||mu_hat_t - mu0||^2`` (squared data units)
COV_TRACE_RATIO = "cov_trace_ratio"  #: ``tr Sigma_hat_t / tr Sigma0`` (dimensionless)
COV_DET_RATIO = "cov_det_ratio"  #: ``det Sigma_hat_t / det Sigma0`` (dimensionless)
LOG_COV_DET_RATIO = "log_cov_det_ratio"  #: ``log(det Sigma_hat_t / det Sigma0)`` (nats)
TEST_NLL = "test_nll"  #: cross-entropy of fresh real data under model t (nats per point)

GAUSSIAN_METRICS: tuple[str, ...] = (
    MEAN_SQ_ERROR,
    COV_TRACE_RATIO,
    COV_DET_RATIO,
    LOG_COV_DET_RATIO,
    TEST_NLL,
)

# KDE metrics.
MISE = "mise"  #: ``int (p_hat_t - p0)^2 dx`` (inverse data-volume units)
KDE_METRICS: tuple[str, ...] = (MISE, TEST_NLL)

# Covariance estimators of the Gaussian model: divisor m (MLE) or m-1.
MLE = "mle"
UNBIASED = "unbiased"
COVARIANCE_ESTIMATORS: tuple[str, ...] = (MLE, UNBIASED)


def parse_workflows(spec: str) -> tuple[str, ...]:
    """Expand a ``--workflow`` value into a tuple of workflow names.

    ``"all"`` gives :data:`WORKFLOWS`; a single name gives a 1-tuple; a comma
    separated list is accepted too.  Raises :class:`ValueError` naming the valid
    spellings for anything else.
    """
    if spec == ALL:
        return WORKFLOWS
    names = tuple(part.strip() for part in spec.split(","))
    for name in names:
        if name not in WORKFLOWS:
            valid = ", ".join(WORKFLOWS + (ALL,))
            raise ValueError(f"unknown workflow {name!r}; choose from {valid}")
    return names


def check_workflow(workflow: object) -> str:
    """Return ``workflow`` if it is one of :data:`WORKFLOWS`, else raise ValueError."""
    if workflow not in WORKFLOWS:
        raise ValueError(f"workflow must be one of {', '.join(WORKFLOWS)} (got {workflow!r})")
    return workflow  # type: ignore[return-value]


def check_int(param: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int if it is an integer (not a bool) ``>= minimum``.

    Raises ValueError with a one-line message naming ``param`` and the valid range,
    e.g. ``n must be an integer >= 2 (got 1)``; every layer uses this one check.
    """
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{param} must be an integer >= {minimum} (got {value!r})") from None
    if number < minimum:
        raise ValueError(f"{param} must be an integer >= {minimum} (got {number})")
    return number
