"""The verdict's false-alarm rate is what it claims (slow: many seeds).

``collapse compare`` claims a family-wise false-alarm rate <= alpha.  Each check
runs the full comparison (three workflows, every metric and iteration) for
``SEEDS`` seeds with the exact theory; alarms are Binomial(SEEDS, rate).  The
check fails if the count exceeds the 0.999 quantile of Binomial(SEEDS, alpha), so
a correctly calibrated verdict fails it with probability < 1e-3.  The negative
control runs the same seeds against a theory 3% too high and must alarm in most
of them (the machinery has power, so a pass is not vacuous).
"""

import gc

import pytest
from scipy import stats as sps

from collapse import KDE, Gaussian
from collapse.analysis.vocabulary import WORKFLOWS
from collapse.simulate.calibration import false_alarm_rate

SEEDS = 100
ALPHA = 0.05
LIMIT = int(sps.binom.ppf(0.999, SEEDS, ALPHA))

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_gc(monkeypatch):
    # statsmodels' multipletests calls gc.collect() every time: slow in a big process.
    monkeypatch.setattr(gc, "collect", lambda *a, **k: 0)


@pytest.mark.parametrize("problem, iterations, replicates", [
    (Gaussian(n=10, dim=1, sigma2=1.0), 50, 1000),   # heavy-tailed replace
    (Gaussian(n=10, dim=10, sigma2=1.0), 30, 500),   # singular covariances
    (Gaussian(n=40, dim=3, sigma2=2.0), 40, 1000),
    (KDE(n=10, dim=1, bandwidth=0.5, truth="gaussian"), 15, 500),
])
def test_false_alarm_rate_at_most_alpha(problem, iterations, replicates):
    result = false_alarm_rate(problem, WORKFLOWS, iterations=iterations,
                              replicates=replicates, seeds=range(SEEDS), alpha=ALPHA)
    assert result.alarms <= LIMIT, (result.alarms, LIMIT)


def test_negative_control_wrong_theory_alarms_on_most_seeds():
    result = false_alarm_rate(Gaussian(n=40, dim=3, sigma2=2.0), WORKFLOWS, iterations=20,
                              replicates=1000, seeds=range(30), alpha=ALPHA,
                              theory_scale=1.03)
    assert result.alarms >= 27
