"""`collapse theory|simulate|compare regression` and `collapse.Regression`: the contract.

The exact theory's derivation is checked in ``tests/test_regression.py``; here the
harness is: the command line gives the closed forms (the references are the formulas
written out in this file), the conditional theory given a design seed equals a trace
computed here from the design drawn by the documented recipe, divergent and
rank-deficient cases say so without NaN while the simulation still runs, ``compare``
passes on configurations that nothing was tuned on and rejects a theory 5% off
(negative control), the API and the command line agree, and bad input is one line
with exit status 2.

Monte Carlo checks use fixed seeds; each ``compare`` call holds its family-wise
false-alarm rate at ``alpha = 0.01``; the negative controls are 5% errors at 2,000
replicates, where a row's standard error is 1-3% of its mean for ``d >= 5``.
"""

import io
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from test_cli import assert_one_line_refusal, csv_records, run

import collapse
from collapse.simulate.tables import COMPARE_COLUMNS, SIMULATE_COLUMNS, THEORY_COLUMNS, Table


def series(records, workflow, metric="test_mse"):
    rows = sorted((r for r in records if r["workflow"] == workflow and r["metric"] == metric),
                  key=lambda r: r["iteration"])
    return [r["value"] for r in rows]


# --------------------------------------------------------------------------- theory


def test_theory_is_the_closed_form_for_a_thousand_iterations(capsys):
    # E tr (X^T X)^{-1} = d / (n - d - 1) (the inverse-Wishart mean); replace adds one
    # independent noise fit per step, accumulate averages t of them with weights 1/t.
    d, n, s2, T = 10, 100, 1, 1000
    scale = Fraction(s2 * d, n - d - 1)  # exact: 10/89
    for workflow in ("replace", "accumulate"):
        code, out, _ = run(capsys, "theory", "regression", "--workflow", workflow, "--dim",
                           str(d), "--n", str(n), "--sigma2", str(s2), "--iterations", str(T),
                           "--format", "csv")
        assert code == 0
        got = series(csv_records(out), workflow)
        assert len(got) == T
        partial = Fraction(0)
        for t, value in enumerate(got, start=1):
            partial += Fraction(1, t * t)
            expected = float(t * scale if workflow == "replace" else scale * partial)
            assert value == pytest.approx(expected, rel=1e-12, abs=0), (workflow, t)
        if workflow == "accumulate":
            # bounded by pi^2/6 times the first error, and within the tail 1/T of it
            bound = float(scale) * math.pi**2 / 6
            assert got[-1] < bound
            assert bound - got[-1] == pytest.approx(float(scale) / T, rel=2e-3)


def test_theory_columns_notes_and_the_pi_squared_bound(capsys):
    code, out, err = run(capsys, "theory", "regression", "--dim", "5", "--n", "30",
                         "--sigma2", "2", "--iterations", "4", "--format", "csv")
    assert code == 0
    table = Table.from_csv(io.StringIO(out))
    assert table.columns == THEORY_COLUMNS
    records = table.records()
    assert {r["workflow"] for r in records} == {"replace", "accumulate"}
    assert {r["metric"] for r in records} == {"test_mse"}
    assert "averaged over designs" in err
    assert "accumulate-subsample: test_mse has no exact theory" in err and "Monte Carlo only" in err
    bound = 2 * 5 / (30 - 5 - 1) * math.pi**2 / 6
    assert f"limit {bound:.6g}" in err


def _documented_design(n, dim, seed):
    """The design of ``--design-seed``, by the recipe stated in the docs."""
    rng = np.random.Generator(np.random.SFC64(np.random.SeedSequence(seed)))
    return rng.standard_normal((n, dim))


