"""Monte Carlo of every workflow rule, end to end: the command line, both engines, the streams.

What is checked, and how:

* **Theory against Monte Carlo through the command line** (``collapse compare``), for the
  rules ``fresh``, ``real=original,synthetic=window:3``,
  ``real=original,synthetic=all,size=50,real-fraction=0.2`` and ``real=fresh,synthetic=all``,
  Gaussian and KDE (Gaussian truth), at 2,000 replicates.  All four rules go into one call
  (``--workflow`` repeated), so each call's verdict has family-wise false-alarm rate
  ``<= alpha = 0.01`` (the command's default, Holm over every row of every rule).  The
  configurations were picked before any run: Gaussian ``n=40, d=2`` (fast suite),
  ``n=60, d=4`` and ``n=15, d=3`` (slow); KDE ``n=40, d=2, h=0.4`` (fast), seeds 2025 and
  7.  The stratified rule needs 40 synthetic points at ``t = 2``, so ``n >= 40``: it is left
  out at ``n=15``.  The fast suite makes one consistent-theory call per setting (false
  alarm <= 2% in all), the slow suite five more (<= 5%).
  Negative control and power: the same call with ``--theory-scale 1.05`` must exit 1 *and*
  reject rows of every one of the four rules; and for every rule the consistent call must
  have a row whose shift under a 5% error, ``0.05 theory / sem``, clears the Bonferroni
  threshold ``z*`` by 2.33 (power >= 99% against a 5% error for that row).
  A limit found on the way: in one dimension the realised ISE is far more variable
  (``sd / mean`` 0.7 to 1), so at 2,000 replicates a 5% error shifts ``z`` by only 2.9 to
  3.6 (measured at ``n=60, h=0.3`` and ``n=15, h=0.5``), below the Holm threshold: there
  the check has power against a 10% error only at ``n=60`` (what the slow 1-D case
  asserts, scale 1.10), and not even that at ``n=15`` (shift 5.7, power about 98%; not
  asserted).  The other slow KDE cases are ``n=60, d=2, h=0.3`` and ``n=15, d=3, h=0.5``.
* **Presets equal their spelled-out specs** in theory and simulation, byte for byte
  through the command line (same seed).
* **Engines agree in law**: the Gaussian sufficient-statistic engine against the points
  engine for every ``size=all`` rule, and the points engine against an independent
  literal loop (written here) for subsample and stratified rules; two-sample
  Kolmogorov-Smirnov tests, Bonferroni-corrected to a family-wise false-alarm rate of
  ``1e-3`` per test function, each with a planted bug that the same check must catch.
* **Streams**: for every new rule, the first ``t`` iterations do not depend on the
  iteration count or the chunk size, iteration 1 equals that of every other rule, and
  another seed differs.
* **KDE metrics of every rule** equal the realised MISE and held-out NLL recomputed here
  from the training sets the engine fitted (running sums versus from-scratch sums).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from scipy import stats

import collapse
from collapse.analysis.truths import gaussian_truth
from collapse.analysis.workflows import Workflow
from collapse.simulate import gaussian_points, gaussian_stats, kde
from collapse.simulate.cli import main
from collapse.simulate.gaussian import simulate_gaussian
from collapse.simulate.tables import Table

RULES = ("fresh", "real=original,synthetic=window:3",
         "real=original,synthetic=all,size=50,real-fraction=0.2", "real=fresh,synthetic=all")
#: Family-wise false-alarm rate of each law-check function below.
ALPHA = 1e-3


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def compare_rows(capsys, setting, rules, options, scale):
    argv = ["compare", setting, *[x for rule in rules for x in ("--workflow", rule)],
            *options, "--replicates", 2000, "--theory-scale", scale, "--format", "csv"]
    code, out, err = run(capsys, *argv)
    assert "Traceback" not in err
    return code, Table.from_csv(io.StringIO(out)).records()


def check_must_hold(capsys, setting, rules, options, error=0.05):
    """Consistent at scale 1; every rule rejected, with power, at scale ``1 + error``."""
    code, rows = compare_rows(capsys, setting, rules, options, 1)
    assert code == 0, [r for r in rows if r["consistent"] is False]
    labels = [Workflow.parse(rule).label for rule in rules]
    assert {r["workflow"] for r in rows} == set(labels)
    tested = [r for r in rows if r["z"] is not None]
    z_star = stats.norm.isf(0.01 / (2 * len(tested)))
    for label in labels:  # every rule has tested rows, one of them with power
        shifts = [error * r["theory"] / r["sem"] for r in tested if r["workflow"] == label]
        assert max(shifts) >= z_star + 2.33, label
    code, rows = compare_rows(capsys, setting, rules, options, 1 + error)
    assert code == 1
    for label in labels:
        assert any(r["consistent"] is False for r in rows if r["workflow"] == label), label
    return rows


GAUSSIAN_SLOW = [("60", "4", RULES), ("15", "3", RULES[:2] + RULES[3:])]
KDE_SLOW = [("60", "2", "0.3", RULES, 0.05), ("15", "3", "0.5", RULES[:2] + RULES[3:], 0.05),
            ("60", "1", "0.3", RULES, 0.10)]


def test_gaussian_rules_pass_and_fail_through_the_cli(capsys):
    check_must_hold(capsys, "gaussian", RULES, ["--n", 40, "--dim", 2, "--iterations", 10,
                                                "--seed", 2025])


@pytest.mark.slow
@pytest.mark.parametrize("n, dim, rules", GAUSSIAN_SLOW)
def test_gaussian_rules_pass_and_fail_on_more_configurations(capsys, n, dim, rules):
    check_must_hold(capsys, "gaussian", rules, ["--n", n, "--dim", dim, "--iterations", 25,
                                                "--seed", 7])


def test_kde_rules_pass_and_fail_through_the_cli(capsys):
    check_must_hold(capsys, "kde", RULES, ["--n", 40, "--dim", 2, "--bandwidth", 0.4,
                                           "--iterations", 6, "--heldout", 20, "--seed", 2025])


@pytest.mark.slow
@pytest.mark.parametrize("n, dim, h, rules, error", KDE_SLOW)
def test_kde_rules_pass_and_fail_on_more_configurations(capsys, n, dim, h, rules, error):
    check_must_hold(capsys, "kde", rules, ["--n", n, "--dim", dim, "--bandwidth", h,
                                           "--iterations", 15, "--heldout", 20, "--seed", 7],
                    error)


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize("command", ["theory", "simulate"])
@pytest.mark.parametrize("setting, options", [
    ("gaussian", ["--n", 7, "--dim", 3]),
    ("kde", ["--n", 7, "--bandwidth", 0.6, "--heldout", 15]),
])
def test_presets_and_their_specs_give_identical_output(capsys, command, setting, options):
    if command == "theory" and setting == "kde":
        options = options[:-2]  # --heldout is a Monte Carlo option
    extra = ["--replicates", 64, "--seed", 5] if command == "simulate" else []
    for preset, spec in [("replace", "real=none,synthetic=latest"),
                         ("accumulate", "real=original,synthetic=all"),
                         ("accumulate-subsample", "synthetic=all,size=n,real=original"),
                         ("fresh", "real=fresh,synthetic=window:1")]:
        outputs = []
        for name in (preset, spec):
            code, out, _ = run(capsys, command, setting, "--workflow", name, *options,
                               "--iterations", 5, *extra, "--format", "csv")
            assert code == 0
            outputs.append(out)
        assert outputs[0] == outputs[1], preset
        assert {r["workflow"] for r in Table.from_csv(io.StringIO(outputs[0])).records()} \
            == {preset}
    # negative control: a rule that differs from the preset gives different numbers
    code, other, _ = run(capsys, command, setting, "--workflow", "real=none,synthetic=window:2",
                         *options, "--iterations", 5, *extra, "--format", "csv")
    assert code == 0 and other != outputs[0]


def test_repeated_workflow_options_and_canonical_labels(capsys):
    code, out, _ = run(capsys, "theory", "gaussian", "--workflow", "replace,fresh",
                       "--workflow", "synthetic=window:3,real=original", "--workflow", "all",
                       "--n", 10, "--iterations", 3, "--format", "csv")
    assert code == 0
    labels = list(dict.fromkeys(r["workflow"] for r in Table.from_csv(io.StringIO(out))
                                .records()))
    assert labels == ["replace", "fresh", "real=original,synthetic=window:3", "accumulate",
                      "accumulate-subsample"]
    code, out, _ = run(capsys, "simulate", "kde", "--workflow", "real=fresh,synthetic=all",
                       "--workflow", "fresh", "--n", 6, "--iterations", 3, "--replicates", 8,
                       "--heldout", 5, "--format", "csv")
    assert code == 0
    assert {r["workflow"] for r in Table.from_csv(io.StringIO(out)).records()} == {
        "real=fresh,synthetic=all", "fresh"}


@pytest.mark.parametrize("spec, key", [
    ("real=none,synthetic=window:0", "synthetic"),
    ("real=original,synthetic=all,size=41", "size"),
    ("real=original,synthetic=all,real-fraction=0.2", "real-fraction"),
    ("real=original,synthetic=all,size=30,real-fraction=0.9", "real-fraction"),
    ("real=never", "real"),
    ("real=original,size=ten", "size"),
    ("real=original,window=3", "window"),
])
@pytest.mark.parametrize("command, setting", [("theory", "gaussian"), ("compare", "kde")])
def test_bad_specs_get_one_line_naming_the_key(capsys, spec, key, command, setting):
    code, out, err = run(capsys, command, setting, "--workflow", spec, "--n", 20)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("collapse: error: --workflow")
    assert key in lines[0]


def test_theory_of_every_rule_at_a_thousand_iterations_is_finite(capsys):
    # the < 1 s answer is measured in benchmarks/rules.py; here: it answers, finite
    for rule in RULES + ("real=none,synthetic=window:50,size=30", "accumulate"):
        code, out, _ = run(capsys, "theory", "gaussian", "--workflow", rule, "--n", 100,
                           "--iterations", 1000, "--format", "csv")
        rows = Table.from_csv(io.StringIO(out)).records()
        assert code == 0 and len(rows) >= 2000
        assert all(math.isfinite(r["value"]) for r in rows)


# --------------------------------------------------------------------------- engine laws


def _ks_failures(pairs):
    level = ALPHA / len(pairs)
    return [f"{name}: p={stats.ks_2samp(a, b).pvalue:.2g}" for name, a, b in pairs
            if stats.ks_2samp(a, b).pvalue < level]


LAW = dict(n=8, dim=3, iterations=8)
WHOLE_BATCH_RULES = ("fresh", "real=original,synthetic=window:3", "real=fresh,synthetic=all",
                     "real=none,synthetic=window:2")
LAW_METRICS = ("mean_sq_error", "cov_trace_ratio", "log_cov_det_ratio", "test_nll")


def _engine_pairs(**overrides):
    pairs = []
    for rule in WHOLE_BATCH_RULES:
        stat = simulate_gaussian(rule, replicates=3000, seed=11, engine="stats", **LAW)
        point = simulate_gaussian(rule, replicates=3000, seed=12, engine="points",
                                  **{**LAW, **overrides})
        pairs += [(f"{rule} {m} t={t}", stat[m][:, t - 1], point[m][:, t - 1])
                  for m in LAW_METRICS for t in (2, 4, 8)]
    return pairs


def test_stats_and_points_engines_agree_for_every_whole_batch_rule():
    assert not _ks_failures(_engine_pairs())


def test_engine_law_check_catches_a_wrong_divisor():
    # negative control: divisor m-1 in the points engine against m in the stats engine
    assert len(_ks_failures(_engine_pairs(covariance="unbiased"))) >= 4


def test_engine_law_check_catches_a_merge_without_the_spread_of_the_means(monkeypatch):
    # negative control: Chan's merge that forgets the between-batch term
    honest = gaussian_stats._merge

    def wrong(counts, means, scatters):
        total, mean, _ = honest(counts, means, scatters)
        return total, mean, scatters.sum(axis=1)

    monkeypatch.setattr(gaussian_stats, "_merge", wrong)
    assert len(_ks_failures(_engine_pairs())) >= 4


def literal_loop(rule: Workflow, n, dim, iterations, replicates, seed):
    """The rule written as plainly as possible (truth N(0, I)): per replicate and model,
    concatenate the kept batches, choose subsets with ``rng.choice``, fit by ``np.cov``,
    sample by ``rng.multivariate_normal``.  Returns arrays (replicates, iterations)."""
    rng = np.random.default_rng(seed)
    out = {m: np.empty((replicates, iterations)) for m in LAW_METRICS[:3]}
    size = rule.subsample_size(n)
    counts = rule.stratified_counts(n)
    for r in range(replicates):
        real = rng.standard_normal((n, dim))
        synthetic = []
        train = real
        for t in range(1, iterations + 1):
            if t >= 2:
                part = {"original": real, "fresh": rng.standard_normal((n, dim)),
                        "none": np.empty((0, dim))}[rule.real]
                kept = synthetic if rule.window is None else synthetic[-rule.window:]
                synth = np.concatenate(kept)
                if size is None:
                    train = np.concatenate([part, synth])
                elif counts is None:
                    pool = np.concatenate([part, synth])
                    train = pool[rng.choice(len(pool), size, replace=False)]
                else:
                    m_r, m_s = counts
                    train = np.concatenate([part[rng.choice(n, m_r, replace=False)],
                                            synth[rng.choice(len(synth), m_s, replace=False)]])
            mean = train.mean(axis=0)
            cov = np.cov(train, rowvar=False, bias=True).reshape(dim, dim)
            sign, logdet = np.linalg.slogdet(cov)
            out["mean_sq_error"][r, t - 1] = mean @ mean
            out["cov_trace_ratio"][r, t - 1] = np.trace(cov) / dim
            out["log_cov_det_ratio"][r, t - 1] = logdet if sign > 0 else -np.inf
            synthetic.append(rng.multivariate_normal(mean, cov, size=n))
    return out


SUBSAMPLE_RULES = [("real=original,synthetic=all,size=10,real-fraction=0.3", 8, 2),
                   ("real=none,synthetic=window:2,size=5", 6, 2),
                   ("real=fresh,synthetic=window:2,size=7", 5, 3)]


def _subsample_pairs():
    pairs = []
    for spec, n, dim in SUBSAMPLE_RULES:
        rule = Workflow.parse(spec)
        engine = simulate_gaussian(rule, n=n, dim=dim, iterations=5, replicates=3000, seed=3)
        plain = literal_loop(rule, n, dim, 5, 600, seed=4)
        pairs += [(f"{spec} {m} t={t}", engine[m][:, t - 1], plain[m][:, t - 1])
                  for m in LAW_METRICS[:3] for t in (2, 3, 5)]
    return pairs


def test_points_engine_matches_the_literal_loop_for_subsample_rules():
    assert not _ks_failures(_subsample_pairs())


def test_subsample_law_check_catches_a_subset_that_is_not_random(monkeypatch):
    # negative control: the first m points of the pool instead of a uniform m-subset
    def first(rng, reps, population, size):
        rng.integers(0, population, size=(reps, size))  # same consumption, ignored
        return np.broadcast_to(np.arange(size), (reps, size)).copy()

    monkeypatch.setattr(gaussian_points, "draw_subset", first)
    assert len(_ks_failures(_subsample_pairs())) >= 3


# --------------------------------------------------------------------------- streams


NEW_RULES = ("fresh", "real=original,synthetic=window:3", "real=fresh,synthetic=all",
             "real=original,synthetic=window:4",  # fills exactly within the short run
             "real=none,synthetic=window:2", "real=original,synthetic=all,size=7,real-fraction=0.4",
             "real=fresh,synthetic=window:2,size=6", "real=none,synthetic=all,size=n")


def _engines(rule, n, dim):
    from collapse.simulate.gaussian import stats_valid

    return ("points", "stats") if stats_valid(Workflow.parse(rule), n, dim) else ("points",)


@pytest.mark.parametrize("n, dim", [(6, 3), (4, 6)])  # (4, 6): singular covariances
@pytest.mark.parametrize("rule", NEW_RULES)
def test_gaussian_first_iterations_do_not_depend_on_iterations_or_chunks(rule, n, dim):
    reference = collapse.simulate(collapse.Gaussian(n=n, dim=dim), "replace", 2, 70, 11)
    for engine in _engines(rule, n, dim):
        short = simulate_gaussian(rule, n=n, dim=dim, iterations=5, replicates=70, seed=11,
                                  engine=engine)
        long = simulate_gaussian(rule, n=n, dim=dim, iterations=12, replicates=70, seed=11,
                                 engine=engine, chunk_size=1)
        other = simulate_gaussian(rule, n=n, dim=dim, iterations=5, replicates=70, seed=12,
                                  engine=engine)
        for metric, x in short.items():
            assert np.array_equal(x, long[metric][:, :5]), (engine, metric)
            assert np.array_equal(x[:, 0], reference.samples["replace"][metric][:, 0])
            assert not np.isnan(long[metric]).any()
        assert not np.array_equal(other["mean_sq_error"], short["mean_sq_error"])


@pytest.mark.parametrize("bandwidth", [0.4, "silverman"])
@pytest.mark.parametrize("rule", NEW_RULES)
def test_kde_first_iterations_do_not_depend_on_iterations_or_chunks(rule, bandwidth):
    problem = collapse.KDE(n=6, dim=2, bandwidth=bandwidth, heldout=9)
    reference = collapse.simulate(problem, "replace", 1, 70, 11)
    short = collapse.simulate(problem, rule, 4, 70, 11).samples
    long = collapse.simulate(problem, rule, 9, 70, 11, chunk_size=1).samples
    other = collapse.simulate(problem, rule, 4, 70, 12).samples
    label = Workflow.parse(rule).label
    for metric, x in short[label].items():
        assert np.array_equal(x, long[label][metric][:, :4]), metric
        assert np.array_equal(x[:, 0], reference.samples["replace"][metric][:, 0])
        assert np.isfinite(long[label][metric]).all()
    assert not np.array_equal(other[label]["test_nll"], short[label]["test_nll"])


def test_fresh_batches_do_not_shift_the_process_stream():
    # real=fresh and real=original consume the same PROCESS numbers: with one synthetic
    # batch and a subsample of one point, model 2 of both takes the same position of the
    # pool, so when that position is synthetic (drawn from the shared model 1) both agree
    n = 5
    runs = {real: simulate_gaussian(f"real={real},synthetic=latest,size=1", n=n, dim=2,
                                    iterations=2, replicates=400, seed=3)
            for real in ("original", "fresh")}
    same = runs["original"]["mean_sq_error"][:, 1] == runs["fresh"]["mean_sq_error"][:, 1]
    # P(the chosen point is synthetic) = 1/2; otherwise they differ almost surely
    assert 150 < same.sum() < 250


# --------------------------------------------------------------------------- KDE metrics


@pytest.mark.parametrize("rule, bandwidth", [
    ("real=fresh,synthetic=all", 0.5),  # running sums plus the fresh batch's terms
    ("real=none,synthetic=all", 0.5),  # running sums without the real batch
    ("real=original,synthetic=window:2", 0.5),
    ("real=original,synthetic=window:9", 0.5),  # a window that never fills
    ("real=original,synthetic=all,size=9,real-fraction=0.4", 0.5),
    ("fresh", "scott"),
])
def test_kde_metrics_equal_a_recomputation_from_the_training_sets(rule, bandwidth):
    truth = gaussian_truth(2)
    seen = {}

    def observer(t, d_t, h, heldout):
        seen.setdefault(t, []).append((np.array(d_t), h, np.array(heldout)))

    cfg = kde.make_config(rule, n=6, iterations=5, replicates=40, dim=2, bandwidth=bandwidth,
                          heldout=11, seed=2)
    out = kde._simulate(cfg, observer)
    parsed = Workflow.parse(rule)
    for t, parts in seen.items():
        d_t = np.concatenate([p[0] for p in parts])
        heldout = np.concatenate([p[2] for p in parts])
        h = parts[0][1]
        assert d_t.shape[1] == parsed.training_size(6, t)
        np.testing.assert_allclose(out["mise"][:, t - 1], kde.realised_mise(d_t, h, truth),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(out["test_nll"][:, t - 1], kde.heldout_nll(d_t, heldout, h),
                                   rtol=1e-9)
        if parsed.real == "original" and parsed.real_fraction is not None and t >= 2:
            m_r, _ = parsed.stratified_counts(6)
            real = np.concatenate([p[0] for p in seen[1]])
            # the first m_r points of D_t are real points, distinct, without replacement
            for r in range(d_t.shape[0]):
                rows = {tuple(x) for x in real[r]}
                assert all(tuple(x) in rows for x in d_t[r, :m_r])
                assert len({tuple(x) for x in d_t[r, :m_r]}) == m_r
                assert not any(tuple(x) in rows for x in d_t[r, m_r:])
