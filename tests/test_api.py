"""The Python API: one import name, the documented example, results objects, one harness.

The checks that matter to a notebook user: the package installs under ``collapse``
alone, the example of the front page runs outside the repository, the API and the
command line give the same numbers for the same options and seed, the first ``t``
iterations never depend on how many were asked for, plots never change matplotlib's
backend, and bad arguments raise the one error type naming the parameter.
"""

import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import collapse
from collapse.simulate.cli import main
from collapse.simulate.tables import COMPARE_COLUMNS, SIMULATE_COLUMNS, THEORY_COLUMNS, Table

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A regular (non-editable) install of the project, without its dependencies."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    return target


def test_regular_install_has_one_top_level_name(installed):
    names = sorted(p.name for p in installed.iterdir()
                   if not p.name.endswith((".dist-info", "__pycache__")) and p.name != "bin")
    assert names == ["collapse"]
    assert {p.name for p in (installed / "collapse").iterdir()} >= {"analysis", "simulate", "lm"}


def test_front_page_example_runs_outside_the_repository(installed, tmp_path):
    script = textwrap.dedent("""
        import importlib.util, json, sys
        import collapse
        assert collapse.__file__.startswith(sys.argv[1]), collapse.__file__
        assert importlib.util.find_spec("analysis") is None
        assert importlib.util.find_spec("simulate") is None and importlib.util.find_spec("lm") is None
        problem = collapse.Gaussian(dim=10, n=100)
        th = collapse.theory(problem, workflow="all", iterations=100)
        mc = collapse.simulate(problem, workflow="accumulate-subsample", iterations=100,
                               replicates=200, seed=0)
        cmp = collapse.compare(problem, workflow="all", iterations=20, replicates=400, seed=0)
        frame = cmp.to_frame()
        print(json.dumps({"columns": list(frame.columns), "consistent": cmp.consistent,
                          "csv": cmp.to_csv(), "summary": cmp.summary()}))
    """)
    env = dict(os.environ, PYTHONPATH=str(installed))
    proc = subprocess.run([sys.executable, "-c", script, str(installed)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert tuple(out["columns"]) == COMPARE_COLUMNS
    assert out["consistent"] is True
    # ... and the numbers equal the command line's for the same options and seed
    buffer = io.StringIO()
    sys_stdout = sys.stdout
    try:
        sys.stdout = buffer
        code = main(["compare", "gaussian", "--dim", "10", "--n", "100", "--iterations", "20",
                     "--replicates", "400", "--seed", "0", "--format", "csv"])
    finally:
        sys.stdout = sys_stdout
    assert code == 0
    assert buffer.getvalue() == out["csv"]


@pytest.mark.parametrize("command, columns", [("theory", THEORY_COLUMNS),
                                              ("simulate", SIMULATE_COLUMNS),
                                              ("compare", COMPARE_COLUMNS)])
def test_cli_and_api_give_identical_csv(capsys, command, columns):
    problem = collapse.KDE(truth="blobs", n=12, bandwidth=0.4)
    call = {"theory": lambda: collapse.theory(problem, "all", 4),
            "simulate": lambda: collapse.simulate(problem, "all", 4, 48, 3),
            "compare": lambda: collapse.compare(problem, "all", 4, 48, 3)}[command]
    api = call().to_csv()
    code = main([command, "kde", "--truth", "blobs", "--n", "12", "--bandwidth", "0.4",
                 "--iterations", "4", "--replicates", "48", "--seed", "3", "--format", "csv"])
    out, _ = capsys.readouterr()
    assert code in (0, 1, 3)
    assert out == api
    assert Table.from_csv(io.StringIO(out)).columns == columns


@pytest.mark.parametrize("problem, engines", [
    (collapse.Gaussian(dim=3, n=8), ("auto", "stats", "points")),
    (collapse.Gaussian(dim=6, n=4), ("auto", "stats", "points")),  # singular covariances
    (collapse.KDE(n=9, bandwidth=0.3), ("auto",)),
    (collapse.KDE(n=9, bandwidth="silverman", truth="moons", heldout=50), ("auto",)),
    (collapse.Regression(dim=3, n=8), ("auto",)),
    (collapse.Regression(dim=6, n=4, design_seed=1), ("auto",)),  # rank-deficient design
    (collapse.Discrete(categories=4, n=6), ("auto",)),
    (collapse.Discrete(truth=(0.7, 0.2, 0.1), n=30), ("auto",)),  # subsets by hypergeometric
])
def test_first_iterations_do_not_depend_on_the_iteration_count(problem, engines):
    for workflow in ("replace", "accumulate", "accumulate-subsample"):
        for engine in engines:
            if engine == "stats" and workflow == "accumulate-subsample":
                continue
            short = collapse.simulate(problem, workflow, 5, 70, 11, engine=engine)
            long = collapse.simulate(problem, workflow, 50, 70, 11, engine=engine,
                                     chunk_size=1)
            for metric, x in short.samples[workflow].items():
                y = long.samples[workflow][metric]
                assert np.array_equal(x, y[:, :5]), (workflow, engine, metric)
            # negative control: another seed differs from iteration 1 on
            other = collapse.simulate(problem, workflow, 5, 70, 12, engine=engine)
            first = next(iter(short.samples[workflow]))
            assert not np.array_equal(other.samples[workflow][first][:, 0],
                                      short.samples[workflow][first][:, 0])


def test_results_carry_problem_settings_and_views(tmp_path):
    problem = collapse.Gaussian(dim=2, n=20)
    cmp = collapse.compare(problem, "replace,accumulate", 6, 300, 1)
    assert cmp.problem is problem and cmp.iterations == 6
    assert [w.label for w in cmp.workflows] == ["replace", "accumulate"]
    frame = cmp.to_frame()
    assert isinstance(frame, pd.DataFrame) and tuple(frame.columns) == COMPARE_COLUMNS
    assert len(frame) == len(cmp.table.rows)
    assert frame["consistent"].dtype == "boolean"
    assert frame.loc[frame["metric"] == "cov_det_ratio", "theory"].notna().sum() == 6  # replace
    cmp.to_csv(tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text() == cmp.to_csv()
    cmp.to_json(tmp_path / "c.json")
    payload = json.loads((tmp_path / "c.json").read_text())
    assert payload["problem"] == {"dim": 2, "n": 20, "sigma2": 1.0, "covariance": "mle"}
    assert payload["settings"]["replicates"] == 300 and payload["command"] == "compare"
    text = cmp.summary()
    assert "verdict: CONSISTENT" in text and "rows tested" in text
    assert cmp.simulation.samples["replace"]["mean_sq_error"].shape == (300, 6)


def test_plot_never_changes_the_backend(tmp_path):
    import matplotlib
    from matplotlib.figure import Figure

    before = matplotlib.get_backend()
    result = collapse.compare(collapse.Gaussian(n=10), "all", 4, 100, 0)
    figure = result.plot()
    # five metrics, and replace's exact log-det quartiles on one more panel
    assert isinstance(figure, Figure) and len(figure.axes) == 6
    assert figure.axes[-1].get_title() == "log_cov_det_ratio_quantiles"
    assert "quantiles" in figure.axes[-1].get_ylabel()
    ax = Figure().subplots()
    assert result.plot(ax=ax, metric="mean_sq_error") is ax
    assert ax.get_ylabel() and ax.lines
    result.save_plot(tmp_path / "curves.svg")
    assert (tmp_path / "curves.svg").read_text().lstrip().startswith("<?xml")
    assert matplotlib.get_backend() == before
    with pytest.raises(collapse.CollapseError, match="plot"):
        result.save_plot(tmp_path / "curves.jpeg")


def test_untested_comparison_is_never_consistent():
    # moons has no exact theory: nothing can be tested, so the verdict says so
    result = collapse.compare(collapse.KDE(truth="moons", n=10, heldout=20), "replace", 3, 20, 0)
    assert result.tested == 0 and result.verdict == "UNTESTED"
    assert not result.consistent and result.exit_status == 3


@pytest.mark.parametrize("make, parameter", [
    (lambda: collapse.Gaussian(dim=1.5), "dim"),
    (lambda: collapse.Gaussian(sigma2=True), "sigma2"),
    (lambda: collapse.Gaussian(sigma2=float("nan")), "sigma2"),
    (lambda: collapse.KDE(bandwidth=None), "bandwidth"),
    (lambda: collapse.KDE(sigma0=float("inf")), "sigma0"),
    (lambda: collapse.KDE(truth="blobs", sigma0=2), "sigma0"),
    (lambda: collapse.KDE(truth="blobs", dim=3), "dim"),
    (lambda: collapse.compare(collapse.Gaussian(), alpha="0.1"), "alpha"),
    (lambda: collapse.simulate(collapse.Gaussian(), iterations=1.5), "iterations"),
    (lambda: collapse.simulate(collapse.Gaussian(), seed=1.5), "seed"),
    (lambda: collapse.simulate(collapse.Gaussian(), engine="fast"), "engine"),
    (lambda: collapse.theory(collapse.Gaussian(), workflow="sometimes"), "workflow"),
    (lambda: collapse.theory("gaussian"), "problem"),
    (lambda: collapse.compare(collapse.Gaussian(), replicates=1), "replicates"),
    # the documented minimum for compare is 10 (simulate accepts fewer)
    (lambda: collapse.compare(collapse.Gaussian(), replicates=9), "replicates"),
    (lambda: collapse.Regression(sigma2=-1), "sigma2"),
    (lambda: collapse.Discrete(truth=(0.2, 0.2)), "truth"),
    (lambda: collapse.simulate(collapse.Discrete(), chunk_size=0), "chunk_size"),
])
def test_bad_arguments_raise_the_one_error_naming_the_parameter(make, parameter):
    with pytest.raises(collapse.CollapseError) as info:
        make()
    message = str(info.value)
    assert message.startswith(parameter) and "\n" not in message


def test_registering_a_setting_keeps_the_built_in_ones():
    # in a fresh interpreter, so that nothing has loaded the built-in settings yet
    code = textwrap.dedent("""
        from collapse.simulate.settings import Setting, register, settings
        class Toy(Setting):
            name = "toy"
        register(Toy())
        print(sorted(settings()))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT / "tests")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['discrete', 'gaussian', 'kde', 'regression', 'toy']"


def test_architecture_imports_point_one_way():
    # analysis imports neither simulate nor lm; lm uses only simulate's shared tables,
    # statistics, results and plotting; the design note is never cited.
    allowed = {"tables", "stats", "results", "plotting"}
    upward = re.compile(r"^\s*(from|import) collapse\.(simulate|lm)\b", re.M)
    for path in (ROOT / "analysis").glob("*.py"):
        assert not upward.search(path.read_text()), path
    pattern = re.compile(r"^\s*(?:from collapse\.simulate(?:\.(\w+))? import ([\w, ]+)"
                         r"|import collapse\.simulate\.(\w+))", re.M)
    for path in (ROOT / "lm").glob("*.py"):
        for match in pattern.finditer(path.read_text()):
            if match[1] or match[3]:
                modules = {match[1] or match[3]}
            else:
                modules = {name.strip() for name in match[2].split(",")}
            assert modules <= allowed, (path, match[0])
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    note = "DESIGN" + ".md"  # spelled in two parts so that this file does not cite it
    cited = [name for name in tracked if (ROOT / name).is_file()
             and note in (ROOT / name).read_text(errors="ignore")]
    assert cited == []


def test_too_few_replicates_for_compare_are_refused_before_any_computation():
    """check_call computes nothing: it must refuse what compare refuses, so the command line
    refuses it up front (stats.compare's own guard would only fire after the simulation)."""
    from collapse.simulate.api import check_call

    with pytest.raises(collapse.CollapseError, match=r"^replicates must be an integer >= 10 .* for compare"):
        check_call("compare", collapse.Gaussian(), replicates=9)
    check_call("simulate", collapse.Gaussian(), replicates=9)  # simulate accepts fewer
    check_call("compare", collapse.Gaussian(), replicates=10)
