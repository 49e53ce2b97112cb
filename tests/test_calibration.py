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

from collapse.analysis.vocabulary import WORKFLOWS
from collapse.simulate.calibration import false_alarm_rate
from collapse.simulate.setting_gaussian import GaussianConfig
from collapse.simulate.setting_kde import KDEConfig
from collapse.simulate.settings import settings
from collapse.simulate.stats import compare

SEEDS = 100
ALPHA = 0.05
LIMIT = int(sps.binom.ppf(0.999, SEEDS, ALPHA))

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_gc(monkeypatch):
    # statsmodels' multipletests calls gc.collect() every time: slow in a big process.
    monkeypatch.setattr(gc, "collect", lambda *a, **k: 0)


@pytest.mark.parametrize("setting, config, iterations, replicates", [
    ("gaussian", GaussianConfig(n=10, dim=1, sigma2=1.0), 50, 1000),   # heavy-tailed replace
    ("gaussian", GaussianConfig(n=10, dim=10, sigma2=1.0), 30, 500),   # singular covariances
    ("gaussian", GaussianConfig(n=40, dim=3, sigma2=2.0), 40, 1000),
    ("kde", KDEConfig(n=10, dim=1, bandwidth=0.5, truth="gaussian"), 15, 500),
])
def test_false_alarm_rate_at_most_alpha(setting, config, iterations, replicates):
    result = false_alarm_rate(setting, config, WORKFLOWS, iterations=iterations,
                              replicates=replicates, seeds=range(SEEDS), alpha=ALPHA)
    assert result.alarms <= LIMIT, (result.alarms, LIMIT)


def test_negative_control_wrong_theory_alarms_on_most_seeds():
    setting = settings()["gaussian"]
    config = GaussianConfig(n=40, dim=3, sigma2=2.0)
    theory = {w: {m: tuple(1.03 * v for v in vals)
                  for m, vals in setting.theory(config, w, 20).values.items()}
              for w in WORKFLOWS}
    alarms = 0
    for seed in range(30):
        samples = {w: setting.simulate(config, w, iterations=20, replicates=1000, seed=seed,
                                       chunk_size=None) for w in WORKFLOWS}
        alarms += not compare("gaussian", theory, samples, alpha=ALPHA,
                              lower_bounds=setting.lower_bounds(config)).consistent
    assert alarms >= 27
