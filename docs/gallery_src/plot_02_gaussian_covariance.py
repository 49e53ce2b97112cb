"""
Gaussian: trace and determinant of the fitted covariance
========================================================

The covariance panels of the paper's Gaussian experiment (the authors' notebook
``00_gaussian_fitting``, with ``accumulate-subsample`` from
``05_gaussian_accumulate_subsample``): the trace and the determinant of the fitted
covariance relative to the truth's, :math:`\\operatorname{tr}\\hat\\Sigma_t /
\\operatorname{tr}\\Sigma_0` and :math:`\\det\\hat\\Sigma_t / \\det\\Sigma_0`, by workflow,
dimension and sample size, 100 iterations, maximum-likelihood covariance.
"""

# %%
# The expected trace: exact theory over the paper's grid
# ------------------------------------------------------
# Like the mean error, the expected trace ratio :math:`b_t` does not depend on ``d``.

import math

import matplotlib.pyplot as plt

# docs/_ext/collapse_docs/gallery.py: a result cache and the reports printed below
from collapse_docs.gallery import cached, checks, report, require_tested

import collapse
from collapse.analysis.gaussian_quantiles import log_det_ratio_quantile

SIZES = (10, 32, 100, 316, 1000)
DIMS = (1, 3, 10, 31, 100)
WORKFLOWS = ("replace", "accumulate", "accumulate-subsample")
exact = {n: collapse.theory(collapse.Gaussian(dim=1, n=n), "all", iterations=100)
         for n in SIZES}

fig, axes = plt.subplots(1, len(SIZES), figsize=(15, 3.4), sharey=True)
for ax, n in zip(axes, SIZES):
    exact[n].plot(ax=ax, metric="cov_trace_ratio")
    ax.set_title(f"n = {n}")
    ax.legend().remove()
axes[-1].legend(fontsize=7, frameon=False)
fig.suptitle("Exact expected trace ratio E tr Sigma_hat_t / tr Sigma0 (any d)")
fig.tight_layout()

# %%
# The determinant: mean against median
# ------------------------------------
# Under ``replace`` the determinant ratio is a product of :math:`t d` independent
# factors.  Its expectation, :math:`(\prod_{i=1}^{d}(n-i)/n)^t`, and its median,
# :math:`\exp` of the exact median of the log-determinant (a sum of independent
# log-chi-square terms, :mod:`collapse.analysis.gaussian_quantiles`), are both exact;
# at :math:`t = 100` they differ by orders of magnitude once :math:`d/n` is not small.
# With :math:`n - 1 < d` the fitted covariance is singular: the ratio is 0.

print("det Sigma_hat_100 / det Sigma0 under replace, exact:  mean | median")
print(f"{'d':>4} " + " ".join(f"{'n = ' + str(n):>21}" for n in SIZES))
for d in DIMS:
    cells = []
    for n in SIZES:
        if n - 1 < d:
            cells.append(f"{'0 (singular)':>21}")
            continue
        mean = collapse.theory(collapse.Gaussian(dim=d, n=n), "replace",
                               iterations=100).values["replace"]["cov_det_ratio"][99]
        median = math.exp(log_det_ratio_quantile(0.5, t=100, n=n, dim=d))
        cells.append(f"{mean:>10.3g} |{median:>9.3g}")
    print(f"{d:>4} " + " ".join(cells))

# %%
# Monte Carlo against the theory
# ------------------------------
# The same twelve ``compare`` calls as the :doc:`mean-error example
# <plot_01_gaussian_mean_error>` (shared through the cache), now showing the
# covariance panels.  Under ``replace`` the trace and the determinant are products of
# independent random factors, nearly log-normal with a log-variance that grows linearly
# in :math:`t`; beyond a few iterations their means are too heavy-tailed to test at
# any feasible replicate count, so those rows are set aside (hollow markers) and fall
# visibly below the line.  Their logarithm is tested instead: the mean of the
# log-determinant, and its exact quartiles by an exact binomial test (the last row of
# panels; dashed, solid and dotted lines are the 25%, 50% and 75% quantiles).

