"""The one vocabulary of the project: workflow, setting, metric, truth, engine and format names.

Every command, file format and page uses exactly these spellings; other modules
import them from here instead of repeating string literals.  Workflows as general
rules live in :mod:`collapse.analysis.workflows`; parameter checks in
:mod:`collapse.analysis.checks`.

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

REPLACE = "replace"
ACCUMULATE = "accumulate"
ACCUMULATE_SUBSAMPLE = "accumulate-subsample"

#: The three workflows, in the order used for every table and figure.
WORKFLOWS: tuple[str, ...] = (REPLACE, ACCUMULATE, ACCUMULATE_SUBSAMPLE)

#: ``--workflow all`` expands to :data:`WORKFLOWS`.
ALL = "all"

#: The self-consuming loop with a fresh real batch for every model (a preset, not in ``all``).
FRESH = "fresh"

GAUSSIAN = "gaussian"
KDE = "kde"
LM = "lm"

# Gaussian metrics (per model-fitting iteration t).
MEAN_SQ_ERROR = "mean_sq_error"  #: ``||mu_hat_t - mu0||^2`` (squared data units)
COV_TRACE_RATIO = "cov_trace_ratio"  #: ``tr Sigma_hat_t / tr Sigma0`` (dimensionless)
COV_DET_RATIO = "cov_det_ratio"  #: ``det Sigma_hat_t / det Sigma0`` (dimensionless)
LOG_COV_DET_RATIO = "log_cov_det_ratio"  #: ``log(det Sigma_hat_t / det Sigma0)`` (nats)
#: Cross-entropy of fresh real data under model t: nats per point (Gaussian, KDE) or per
#: token (language models).  The LM's held-out cross-entropy is this same quantity.
TEST_NLL = "test_nll"

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


# Truths of the KDE setting (sampling in collapse.simulate.datasets).
GAUSSIAN_TRUTH = "gaussian"
BLOBS = "blobs"
MOONS = "moons"
CIRCLES = "circles"
SWISS_ROLL = "swiss-roll"
#: Every truth name of the KDE setting; only the first two have an exact density (MISE).
TRUTHS: tuple[str, ...] = (GAUSSIAN_TRUTH, BLOBS, MOONS, CIRCLES, SWISS_ROLL)
#: Dimension of every truth whose dimension is fixed (``gaussian`` takes ``dim``).
FIXED_DIMS: dict[str, int] = {BLOBS: 2, MOONS: 2, CIRCLES: 2, SWISS_ROLL: 3}

# KDE bandwidth rules, re-estimated on D_t at every iteration (sklearn's definitions).
SCOTT = "scott"
SILVERMAN = "silverman"
BANDWIDTH_RULES: tuple[str, ...] = (SCOTT, SILVERMAN)

# Monte Carlo engines: sufficient statistics, literal points, or the best valid one.
AUTO = "auto"
STATS = "stats"
POINTS = "points"
ENGINES: tuple[str, ...] = (AUTO, STATS, POINTS)

#: Output formats of every command.
FORMATS: tuple[str, ...] = ("table", "csv", "json")

#: Axis labels with units, for figures.
METRIC_LABELS: dict[str, str] = {
    MEAN_SQ_ERROR: "||mu_hat - mu0||^2 (squared data units)",
    COV_TRACE_RATIO: "tr Sigma_hat / tr Sigma0 (ratio)",
    COV_DET_RATIO: "det Sigma_hat / det Sigma0 (ratio)",
    LOG_COV_DET_RATIO: "log det ratio (nats)",
    TEST_NLL: "test NLL (nats per point or token)",
    MISE: "MISE (1 / data volume)",
}


# ----------------------------------------------------------------------------------------
# Linear-regression and discrete-distribution settings.

REGRESSION = "regression"
DISCRETE = "discrete"

# Regression metric: ``||w_hat_t - w||^2``, the excess test error of model t on fresh
# isotropic inputs ``x ~ N(0, I_d)`` against noiseless labels (squared label units).
TEST_MSE = "test_mse"
REGRESSION_METRICS: tuple[str, ...] = (TEST_MSE,)

# Discrete metrics of model t's probability vector ``p_hat_t`` over the K categories.
GINI_DIVERSITY = "gini_diversity"  #: ``1 - sum_i p_i^2`` (dimensionless)
ENTROPY = "entropy"  #: ``-sum_i p_i log p_i`` (nats)
SURVIVING_CATEGORIES = "surviving_categories"  #: categories with ``p_i > 0`` (a count)
TV_DISTANCE = "tv_distance"  #: ``(1/2) sum_i |p_i - p0_i|`` (dimensionless)
COLLAPSED = "collapsed"  #: 1 when one category is left, else 0 (its mean is a probability)
DISCRETE_METRICS: tuple[str, ...] = (
    GINI_DIVERSITY,
    ENTROPY,
    SURVIVING_CATEGORIES,
    TV_DISTANCE,
    COLLAPSED,
)

#: Named truths of the discrete setting: ``p_i = 1/K``, or ``p_i`` proportional to ``1/i``.
UNIFORM = "uniform"
ZIPF = "zipf"
DISCRETE_TRUTHS: tuple[str, ...] = (UNIFORM, ZIPF)

METRIC_LABELS.update({
    TEST_MSE: "||w_hat - w||^2 (squared label units)",
    GINI_DIVERSITY: "1 - sum p_i^2 (Gini-Simpson diversity)",
    ENTROPY: "entropy (nats)",
    SURVIVING_CATEGORIES: "surviving categories (count)",
    TV_DISTANCE: "total variation to the truth",
    COLLAPSED: "P(one category left)",
})
