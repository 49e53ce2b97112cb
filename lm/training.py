"""Tokenised windows, training, held-out evaluation and sampling (torch).

Documents become token sequences ``[bos] + tokens(text) + [eos]``.  A sequence
longer than the context ``C`` is cut into windows of at most ``C`` tokens that
overlap by one token (starts ``0, C-1, 2(C-1), ...``), so that every token
after the first is predicted exactly once, each window conditioning only on
its own earlier tokens.

Training minimises the mean next-token cross-entropy over the real (unpadded)
positions of each mini-batch with AdamW at a constant learning rate; every
window is used once per epoch, in mini-batches of similar length
(:func:`length_grouped_batches`) so that little time goes to padding; the
batches and the dropout masks come from one seed.  Evaluation sums
``-log p(x_i | x_<i)`` over every predicted held-out token in float64.
Sampling draws each token from ``softmax(logits / temperature)`` with no top-k
or nucleus truncation (temperature 1 = the model's own distribution), starting
from the begin-of-text token with no prompt and stopping at end-of-text or
after ``max_new_tokens``.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from collapse.lm.progress import bar

IGNORE = -100
#: batches per length-sorted group in :func:`length_grouped_batches`
GROUP_BATCHES = 50


@dataclass(frozen=True)
class TrainStats:
    """What one call of :func:`train` did: predicted tokens, optimiser steps, seconds."""

    tokens: int
    steps: int
    seconds: float
    last_loss: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


@dataclass(frozen=True)
class EvalResult:
    """Summed held-out log-loss (nats) over ``tokens`` predicted tokens."""

    total_nats: float
    tokens: int
    seconds: float


@dataclass(frozen=True)
class SampleResult:
    """Sampled texts, their generated token counts (incl. end-of-text), whether each ended."""

    texts: list[str]
    token_counts: list[int]
    ended: list[bool]
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        total = sum(self.token_counts)
        return total / self.seconds if self.seconds > 0 else float("nan")


def encode(tokenizer, texts: Sequence[str], bos_id: int, eos_id: int) -> list[list[int]]:
    """``[bos] + tokens(text) + [eos]`` for every text (no special tokens added by the tokenizer)."""
    if not texts:
        return []
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [[bos_id, *seq, eos_id] for seq in ids]


def windows(sequence: Sequence[int], context: int) -> list[list[int]]:
    """Cut one token sequence into windows of at most ``context`` tokens overlapping by one."""
    if context < 2:
        raise ValueError("context must be at least 2 tokens")
    out = []
    start = 0
    while True:
        out.append(list(sequence[start:start + context]))
        if start + context >= len(sequence):
            return out
        start += context - 1


def all_windows(sequences: Sequence[Sequence[int]], context: int) -> list[list[int]]:
    return [w for seq in sequences for w in windows(seq, context)]


def _collate(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(w) for w in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, w in enumerate(batch):
        ids[row, : len(w)] = torch.tensor(w, dtype=torch.long)
        mask[row, : len(w)] = 1
    return ids, mask


def _token_nll(model, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position ``-log p(x_{i+1} | x_<=i)`` and the mask of real target positions."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1, :]
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, IGNORE)
    nll = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
        ignore_index=IGNORE, reduction="none",
    ).view(targets.shape)
    return nll, (targets != IGNORE)


def length_grouped_batches(
    items: Sequence[Sequence[int]], batch_size: int, generator: torch.Generator,
    group_batches: int = GROUP_BATCHES,
) -> list[list[int]]:
    """One epoch of mini-batches (lists of indices into ``items``), grouped by length.

    A random permutation is cut into groups of ``group_batches * batch_size``
    items; each group is sorted by length and cut into batches; the batches are
    then put in random order.  Every item appears exactly once per epoch, and
    batches hold items of similar length, so little compute is spent on
    padding (the usual "group by length" sampler).
    """
    n = len(items)
    perm = torch.randperm(n, generator=generator).tolist()
    size = group_batches * batch_size
    batches = []
    for first in range(0, n, size):
        group = sorted(perm[first:first + size], key=lambda i: len(items[i]))
        batches.extend(group[k:k + batch_size] for k in range(0, len(group), batch_size))
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[k] for k in order]


def steps_per_epoch(n_items: int, batch_size: int, group_batches: int = GROUP_BATCHES) -> int:
    """Mini-batches in one epoch of :func:`length_grouped_batches` over ``n_items`` items."""
    group = group_batches * batch_size
    return (n_items // group) * group_batches + -(-(n_items % group) // batch_size)


def train(
    model,
    train_windows: Sequence[Sequence[int]],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    pad_id: int,
    weight_decay: float = 0.0,
    steps: int | None = None,
    desc: str = "train",
    show_progress: bool = False,
) -> TrainStats:
    """Fine-tune ``model`` in place for ``epochs`` passes over ``train_windows``.

    Per step: ``loss = mean over real target positions of -log p(x_i | x_<i)``;
    AdamW(lr, weight_decay).  Batches: :func:`length_grouped_batches` on a
    generator seeded with ``seed``; dropout: the global torch RNG seeded with ``seed``.
    ``steps`` given: exactly that many optimiser steps instead, taken from as many
    successive epochs as it needs (the last one cut short); ``steps`` equal to one
    epoch's batches gives the same model as ``epochs=1``.
    """
    torch.manual_seed(seed)
    order_rng = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    total = epochs * steps_per_epoch(len(train_windows), batch_size) if steps is None else steps
    if total > 0 and not train_windows:
        raise ValueError("nothing to train on")
    tokens = done = 0
    last = float("nan")
    start = time.perf_counter()
    with bar(total=total, desc=desc, enabled=show_progress, unit="step") as progress:
        while done < total:
            for batch_ids in length_grouped_batches(train_windows, batch_size, order_rng):
                if done == total:
                    break
                batch = [train_windows[i] for i in batch_ids]
                ids, mask = _collate(batch, pad_id)
                nll, real = _token_nll(model, ids, mask)
                count = int(real.sum())
                loss = nll.sum() / count
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                tokens += count
                done += 1
                last = float(loss.detach())
                progress.update(1)
                progress.set_postfix(loss=f"{last:.3f}", refresh=False)
    model.eval()
    return TrainStats(tokens=tokens, steps=done, seconds=time.perf_counter() - start, last_loss=last)


@torch.no_grad()
def evaluate(model, eval_windows: Sequence[Sequence[int]], *, batch_size: int, pad_id: int) -> EvalResult:
    """Total held-out log-loss ``sum_i -log p(x_i | x_<i)`` (nats, float64) and token count.

    Windows are batched in order of length (a fixed order: the result does not
    depend on any random state).
    """
    model.eval()
    start = time.perf_counter()
    order = sorted(range(len(eval_windows)), key=lambda i: (len(eval_windows[i]), i))
    total = 0.0
    tokens = 0
    for first in range(0, len(order), batch_size):
        batch = [eval_windows[i] for i in order[first:first + batch_size]]
        ids, mask = _collate(batch, pad_id)
        nll, real = _token_nll(model, ids, mask)
        total += float(nll[real].double().sum())
        tokens += int(real.sum())
    return EvalResult(total_nats=total, tokens=tokens, seconds=time.perf_counter() - start)


def _cache_argument(model) -> str:
    """Name of the key/value-cache argument and output field (``cache`` from transformers 5.2x)."""
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


@torch.no_grad()
def sample(
    model,
    tokenizer,
    *,
    n: int,
    bos_id: int,
    eos_id: int,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    temperature: float = 1.0,
    desc: str = "sample",
    show_progress: bool = False,
) -> SampleResult:
    """Draw ``n`` texts: tokens from ``softmax(logits / temperature)``, from ``[bos]``, no prompt.

    One ``torch.Generator`` seeded with ``seed`` drives every draw, batch after
    batch, so the texts depend only on the model, ``seed`` and the batch size.
    """
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    model.eval()
    cache_name = _cache_argument(model)
    rng = torch.Generator().manual_seed(seed)
    texts: list[str] = []
    counts: list[int] = []
    ended: list[bool] = []
    start = time.perf_counter()
    with bar(total=n, desc=desc, enabled=show_progress, unit="text") as progress:
        for first in range(0, n, batch_size):
            size = min(batch_size, n - first)
            rows: list[list[int]] = [[] for _ in range(size)]
            active = list(range(size))  # batch row -> text index within this batch
            done = [False] * size
            tokens = torch.full((size, 1), bos_id, dtype=torch.long)
            past = None
            for _ in range(max_new_tokens):
                out = model(input_ids=tokens, use_cache=True, **{cache_name: past})
                past = getattr(out, cache_name, None)
                probs = torch.softmax(out.logits[:, -1, :].float() / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=rng)
                for row, token in zip(active, nxt.squeeze(1).tolist()):
                    if not done[row]:
                        rows[row].append(token)
                        done[row] = token == eos_id
                alive = [k for k, row in enumerate(active) if not done[row]]
                if not alive:
                    break
                if len(alive) < len(active) and hasattr(past, "batch_select_indices"):
                    # finished texts leave the batch, so later steps cost only the live ones
                    keep = torch.tensor(alive, dtype=torch.long)
                    past.batch_select_indices(keep)
                    nxt = nxt[keep]
                    active = [active[k] for k in alive]
                tokens = nxt
            for row in rows:
                if eos_id in row:
                    cut = row.index(eos_id)
                    body, count, finished = row[:cut], cut + 1, True
                else:
                    body, count, finished = row, len(row), False
                texts.append(tokenizer.decode(body, skip_special_tokens=True))
                counts.append(count)
                ended.append(finished)
            progress.update(size)
    return SampleResult(texts=texts, token_counts=counts, ended=ended, seconds=time.perf_counter() - start)
