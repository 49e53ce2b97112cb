"""Worker threads of the engines (simulate.streams.run_chunks): abandoning a run.

A chunk that fails, or a Ctrl-C while the calling thread waits, must stop the other
workers within an iteration of their loops rather than after their whole chunks.
"""

from __future__ import annotations

import threading

import pytest

from collapse.simulate import streams


def _two_chunks():
    return streams.chunks(streams.blocks(2, 1), 1)


def test_a_failing_chunk_stops_the_others_at_their_next_iteration():
    started, finished, iterations = threading.Event(), [], []

    def work(part):
        if part[0].index == 0:
            started.wait(10)
            raise ValueError("chunk 0 failed")
        for t in range(5000):  # 5 s and more if the worker were left to finish
            streams.check_interrupted()
            iterations.append(t)
            started.set()
            threading.Event().wait(0.001)
        finished.append(True)

    with pytest.raises(ValueError, match="chunk 0 failed"):
        streams.run_chunks(work, _two_chunks(), threads=2)
    assert not finished and 0 < len(iterations) < 5000


def test_check_interrupted_is_a_no_op_outside_workers_and_in_healthy_runs():
    streams.check_interrupted()
    seen = []

    def work(part):
        for _ in range(5):
            streams.check_interrupted()
        seen.append(part[0].index)

    streams.run_chunks(work, _two_chunks(), threads=2)
    assert sorted(seen) == [0, 1]
