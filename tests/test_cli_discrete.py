"""`collapse theory|simulate|compare discrete` and `collapse.Discrete`: the contract.

The exact theory's derivation is checked in ``tests/test_discrete.py`` (brute-force
enumeration); here the harness is: the command line gives the Gini-Simpson closed forms
(written out in this file) for a thousand iterations, the expected collapse time in the
theory's notes equals a chain of full count vectors built here and the Monte Carlo's
collapse time read from the CSV lies within 15% of the authors' measured 17 iterations,
``compare`` passes on untuned configurations and rejects a theory 5% off (negative
control), tests the 0/1 ``collapsed`` rows exactly, never takes a collapsed diversity
for underflow, and bad input is one line with exit status 2.

Monte Carlo checks use fixed seeds; each ``compare`` holds its family-wise false-alarm
rate at ``alpha = 0.01``; at 2,000 replicates a 5% error of the diversity at ``t = 1``
is tens of standard errors.
"""

import io
import itertools
import math
import re

import numpy as np
import pytest
from scipy import stats as sps
from test_cli import assert_one_line_refusal, csv_records, run

import collapse
from collapse.simulate.cli_options import argv_for
from collapse.simulate.stats import _binomial_test
from collapse.simulate.stats import compare as stats_compare
from collapse.simulate.tables import COMPARE_COLUMNS, THEORY_COLUMNS, Table


def series(records, workflow, metric):
    rows = sorted((r for r in records if r["workflow"] == workflow and r["metric"] == metric),
                  key=lambda r: r["iteration"])
    return [r["value"] if "value" in r else r["mean"] for r in rows]


# --------------------------------------------------------------------------- theory


def test_gini_diversity_is_the_closed_form_for_a_thousand_iterations(capsys):
    # Wright-Fisher: each multinomial step keeps a fraction 1 - 1/n of the diversity in
    # expectation; accumulate averages s batches at step s, so only 1/(n s^2) is lost.
    K, n, T = 10, 10, 1000
    h0 = 1 - 1 / K
    for workflow in ("replace", "accumulate"):
        code, out, _ = run(capsys, "theory", "discrete", "--categories", str(K), "--n", str(n),
                           "--workflow", workflow, "--iterations", str(T), "--format", "csv")
        assert code == 0
        got = series(csv_records(out), workflow, "gini_diversity")
        assert len(got) == T
        product = 1.0
        for t, value in enumerate(got, start=1):
            product *= 1 - 1 / (n * t * t)
            expected = h0 * (1 - 1 / n) ** t if workflow == "replace" else h0 * product
            assert value == pytest.approx(expected, rel=1e-12, abs=0), (workflow, t)
    # accumulate tends to H0 sin(pi x)/(pi x), x = 1/sqrt(n): Euler's product for the sine
    x = 1 / math.sqrt(n)
    assert got[-1] == pytest.approx(h0 * math.sin(math.pi * x) / (math.pi * x), rel=2e-4)


def test_theory_metrics_columns_and_notes(capsys):
    code, out, err = run(capsys, "theory", "discrete", "--iterations", "3", "--format", "csv")
    assert code == 0
    table = Table.from_csv(io.StringIO(out))
    assert table.columns == THEORY_COLUMNS
    metrics = {w: {r["metric"] for r in table.records() if r["workflow"] == w}
               for w in ("replace", "accumulate", "accumulate-subsample")}
    assert metrics["replace"] == {"gini_diversity", "entropy", "surviving_categories",
                                  "collapsed"}
    assert "tv_distance" not in set().union(*metrics.values())
    assert "tv_distance has no exact theory" in err
    # the defaults: ten equally likely categories, n = 10 (the first model has n points)
    first = {r["metric"]: r["value"] for r in table.records()
             if r["workflow"] == "replace" and r["iteration"] == 1}
    assert first["gini_diversity"] == pytest.approx(0.9 * 0.9)
    assert first["collapsed"] == pytest.approx(10 * 0.1**10)
    # E #surviving = K (1 - (1 - 1/K)^n) for the real sample
    assert first["surviving_categories"] == pytest.approx(10 * (1 - 0.9**10), rel=1e-12)


def full_chain_collapse_time(n, p0):
    """E T = 1 + sum_t P(not collapsed at t) from the chain of full count vectors."""
    K = len(p0)
    states = [c for c in itertools.product(range(n + 1), repeat=K) if sum(c) == n]
    index = {s: i for i, s in enumerate(states)}
    P = np.zeros((len(states), len(states)))
    for s in states:
        for c in states:
            P[index[s], index[c]] = sps.multinomial.pmf(c, n, np.array(s) / n)
    alive = [i for i, s in enumerate(states) if sum(v > 0 for v in s) > 1]
    tau = np.linalg.solve(np.eye(len(alive)) - P[np.ix_(alive, alive)], np.ones(len(alive)))
    first = np.array([sps.multinomial.pmf(states[i], n, p0) for i in alive])
    return 1.0 + float(first @ tau)


