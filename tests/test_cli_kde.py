"""`collapse theory|simulate|compare kde`: contract, every truth, bad input."""

import io
import math
import subprocess

import pytest
from test_cli import COLLAPSE

from collapse.analysis.kde import expected_mise
from collapse.analysis.truths import gaussian_truth
from collapse.analysis.vocabulary import WORKFLOWS
from collapse.simulate.cli import main
from collapse.simulate.tables import SIMULATE_COLUMNS, THEORY_COLUMNS, Table


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_theory_csv_is_the_exact_mise(capsys, dim):
    _, out, _ = run(capsys, "theory", "kde", "--truth", "gaussian", "--dim", str(dim),
                    "--sigma0", "1.5", "--n", "30", "--bandwidth", "0.4", "--iterations", "6",
                    "--format", "csv")
    table = Table.from_csv(io.StringIO(out))
    assert table.columns == THEORY_COLUMNS
    for workflow in WORKFLOWS:
        got = [r["value"] for r in table.records() if r["workflow"] == workflow]
        want = expected_mise(workflow, n=30, bandwidth=0.4, iterations=6,
                             truth=gaussian_truth(dim, 1.5))
        assert got == pytest.approx(want, rel=1e-12)
    assert {r["metric"] for r in table.records()} == {"mise"}


def test_theory_iteration_one_matches_textbook_kde_mise(capsys):
    # E ISE of a KDE of n iid N(0, s^2) points in d = 1 (Wand & Jones):
    # (4 pi)^{-1/2} [1/(n h) + (1 - 1/n)(h^2 + s^2)^{-1/2}] - 2 (2 pi (h^2 + 2 s^2))^{-1/2}
    # ... written here with every Gaussian overlap spelled out.
    n, h, s = 25, 0.3, 1.2
    def phi0(var):  # N(0, var) density at 0
        return 1.0 / math.sqrt(2 * math.pi * var)

    expected = (phi0(2 * h * h) / n + (1 - 1 / n) * phi0(2 * h * h + 2 * s * s)
                - 2 * phi0(h * h + 2 * s * s) + phi0(2 * s * s))
    _, out, _ = run(capsys, "theory", "kde", "--n", str(n), "--bandwidth", str(h),
                    "--sigma0", str(s), "--iterations", "1", "--format", "csv")
    values = {r["value"] for r in Table.from_csv(io.StringIO(out)).records()}
    assert len(values) == 1 and values.pop() == pytest.approx(expected, rel=1e-12)


def test_rule_bandwidth_and_non_mixture_truths_have_no_theory(capsys):
    _, out, err = run(capsys, "theory", "kde", "--truth", "moons", "--format", "csv")
    assert Table.from_csv(io.StringIO(out)).rows == []
    assert "Monte Carlo only" in err
    _, out, _ = run(capsys, "theory", "kde", "--truth", "blobs", "--bandwidth", "scott",
                    "--format", "csv")
    assert Table.from_csv(io.StringIO(out)).rows == []


@pytest.mark.parametrize("truth", ["gaussian", "blobs", "moons", "circles", "swiss-roll"])
def test_simulate_every_truth_gives_finite_test_nll(capsys, truth):
    code, out, _ = run(capsys, "simulate", "kde", "--truth", truth, "--n", "12",
                       "--iterations", "3", "--replicates", "8", "--heldout", "50",
                       "--format", "csv")
    assert code == 0
    table = Table.from_csv(io.StringIO(out))
    assert table.columns == SIMULATE_COLUMNS
    nll = [r["mean"] for r in table.records() if r["metric"] == "test_nll"]
    assert len(nll) == 9 and all(math.isfinite(v) for v in nll)
    has_mise = any(r["metric"] == "mise" for r in table.records())
    assert has_mise == (truth in ("gaussian", "blobs"))


def test_compare_passes_on_an_untuned_configuration_and_fails_a_wrong_theory(capsys):
    base = ["compare", "kde", "--workflow", "all", "--truth", "blobs", "--n", "15",
            "--bandwidth", "0.7", "--iterations", "6", "--replicates", "2000", "--seed", "99",
            "--heldout", "20"]
    code, out, _ = run(capsys, *base)
    assert code == 0, out
    code, out, _ = run(capsys, *base, "--theory-scale", "1.08")
    assert code == 1 and "INCONSISTENT" in out


@pytest.mark.parametrize("argv, parameter", [
    (["theory", "kde", "--bandwidth", "0"], "--bandwidth"),
    (["simulate", "kde", "--bandwidth", "-0.5"], "--bandwidth"),
    (["theory", "kde", "--truth", "spiral"], "--truth"),
    (["simulate", "kde", "--n", "1"], "--n"),
    (["theory", "kde", "--dim", "0"], "--dim"),
    (["theory", "kde", "--truth", "moons", "--dim", "3"], "--dim"),
])
def test_bad_input_is_one_line_exit_2(argv, parameter):
    proc = subprocess.run([COLLAPSE, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and parameter in lines[0] and "Traceback" not in proc.stderr
