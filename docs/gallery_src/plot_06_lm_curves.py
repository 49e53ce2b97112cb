"""
Language models: held-out cross-entropy by workflow
===================================================

The paper's third experiment: fine-tune the same pretrained language model afresh at
every iteration on the training set of the workflow, sample from it, repeat.  These are
the project's own runs (see :doc:`/lm`): small GPT-2-style models on CPython's
documentation, trained on a CPU, not the paper's Gemma-2 on HelpSteer2, so only the
ordering of the workflows is compared with the paper, never the magnitudes; the paper's
own numbers are not overlaid (the project has no table of them).

Nothing is trained when this page is built: the curves and the tests are computed from
the per-seed values checked in under ``docs/results/lm/``.
"""

# %%
# The curves
# ----------
# Mean ``test_nll`` (nats per token) over seeds with 95% intervals (Student's t over the
# seeds) for each run that finished.

from pathlib import Path

import collapse_docs
import matplotlib.pyplot as plt
import pandas as pd
from scipy import stats

from collapse.lm import evidence

RESULTS = Path(collapse_docs.__file__).resolve().parents[2] / "results" / "lm"
RUNS = {
    "tiny-epochs": "tiny, epoch budget (8 seeds)",
    "small-epochs": "small, epoch budget (5 seeds)",
    "tiny-matched": "tiny, matched optimiser steps (8 seeds)",
    "tiny-lr-low": "tiny, 0.3x learning rate (8 seeds)",
    "tiny-lr-high": "tiny, 3x learning rate (8 seeds)",
}
RUNS = {name: title for name, title in RUNS.items() if (RESULTS / name / "values.csv").is_file()}
STYLE = {"replace": "C3", "accumulate": "C0", "accumulate-subsample": "C2", "fresh": "C7"}

columns = 3
rows_of_panels = -(-len(RUNS) // columns)
fig, axes = plt.subplots(rows_of_panels, columns, figsize=(13, 3.6 * rows_of_panels), squeeze=False)
for ax in axes.flat[len(RUNS):]:
    ax.set_visible(False)
axes = list(axes.flat)
for ax, (name, title) in zip(axes, RUNS.items()):
    table = pd.read_csv(RESULTS / name / "summary.csv")
    table = table[table.metric == "test_nll"]
    for workflow, rows in table.groupby("workflow", sort=False):
        half = stats.t.ppf(0.975, rows.replicates - 1) * rows["sem"]
        ax.errorbar(rows.iteration, rows["mean"], yerr=half, label=workflow, capsize=2,
                    marker="o", markersize=3, color=STYLE.get(workflow))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("model-fitting iteration t")
for ax in axes[:len(RUNS)]:
    ax.set_ylabel("test_nll (nats per token)")
axes[0].legend(fontsize=7, frameon=False)
fig.tight_layout()

# %%
# The tests at the last iteration
# -------------------------------
# Every pair of workflows: the difference of means (first minus second; positive means the
# first is worse), Welch's unequal-variance test with Holm's adjustment over the pairs of a
# run, and Hedges' g.

for name in RUNS:
    records = pd.read_csv(RESULTS / name / "values.csv").to_dict("records")
    t, values, seeds = evidence.last_iteration_values(records, "test_nll")
    print(f"{name}, t = {t}:")
    for row in evidence.pairwise(values, seeds):
        print(f"  {row['a']:>20} - {row['b']:<20} {row['difference']:+.4f} "
              f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]  Welch p {row['welch_p']:.2g}"
              f" (Holm {row['welch_p_holm']:.2g}), g {row['hedges_g']:+.2f}")

# %%
# What the tests say is written out, with the same numbers, on :doc:`/findings` and
# :doc:`/lm`: ``replace`` is the worst workflow at the ``small`` size and under a matched
# budget, while with the paper's epoch budget ``accumulate`` ends above
# ``accumulate-subsample``, which the matched-budget and learning-rate runs trace to the
# number of optimiser steps ``accumulate`` takes.
