"""Names and pure formulas of the language-model metrics (one place for both).

Per model-fitting iteration ``t`` the loop records four numbers:

``test_nll``
    Cross-entropy of the held-out real documents under model ``t``,
    ``CE_t = -(1/N_tok) sum_i log p_t(x_i | x_<i)`` in nats per predicted token,
    where the sum runs over every token of every held-out document (its text
    tokens and the end-of-text token; the begin-of-text token is given, not
    predicted).  The paper's curve, and the same quantity as ``test_nll`` of the
    Gaussian and KDE settings (there in nats per point, here in nats per token).
    Depends on the tokenizer.  Run directories written before the rename call it
    ``heldout_ce_nats_per_token``; :func:`canonical_metrics` maps the old name.
``heldout_bits_per_byte``
    The same total log-loss per UTF-8 byte of held-out text:
    ``BPB_t = (sum_i -log p_t(x_i | x_<i)) / (ln 2 * N_bytes)`` in bits per
    byte.  Comparable across tokenizers (and so across ``--model`` choices).
``sample_mean_length``
    Mean length of the ``n`` texts sampled from model ``t``, in characters
    (Unicode code points).  Collapse shows as drift towards short or
    maximal-length texts.
``sample_distinct_bigram_ratio``
    ``|distinct word bigrams| / |word bigrams|`` pooled over the ``n`` sampled
    texts (words = whitespace-separated strings; a text of ``w`` words gives
    ``w-1`` bigrams).  Dimensionless, in ``[0, 1]``; falls when samples repeat
    themselves or one another.  ``nan`` if the samples contain no bigram.

These are functions of numbers and strings only: no torch here, so the report
path and the tests can use them without the heavy dependencies.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from collapse.analysis.vocabulary import TEST_NLL

HELDOUT_BPB = "heldout_bits_per_byte"
SAMPLE_MEAN_LENGTH = "sample_mean_length"
SAMPLE_DISTINCT_BIGRAM_RATIO = "sample_distinct_bigram_ratio"

#: Every LM metric, in the order of tables and figure panels.
LM_METRICS: tuple[str, ...] = (
    TEST_NLL,
    HELDOUT_BPB,
    SAMPLE_MEAN_LENGTH,
    SAMPLE_DISTINCT_BIGRAM_RATIO,
)

#: Axis labels with units, for figures.
METRIC_LABELS: dict[str, str] = {
    TEST_NLL: "held-out cross-entropy test_nll (nats/token)",
    HELDOUT_BPB: "held-out bits per byte",
    SAMPLE_MEAN_LENGTH: "sample mean length (characters)",
    SAMPLE_DISTINCT_BIGRAM_RATIO: "sample distinct word-bigram ratio",
}


#: Names used by earlier versions of the loop, and what they are called now.
LEGACY_NAMES: dict[str, str] = {"heldout_ce_nats_per_token": TEST_NLL}


def canonical_metrics(values: Mapping[str, object]) -> dict[str, object]:
    """``values`` with every old metric name (:data:`LEGACY_NAMES`) replaced by the current one.

    Examples
    --------
    >>> canonical_metrics({"heldout_ce_nats_per_token": 4.5, "sample_mean_length": 30.0})
    {'test_nll': 4.5, 'sample_mean_length': 30.0}
    """
    return {LEGACY_NAMES.get(name, name): value for name, value in values.items()}


def cross_entropy_per_token(total_nats: float, n_tokens: int) -> float:
    """``CE = total_nats / n_tokens`` (nats per predicted token)."""
    if n_tokens <= 0:
        raise ValueError("no predicted tokens")
    return float(total_nats) / n_tokens


def bits_per_byte(total_nats: float, n_bytes: int) -> float:
    """``BPB = total_nats / (ln 2 * n_bytes)`` (bits per UTF-8 byte)."""
    if n_bytes <= 0:
        raise ValueError("no bytes")
    return float(total_nats) / (math.log(2.0) * n_bytes)


def utf8_bytes(texts: Iterable[str]) -> int:
    """Total UTF-8 length of ``texts`` in bytes."""
    return sum(len(t.encode("utf-8")) for t in texts)


def mean_length(texts: Sequence[str]) -> float:
    """Mean number of characters per text; ``nan`` for no texts."""
    if not texts:
        return math.nan
    return sum(len(t) for t in texts) / len(texts)


def distinct_bigram_ratio(texts: Iterable[str]) -> float:
    """Distinct over total whitespace-word bigrams, pooled over ``texts``.

    Bigrams never cross text boundaries.  ``nan`` when there is no bigram.
    """
    seen: set[tuple[str, str]] = set()
    total = 0
    for text in texts:
        words = text.split()
        for pair in zip(words, words[1:]):
            seen.add(pair)
            total += 1
    if total == 0:
        return math.nan
    return len(seen) / total


def sample_metrics(texts: Sequence[str]) -> dict[str, float]:
    """The two sample statistics of one iteration, keyed by metric name."""
    return {
        SAMPLE_MEAN_LENGTH: mean_length(texts),
        SAMPLE_DISTINCT_BIGRAM_RATIO: distinct_bigram_ratio(texts),
    }
