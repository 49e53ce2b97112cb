"""The `collapse` command-line contract: commands, columns, exit statuses, bad input.

Most checks call ``collapse.simulate.cli.main`` in-process; a few run the installed console
script to check exit statuses and that error output is one line without a
traceback.
"""

import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collapse.analysis.vocabulary import GAUSSIAN_METRICS, WORKFLOWS
from collapse.simulate.cli import main
from collapse.simulate.tables import COMPARE_COLUMNS, SIMULATE_COLUMNS, THEORY_COLUMNS, Table

COLLAPSE = shutil.which("collapse") or str(Path(sys.executable).parent / "collapse")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def csv_table(text):
    return Table.from_csv(io.StringIO(text))


def csv_records(text):
    return csv_table(text).records()


def test_theory_csv_schema_and_metrics(capsys):
    code, out, _ = run(capsys, "theory", "gaussian", "--n", "20", "--dim", "3",
                       "--iterations", "4", "--format", "csv")
    assert code == 0
    table = csv_table(out)
    assert table.columns == THEORY_COLUMNS
    metrics = {w: {r["metric"] for r in table.records() if r["workflow"] == w} for w in WORKFLOWS}
    assert metrics["replace"] == set(GAUSSIAN_METRICS)
    # Exact theory exists for the first two moments only under the accumulating workflows.
    assert metrics["accumulate"] == metrics["accumulate-subsample"] == {"mean_sq_error",
                                                                        "cov_trace_ratio"}
    assert sorted({r["iteration"] for r in table.records()}) == [1, 2, 3, 4]
    assert {r["setting"] for r in table.records()} == {"gaussian"}


def test_theory_iteration_one_is_the_real_data_fit(capsys):
    # Iteration 1 is fitted on n real points under every workflow: E||xbar - mu||^2 =
    # d sigma2 / n and E tr Sigma_hat / tr Sigma = (n - 1) / n (MLE divisor).
    n, d, s2 = 12, 4, 2.5
    _, out, _ = run(capsys, "theory", "gaussian", "--n", str(n), "--dim", str(d), "--sigma2",
                    str(s2), "--iterations", "2", "--format", "csv")
    rows = [r for r in csv_table(out).records() if r["iteration"] == 1]
    for r in rows:
        if r["metric"] == "mean_sq_error":
            assert r["value"] == pytest.approx(d * s2 / n, rel=1e-12)
        if r["metric"] == "cov_trace_ratio":
            assert r["value"] == pytest.approx((n - 1) / n, rel=1e-12)


def test_theory_replace_matches_closed_forms(capsys):
    # Independent closed forms: E Sigma_t = c^t Sigma0 (c = (n-1)/n), E||mu_t - mu0||^2 =
    # tr Sigma0 (1 - c^t), E det ratio = (prod_i (n-i)/n)^t.
    n, d, t_max = 30, 2, 50
    _, out, _ = run(capsys, "theory", "gaussian", "--workflow", "replace", "--n", str(n),
                    "--dim", str(d), "--iterations", str(t_max), "--format", "csv")
    c = (n - 1) / n
    det1 = math.prod((n - i) / n for i in range(1, d + 1))
    for r in csv_table(out).records():
        t = r["iteration"]
        expected = {"mean_sq_error": d * (1 - c**t), "cov_trace_ratio": c**t,
                    "cov_det_ratio": det1**t}.get(r["metric"])
        if expected is not None:
            assert r["value"] == pytest.approx(expected, rel=1e-10)


def test_test_nll_diverges_with_a_note_not_nan(capsys):
    code, out, err = run(capsys, "theory", "gaussian", "--workflow", "replace", "--n", "5",
                         "--dim", "3", "--iterations", "3", "--format", "csv")
    assert code == 0
    rows = [r for r in csv_table(out).records() if r["metric"] == "test_nll"]
    assert rows and all(r["value"] == math.inf for r in rows)
    assert "nan" not in out.lower()
    assert "note:" in err and "diverge" in err.lower()


def test_json_output_is_strict_json(capsys):
    _, out, _ = run(capsys, "theory", "gaussian", "--n", "4", "--dim", "2", "--iterations", "2",
                    "--format", "json")
    payload = json.loads(out)
    assert tuple(payload["columns"]) == THEORY_COLUMNS and payload["rows"]


def test_simulate_schema_and_plot(capsys, tmp_path):
    png = tmp_path / "sim.png"
    code, out, _ = run(capsys, "simulate", "gaussian", "--n", "10", "--dim", "2",
                       "--iterations", "3", "--replicates", "50", "--format", "csv",
                       "--plot", str(png))
    assert code == 0
    table = csv_table(out)
    assert table.columns == SIMULATE_COLUMNS
    assert {r["replicates"] for r in table.records()} == {50}
    assert len(table.rows) == 3 * 3 * len(GAUSSIAN_METRICS)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_same_seed_same_output_whatever_chunk_size(capsys):
    args = ["simulate", "gaussian", "--n", "8", "--dim", "2", "--iterations", "4",
            "--replicates", "96", "--format", "csv", "--seed", "11"]
    _, a, _ = run(capsys, *args, "--chunk-size", "96")
    _, b, _ = run(capsys, *args, "--chunk-size", "32")
    _, c, _ = run(capsys, *args[:-1], "12")
    assert a == b
    assert a != c