def _note_number(notes, label):
    text = " ".join(notes)
    return float(re.search(label + r" = ([0-9.e+-]+)", text)[1])


def test_collapse_time_notes_exact_and_kimura(capsys):
    p0 = [0.5, 0.3, 0.2]
    code, _, err = run(capsys, "theory", "discrete", "--truth", "0.5,0.3,0.2", "--n", "5",
                       "--workflow", "replace", "--iterations", "2", "--format", "csv")
    assert code == 0
    notes = [line for line in err.splitlines() if "collapse" in line]
    assert _note_number(notes, "exact E T") == pytest.approx(full_chain_collapse_time(5, p0),
                                                             rel=1e-5)
    kimura = -2 * 5 * sum((1 - p) * math.log(1 - p) for p in p0)
    assert _note_number(notes, r"ln\(1 - p_i\)") == pytest.approx(kimura, rel=1e-5)
    # accumulate keeps the real sample: it collapses only if the sample had one category
    _, _, err = run(capsys, "theory", "discrete", "--workflow", "accumulate",
                    "--iterations", "2", "--format", "csv")
    assert "expected time to total collapse" not in err and "sum_i p_i^n" in err


def test_simulated_collapse_time_from_the_csv_is_near_the_authors_17(capsys):
    # the authors ran replace until entropy < 1e-8 (K = 10, uniform, n = 10): about 17
    code, out, err = run(capsys, "simulate", "discrete", "--categories", "10", "--n", "10",
                         "--workflow", "replace", "--iterations", "300", "--replicates", "4000",
                         "--seed", "3", "--format", "csv")
    assert code == 0
    collapsed = series(csv_records(out), "replace", "collapsed")
    assert collapsed[-1] == 1.0  # every replicate has collapsed: the sum below is complete
    time = 1 + sum(1 - c for c in collapsed)
    assert abs(time / 17 - 1) < 0.15
    # the simulation's note gives the same number with its standard error
    mean = _note_number([err], r"1 \+ sum_t \(1 - mean collapsed_t\)")
    assert mean == pytest.approx(time, rel=1e-5)
    # beside the exact value (within 4 standard errors of about 0.16)
    theory = collapse.theory(collapse.Discrete(), "replace", 1)
    assert abs(_note_number(list(theory.notes), "exact E T") - time) < 4 * 0.16


# --------------------------------------------------------------------------- compare


@pytest.mark.parametrize("argv", [
    ["--categories", "6", "--truth", "zipf", "--n", "15", "--iterations", "25", "--seed", "31"],
    ["--truth", "0.45,0.3,0.15,0.1", "--n", "7", "--iterations", "30", "--seed", "32"],
])
def test_compare_passes_on_untuned_configurations_and_rejects_a_5_percent_error(capsys, argv):
    base = ["compare", "discrete", "--workflow", "all", "--replicates", "2000", *argv]
    code, out, _ = run(capsys, *base, "--format", "csv")
    assert code == 0
    table = Table.from_csv(io.StringIO(out))
    assert table.columns == COMPARE_COLUMNS
    tested = [r for r in table.records() if r["z"] is not None]
    assert len(tested) >= 100 and all(r["consistent"] for r in tested)
    assert {r["metric"] for r in tested} >= {"gini_diversity", "entropy",
                                             "surviving_categories", "collapsed"}
    code, out, _ = run(capsys, *base, "--theory-scale", "1.05")
    assert code == 1 and "INCONSISTENT" in out


def test_collapsed_rows_are_exact_binomial_tests():
    # replace, K = 2: P(collapsed) rises from 2^-n to 1; every row is tested, even where
    # all replicates agree (p near 0 or near 1), and none is taken for underflow
    problem = collapse.Discrete(categories=2, n=4)
    result = collapse.compare(problem, "replace", 25, 2000, 5)
    assert result.consistent, result.summary()
    status = dict(zip(((r[3], r[2]) for r in result.table.rows), result.statistics.status))
    assert all(status["collapsed", t] == "tested" for t in range(1, 26))
    assert "underflow" not in result.statistics.status
    assert result.statistics.binomial == 25
    # negative control: without the setting's options, collapsed replicates (diversity
    # exactly 0) read as underflow and the 0/1 rows as heavy-tailed means
    samples = result.simulation.samples
    plain = stats_compare("discrete", result.theory.values, samples,
                          lower_bounds={"gini_diversity": 0.0, "collapsed": 0.0})
    assert "underflow" in plain.status and plain.binomial == 0


