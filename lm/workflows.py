"""Assembly of the training set ``D_t`` of each workflow.

Texts are referred to by ``(source, index)``: ``source = 0`` is the real
training set, ``source = k >= 1`` the texts sampled from model ``k``.  With
``n`` real texts and ``n`` samples per model:

* ``t = 1`` (every workflow): ``D_1`` = the ``n`` real texts;
* ``replace``: ``D_t`` = the samples of model ``t-1`` (``n`` texts);
* ``accumulate``: ``D_t`` = real texts plus the samples of models ``1..t-1``
  (``t*n`` texts; the real data always stay in);
* ``accumulate-subsample``: a uniformly random ``n``-subset, without
  replacement, of the accumulate pool (``n`` texts).

These functions are pure given the random generator; the loop passes
``seeding.numpy_rng(seed, t, "subsample")`` so the subset depends only on
``(seed, t)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from collapse.analysis.checks import check_workflow
from collapse.analysis.vocabulary import ACCUMULATE, ACCUMULATE_SUBSAMPLE, REPLACE

Ref = tuple[int, int]


def accumulated_refs(n_real: int, sample_counts: Sequence[int]) -> list[Ref]:
    """References to the real texts followed by every sample of models ``1..len(sample_counts)``."""
    refs = [(0, i) for i in range(n_real)]
    for k, count in enumerate(sample_counts, start=1):
        refs.extend((k, i) for i in range(count))
    return refs


def training_refs(
    workflow: str,
    t: int,
    n_real: int,
    sample_counts: Sequence[int],
    rng: np.random.Generator | None = None,
) -> list[Ref]:
    """References making up ``D_t``.

    ``sample_counts[k-1]`` is the number of texts sampled from model ``k``; at
    least ``t-1`` entries are needed (later ones are ignored).  ``rng`` is
    used by ``accumulate-subsample`` only, to draw an ``n_real``-subset of the
    pool without replacement (returned in pool order).
    """
    check_workflow(workflow)
    if t < 1:
        raise ValueError("iterations start at t = 1")
    if len(sample_counts) < t - 1:
        raise ValueError(f"D_{t} needs the samples of models 1..{t - 1}")
    if t == 1:
        return [(0, i) for i in range(n_real)]
    if workflow == REPLACE:
        return [(t - 1, i) for i in range(sample_counts[t - 2])]
    pool = accumulated_refs(n_real, sample_counts[: t - 1])
    if workflow == ACCUMULATE:
        return pool
    assert workflow == ACCUMULATE_SUBSAMPLE
    if rng is None:
        raise ValueError("accumulate-subsample needs a random generator")
    size = min(n_real, len(pool))
    chosen = np.sort(rng.choice(len(pool), size=size, replace=False))
    return [pool[int(i)] for i in chosen]


def materialise(refs: Sequence[Ref], real: Sequence[str], samples: Sequence[Sequence[str]]) -> list[str]:
    """The texts that ``refs`` point at (``samples[k-1]`` = texts of model ``k``)."""
    return [real[i] if source == 0 else samples[source - 1][i] for source, i in refs]