def test_compare_passes_then_fails_on_a_wrong_theory(capsys, tmp_path):
    base = ["compare", "gaussian", "--workflow", "all", "--n", "25", "--dim", "2",
            "--iterations", "15", "--replicates", "1500", "--seed", "5"]
    code, out, _ = run(capsys, *base, "--output", str(tmp_path / "c.csv"), "--format", "csv")
    assert code == 0, out
    table = Table.from_csv(tmp_path / "c.csv")
    assert table.columns == COMPARE_COLUMNS
    assert any(r["consistent"] is True for r in table.records())
    # Negative control: the same data against a theory 5% too high must be rejected.
    code, out, _ = run(capsys, *base, "--theory-scale", "1.05")
    assert code == 1
    assert "INCONSISTENT" in out


def test_checkpoint_resume_reuses_finished_workflows(capsys, tmp_path):
    args = ["simulate", "gaussian", "--n", "6", "--iterations", "3", "--replicates", "40",
            "--format", "csv", "--checkpoint", str(tmp_path / "ck")]
    _, first, err1 = run(capsys, *args)
    _, second, err2 = run(capsys, *args)
    assert first == second
    assert "reused" not in err1 and err2.count("reused") == 3


def assert_one_line_refusal(argv: list[str], option: str) -> None:
    """The installed command refuses ``argv``: exit 2, nothing on stdout, one line on stderr
    that starts ``collapse: error:`` and names ``option``, no traceback."""
    proc = subprocess.run([COLLAPSE, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    line, = proc.stderr.strip().splitlines()
    assert line.startswith("collapse: error:") and option in line
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "argv, parameter",
    [
        (["simulate", "gaussian", "--n", "1"], "--n"),
        (["simulate", "gaussian", "--replicates", "0"], "--replicates"),
        (["theory", "gaussian", "--sigma2", "-1"], "--sigma2"),
        (["theory", "gaussian", "--iterations", "-3"], "--iterations"),
        (["compare", "gaussian", "--workflow", "sometimes"], "--workflow"),
        (["theory", "gaussian", "--dim", "0"], "--dim"),
        (["theory", "gaussian", "--n", "abc"], "--n"),
        (["theory", "gaussian", "--sigma2", "nan"], "--sigma2"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, parameter):
    proc = subprocess.run([COLLAPSE, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("collapse: error:") and parameter in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_theory_never_imports_torch_or_engines():
    code = ("import sys; from collapse.simulate.cli import main; "
            "main(['theory', 'gaussian', '--iterations', '3', '--format', 'csv']); "
            "main(['theory', 'kde', '--iterations', '3', '--format', 'csv']); "
            "main(['theory', 'regression', '--iterations', '3', '--format', 'csv']); "
            "main(['theory', 'discrete', '--iterations', '3', '--format', 'csv']); "
            "bad = [m for m in ('torch', 'transformers', 'collapse.simulate.gaussian', "
            "'collapse.simulate.kde', 'collapse.simulate.regression', "
            "'collapse.simulate.discrete', 'sympy') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("covariance", ["mle", "unbiased"])
@pytest.mark.parametrize("n, dim, sigma2", [(2, 1, 1.0), (3, 4, 0.5), (7, 2, 3.0), (40, 10, 1.0)])
def test_theory_csv_matches_independent_gram_matrix_computation(capsys, covariance, n, dim,
                                                                sigma2):
    # Must hold: the CSV agrees with an independent exact computation to 1e-8 relative,
    # for every workflow, d and n >= 2.  The reference is the full Gram-matrix recursion
    # (tests/test_gaussian_theory.py), in exact fractions.
    from test_gaussian_theory import gram_moments

    iterations = 12
    _, out, _ = run(capsys, "theory", "gaussian", "--n", str(n), "--dim", str(dim),
                    "--sigma2", str(sigma2), "--covariance", covariance,
                    "--iterations", str(iterations), "--format", "csv")
    records = csv_table(out).records()
    for workflow in WORKFLOWS:
        a, b = gram_moments(workflow, n, iterations, covariance)
        got = {(r["metric"], r["iteration"]): r["value"] for r in records
               if r["workflow"] == workflow}
        for t in range(1, iterations + 1):
            assert got["mean_sq_error", t] == pytest.approx(float(a[t - 1]) * dim * sigma2,
                                                            rel=1e-8)
            assert got["cov_trace_ratio", t] == pytest.approx(float(b[t - 1]), rel=1e-8)
