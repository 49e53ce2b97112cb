"""Reliability under hostile input: outputs that never destroy, sizes refused up front,
numbers that stay right at the extremes, and never a NaN.

The fuzz checks use hypothesis with a fixed seed (``derandomize``) so that a failure is
reproducible; the fast suite runs a few dozen examples per check and the slow suite
(``-m slow``) many more.
"""

import io
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collapse
from collapse.analysis.truths import gaussian_truth
from collapse.simulate.cli import main

COLLAPSE = str(Path(sys.executable).parent / "collapse")
FAST = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def _cli(*argv):
    proc = subprocess.run([COLLAPSE, *argv], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


# --------------------------------------------------------------------------- outputs


def test_output_to_dev_stdout_prints(tmp_path):
    code, out, err = _cli("theory", "gaussian", "--iterations", "2", "--format", "csv",
                          "--output", "/dev/stdout")
    assert code == 0 and out.startswith("setting,workflow,iteration,metric,value\n")


def test_symlink_is_written_through_never_replaced(tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert main(["theory", "gaussian", "--iterations", "2", "--format", "csv",
                 "--output", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().startswith("setting,")


def test_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    assert main(["theory", "gaussian", "--iterations", "1", "--format", "csv",
                 "--output", str(fifo)]) == 0
    out, _ = reader.communicate(timeout=30)
    assert out.startswith("setting,") and fifo.is_fifo()


@pytest.mark.parametrize("where", ["missing", "file", "directory", "unwritable", "empty"])
def test_unwritable_output_is_refused_before_computing(tmp_path, where):
    paths = {"missing": tmp_path / "no" / "such" / "out.csv",
             "file": tmp_path / "plain" / "out.csv",
             "directory": tmp_path,
             "unwritable": tmp_path / "ro" / "out.csv",
             "empty": ""}
    (tmp_path / "plain").write_text("a file, not a folder")
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    if where == "unwritable" and os.access(tmp_path / "ro", os.W_OK):
        pytest.skip("running as root: permissions do not bind")
    start = time.perf_counter()
    # a computation that would take minutes: refused before it starts
    code, out, err = _cli("compare", "gaussian", "--replicates", "20000", "--iterations", "200",
                          "--dim", "10", "--output", str(paths[where]))
    elapsed = time.perf_counter() - start
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("collapse: error: --output")
    assert "Traceback" not in err
    assert elapsed < 10  # the point is "before the minutes of work", not a speed test


def test_plot_format_follows_the_extension_or_is_refused(tmp_path):
    for suffix, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml")):
        path = tmp_path / f"c.{suffix}"
        assert main(["theory", "gaussian", "--iterations", "3", "--format", "csv",
                     "--output", str(tmp_path / "t.csv"), "--plot", str(path)]) == 0
        assert path.read_bytes().lstrip()[:len(magic)] == magic
    code, _, err = _cli("theory", "gaussian", "--plot", str(tmp_path / "c.jpg"))
    assert code == 2 and "--plot" in err and not (tmp_path / "c.jpg").exists()


def test_damaged_checkpoint_is_recomputed_and_said(tmp_path, capsys):
    args = ["simulate", "gaussian", "--n", "6", "--iterations", "3", "--replicates", "40",
            "--format", "csv", "--checkpoint", str(tmp_path / "ck"), "--workflow", "replace"]
    assert main(args) == 0
    first = capsys.readouterr().out
    (stored,) = list((tmp_path / "ck").glob("*.npz"))
    for damage in ("truncate", "flip", "empty"):
        data = bytearray(stored.read_bytes()) if stored.stat().st_size else bytearray()
        if damage == "truncate":
            data = data[: len(data) // 2]
        elif damage == "flip":
            data[len(data) // 2] ^= 0xFF
        else:
            data = bytearray()
        stored.write_bytes(bytes(data))
        assert main(args) == 0
        out, err = capsys.readouterr()
        assert out == first, damage
        assert "damaged" in err and str(stored) in err, damage


def test_checkpoint_of_other_settings_under_this_name_is_not_reused(tmp_path, capsys):
    """A checkpoint is trusted for the key it records, not for its file name: one of
    ``--sigma2 2`` copied over the file of ``--sigma2 1`` (same shapes) is recomputed."""
    def args(sigma2):
        return ["simulate", "gaussian", "--n", "6", "--iterations", "3", "--replicates", "40",
                "--format", "csv", "--checkpoint", str(tmp_path / f"ck{sigma2}"),
                "--workflow", "replace", "--sigma2", sigma2]

    assert main(args("1")) == 0
    first = capsys.readouterr().out
    assert main(args("2")) == 0
    other = capsys.readouterr().out
    assert other != first
    (mine,) = list((tmp_path / "ck1").glob("*.npz"))
    (theirs,) = list((tmp_path / "ck2").glob("*.npz"))
    mine.write_bytes(theirs.read_bytes())
    assert main(args("1")) == 0
    out, err = capsys.readouterr()
    assert out == first
    assert "other settings" in err and str(mine) in err


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("argv, option", [
    (["simulate", "gaussian", "--replicates", "1e9"], "--replicates"),
    (["compare", "gaussian", "--iterations", "1e9"], "--iterations"),
    (["theory", "gaussian", "--iterations", "1e9"], "--iterations"),
    (["theory", "gaussian", "--dim", "1e9", "--workflow", "replace"], "--dim"),
    (["simulate", "gaussian", "--n", "20002", "--dim", "20000"], "--dim"),
    (["simulate", "kde", "--heldout", "1e9"], "--heldout"),
    (["simulate", "kde", "--replicates", "1e9"], "--replicates"),
    (["theory", "kde", "--iterations", "100000"], "--iterations"),
    (["simulate", "regression", "--replicates", "1e9"], "--replicates"),
    (["simulate", "regression", "--dim", "100000", "--n", "100000"], "--dim"),
    (["theory", "regression", "--design-seed", "0", "--dim", "1e6", "--n", "1e6"], "--dim"),
    (["simulate", "discrete", "--replicates", "1e9"], "--replicates"),
    (["simulate", "discrete", "--categories", "1e9"], "--categories"),
    (["theory", "discrete", "--categories", "1e9", "--workflow", "replace"], "--categories"),
    (["theory", "discrete", "--iterations", "1e8"], "--iterations"),
])
def test_impossible_sizes_are_refused_at_once(argv, option):
    start = time.perf_counter()
    code, out, err = _cli(*argv)
    assert code == 2 and out == ""
    line, = err.strip().splitlines()
    assert line.startswith(f"collapse: error: {option}") and "--force" in line
    assert time.perf_counter() - start < 30  # refused, not attempted


def test_force_overrides_the_estimate():
    problem = collapse.Gaussian(dim=3, n=10)
    with pytest.raises(collapse.CollapseError, match="iterations too large"):
        collapse.theory(problem, "accumulate", 10**9)
    # the estimate is an estimate: forcing a small overrun runs (here: quickly)
    from collapse.simulate import budget

    saved = budget.TIME_LIMIT
    try:
        budget.TIME_LIMIT = 1e-6
        with pytest.raises(collapse.CollapseError):
            collapse.theory(problem, "accumulate", 3)
        assert collapse.theory(problem, "accumulate", 3, force=True).iterations == 3
    finally:
        budget.TIME_LIMIT = saved


# --------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("h", [1e-3, 1e-5, 1e-7, 1e-8, 1e-9, 1e-12])
def test_realised_kde_mise_has_no_cancellation_at_tiny_bandwidths(h):
    # Points about 1 data unit from the origin and h apart: the squared distances
    # between them are ~h^2, far below the rounding of |x|^2 + |y|^2 - 2 x.y.  The
    # reference is the same integral in 50-digit arithmetic from the same float points.
    import mpmath

    from collapse.simulate.kde import realised_mise

    mp = mpmath.MPContext()  # private context: the global precision stays as it is
    mp.dps = 50
    points = 1.0 + h * np.array([0.0, 0.5, 1.3, 2.1])
    got = float(realised_mise(points[None, :, None], h, gaussian_truth(1))[0])
    ys = [mp.mpf(float(y)) for y in points]
    m, hh = len(ys), mp.mpf(h)

    def phi(u, s):
        return mp.exp(-u * u / (2 * s * s)) / (mp.sqrt(2 * mp.pi) * s)

    pair = sum(phi(a - b, hh * mp.sqrt(2)) for a in ys for b in ys) / m**2
    cross = sum(phi(a, mp.sqrt(hh * hh + 1)) for a in ys) / m
    exact = pair - 2 * cross + 1 / (2 * mp.sqrt(mp.pi))
    assert got == pytest.approx(float(exact), rel=1e-9)
    # negative control: the expansion formula the engine used to apply is visibly wrong
    # at the smallest bandwidths (the check has teeth)
    if h <= 1e-8:
        x = points
        sq = x[:, None] ** 2 + x[None, :] ** 2 - 2 * x[:, None] * x[None, :]
        naive = np.exp(-sq / (4 * h * h)).sum() / (m * m * math.sqrt(4 * math.pi) * h)
        assert abs(naive - float(pair)) > 1e-3 * float(pair)


def test_monte_carlo_refuses_bandwidths_it_cannot_resolve():
    with pytest.raises(collapse.CollapseError, match="bandwidth"):
        collapse.simulate(collapse.KDE(bandwidth=1e-12))
    # the exact theory has no such limit: finite, positive, no NaN
    values = collapse.theory(collapse.KDE(bandwidth=1e-12), "all", 3).values
    assert all(v > 0 and math.isfinite(v) for w in values.values() for v in w["mise"])


@pytest.mark.parametrize("scale", [10.0, 1e3, 1e160, 0.1, -1.0])
def test_a_wrong_theory_is_never_consistent(scale):
    result = collapse.compare(collapse.Gaussian(dim=2, n=15), "all", 8, 400, 0,
                              theory_scale=scale)
    assert result.verdict == "INCONSISTENT" and result.exit_status == 1


def test_collapsed_trace_underflow_is_not_a_false_alarm():
    # n = 2: every replicate's trace underflows to exactly 0.0 long before t = 1000,
    # while its expectation (1/2)^t is still a normal float for t < 1023
    result = collapse.compare(collapse.Gaussian(n=2), "replace", 1000, 200, 0)
    assert result.verdict == "CONSISTENT", result.summary()


def _no_nan(result) -> None:
    text = result.to_csv()
    assert "nan" not in text.lower().replace("nans", "")
    frame = result.to_frame()
    for column in ("value", "mean", "theory"):
        if column in frame:
            assert not frame[column].isna().any() or column == "theory"


gaussian_problems = st.builds(
    collapse.Gaussian,
    dim=st.integers(1, 6), n=st.integers(2, 25),
    sigma2=st.floats(-100, 100).map(lambda e: 10.0 ** e),
    covariance=st.sampled_from(["mle", "unbiased"]))


@FAST
@given(problem=gaussian_problems, iterations=st.integers(1, 40),
       workflow=st.sampled_from(["replace", "accumulate", "accumulate-subsample", "all"]))
def test_fuzz_gaussian_never_nan(problem, iterations, workflow):
    _no_nan(collapse.theory(problem, workflow, iterations))
    _no_nan(collapse.simulate(problem, workflow, iterations, 8, 1))


def _kde_problem(truth, n, exponent, sigma0_exponent, dim, heldout):
    sigma0 = 10.0 ** sigma0_exponent if truth == "gaussian" else 1.0
    bandwidth = 10.0 ** exponent * sigma0
    return collapse.KDE(truth=truth, n=n, bandwidth=bandwidth, sigma0=sigma0,
                        dim=dim if truth == "gaussian" else None, heldout=heldout)


kde_problems = st.builds(
    _kde_problem, truth=st.sampled_from(["gaussian", "blobs", "moons", "circles", "swiss-roll"]),
    n=st.integers(2, 20), exponent=st.floats(-8, 3), sigma0_exponent=st.floats(-50, 50),
    dim=st.integers(1, 4), heldout=st.integers(1, 30))


@FAST
@given(problem=kde_problems, iterations=st.integers(1, 8),
       workflow=st.sampled_from(["replace", "accumulate", "accumulate-subsample"]))
def test_fuzz_kde_never_nan(problem, iterations, workflow):
    _no_nan(collapse.theory(problem, workflow, iterations))
    _no_nan(collapse.simulate(problem, workflow, iterations, 4, 2))


regression_problems = st.builds(
    collapse.Regression, dim=st.integers(1, 12), n=st.integers(2, 30),
    sigma2=st.floats(-16, 100).map(lambda e: 10.0 ** e),
    design_seed=st.one_of(st.none(), st.integers(0, 2**32)))


@FAST
@given(problem=regression_problems, iterations=st.integers(1, 40),
       workflow=st.sampled_from(["replace", "accumulate", "accumulate-subsample", "fresh",
                                 "real=none,synthetic=window:2", "all"]))
def test_fuzz_regression_never_nan(problem, iterations, workflow):
    # n <= d + 1 included: infinite or biased expectations, never NaN
    _no_nan(collapse.theory(problem, workflow, iterations))
    _no_nan(collapse.simulate(problem, workflow, iterations, 6, 1))


def _discrete_problem(categories, n, kind, weights):
    if kind == "vector":
        weights = np.array(weights[:categories], dtype=float)
        weights[0] += 1e-3  # at least one category with mass
        truth = tuple((weights / weights.sum()).tolist())
        return collapse.Discrete(truth=truth, n=n)
    return collapse.Discrete(categories=categories, n=n, truth=kind)


discrete_problems = st.builds(
    _discrete_problem, categories=st.integers(2, 12), n=st.integers(2, 40),
    kind=st.sampled_from(["uniform", "zipf", "vector"]),
    # zeros included: categories without mass never appear
    weights=st.lists(st.sampled_from([0.0, 1e-12, 0.01, 0.3, 1.0, 50.0]), min_size=12,
                     max_size=12))


@FAST
@given(problem=discrete_problems, iterations=st.integers(1, 60),
       workflow=st.sampled_from(["replace", "accumulate", "accumulate-subsample", "fresh",
                                 "real=original,synthetic=window:3",
                                 "real=none,synthetic=all,size=2", "all"]))
def test_fuzz_discrete_never_nan(problem, iterations, workflow):
    _no_nan(collapse.theory(problem, workflow, iterations))
    _no_nan(collapse.simulate(problem, workflow, iterations, 6, 1))


@pytest.mark.slow
@SLOW
@given(problem=st.one_of(gaussian_problems, kde_problems, regression_problems,
                         discrete_problems), iterations=st.integers(1, 12))
def test_fuzz_compare_never_nan_slow(problem, iterations):
    result = collapse.compare(problem, "all", iterations, 20, 3)
    _no_nan(result)
    assert "nan" not in result.summary().lower()


@FAST
@given(argv=st.sampled_from([
    ["theory", "gaussian", "--sigma2", "1e100", "--dim", "50", "--iterations", "300"],
    ["theory", "gaussian", "--sigma2", "1e-100", "--n", "2", "--iterations", "2000"],
    ["theory", "kde", "--bandwidth", "1e-100", "--iterations", "5"],
    ["theory", "kde", "--bandwidth", "1e100", "--sigma0", "1e-100", "--iterations", "5"],
    ["theory", "kde", "--truth", "blobs", "--bandwidth", "1e-50", "--iterations", "5"],
    ["simulate", "kde", "--bandwidth", "1e-8", "--iterations", "3", "--replicates", "8"],
    ["simulate", "kde", "--bandwidth", "1e50", "--iterations", "3", "--replicates", "8"],
    ["simulate", "gaussian", "--n", "2", "--iterations", "1500", "--replicates", "8"],
    ["simulate", "gaussian", "--dim", "30", "--n", "3", "--iterations", "20",
     "--replicates", "8"],
    ["compare", "gaussian", "--n", "3", "--dim", "1", "--iterations", "300",
     "--replicates", "50"],
    ["compare", "regression", "--n", "11", "--dim", "10", "--iterations", "5",
     "--replicates", "20"],
    ["theory", "regression", "--sigma2", "1e-100", "--dim", "30", "--n", "3",
     "--iterations", "1000"],
    ["compare", "discrete", "--n", "2", "--categories", "2", "--iterations", "200",
     "--replicates", "20"],
    ["theory", "discrete", "--truth", "1,0,0", "--iterations", "50"],
    ["simulate", "discrete", "--truth", "0.999999,0.000001", "--n", "1000",
     "--iterations", "20", "--replicates", "8"],
]), fmt=st.sampled_from(["csv", "json", "table"]))
def test_fuzz_cli_extremes_never_print_nan(argv, fmt):
    out, err = io.StringIO(), io.StringIO()
    from contextlib import redirect_stderr, redirect_stdout

    with redirect_stdout(out), redirect_stderr(err):
        code = main([*argv, "--format", fmt])
    assert code in (0, 1, 3), err.getvalue()
    assert "nan" not in out.getvalue().lower()
