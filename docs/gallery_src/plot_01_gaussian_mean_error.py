"""
Gaussian: squared error of the fitted mean
==========================================

The paper's first experiment (the authors' notebooks ``00_gaussian_fitting`` and
``05_gaussian_accumulate_subsample``): fit a Gaussian to ``n`` points, sample ``n``
points from the fit, refit, for 100 model-fitting iterations, and follow the squared
error of the fitted mean, :math:`\\|\\hat\\mu_t - \\mu_0\\|^2`, by workflow, dimension
``d`` and sample size ``n`` (truth :math:`N(0, I_d)`, maximum-likelihood covariance, as
in the paper).
"""

# %%
# Exact theory over the paper's grid
# ----------------------------------
# The expected error is :math:`d\sigma^2 a_t` with :math:`a_t` independent of ``d``
# (see :doc:`/gaussian`), so the paper's five dimensions differ only by the factor
# ``d``: one panel per sample size carries the whole grid.  Lines are exact.

import matplotlib.pyplot as plt

# docs/_ext/collapse_docs/gallery.py: a result cache and the reports printed below
from collapse_docs.gallery import cached, checks, report, require_tested

import collapse

SIZES = (10, 32, 100, 316, 1000)
WORKFLOWS = ("replace", "accumulate", "accumulate-subsample")
exact = {n: collapse.theory(collapse.Gaussian(dim=1, n=n), "all", iterations=100)
         for n in SIZES}

fig, axes = plt.subplots(1, len(SIZES), figsize=(15, 3.4), sharey=True)
for ax, n in zip(axes, SIZES):
    exact[n].plot(ax=ax, metric="mean_sq_error")
    ax.set_title(f"n = {n}")
    ax.set_yscale("log")
    ax.legend().remove()
axes[0].set_ylabel("E||mu_hat - mu0||^2 / (d sigma^2)")
axes[-1].legend(fontsize=7, frameon=False)
fig.suptitle("Exact expected squared error of the mean, per unit tr Sigma0 = d sigma^2")
fig.tight_layout()

print("E||mu_hat_t - mu0||^2 / (d sigma^2) at t = 100 (exact):")
print(f"{'n':>5} " + " ".join(f"{w:>21}" for w in WORKFLOWS))
for n in SIZES:
    print(f"{n:>5} " + " ".join(f"{exact[n].values[w]['mean_sq_error'][99]:>21.4g}"
                              for w in WORKFLOWS))

# %%
# ``replace`` climbs to the full :math:`\operatorname{tr}\Sigma_0` (the fitted mean ends as
# far from the truth as a typical data point), at a rate set by ``n``; ``accumulate``
# levels off near :math:`\pi^2/(6n)`, and ``accumulate-subsample`` at a larger but
# finite value.
#
# Monte Carlo against the theory
# ------------------------------
# Two dimensions and two sample sizes of the paper's grid, every workflow.  Each
# (``d``, ``n``, workflow) is one ``compare`` call with as many replicates as its
# squared error needs for at least 90% of its rows to be tested: the error is
# chi-square-like (skewness :math:`\sqrt{8/d}` at best), and under ``replace`` with
# small ``n`` its tail grows heavier with ``t`` (the covariance is a product of random
# factors).  At ``n = 10`` and ``32`` under ``replace`` no feasible replicate count
# tests it: in ``d = 1`` the limit law has a power tail of index between 2 and 3 (its
# third moment is infinite), so those sizes are shown as theory only, above.  The
# twelve calls share a family-wise false-alarm rate of 1% (each at 1/12 of it).

CONFIGS = {  # (d, n): replicates per workflow
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

fig, axes = plt.subplots(1, len(CONFIGS), figsize=(15, 3.6))
for ax, (d, n) in zip(axes, CONFIGS):
    for workflow in WORKFLOWS:
        results[f"d={d}, n={n}, {workflow}"].plot(ax=ax, metric="mean_sq_error")
    ax.set_title(f"d = {d}, n = {n}")
    ax.legend().remove()
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
fig.suptitle("Squared error of the fitted mean: theory (lines), Monte Carlo (95% error bars)")
fig.tight_layout(rect=(0, 0.17, 1, 1))

print(report(results, ["mean_sq_error"], alpha=ALPHA))
for label in results:
    require_tested({label: results[label]}, "mean_sq_error")

# %%
# The numbers behind the panels, at a few iterations (exact expectation, Monte Carlo
# mean with its 95% error bar, z-score and the row's status):

for (d, n) in CONFIGS:
    print(f"d = {d}, n = {n}")
    for k, workflow in enumerate(WORKFLOWS):
        print(checks(results[f"d={d}, n={n}, {workflow}"], "mean_sq_error", [workflow],
                     (1, 10, 50, 100), header=k == 0))
