"""Every random stream of the LM loop, derived from ``(seed, iteration, purpose)`` alone.

A stream is ``numpy.random.SeedSequence(entropy=seed, spawn_key=(iteration,
code))`` where ``code`` names its purpose (data split, real-set draw,
fine-tuning, sampling, subsampling, pretraining, fresh real batches).  Nothing depends on what the
process did before, so an iteration computed after a resume draws exactly the
numbers it would have drawn in an uninterrupted run.

The workflow is deliberately *not* an input: for a given replicate seed all
three workflows fine-tune iteration ``t`` with the same stream and sample with
the same stream (common random numbers).  Iteration 1, whose training set is
the real data for every workflow, is therefore identical across workflows, and
later differences between workflows come from their training sets, not from
independent noise.  Each workflow's own trajectory is still an exact draw of
the procedure (model 1 on the real data, model t on its workflow's D_t).
"""

from __future__ import annotations

import numpy as np

SPLIT = "split"
REAL = "real"
PRETRAIN = "pretrain"
TRAIN = "train"
SAMPLE = "sample"
SUBSAMPLE = "subsample"
FRESH = "fresh"

_CODES = {SPLIT: 1, REAL: 2, PRETRAIN: 3, TRAIN: 4, SAMPLE: 5, SUBSAMPLE: 6, FRESH: 7}


def seed_sequence(seed: int, iteration: int, purpose: str) -> np.random.SeedSequence:
    """The seed sequence of stream ``(seed, iteration, purpose)``."""
    if seed < 0 or iteration < 0:
        raise ValueError("seed and iteration must be non-negative")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(int(iteration), _CODES[purpose]))


def numpy_rng(seed: int, iteration: int, purpose: str) -> np.random.Generator:
    """A numpy ``Generator`` (PCG64) on stream ``(seed, iteration, purpose)``."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, iteration, purpose)))


def torch_seed(seed: int, iteration: int, purpose: str) -> int:
    """A 63-bit integer for ``torch.manual_seed`` / ``torch.Generator.manual_seed``."""
    state = seed_sequence(seed, iteration, purpose).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))
