"""The language-model loop of DESIGN.md section 4: replace, accumulate and
accumulate-subsample on real text, on a CPU, offline, resumable.

Modules (torch is imported only by :mod:`lm.modeling`, :mod:`lm.training` and
inside :func:`lm.run.run`; ``lm.cli``, ``lm.report`` and ``lm.growth`` stay light):

* :mod:`lm.metrics`   metric names (:data:`~lm.metrics.LM_METRICS`) and formulas
* :mod:`lm.presets`   ``micro``, ``tiny``, ``small``: sizes and hyperparameters
* :mod:`lm.corpus`    the default ``python-docs`` corpus, local/hub data sets, seeded splits
* :mod:`lm.seeding`   every random stream from ``(seed, iteration, purpose)``
* :mod:`lm.workflows` the training set ``D_t`` of each workflow
* :mod:`lm.cache`     base-model cache directory and keys
* :mod:`lm.modeling`  tokenizer training, base pretraining and caching, ``--model`` loading
* :mod:`lm.training`  windows, fine-tuning, held-out evaluation, sampling
* :mod:`lm.rundir`    run-directory layout, configuration checks, atomic writes
* :mod:`lm.run`       the loop (:func:`lm.run.run`, :class:`lm.run.RunConfig`)
* :mod:`lm.report`    simulate-schema summary table and figure of a run directory
* :mod:`lm.growth`    bounded / logarithmic / linear growth-shape verdicts
* :mod:`lm.cli`       ``collapse lm run|report`` (``register(subparsers)``)
"""
