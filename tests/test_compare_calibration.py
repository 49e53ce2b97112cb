"""``compare`` at small replicate counts: refusal below the minimum, calibration above it.

The verdict must hold its false-alarm rate at every replicate count it accepts.  The
checks below run ``compare`` on synthetic replicates whose true means are known
exactly, for many seeds: the number of seeds with a false alarm is then at most
Binomial(seeds, alpha), and a check fails when it exceeds the 0.999 quantile of that
law (so a calibrated verdict fails it with probability < 1e-3).  Each check has two
negative controls:

* a miscalibrated procedure written out here -- normal reference, rows chosen by the
  point estimate of their skewness, Holm on top (the rule ``compare`` used before) --
  which the same binomial check must reject on the same replicates;
* a theory wrong by one or two percent, which ``compare`` must reject on most seeds
  (power where power is possible).

The Gaussian and KDE settings' own calibration, over full comparisons, is the slow
``tests/test_calibration.py`` and ``benchmarks/false_alarm.py``.
"""

from __future__ import annotations

import gc
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from collapse.analysis.errors import CollapseError
from collapse.simulate.stats import HEAVY, MIN_REPLICATES, TESTED, TOO_FEW, compare

SEEDS = 500
ALPHA = 0.01
#: Largest false-alarm count a verdict with rate <= ALPHA reaches with probability >= 0.999.
LIMIT = int(sps.binom.ppf(0.999, SEEDS, ALPHA))
COLLAPSE = str(Path(sys.executable).with_name("collapse"))
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(autouse=True)
def _no_gc(monkeypatch):
    # statsmodels' multipletests runs gc.collect() on every call (~0.2 s in a large
    # test process); the collection is irrelevant to the statistics.
    monkeypatch.setattr(gc, "collect", lambda *a, **k: 0)


