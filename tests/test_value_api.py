"""The value of synthetic data through the API and the command line (``collapse value``).

What is checked, none of it copied from the code under test:

* the Gaussian grid equals the closed form written below, to 1e-12 relative, for every
  ``n_r <= N`` and every ``n_s`` tried, through the API and the CSV of the command;
* the crossover is ``(N+1)/2``, solved here by sympy from that closed form; the cells that
  one synthetic point helps are those of the inequality derived from it by hand;
* Monte Carlo against theory at 2,000 replicates, on grids picked before any run
  (Gaussian ``N=30, d=3``, real sizes 0, 5, 15, 30, synthetic 0, 10, 60; KDE ``N=30, d=2,
  h=0.4``, real 0, 10, 30, synthetic 0, 10, 60, 20 held-out points; seed 2025): consistent
  at family-wise false-alarm rate 0.01 (one call per setting, so <= 2% in all), and
  inconsistent (exit 1) with the theory scaled by 1.05, with a power check (a cell whose
  shift under a 5% error clears the Bonferroni threshold by 2.33: power >= 99%; it is a
  ``cov_trace_ratio`` or ``mise`` cell: the Gaussian ``mean_sq_error`` alone is too
  variable to see a 5% error at 2,000 replicates);
* the Monte Carlo engines against literal loops written here (two-sample KS tests at
  family-wise false-alarm rate 1e-3 per test function) with negative controls (a
  generator fitted on the student's real points only; a KDE with the wrong bandwidth);
  the KDE's block kernel sums equal a refit of every cell on the same draws;
* streams: chunk-size invariance, the replicates of a whole block do not depend on how
  many follow, seeds differ; command line = API; bad input gives one line naming the
  option, exit 2.
"""

from __future__ import annotations

import io
import json
import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import collapse
from collapse.analysis.truths import gaussian_truth
from collapse.simulate import value as value_module
from collapse.simulate.cli import main
from collapse.simulate.kde import heldout_nll, realised_mise
from collapse.simulate.tables import VALUE_COMPARE_COLUMNS, VALUE_THEORY_COLUMNS, Table

ALPHA = 1e-3


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit:  # the argument parser's own errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def closed_form(big_n, n_r, n_s):
    """E||mu_student - mu0||^2 / (sigma2 d), MLE generator: the stated closed form."""
    return (n_r + n_s * Fraction(big_n - 1, big_n) + Fraction(n_s**2 + 2 * n_r * n_s, big_n)) \
        / (n_r + n_s) ** 2


SYNTHETIC = [0, 1, 2, 5, 13, 100, 10_000]


@pytest.mark.parametrize("big_n, dim, sigma2", [(2, 1, 1.0), (7, 3, 2.5), (20, 2, 0.3)])
def test_gaussian_grid_equals_the_closed_form(capsys, big_n, dim, sigma2):
    real = list(range(big_n + 1))
    result = collapse.value(collapse.Gaussian(dim=dim, sigma2=sigma2), generator_n=big_n,
                            real_sizes=real, synthetic_sizes=SYNTHETIC)
    grid = result.grid("mean_sq_error")
    for i, a in enumerate(real):
        for j, b in enumerate(SYNTHETIC):
            if a + b == 0:
                assert math.isnan(grid[i, j]) and (a, b) not in result.cells
                continue
            expected = float(dim * sigma2 * closed_form(big_n, a, b))
            assert grid[i, j] == pytest.approx(expected, rel=1e-12, abs=0)
    # the command's CSV holds the same numbers (repr floats: exact)
    code, out, _ = run(capsys, "value", "gaussian", "--generator-n", big_n, "--real-sizes",
                       ",".join(map(str, real)), "--synthetic-sizes",
                       ",".join(map(str, SYNTHETIC)), "--dim", dim, "--sigma2", sigma2,
                       "--format", "csv")
    table = Table.from_csv(io.StringIO(out))
    assert code == 0 and table.columns == VALUE_THEORY_COLUMNS
    rows = [r for r in table.records() if r["metric"] == "mean_sq_error"]
    assert len(rows) == len(real) * len(SYNTHETIC) - 1  # the empty cell (0, 0) is left out
    for r in rows:
        expected = float(dim * sigma2 * closed_form(big_n, r["real_size"], r["synthetic_size"]))
        assert r["value"] == pytest.approx(expected, rel=1e-12, abs=0)
    # negative control: the closed form of a generator with one point fewer differs
    assert any(grid[i, j] != pytest.approx(float(dim * sigma2 * closed_form(big_n - 1, a, b)),
                                           rel=1e-6)
               for i, a in enumerate(real[:-1]) for j, b in enumerate(SYNTHETIC) if a + b)