def test_binomial_test_by_hand():
    # p = 0: any one is impossible; a rare event with no ones agrees; p outside [0, 1]
    # is a wrong theory whatever the sample
    assert _binomial_test(0, 2000, 0.0) == (0.0, 1.0)
    assert _binomial_test(1, 2000, 0.0)[1] == 0.0
    assert _binomial_test(0, 2000, 1e-9)[1] == 1.0
    assert _binomial_test(2000, 2000, 1.05)[1] == 0.0
    assert _binomial_test(0, 2000, -0.1)[1] == 0.0
    # the two-sided exact p-value: sum of P(k) <= P(observed), written out here
    R, p, ones = 40, 0.3, 19
    pmf = sps.binom.pmf(np.arange(R + 1), R, p)
    expected = pmf[pmf <= pmf[ones] * (1 + 1e-7)].sum()
    z, pvalue = _binomial_test(ones, R, p)
    assert pvalue == pytest.approx(expected, rel=1e-9)
    assert z == pytest.approx((ones / R - p) / math.sqrt(p * (1 - p) / R))


def test_indicator_rows_detect_a_wrong_probability():
    # 2,000 Bernoulli(0.4) replicates: p = 0.4 agrees, p = 0.44 (10% off, 5 standard
    # errors) is rejected; without `binary` the same rows take the t-test path
    rng = np.random.default_rng(0)
    x = (rng.random((2000, 3)) < 0.4).astype(float)
    right = stats_compare("discrete", {"w": {"collapsed": [0.4] * 3}}, {"w": {"collapsed": x}},
                          binary=("collapsed",))
    wrong = stats_compare("discrete", {"w": {"collapsed": [0.44] * 3}}, {"w": {"collapsed": x}},
                          binary=("collapsed",))
    assert right.consistent and not wrong.consistent and right.binomial == 3
    plain = stats_compare("discrete", {"w": {"collapsed": [0.4] * 3}}, {"w": {"collapsed": x}})
    assert plain.binomial == 0


def test_api_and_cli_give_the_same_numbers_for_a_truth_vector(capsys):
    # thirds do not survive a short decimal: the command must carry every digit
    problem = collapse.Discrete(truth=(1 / 3, 1 / 3, 1 / 3), n=6)
    argv = argv_for("simulate", problem, "replace", iterations=4, replicates=64, seed=2)
    code, out, _ = run(capsys, *argv, "--format", "csv")
    assert code == 0
    assert out == collapse.simulate(problem, "replace", 4, 64, 2).to_csv()
    assert problem.categories == 3 and problem.truth == (1 / 3, 1 / 3, 1 / 3)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("argv, option", [
    (["theory", "discrete", "--categories", "1"], "--categories"),
    (["theory", "discrete", "--n", "1"], "--n"),
    (["theory", "discrete", "--truth", "0.5,0.6"], "--truth"),
    (["simulate", "discrete", "--truth", "0.5,abc"], "--truth"),
    (["theory", "discrete", "--truth", "geometric"], "--truth"),
    (["theory", "discrete", "--truth", "0.5,0.5", "--categories", "3"], "--truth"),
    (["compare", "discrete", "--truth", "1.5,-0.5"], "--truth"),
    (["theory", "discrete", "--truth", "1"], "--truth"),
    (["simulate", "discrete", "--n", "1e10", "--iterations", "3", "--replicates", "4"],
     "--n"),
    (["theory", "discrete", "--truth", "0.5,nan"], "--truth"),
    (["simulate", "discrete", "--truth", "inf,0"], "--truth"),
    (["theory", "discrete", "--categories", "inf"], "--categories"),
    (["theory", "discrete", "--n", "nan"], "--n"),
    # pools beyond 64-bit counts (a numpy OverflowError traceback before)
    (["simulate", "discrete", "--n", str(2**63), "--iterations", "3", "--replicates", "4"],
     "--n"),
    (["simulate", "discrete", "--n", str(2**61), "--workflow", "accumulate", "--iterations",
      "4", "--replicates", "4"], "--n"),
])
def test_bad_input_is_one_line_exit_2(argv, option):
    assert_one_line_refusal(argv, option)


@pytest.mark.parametrize("make, parameter", [
    (lambda: collapse.Discrete(categories=1), "categories"),
    (lambda: collapse.Discrete(n=1), "n"),
    (lambda: collapse.Discrete(truth=(0.5, 0.6)), "truth"),
    (lambda: collapse.Discrete(truth=(0.5, float("nan"))), "truth"),
    (lambda: collapse.Discrete(truth=(float("inf"), 0.0)), "truth"),
    (lambda: collapse.Discrete(categories=float("inf")), "categories"),
    (lambda: collapse.Discrete(n=float("nan")), "n"),
    (lambda: collapse.Discrete(truth="geometric"), "truth"),
    (lambda: collapse.Discrete(truth=(0.5, 0.5), categories=4), "truth"),
    (lambda: collapse.Discrete(truth=("a", "b")), "truth"),
])
def test_api_bad_input_names_the_parameter(make, parameter):
    with pytest.raises(collapse.CollapseError) as info:
        make()
    assert str(info.value).startswith(parameter) and "\n" not in str(info.value)
