"""One scheme of replicate blocks, random streams and chunks for every Monte Carlo engine.

Replicates ``0 .. R-1`` are grouped in *blocks* of ``B`` consecutive replicates, ``B``
a power of two that depends on the problem only (:func:`block_size`), never on the
number of replicates, iterations, chunk size or threads.  Block ``b`` draws from its
own streams, one per *purpose*::

    generator(seed, purpose, b) = Generator(SFC64(SeedSequence(seed, spawn_key=(purpose, b))))

(``SeedSequence(seed, spawn_key=(p, b))`` is what ``SeedSequence(seed).spawn(..)[p]
.spawn(..)[b]`` gives).  Purpose :data:`REAL` feeds the real (and held-out) data, so they
are shared by every workflow and engine and iteration 1 is identical across them for
one seed; purpose :data:`PROCESS` feeds the draws of the loop itself, consumed in
iteration order with a fixed amount of work per iteration; purpose :data:`FRESH` feeds
the fresh real batches of rules with ``real=fresh`` (one batch per model ``t >= 2``, in
iteration order).  Fresh batches have a stream of their own so that they shift neither
the real data (shared by every rule) nor the loop's draws: a rule that differs only in
its real data consumes the same ``PROCESS`` numbers.  So:

* the numbers of replicate ``r`` depend only on the seed, the problem and ``r``'s block;
* the first ``t`` iterations never depend on how many iterations were asked for;
* a *chunk* (the replicates computed together) is a run of whole blocks, and results
  are bit-for-bit identical whatever the chunk size or thread count, because no slice
  of a batched operation depends on the others.

Chunks run in one worker thread per core (at most :data:`MAX_THREADS`, and at most the
limit of :func:`thread_limit` where one is set, as a sweep's tasks do), with BLAS
limited to one thread while they do: the engines issue many small matrix products,
which a multi-threaded BLAS on a small shared machine slows down several-fold.

Examples
--------
>>> [(b.index, b.start, b.stop) for b in blocks(5, 2)]
[(0, 0, 2), (1, 2, 4), (2, 4, 5)]
>>> [[b.index for b in c] for c in chunks(blocks(5, 2), 4)]
[[0, 1], [2]]
>>> float(generator(0, REAL, 3).random()) == float(generator(0, REAL, 3).random())
True
>>> with thread_limit(1):
...     thread_count()
1
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

#: Stream purposes: real and held-out data; the loop's own draws; fresh real batches.
REAL, PROCESS, FRESH = 0, 1, 2
#: Most replicates in one block.
MAX_BLOCK = 64
#: Most worker threads.
MAX_THREADS = 4
#: A block's working set is sized for this many iterations of memory (see block_size).
_REFERENCE_ITERATIONS = 100
_BLOCK_BYTES = 512 * 2**20


def generator(seed: int, purpose: int, block: int) -> np.random.Generator:
    """The generator of ``block`` for ``purpose`` (:data:`REAL`, :data:`PROCESS` or
    :data:`FRESH`)."""
    sequence = np.random.SeedSequence(seed, spawn_key=(purpose, block))
    return np.random.Generator(np.random.SFC64(sequence))


def power_of_two_at_most(limit: float, cap: int = MAX_BLOCK) -> int:
    """The largest power of two ``<= min(limit, cap)`` (at least 1)."""
    size = 1
    while size * 2 <= min(limit, cap):
        size *= 2
    return size


def block_size(words_per_iteration: int) -> int:
    """Replicates per block for a problem whose replicate holds ``words_per_iteration``
    float64 words per iteration of history (e.g. ``n d`` for a pool of points).

    A block of ``B`` replicates then holds about 512 MiB after 100 iterations, so a
    chunk (whole blocks) fits in memory for the paper's run lengths; the size depends
    on the problem only, which keeps results independent of the iteration count.
    """
    per_block = 8 * max(1, int(words_per_iteration)) * _REFERENCE_ITERATIONS
    return power_of_two_at_most(_BLOCK_BYTES / per_block)


@dataclass(frozen=True)
class Block:
    """Replicates ``start .. stop - 1`` (absolute indices) of block ``index``."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def blocks(replicates: int, size: int) -> list[Block]:
    """The blocks of ``size`` replicates covering ``0 .. replicates - 1``."""
    return [Block(b, lo, min(lo + size, replicates))
            for b, lo in enumerate(range(0, replicates, size))]


def chunks(all_blocks: Sequence[Block], chunk_replicates: int) -> list[list[Block]]:
    """Runs of whole blocks of about ``chunk_replicates`` replicates (at least one block)."""
    if not all_blocks:
        return []
    per_chunk = max(1, chunk_replicates // all_blocks[0].size)
    return [list(all_blocks[i:i + per_chunk]) for i in range(0, len(all_blocks), per_chunk)]


#: The limit set by :func:`thread_limit` in this context (None: no limit).
_LIMIT: ContextVar[int | None] = ContextVar("collapse_thread_limit", default=None)


@contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """At most ``threads`` worker threads for the engines called in this context.

    A sweep runs each cell with one (its parallelism is across cells, one per core).
    Results do not depend on it.  A context variable, so it holds for the calling
    thread only and never leaks into other tasks of the same process.
    """
    token = _LIMIT.set(max(1, int(threads)))
    try:
        yield
    finally:
        _LIMIT.reset(token)


def thread_count() -> int:
    """Worker threads: one per available core, at most :data:`MAX_THREADS` and the
    :func:`thread_limit` of this context."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not available on every platform
        cores = os.cpu_count() or 1
    limit = _LIMIT.get()
    return max(1, min(MAX_THREADS, cores, limit if limit is not None else cores))


class Interrupted(Exception):
    """Raised in a worker by :func:`check_interrupted` once its run was abandoned."""


#: The abandon flag of the run a worker thread is computing for (see run_chunks).
_WORKER = threading.local()


def check_interrupted() -> None:
    """Raise :class:`Interrupted` if the run this worker computes for was abandoned.

    Engines call it once per iteration of their loops: when the calling thread stops
    waiting (Ctrl-C, or an error in another chunk), the workers then stop within an
    iteration instead of finishing their chunks first (a long chunk kept an
    interrupted command alive for half a minute).  Cheap, and a no-op outside
    worker threads.
    """
    flag = getattr(_WORKER, "abandoned", None)
    if flag is not None and flag.is_set():
        raise Interrupted


def run_chunks(work: Callable[[list[Block]], None], parts: Sequence[list[Block]],
               threads: int | None = None) -> None:
    """Call ``work(chunk)`` for every chunk, in worker threads when there are several.

    ``work`` must write disjoint rows of its output; the result then does not depend
    on the number of threads.  If waiting is interrupted, or a chunk fails, the other
    workers are told to stop (:func:`check_interrupted`) and the exception propagates
    once they have.
    """
    threads = thread_count() if threads is None else threads
    if threads == 1 or len(parts) <= 1:
        for part in parts:
            work(part)
        return
    from threadpoolctl import threadpool_limits

    abandoned = threading.Event()

    def run(part: list[Block]) -> None:
        _WORKER.abandoned = abandoned
        try:
            work(part)
        finally:
            _WORKER.abandoned = None

    with threadpool_limits(limits=1, user_api="blas"):
        with ThreadPoolExecutor(max_workers=min(threads, len(parts))) as executor:
            futures = [executor.submit(run, part) for part in parts]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                abandoned.set()
                for future in futures:
                    future.cancel()
                raise