@pytest.mark.parametrize("big_n", [2, 9, 20, 101])
def test_crossover_is_half_of_n_plus_one(big_n):
    n, n_r, n_s = sp.symbols("N n_r n_s", positive=True)
    form = (n_r + n_s * (n - 1) / n + (n_s**2 + 2 * n_r * n_s) / n) / (n_r + n_s) ** 2
    slope = sp.together(sp.diff(form, n_s).subs(n_s, 0))
    root, = sp.solve(sp.numer(slope), n_r)
    assert sp.simplify(root - (n + 1) / 2) == 0
    result = collapse.value(collapse.Gaussian(), generator_n=big_n,
                            real_sizes=range(1, big_n + 1), synthetic_sizes=[0, 1])
    assert result.exact_crossover() == (big_n + 1) / 2 == float(root.subs(n, big_n))
    # one synthetic point: a(n_r, 1) < a(n_r, 0) iff 2 n_r^2 < N (n_r + 1) (from the form)
    helps = result.helps()[:, 1]
    for i, a in enumerate(range(1, big_n + 1)):
        assert bool(helps[i]) == (2 * a * a < big_n * (a + 1)), a
    # and every n_r below the crossover is helped, none at or above N
    assert helps[: math.ceil((big_n + 1) / 2) - 1].all() and not helps[-1]


def test_unbiased_crossover_and_the_kde_crossover():
    unbiased = collapse.value(collapse.Gaussian(covariance="unbiased"), generator_n=10,
                              real_sizes=[2, 10], synthetic_sizes=[0, 3])
    assert unbiased.exact_crossover() == 5.0
    kde = collapse.value(collapse.KDE(bandwidth=0.5), generator_n=50, real_sizes=[5, 50],
                         synthetic_sizes=[0, 1])
    crossover = kde.exact_crossover()
    # the smallest n_r at which one synthetic point does not lower the exact MISE
    from collapse.analysis.value import kde_value

    def mise(a, b):
        return kde_value(generator_n=50, real_size=a, synthetic_size=b, bandwidth=0.5,
                         truth=gaussian_truth(1))["mise"]

    first = next(a for a in range(1, 51) if mise(a, 1) >= mise(a, 0))
    assert crossover == first
    assert kde.exact_crossover("test_nll") is None


# --------------------------------------------------------------------------- Monte Carlo


GAUSSIAN_GRID = ["value", "gaussian", "--generator-n", 30, "--real-sizes", "0,5,15,30",
                 "--synthetic-sizes", "0,10,60", "--dim", 3]
KDE_GRID = ["value", "kde", "--generator-n", 30, "--real-sizes", "0,10,30",
            "--synthetic-sizes", "0,10,60", "--dim", 2, "--bandwidth", 0.4, "--heldout", 20]


@pytest.mark.parametrize("grid", [GAUSSIAN_GRID, KDE_GRID], ids=["gaussian", "kde"])
def test_monte_carlo_agrees_and_a_five_percent_error_is_caught(capsys, grid):
    base = [*grid, "--replicates", 2000, "--seed", 2025, "--format", "csv"]
    code, out, err = run(capsys, *base)
    table = Table.from_csv(io.StringIO(out))
    assert table.columns == VALUE_COMPARE_COLUMNS
    rows = table.records()
    assert code == 0, [r for r in rows if r["consistent"] is False]
    tested = [r for r in rows if r["z"] is not None]
    z_star = stats.norm.isf(0.01 / (2 * len(tested)))
    # power against a 5% error comes from the light-tailed metric: the squared mean error
    # of a 3-D student is about a chi-square with 3 degrees of freedom (sd / mean 0.8), so
    # at 2,000 replicates a 5% error moves its z by only about 2.7 (measured)
    shifts = [0.05 * r["theory"] / r["sem"] for r in tested]
    assert max(shifts) >= z_star + 2.33
    if grid is KDE_GRID:  # held-out NLL: Monte Carlo only, theory blank
        nll = [r for r in rows if r["metric"] == "test_nll"]
        assert nll and all(r["theory"] is None and r["z"] is None for r in nll)
        assert all(np.isfinite(r["mean"]) for r in nll)
    code, out, err = run(capsys, *base, "--theory-scale", 1.05)
    assert code == 1 and "INCONSISTENT" in err
    rejected = {r["metric"] for r in Table.from_csv(io.StringIO(out)).records()
                if r["consistent"] is False}
    assert rejected  # and the control is not a fluke of one metric's heavy tail
    assert rejected <= {"mean_sq_error", "cov_trace_ratio", "mise"}


