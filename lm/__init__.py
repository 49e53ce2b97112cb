"""The language-model loop: any workflow rule (replace, accumulate,
accumulate-subsample, fresh, specs) on real text, on a CPU, offline, resumable.

Modules (torch is imported only by :mod:`collapse.lm.modeling`, :mod:`collapse.lm.training` and
inside :func:`collapse.lm.run.run`; ``collapse.lm.cli``, ``collapse.lm.report`` and ``collapse.lm.growth`` stay light):

* :mod:`collapse.lm.metrics`   metric names (:data:`~collapse.lm.metrics.LM_METRICS`) and formulas
* :mod:`collapse.lm.presets`   ``micro``, ``tiny``, ``small``: sizes and hyperparameters
* :mod:`collapse.lm.corpus`    the default ``python-docs`` corpus, local/hub data sets, seeded splits
* :mod:`collapse.lm.seeding`   every random stream from ``(seed, iteration, purpose)``
* :mod:`collapse.lm.workflows` the training set ``D_t`` of every workflow rule
* :mod:`collapse.lm.cache`     base-model cache directory and keys
* :mod:`collapse.lm.modeling`  tokenizer training, base pretraining and caching, ``--model`` loading
* :mod:`collapse.lm.training`  windows, fine-tuning, held-out evaluation, sampling
* :mod:`collapse.lm.rundir`    run-directory layout, checksums, configuration checks, lock
* :mod:`collapse.lm.run`       the loop (:func:`collapse.lm.run.run`, :class:`collapse.lm.run.RunConfig`)
* :mod:`collapse.lm.report`    results object, simulate-schema table and figure of a run directory
* :mod:`collapse.lm.value`     the value of synthetic data: the ``(n_r, n_s)`` grid
* :mod:`collapse.lm.evidence`  Welch tests, effect sizes and paired tests between workflows
* :mod:`collapse.lm.growth`    bounded / logarithmic / linear growth-shape verdicts
* :mod:`collapse.lm.cli`       ``collapse lm run|value|report`` (``register(subparsers)``)
"""