CONFIGS = {  # (d, n): replicates per workflow (as in the mean-error example)
    (1, 100): {"replace": 50_000, "accumulate": 10_000, "accumulate-subsample": 10_000},
    (1, 316): {"replace": 10_000, "accumulate": 10_000, "accumulate-subsample": 10_000},
    (10, 100): {"replace": 10_000, "accumulate": 4_000, "accumulate-subsample": 2_000},
    (10, 316): {"replace": 10_000, "accumulate": 2_000, "accumulate-subsample": 1_000},
}
ALPHA = 0.01
calls = sum(len(v) for v in CONFIGS.values())
results = {}
for (d, n), replicates in CONFIGS.items():
    for workflow, r in replicates.items():
        results[f"d={d}, n={n}, {workflow}"] = cached(
            collapse.compare, collapse.Gaussian(dim=d, n=n), workflow, iterations=100,
            replicates=r, seed=0, alpha=ALPHA / calls)

PANELS = ("cov_trace_ratio", "cov_det_ratio", "log_cov_det_ratio", "log_cov_det_ratio_quantiles")
fig, axes = plt.subplots(len(PANELS), len(CONFIGS), figsize=(15, 13))
for column, (d, n) in enumerate(CONFIGS):
    for row, panel in enumerate(PANELS):
        ax = axes[row, column]
        for workflow in WORKFLOWS:
            result = results[f"d={d}, n={n}, {workflow}"]
            if panel.startswith("log_cov_det") or panel == "cov_det_ratio":
                if workflow != "replace":
                    continue  # exact theory of the determinant exists for replace only
            result.plot(ax=ax, metric=panel)
        ax.set_title(f"{panel}\nd = {d}, n = {n}", fontsize=9)
        ax.legend().remove()
handles, labels = [], []
for ax in (axes[0, 0], axes[-1, 0]):
    for h, label in zip(*ax.get_legend_handles_labels()):
        if label not in labels:
            handles.append(h)
            labels.append(label)
fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
fig.tight_layout(rect=(0, 0.07, 1, 1))

print(report(results, PANELS, alpha=ALPHA))
for label, result in results.items():
    if "replace" in label:
        require_tested({label: result}, "log_cov_det_ratio")
        require_tested({label: result}, "log_cov_det_ratio_quantiles")

# %%
# The visible shortfall of the heavy-tailed means
# -----------------------------------------------
# The sample mean of a near-log-normal :math:`X` falls below :math:`\mathbb{E}X` until
# the replicates number about :math:`\exp(\operatorname{Var}\log X)`.  For the
# determinant under ``replace`` that variance is exact,
# :math:`\operatorname{Var}\log\det = t\sum_{i}\psi'((n-i)/2)`: the Monte Carlo mean of
# the determinant tracks its expectation while :math:`\exp(\operatorname{Var}\log\det)`
# is below the replicate count and falls short after, as the panels show.  The rows are
# set aside much earlier, as soon as the estimated skewness of their mean exceeds the
# threshold of the test.

from collapse.analysis.gaussian_quantiles import log_det_law  # noqa: E402

for (d, n), replicates in CONFIGS.items():
    result = results[f"d={d}, n={n}, replace"]
    frame = result.to_frame()
    det = frame[frame.metric == "cov_det_ratio"].set_index("iteration")
    status = [s for row, s in zip(result.statistics.table.rows, result.statistics.status)
              if row[3] == "cov_det_ratio"]
    print(f"d = {d}, n = {n}, replace, {replicates['replace']} replicates")
    print(f"{'t':>5} {'Var log det':>12} {'exp(Var)':>10} {'MC mean / E det':>16}  status")
    for t in (1, 5, 10, 25, 50, 75, 100):
        var = log_det_law(t, n, d).sd ** 2
        ratio = det.loc[t, "mean"] / det.loc[t, "theory"]
        print(f"{t:>5} {var:>12.3f} {math.exp(var):>10.3g} {ratio:>16.3f}  {status[t - 1]}")

# %%
# The exact quartiles of the log-determinant against the sample quartiles:

for (d, n) in CONFIGS:
    result = results[f"d={d}, n={n}, replace"]
    print(f"d = {d}, n = {n}")
    for k, metric in enumerate(("log_cov_det_ratio_q25", "log_cov_det_ratio_q50",
                                "log_cov_det_ratio_q75")):
        print(metric)
        print(checks(result, metric, ["replace"], (1, 10, 50, 100), header=k == 0))