def literal_gaussian(big_n, dim, cells, replicates, seed, own_generator=False):
    """Generator and students written plainly: np.cov fits, multivariate_normal samples."""
    rng = np.random.default_rng(seed)
    out = {cell: {"mean_sq_error": [], "cov_trace_ratio": []} for cell in cells}
    for _ in range(replicates):
        real = rng.standard_normal((big_n, dim))
        for a, b in cells:
            source = real[:a] if own_generator else real  # control: a generator of n_r points
            mean = source.mean(axis=0)
            cov = np.cov(source, rowvar=False, bias=True).reshape(dim, dim)
            student = np.concatenate([real[:a], rng.multivariate_normal(mean, cov, size=b)])
            mu = student.mean(axis=0)
            out[a, b]["mean_sq_error"].append(mu @ mu)
            out[a, b]["cov_trace_ratio"].append(
                np.trace(np.cov(student, rowvar=False, bias=True).reshape(dim, dim)) / dim)
    return out


def _law_failures(engine, plain, cells, metrics):
    pairs = [(cell, m, engine.samples[cell][m], np.asarray(plain[cell][m]))
             for cell in cells for m in metrics]
    level = ALPHA / len(pairs)
    return [(cell, m) for cell, m, x, y in pairs if stats.ks_2samp(x, y).pvalue < level]


GAUSSIAN_CELLS = [(4, 6), (12, 3), (12, 40)]


def test_gaussian_engine_matches_a_literal_loop():
    engine = collapse.value(collapse.Gaussian(dim=2), generator_n=12, real_sizes=[4, 12],
                            synthetic_sizes=[3, 6, 40], replicates=3000, seed=1)
    plain = literal_gaussian(12, 2, GAUSSIAN_CELLS, 800, seed=2)
    assert not _law_failures(engine, plain, GAUSSIAN_CELLS, ("mean_sq_error", "cov_trace_ratio"))
    # negative control: a generator fitted on the student's own real points only
    wrong = literal_gaussian(12, 2, GAUSSIAN_CELLS, 800, seed=2, own_generator=True)
    assert _law_failures(engine, wrong, GAUSSIAN_CELLS, ("mean_sq_error",))


def literal_kde(big_n, h, cells, replicates, seed, heldout=15):
    """KDE generator and students: parents by rng.integers, metrics by the module's
    realised_mise / heldout_nll on the explicitly assembled student."""
    rng = np.random.default_rng(seed)
    truth = gaussian_truth(2)
    out = {cell: {"mise": [], "test_nll": []} for cell in cells}
    real = rng.standard_normal((replicates, big_n, 2))
    held = rng.standard_normal((replicates, heldout, 2))
    for a, b in cells:
        parents = rng.integers(0, big_n, size=(replicates, b))
        synthetic = np.take_along_axis(real, parents[..., None], axis=1) \
            + 0.4 * rng.standard_normal((replicates, b, 2))
        student = np.concatenate([real[:, :a], synthetic], axis=1)
        out[a, b]["mise"] = realised_mise(student, h, truth)
        out[a, b]["test_nll"] = heldout_nll(student, held, h)
    return out


KDE_CELLS = [(0, 7), (5, 7), (20, 30)]


