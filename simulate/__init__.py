"""Monte Carlo engines, theory-versus-simulation statistics, the library API and the CLI.

``collapse.simulate`` is also callable: ``collapse.simulate(problem, workflow, ...)`` is
:func:`collapse.simulate.api.simulate`, so the front page's API and this package share
one name without hiding each other (``import collapse.simulate.stats`` works too).

Examples
--------
>>> import collapse
>>> mc = collapse.simulate(collapse.Gaussian(n=10), "replace", iterations=2, replicates=20)
>>> mc.samples["replace"]["mean_sq_error"].shape
(20, 2)
>>> from collapse.simulate import stats
>>> stats.MIN_REPLICATES
10
"""