def _rows(seed: int, replicates: int, kind: str, scale: float = 1.0):
    """Theory (times ``scale``) and replicates of 20 independent rows with known means.

    ``tight``: ``mu + N(0, 1)`` with ``mu`` in [100, 300] (near-normal, coefficient of
    variation below 1%, testable at small ``R``); ``gamma``: Gamma(shape 4) with mean
    ``mu`` in [1, 3] (skewness 1, like a chi-square error metric).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, replicates]))
    if kind == "tight":
        mu = np.linspace(100.0, 300.0, 20)
        x = mu + rng.normal(size=(replicates, 20))
    else:
        mu = np.linspace(1.0, 3.0, 20)
        x = rng.gamma(4.0, mu / 4.0, size=(replicates, 20))
    return {"w": {"m": tuple(mu * scale)}}, {"w": {"m": x}}


def _naive_alarm(theory, samples) -> bool:
    """The uncalibrated rule: z referred to N(0, 1), rows kept when |skew| / sqrt(R) <= 0.05."""
    mu = np.asarray(theory["w"]["m"])
    x = samples["w"]["m"]
    r = x.shape[0]
    z = (x.mean(axis=0) - mu) / (x.std(axis=0, ddof=1) / math.sqrt(r))
    keep = np.abs(sps.skew(x, axis=0)) / math.sqrt(r) <= 0.05
    if not keep.any():
        return False
    return bool(multipletests(2 * sps.norm.sf(np.abs(z[keep])), alpha=ALPHA, method="holm")[0].any())


def _alarms(replicates: int, kind: str, scale: float = 1.0) -> int:
    return sum(not compare("toy", *_rows(seed, replicates, kind, scale), alpha=ALPHA,
                           lower_bounds={"m": 0.0}).consistent for seed in range(SEEDS))


# --------------------------------------------------------------------------- the minimum


@pytest.mark.parametrize("replicates", [1, 2, MIN_REPLICATES - 1])
def test_compare_refuses_fewer_than_the_minimum_with_one_line(replicates):
    samples = {"w": {"m": np.ones((replicates, 3)) + np.arange(replicates)[:, None]}}
    with pytest.raises(CollapseError) as error:
        compare("toy", {"w": {"m": (1.0, 1.0, 1.0)}}, samples)
    message = str(error.value)
    assert isinstance(error.value, ValueError)
    assert "\n" not in message and message.startswith("replicates must be >= ")
    assert f">= {MIN_REPLICATES}" in message and f"got {replicates}" in message
    assert "false-alarm" in message  # says why


def test_compare_refuses_when_any_sample_is_short_and_accepts_the_minimum():
    full = np.random.default_rng(0).normal(size=(MIN_REPLICATES, 2))
    theory = {"a": {"m": (0.0, 0.0)}, "b": {"m": (0.0, 0.0)}}
    with pytest.raises(CollapseError, match=f"got {MIN_REPLICATES - 1}"):
        compare("toy", theory, {"a": {"m": full}, "b": {"m": full[:-1]}})
    result = compare("toy", theory, {"a": {"m": full}, "b": {"m": full}})
    assert len(result.status) == 4
    # The calibration override measures below the minimum without changing the default.
    compare("toy", theory, {"a": {"m": full[:3]}}, min_replicates=3)


def test_cli_refuses_one_replicate_with_one_line_and_exit_2():
    # The lead wires --replicates to MIN_REPLICATES; either the option or compare()
    # must refuse, with one line on stderr and exit status 2.
    for reps in ("1", str(MIN_REPLICATES - 1)):
        proc = subprocess.run([COLLAPSE, "compare", "gaussian", "--n", "5", "--iterations", "2",
                               "--replicates", reps], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "replicates" in lines[0] and "Traceback" not in proc.stderr


def test_docs_state_the_minimum_and_the_confidence_levels():
    from collapse.simulate.stats import SKEW_CONFIDENCE, SPREAD_CONFIDENCE

    page = " ".join((DOCS / "compare.rst").read_text().split())
    assert f"``MIN_REPLICATES`` = {MIN_REPLICATES}" in page
    assert f"``SKEW_CONFIDENCE`` = {SKEW_CONFIDENCE}" in page
    assert f"``SPREAD_CONFIDENCE`` = {SPREAD_CONFIDENCE}" in page


# --------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("replicates", [MIN_REPLICATES, 20])
def test_near_normal_rows_hold_the_rate_at_small_replicate_counts(replicates):
    # These rows are tested (their spread is tiny next to their distance from the
    # bound 0), so this exercises the Student-t reference itself.
    tested = compare("toy", *_rows(0, replicates, "tight"), alpha=ALPHA,
                     lower_bounds={"m": 0.0}).status
    assert tested.count(TESTED) == 20
    assert _alarms(replicates, "tight") <= LIMIT
    # Negative control 1: the normal reference on the same replicates fails the same check.
    naive = sum(_naive_alarm(*_rows(seed, replicates, "tight")) for seed in range(SEEDS))
    assert naive > LIMIT
    # Negative control 2: a theory 1% too high (3 to 5 standard errors per row at R = 10).
    assert _alarms(replicates, "tight", scale=1.01) >= 0.9 * SEEDS


@pytest.mark.parametrize("replicates", [MIN_REPLICATES, 20])
def test_skewed_rows_that_look_symmetric_are_not_tested(replicates):
    # Gamma rows (skewness 1): a small sample that misses the long tail looks symmetric
    # and has too small a mean and spread; the old rule tested exactly those rows.
    assert _alarms(replicates, "gamma") <= LIMIT
    naive = sum(_naive_alarm(*_rows(seed, replicates, "gamma")) for seed in range(SEEDS))
    assert naive > LIMIT


def test_the_same_skewed_rows_are_tested_and_rejected_when_replicates_allow():
    # Power is not given up for good: with 5000 replicates (skewness of the mean 0.014)
    # the gamma rows are tested, and a 2% error (about 5 standard errors on the
    # largest rows) is rejected.
    theory, samples = _rows(1, 5000, "gamma")
    result = compare("toy", theory, samples, alpha=ALPHA, lower_bounds={"m": 0.0})
    assert result.status.count(TESTED) == 20 and result.consistent
    wrong, _ = _rows(1, 5000, "gamma", scale=1.02)
    assert not compare("toy", wrong, samples, alpha=ALPHA, lower_bounds={"m": 0.0}).consistent


def test_untested_rows_say_whether_more_replicates_would_help():
    # A perfectly symmetric sample of 20: its skewness estimate is 0 but its upper
    # confidence limit is not small -> too-few-replicates; with a bound at 0 the gamma
    # shape of its spread (coefficient of variation 0.3) is too skewed -> heavy-tailed.
    x = np.linspace(0.5, 1.5, 20)[:, None]
    theory = {"w": {"m": (1.0,)}}
    assert compare("toy", theory, {"w": {"m": x}}).status == [TOO_FEW]
    assert compare("toy", theory, {"w": {"m": x}}, lower_bounds={"m": 0.0}).status == [HEAVY]
    result = compare("toy", theory, {"w": {"m": x}})
    assert result.verdicts[("w", "m")] == TOO_FEW and result.consistent
    assert result.tested == 0
    assert any("no row could be tested" in note for note in result.summary_table().notes)
    # The same shape with 2000 replicates is tested on both counts.
    wide = np.linspace(0.5, 1.5, 2000)[:, None]
    assert compare("toy", theory, {"w": {"m": wide}}).status == [TESTED]
    assert compare("toy", theory, {"w": {"m": wide}}, lower_bounds={"m": 0.0}).status == [TESTED]