def test_kde_engine_matches_a_literal_loop():
    engine = collapse.value(collapse.KDE(dim=2, bandwidth=0.4, heldout=15), generator_n=20,
                            real_sizes=[0, 5, 20], synthetic_sizes=[7, 30], replicates=3000,
                            seed=3)
    plain = literal_kde(20, 0.4, KDE_CELLS, 1500, seed=4)
    assert not _law_failures(engine, plain, KDE_CELLS, ("mise", "test_nll"))
    # negative control: students whose kernel is 30% wider than the generator's
    wrong = literal_kde(20, 0.52, KDE_CELLS, 1500, seed=4)
    assert len(_law_failures(engine, wrong, KDE_CELLS, ("mise", "test_nll"))) >= 3


def test_kde_block_sums_equal_a_refit_of_every_cell(monkeypatch):
    args = dict(generator_n=15, real_sizes=[0, 4, 15], synthetic_sizes=[0, 3, 11],
                replicates=70, seed=5)
    problem = collapse.KDE(truth="blobs", bandwidth=0.6, heldout=13)
    fast = collapse.value(problem, **args)
    monkeypatch.setattr(value_module, "PREFIX_SUMS", False)
    refit = collapse.value(problem, **args)
    for cell in fast.cells:
        for metric in ("mise", "test_nll"):
            np.testing.assert_allclose(fast.samples[cell][metric], refit.samples[cell][metric],
                                       rtol=1e-9, atol=1e-13)
    other = collapse.value(problem, **{**args, "seed": 6})
    assert not np.allclose(other.samples[(4, 3)]["mise"], refit.samples[(4, 3)]["mise"])


@pytest.mark.parametrize("problem", [collapse.Gaussian(dim=3), collapse.Gaussian(dim=6),
                                     collapse.KDE(bandwidth="silverman", heldout=9),
                                     collapse.KDE(truth="moons", bandwidth=0.2, heldout=9)],
                         ids=["gaussian", "gaussian-singular", "kde-rule", "kde-moons"])
def test_streams_chunks_and_replicate_prefixes(problem):
    from collapse.simulate import streams

    args = dict(generator_n=5, real_sizes=[0, 2, 5], synthetic_sizes=[0, 4])
    block = streams.block_size(5 * problem.dim)  # replicates come in blocks of this many
    full = collapse.value(problem, replicates=2 * block + 22, seed=8, **args)
    chunked = collapse.value(problem, replicates=2 * block + 22, seed=8, chunk_size=1, **args)
    fewer = collapse.value(problem, replicates=block, seed=8, **args)  # one whole block
    other = collapse.value(problem, replicates=block, seed=9, **args)
    for cell in full.cells:
        for metric in full.metrics:
            x = full.samples[cell][metric]
            assert np.array_equal(x, chunked.samples[cell][metric])
            assert np.array_equal(x[:block], fewer.samples[cell][metric])
            assert np.isfinite(x).all()
    cell = full.cells[-1]
    assert not np.array_equal(other.samples[cell][full.metrics[0]],
                              fewer.samples[cell][full.metrics[0]])


# --------------------------------------------------------------------------- API and CLI


def test_cli_and_api_give_the_same_numbers_and_views(capsys, tmp_path):
    import matplotlib
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend()
    problem = collapse.KDE(truth="blobs", bandwidth=0.5, heldout=11)
    api = collapse.value(problem, generator_n=12, real_sizes=[0, 6, 12],
                         synthetic_sizes=[0, 8], replicates=64, seed=4)
    code, out, _ = run(capsys, "value", "kde", "--truth", "blobs", "--bandwidth", 0.5,
                       "--heldout", 11, "--generator-n", 12, "--real-sizes", "12,0,6",
                       "--synthetic-sizes", "8,0", "--replicates", 64, "--seed", 4,
                       "--format", "csv", "--plot", tmp_path / "grid.png")
    assert out == api.to_csv() and code == api.exit_status
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    frame = api.to_frame()
    assert tuple(frame.columns) == VALUE_COMPARE_COLUMNS
    assert frame["real_size"].dtype == "int64" and frame["consistent"].dtype == "boolean"
    payload = json.loads(api.to_json())
    assert "n" not in payload["problem"] and payload["settings"]["generator_n"] == 12
    assert payload["settings"]["real_sizes"] == [0, 6, 12]
    figure = api.plot()
    assert isinstance(figure, Figure) and len([a for a in figure.axes if a.get_title()]) == 2
    ax = Figure().subplots()
    assert api.plot(ax=ax, metric="test_nll") is ax and ax.collections
    assert matplotlib.get_backend() == backend
    text = api.summary()
    assert "mise (exact theory)" in text and "verdict:" in text
    with pytest.raises(collapse.CollapseError, match="metric must be one of mise, test_nll"):
        api.grid("accuracy")
    code, out, _ = run(capsys, "value", "gaussian", "--generator-n", 9, "--real-sizes", "2,8",
                       "--synthetic-sizes", "0,1")
    assert code == 0 and "exact crossover: a little synthetic data helps iff n_r < 5" in out