def test_design_seed_makes_the_theory_conditional_on_that_design(capsys):
    d, n, s2 = 4, 9, 0.5
    design = _documented_design(n, d, 7)
    trace = float(np.trace(np.linalg.inv(design.T @ design)))
    _, out, err = run(capsys, "theory", "regression", "--workflow", "replace", "--dim", str(d),
                      "--n", str(n), "--sigma2", str(s2), "--design-seed", "7",
                      "--iterations", "5", "--format", "csv")
    got = series(csv_records(out), "replace")
    assert got == pytest.approx([t * s2 * trace for t in range(1, 6)], rel=1e-10)
    assert "conditional on the given design" in err
    # another seed, another design, another value; no seed: the average over designs
    _, other, _ = run(capsys, "theory", "regression", "--workflow", "replace", "--dim", str(d),
                      "--n", str(n), "--sigma2", str(s2), "--design-seed", "8",
                      "--iterations", "1", "--format", "csv")
    assert series(csv_records(other), "replace")[0] != pytest.approx(got[0], rel=1e-3)
    averaged = collapse.theory(collapse.Regression(dim=d, n=n, sigma2=s2), "replace", 1)
    assert averaged.values["replace"]["test_mse"][0] == pytest.approx(s2 * d / (n - d - 1))


def test_the_simulation_uses_the_same_design_for_every_replicate_and_seed():
    problem = collapse.Regression(dim=3, n=12, design_seed=2)
    a = collapse.simulate(problem, "replace", 1, 4000, 0).samples["replace"]["test_mse"][:, 0]
    # given X, test_mse_1 = sigma2 * (weighted chi-square) with mean sigma2 tr (X^T X)^{-1}
    design = _documented_design(12, 3, 2)
    trace = float(np.trace(np.linalg.inv(design.T @ design)))
    assert abs(a.mean() - trace) < 4 * a.std() / math.sqrt(a.size)
    cmp = collapse.compare(problem, "replace,accumulate", 10, 2000, 3)
    assert cmp.consistent, cmp.summary()
    # negative control: the design-averaged theory is a different number for this design
    wrong = collapse.compare(collapse.Regression(dim=3, n=12), "replace", 1, 2000, 3)
    assert wrong.theory.values["replace"]["test_mse"][0] != pytest.approx(trace, rel=0.05)


@pytest.mark.parametrize("n, dim, expect", [(10, 10, "inf"), (11, 10, "inf"), (9, 10, "inf"),
                                            (6, 10, "bias")])
def test_small_n_is_infinite_or_biased_with_a_note_and_still_simulates(capsys, n, dim, expect):
    code, out, err = run(capsys, "theory", "regression", "--dim", str(dim), "--n", str(n),
                         "--iterations", "3", "--format", "csv")
    assert code == 0 and "nan" not in out.lower()
    values = series(csv_records(out), "replace")
    if expect == "inf":
        assert values == [math.inf] * 3 and "diverges" in err
    else:
        # n <= d - 2: E tr (X X^T)^{-1} = n / (d - n - 1), plus the bias d - n
        assert values == pytest.approx([t * n / (dim - n - 1) + (dim - n) for t in (1, 2, 3)])
        assert "bias d - rank = 4" in err
    code, out, _ = run(capsys, "simulate", "regression", "--dim", str(dim), "--n", str(n),
                       "--iterations", "3", "--replicates", "50", "--format", "csv")
    assert code == 0
    table = Table.from_csv(io.StringIO(out))
    assert table.columns == SIMULATE_COLUMNS
    assert all(math.isfinite(r["mean"]) and r["mean"] > 0 for r in table.records())


# --------------------------------------------------------------------------- compare


@pytest.mark.parametrize("argv", [
    ["--dim", "5", "--n", "40", "--sigma2", "0.3", "--iterations", "12", "--seed", "21"],
    ["--dim", "20", "--n", "8", "--sigma2", "4", "--iterations", "6", "--seed", "22"],
])
def test_compare_passes_on_untuned_configurations_and_rejects_a_5_percent_error(capsys, argv):
    base = ["compare", "regression", "--workflow", "all", "--replicates", "2000", *argv]
    code, out, _ = run(capsys, *base, "--format", "csv")
    assert code == 0
    table = Table.from_csv(io.StringIO(out))
    assert table.columns == COMPARE_COLUMNS
    tested = [r for r in table.records() if r["z"] is not None]
    assert len(tested) >= 10 and all(r["consistent"] for r in tested)
    assert all(r["theory"] is None for r in table.records()
               if r["workflow"] == "accumulate-subsample")
    code, out, _ = run(capsys, *base, "--theory-scale", "1.05")
    assert code == 1 and "INCONSISTENT" in out


