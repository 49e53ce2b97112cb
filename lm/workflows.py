"""Assembly of the training set ``D_t`` of any workflow rule.

The rules are those of :mod:`collapse.analysis.workflows` (the presets ``replace``,
``accumulate``, ``accumulate-subsample``, ``fresh`` and every ``real=..,synthetic=..,
size=..,real-fraction=..`` spec).  Texts are referred to by ``(source, index)``:

* ``source = 0``: the original real training set (``n`` documents, :data:`REAL`);
* ``source = k >= 1``: the texts sampled from model ``k``;
* ``source = -t`` (``t >= 2``): the fresh real batch ``F_t`` of ``n`` documents drawn for
  model ``t`` (``real=fresh``; :func:`fresh_source`).

``D_1`` is the real set for every rule.  For ``t >= 2`` the *pool* is the rule's real part
(the original set, ``F_t``, or nothing) followed by its synthetic batches in model order;
``D_t`` is the whole pool, or a uniformly random ``m``-subset of it without replacement
(``size=m``), or a stratified subset (``size=m,real-fraction=lambda``: ``round(lambda m)``
real texts and the rest synthetic, each part without replacement).  Subsets are returned
in pool order.

These functions are pure given the random generator; the loop passes
``seeding.numpy_rng(seed, t, "subsample")`` so the subset depends only on ``(seed, t)``.

Examples
--------
>>> from collapse.analysis.workflows import Workflow
>>> training_refs(Workflow.parse("replace"), 3, 2, [2, 2])
[(2, 0), (2, 1)]
>>> training_refs(Workflow.parse("fresh"), 2, 2, [2])
[(-2, 0), (-2, 1), (1, 0), (1, 1)]
>>> len(training_refs(Workflow.parse("accumulate"), 4, 5, [5, 5, 5]))
20
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from collapse.analysis.workflows import Workflow

Ref = tuple[int, int]
#: ``source`` of the original real training set.
REAL = 0


def fresh_source(t: int) -> int:
    """The ``source`` of the fresh real batch ``F_t`` drawn for model ``t >= 2``."""
    if t < 2:
        raise ValueError("fresh real batches start at t = 2")
    return -t


def _real_part(rule: Workflow, t: int, n_real: int) -> list[Ref]:
    if rule.real == "none":
        return []
    source = fresh_source(t) if rule.real == "fresh" else REAL
    return [(source, i) for i in range(n_real)]


def training_refs(
    rule: Workflow | str,
    t: int,
    n_real: int,
    sample_counts: Sequence[int],
    rng: np.random.Generator | None = None,
) -> list[Ref]:
    """References making up ``D_t`` (see the module docstring).

    ``rule`` is a :class:`~collapse.analysis.workflows.Workflow` or its name or spec.
    ``n_real`` is the size of the real set (and of each fresh batch);
    ``sample_counts[k-1]`` is the number of texts sampled from model ``k``; at least
    ``t-1`` entries are needed (later ones are ignored).  ``rng`` is used only by rules
    that subsample.
    """
    if isinstance(rule, str):
        rule = Workflow.parse(rule)
    if not isinstance(rule, Workflow):
        raise TypeError("rule must be a workflow name, spec or collapse.analysis.workflows.Workflow")
    if t < 1:
        raise ValueError("iterations start at t = 1")
    if len(sample_counts) < t - 1:
        raise ValueError(f"D_{t} needs the samples of models 1..{t - 1}")
    if t == 1:
        return [(REAL, i) for i in range(n_real)]
    real = _real_part(rule, t, n_real)
    synthetic = [(k, i) for k in rule.synthetic_batches(t) for i in range(sample_counts[k - 1])]
    pool = real + synthetic
    m = rule.subsample_size(n_real)
    if m is None:
        return pool
    if rng is None:
        raise ValueError(f"workflow {rule.label} subsamples and needs a random generator")
    counts = rule.stratified_counts(n_real)
    if counts is None:
        chosen = np.sort(rng.choice(len(pool), size=min(m, len(pool)), replace=False))
        return [pool[int(i)] for i in chosen]
    n_r, n_s = counts
    if n_r > len(real) or n_s > len(synthetic):
        raise ValueError(f"D_{t} of {rule.label} needs {n_r} real and {n_s} synthetic texts")
    pick_real = np.sort(rng.choice(len(real), size=n_r, replace=False))
    pick_synthetic = np.sort(rng.choice(len(synthetic), size=n_s, replace=False))
    return [real[int(i)] for i in pick_real] + [synthetic[int(i)] for i in pick_synthetic]


def fresh_batches_needed(rule: Workflow, t: int) -> list[int]:
    """The ``t'`` whose fresh batch ``F_t'`` appears in ``D_t`` (empty unless ``real=fresh``)."""
    return [t] if rule.real == "fresh" and t >= 2 else []


def materialise(
    refs: Sequence[Ref],
    real: Sequence[str],
    samples: Sequence[Sequence[str]],
    fresh: Mapping[int, Sequence[str]] | None = None,
) -> list[str]:
    """The texts that ``refs`` point at.

    ``samples[k-1]`` holds the texts of model ``k``; ``fresh[t]`` the fresh batch ``F_t``.

    Examples
    --------
    >>> materialise([(0, 1), (2, 0), (-2, 0)], ["r0", "r1"], [["a0"], ["b0"]], {2: ["f0"]})
    ['r1', 'b0', 'f0']
    """
    out = []
    for source, i in refs:
        if source == REAL:
            out.append(real[i])
        elif source > 0:
            out.append(samples[source - 1][i])
        else:
            out.append((fresh or {})[-source][i])
    return out