def test_untested_and_theory_only_results():
    moons = collapse.value(collapse.KDE(truth="moons", heldout=7), generator_n=8,
                           real_sizes=[4], synthetic_sizes=[0, 4], replicates=10)
    assert moons.metrics == ("test_nll",) and moons.verdict == "UNTESTED"
    assert moons.exit_status == 3 and not moons.consistent
    theory = collapse.value(collapse.Gaussian(), generator_n=8, real_sizes=[4],
                            synthetic_sizes=[0])
    assert theory.verdict is None and theory.exit_status == 0
    with pytest.raises(collapse.CollapseError, match="^replicates: this result has no Monte"):
        theory.mean()


@pytest.mark.parametrize("argv, option", [
    (["--generator-n", 1, "--real-sizes", 0, "--synthetic-sizes", 1], "--generator-n"),
    (["--generator-n", 5, "--real-sizes", "0,6", "--synthetic-sizes", 1], "--real-sizes"),
    (["--generator-n", 5, "--real-sizes", "0,x", "--synthetic-sizes", 1], "--real-sizes"),
    (["--generator-n", 5, "--real-sizes", 2, "--synthetic-sizes", "-1"], "--synthetic-sizes"),
    (["--generator-n", 5, "--real-sizes", 0, "--synthetic-sizes", 0], "--real-sizes"),
    (["--generator-n", 5, "--real-sizes", 2, "--synthetic-sizes", 1, "--replicates", 1],
     "--replicates"),
    (["--generator-n", 5, "--real-sizes", 2, "--synthetic-sizes", 1, "--dim", 0], "--dim"),
    (["--generator-n", 5, "--real-sizes", 2, "--synthetic-sizes", 1, "--plot", "/no/dir/a.png"],
     "--plot"),
    (["--generator-n", 5, "--real-sizes", 2, "--synthetic-sizes", 1, "--output", "/no/dir/a"],
     "--output"),
    (["--real-sizes", 2, "--synthetic-sizes", 1], "--generator-n"),
])
def test_bad_value_options_get_one_line_naming_the_option(capsys, argv, option):
    code, out, err = run(capsys, "value", "gaussian", *argv)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith("collapse: error:") and option in lines[0]


def test_kde_without_theory_needs_replicates(capsys):
    code, _, err = run(capsys, "value", "kde", "--truth", "moons", "--generator-n", 5,
                       "--real-sizes", 2, "--synthetic-sizes", 1)
    assert code == 2 and err.startswith("collapse: error: --replicates: this kde problem")
    with pytest.raises(collapse.CollapseError, match="^replicates"):
        collapse.value(collapse.KDE(bandwidth="scott"), generator_n=5, real_sizes=[2],
                       synthetic_sizes=[1])


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(generator_n=2.5), "generator_n"),
    (dict(real_sizes="1,2"), "real_sizes"),
    (dict(real_sizes=[]), "real_sizes"),
    (dict(synthetic_sizes=[True]), "synthetic_sizes"),
    (dict(replicates=10, seed=-1), "seed"),
    (dict(replicates=10, alpha=1.5), "alpha"),
    (dict(theory_scale=float("nan")), "theory_scale"),
])
def test_api_errors_name_the_parameter(kwargs, parameter):
    args = {**dict(generator_n=5, real_sizes=[2], synthetic_sizes=[1]), **kwargs}
    with pytest.raises(collapse.CollapseError) as info:
        collapse.value(collapse.Gaussian(), **args)
    assert str(info.value).startswith(parameter) and "\n" not in str(info.value)
    with pytest.raises(collapse.CollapseError, match="^problem must be a Gaussian or a KDE"):
        collapse.value("gaussian", generator_n=5, real_sizes=[2], synthetic_sizes=[1])