def test_api_and_cli_give_the_same_csv(capsys):
    problem = collapse.Regression(dim=3, n=15, sigma2=0.7, design_seed=4)
    api = collapse.compare(problem, "all", 5, 60, 9).to_csv()
    code, out, _ = run(capsys, "compare", "regression", "--dim", "3", "--n", "15", "--sigma2",
                       "0.7", "--design-seed", "4", "--iterations", "5", "--replicates", "60",
                       "--seed", "9", "--format", "csv")
    assert code in (0, 1, 3) and out == api
    payload = json.loads(collapse.theory(problem, "replace", 2).to_json())
    assert payload["problem"] == {"dim": 3, "n": 15, "sigma2": 0.7, "design_seed": 4}


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("argv, option", [
    (["theory", "regression", "--sigma2", "-1"], "--sigma2"),
    (["theory", "regression", "--sigma2", "0"], "--sigma2"),
    (["theory", "regression", "--n", "1"], "--n"),
    (["simulate", "regression", "--dim", "0"], "--dim"),
    (["theory", "regression", "--design-seed", "-2"], "--design-seed"),
    (["simulate", "regression", "--sigma2", "1e-20"], "--sigma2"),
    (["compare", "regression", "--dim", "1.5"], "--dim"),
    (["theory", "regression", "--sigma2", "nan"], "--sigma2"),
    (["simulate", "regression", "--sigma2", "inf"], "--sigma2"),
    (["theory", "regression", "--sigma2=-inf"], "--sigma2"),
    (["theory", "regression", "--n", "nan"], "--n"),
    (["theory", "regression", "--dim", "inf"], "--dim"),
])
def test_bad_input_is_one_line_exit_2(argv, option):
    assert_one_line_refusal(argv, option)


@pytest.mark.parametrize("make, parameter", [
    (lambda: collapse.Regression(sigma2=-1.0), "sigma2"),
    (lambda: collapse.Regression(n=1), "n"),
    (lambda: collapse.Regression(dim=True), "dim"),
    (lambda: collapse.Regression(design_seed=-1), "design_seed"),
    (lambda: collapse.Regression(sigma2=float("nan")), "sigma2"),
    (lambda: collapse.Regression(sigma2=float("inf")), "sigma2"),
    (lambda: collapse.Regression(n=float("nan")), "n"),
    (lambda: collapse.simulate(collapse.Regression(sigma2=1e-20), "replace", 2, 10), "sigma2"),
])
def test_api_bad_input_names_the_parameter(make, parameter):
    with pytest.raises(collapse.CollapseError) as info:
        make()
    assert str(info.value).startswith(parameter) and "\n" not in str(info.value)


def test_tiny_noise_is_exact_in_theory_and_refused_only_by_the_monte_carlo():
    from collapse.simulate.regression import simulate_regression
    from collapse.simulate.setting_regression import MIN_SIMULATED_SIGMA2

    problem = collapse.Regression(dim=2, n=10, sigma2=1e-60)
    value = collapse.theory(problem, "replace", 1).values["replace"]["test_mse"][0]
    assert value == pytest.approx(1e-60 * 2 / 7, rel=1e-12, abs=0)
    # The same random numbers at sigma2 and at 1: w_hat - w is linear in the noise, so
    # test_mse / sigma2 is the same number but for float64 rounding of X w.  At the
    # smallest sigma2 the Monte Carlo accepts, rounding is below 1e-4 of every replicate;
    # negative control: far below it (the engine called directly) rounding dominates.
    def ratio(sigma2, workflow):
        args = dict(dim=5, n=40, iterations=4, replicates=100, seed=1)
        small = simulate_regression(workflow, sigma2=sigma2, **args)["test_mse"]
        unit = simulate_regression(workflow, sigma2=1.0, **args)["test_mse"]
        return float(np.abs(small / sigma2 / unit - 1).max())

    for workflow in ("replace", "accumulate-subsample"):
        assert ratio(MIN_SIMULATED_SIGMA2, workflow) < 1e-4
        assert ratio(MIN_SIMULATED_SIGMA2 * 1e-8, workflow) > 1e-2
