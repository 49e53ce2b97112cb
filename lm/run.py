"""The language-model loop: any workflow rule on real text.

For every replicate seed ``s`` and workflow, iteration ``t = 1..T``:

1. ``D_t`` (:mod:`collapse.lm.workflows`): the ``n`` real documents at ``t = 1``, then
   the workflow's mix of real, fresh real and sampled texts;
2. model ``t`` = a fresh copy of the *same* base model fine-tuned on ``D_t`` (AdamW,
   seed ``(s, t, "train")``) for the run's *budget*: ``epochs`` (the paper's
   recipe: ``finetune_epochs`` passes over ``D_t``, so a larger ``D_t`` gets more
   optimiser steps), ``matched`` (every iteration of every workflow takes the
   optimiser steps of those epochs over the real set ``D_1`` of its seed, so
   iteration 1 is the same as under ``epochs``), or an integer ``S`` (exactly ``S``
   steps every iteration);
3. held-out cross-entropy ``test_nll`` of model ``t`` on the fixed evaluation
   documents (nats per token) and bits per byte (:mod:`collapse.lm.metrics`);
4. ``n`` texts sampled from model ``t`` at the preset temperature (1 by
   default) from begin-of-text with no prompt (seed ``(s, t, "sample")``),
   and their length and distinct-bigram statistics.

All randomness comes from :mod:`collapse.lm.seeding`, so an iteration's result is a
function of the settings, ``s``, ``t`` and the earlier iterations' samples;
resumed runs therefore equal uninterrupted ones, and iteration 1 is the same
for every workflow.  Computation is single-threaded by default (``threads=1``)
because the result of a floating-point reduction can depend on the thread
count; the thread count is part of the run's settings, and torch's global
thread count is restored when :func:`run` returns or fails.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import WORKFLOWS
from collapse.analysis.workflows import Workflow, parse_workflows
from collapse.lm import corpus as corpus_mod
from collapse.lm import metrics as M
from collapse.lm import rundir, seeding, workflows
from collapse.lm.presets import Preset

Hook = Callable[[str, str, int, int], None]

#: Hook stages: after fine-tuning model t (before it is evaluated and sampled), after its
#: samples and training set are written (before ``metrics.json``), and after its commit.
TRAINED = "trained"
WRITTEN = "written"
DONE = "done"

EPOCHS = "epochs"
MATCHED = "matched"

#: Refuse a run estimated to take longer than this many seconds of one core (``force``
#: runs it anyway).  The estimate is rough; it only has to tell a long run from an
#: impossible one (``--iterations 1000000000``).
TIME_LIMIT = 7 * 24 * 3600.0


@dataclass(frozen=True)
class RunConfig:
    """The settings of a run (everything that changes results; see :mod:`collapse.lm.rundir`).

    ``preset`` already carries any ``--n`` / ``--n-eval`` / ``--lr`` override; ``seed``
    is the first replicate seed (replicates are ``seed, seed+1, ...``);
    ``split_seed`` fixes the pretraining/evaluation/pool split and the base model;
    ``budget`` is ``"epochs"``, ``"matched"`` or an integer number of optimiser steps
    per iteration (module docstring).
    """

    preset: Preset
    dataset: str | None = None
    text_field: str | None = None
    model: str | None = None
    seed: int = 0
    split_seed: int = 0
    budget: str | int = EPOCHS


@dataclass
class RunResult:
    """What one call of :func:`run` did, and the metrics of the iterations it asked for.

    ``metrics`` is a :class:`collapse.lm.report.LMResult` (a
    :class:`collapse.simulate.results.SimulationResult`): ``metrics.table``,
    ``metrics.to_frame()``, ``metrics.plot()``, ``metrics.samples[workflow][metric]``
    (an array of shape ``(seeds, iterations)``).
    """

    output: Path
    computed: list[tuple[str, int, int]] = field(default_factory=list)
    reused: list[tuple[str, int, int]] = field(default_factory=list)
    seconds: float = 0.0
    metrics: object = None


def check_budget(budget: object) -> str | int:
    """``budget`` in canonical form, or a :class:`CollapseError` naming ``--budget``."""
    if budget in (EPOCHS, MATCHED):
        return budget  # type: ignore[return-value]
    if isinstance(budget, str):
        try:
            budget = int(budget)
        except ValueError:
            pass
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise CollapseError(f"--budget: must be {EPOCHS}, {MATCHED} or an integer >= 1 "
                            f"(optimiser steps per iteration; got {budget!r})")
    return budget


def check_numbers(preset: Preset, iterations: int, n_seeds: int, seed: int) -> None:
    """:class:`CollapseError` naming the first out-of-range number."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise CollapseError(f"--iterations: must be an integer >= 1 (got {iterations})")
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise CollapseError(f"--seeds: must be an integer >= 1 (got {n_seeds})")
    if preset.n < 2:
        raise CollapseError(f"--n: must be an integer >= 2 (got {preset.n})")
    if preset.n_eval < 1:
        raise CollapseError(f"--n-eval: must be an integer >= 1 (got {preset.n_eval})")
    if not (isinstance(preset.finetune_lr, (int, float)) and math.isfinite(preset.finetune_lr)
            and preset.finetune_lr > 0):
        raise CollapseError(f"--lr: must be a finite number > 0 (got {preset.finetune_lr})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CollapseError(f"--seed: must be an integer >= 0 (got {seed})")


def check_rules(workflows_to_run, n: int) -> tuple[Workflow, ...]:
    """The workflow rules, each checked against ``n`` (:class:`CollapseError` naming ``--workflow``)."""
    try:
        rules = parse_workflows(workflows_to_run)
        for rule in rules:
            rule.check(n)
    except CollapseError as exc:
        text = str(exc)
        raise CollapseError(text if text.startswith("--workflow") else f"--workflow: {text}") from None
    return rules


def model_parameters(preset: Preset, model: str | None) -> float:
    """Parameters of the model a run will fine-tune, estimated without loading it.

    The preset's GPT-2 shape; for ``--model`` a local directory, its weight files'
    bytes over 4 (float32); a hub name, an assumed 1e8.
    """
    if model is None:
        d, layers = preset.n_embd, preset.n_layer
        return 12 * layers * d * d + (preset.vocab_size + preset.context) * d
    path = Path(model).expanduser()
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.iterdir()
                   if p.suffix in (".safetensors", ".bin", ".pt", ".pth") and p.is_file())
        if size:
            return size / 4.0
    return 1e8


def estimate_seconds(preset: Preset, rules: Sequence[Workflow], iterations: int, n_seeds: int,
                     budget: str | int, parameters: float, tokens_per_document: float = 60.0) -> float:
    """Rough seconds of one core for a whole run, from its sizes alone.

    Fine-tuning costs about ``6 * parameters`` floating-point operations per token and
    sampling about ``2 * parameters`` per token plus a fixed overhead; the rates below
    are within a factor of a few of the throughput measured on a 2-core CPU (the
    ``tiny`` and ``small`` presets).  Sums closed forms over ``t``, so it is instant
    even for absurd sizes.
    """
    train_rate = 5e9 / parameters        # tokens per second
    sample_rate = min(2e4, 5e9 / parameters)
    n, T = preset.n, iterations
    docs = 0.0
    for rule in rules:
        if budget == MATCHED:
            docs += T * n * preset.finetune_epochs  # about one real set's worth of steps
        elif budget != EPOCHS:
            docs += T * int(budget) * preset.batch_size  # S steps of a batch each
        elif rule.subsample_size(n) is not None:
            docs += (n + (T - 1) * rule.subsample_size(n)) * preset.finetune_epochs
        else:
            window = T if rule.window is None else min(rule.window, T)
            real = 0 if rule.real == "none" else 1
            # sum over t = 2..T of (real + min(window, t - 1)) batches of n
            synthetic = (T - 1) * T / 2 if rule.window is None else (T - 1) * window
            docs += n * (1 + (T - 1) * real + synthetic) * preset.finetune_epochs
    train_tokens = docs * tokens_per_document
    sample_tokens = len(rules) * T * n * preset.max_new_tokens / 2
    eval_tokens = len(rules) * T * preset.n_eval * tokens_per_document
    seconds = train_tokens / train_rate + (sample_tokens / sample_rate) + eval_tokens / (3 * train_rate)
    return n_seeds * seconds


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400.0), ("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def check_cost(preset: Preset, rules: Sequence[Workflow], iterations: int, n_seeds: int,
               budget: str | int, model: str | None, force: bool = False) -> float:
    """The estimated seconds; :class:`CollapseError` naming the option that drives them
    when over :data:`TIME_LIMIT` (unless ``force``)."""
    seconds = estimate_seconds(preset, rules, iterations, n_seeds, budget,
                               model_parameters(preset, model))
    if seconds > TIME_LIMIT and not force:
        sizes = [("--iterations", iterations, iterations / 10), ("--seeds", n_seeds, n_seeds / 5),
                 ("--n", preset.n, preset.n / 200)]
        if budget not in (EPOCHS, MATCHED):
            sizes.append(("--budget", budget, int(budget) / 100))
        driver, shown, _ = max(sizes, key=lambda item: item[2])
        raise CollapseError(
            f"{driver}: {shown} would take about {_duration(seconds)} of one core "
            f"(the limit is {_duration(TIME_LIMIT)}); use a smaller value, or --force to run anyway")
    return seconds


def check_model_spec(spec: str) -> None:
    """:class:`CollapseError` for a ``--model`` that cannot be loaded, found before torch is imported.

    A path-like name must be a directory; a hub name must be in the local
    Hugging Face cache or the hub must be reachable (:mod:`collapse.lm.hub`).
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise CollapseError(f"--model: {spec!r} is a file, not a model directory")
    if spec.startswith(("/", ".", "~")):
        raise CollapseError(f"--model: no such model directory {spec!r}")
    from collapse.lm import hub

    if _in_hub_cache(spec) or hub.hub_reachable():
        return
    hub.require_hub("--model", spec, hub.MODEL_ALTERNATIVE)


def _in_hub_cache(spec: str) -> bool:
    """Whether the local Hugging Face cache holds a config for hub name ``spec``."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(spec, "config.json"), str)
    except Exception:  # noqa: BLE001 - no huggingface_hub, or not a repository id: let the loader decide
        return False


def _stderr_log(message: str) -> None:
    print(f"lm: {message}", file=sys.stderr, flush=True)


class _Context:
    """Everything shared by the iterations of one call: corpus, splits, base model, eval windows."""

    def __init__(self, config: RunConfig, cache_dir, threads: int, show_progress: bool, log,
                 n_option: str = "--n") -> None:
        from collapse.lm import cache

        self.config = config
        self.threads = threads
        preset = config.preset
        self.corpus = corpus_mod.load_corpus(config.dataset, config.text_field)
        n_pretrain = 0 if config.model else preset.n_pretrain
        corpus_mod.check_sizes(len(self.corpus.documents), n_pretrain, preset.n_eval, preset.n,
                               self.corpus.name, n_option)
        if config.model:
            check_model_spec(config.model)
            self.base_settings = None
            self.base_key = None
            self._cache_dir = None
        else:
            self._cache_dir = cache.check_cache_dir(cache_dir)
        self.splits = corpus_mod.make_splits(
            len(self.corpus.documents), n_pretrain, preset.n_eval, config.split_seed)
        if not config.model:
            self.base_settings = cache.base_settings(
                preset, self.corpus.fingerprint, self.splits.pretrain, config.split_seed)
            self.base_key = cache.settings_key(self.base_settings)
        self.eval_texts = corpus_mod.select(self.corpus.documents, self.splits.evaluation)
        self._show = show_progress
        self._log = log
        self._n_option = n_option
        self.dropped = 0
        self.bundle = None
        self.eval_windows = None
        self._matched: dict[int, int] = {}

    def settings(self) -> dict:
        config = self.config
        model = config.model
        if model and Path(model).expanduser().is_dir():
            model = str(Path(model).expanduser().resolve())
        return {
            "preset": config.preset.as_dict(),
            "n": config.preset.n,
            "n_eval": config.preset.n_eval,
            "dataset": self.corpus.name,
            "text_field": config.text_field,
            "dataset_sha256": self.corpus.fingerprint,
            "model": model,
            "seed": config.seed,
            "split_seed": config.split_seed,
            "budget": config.budget,
            "threads": self.threads,
            "base_key": self.base_key,
        }

    def provenance(self) -> dict:
        import torch
        import transformers

        return {
            "dataset": self.corpus.provenance,
            "documents": len(self.corpus.documents),
            "characters": self.corpus.n_chars,
            "chat_examples_over_context": self.dropped if self.corpus.chat else None,
            "split_sizes": {
                "pretrain": len(self.splits.pretrain),
                "evaluation": len(self.splits.evaluation),
                "pool": len(self.splits.pool),
            },
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }

    def load_base(self) -> None:
        """Build or fetch the base model, then encode the evaluation windows (once).

        For a chat data set this also fixes the evaluation set and the pool: examples
        longer than the model's context (with begin- and end-of-text tokens) are left
        out of both, as the paper filters over-long HelpSteer2 examples.
        """
        if self.bundle is not None:
            return
        from collapse.lm import modeling, training

        preset = self.config.preset
        if self.config.model is None:
            self.bundle = modeling.default_base(
                preset, corpus_mod.select(self.corpus.documents, self.splits.pretrain),
                self.base_settings, self._cache_dir, show_progress=self._show, log=self._log,
            )
        else:
            self.bundle = modeling.load(self.config.model, context=preset.context)
        b = self.bundle
        if self.corpus.chat:
            self._drop_overlong()
        sequences = training.encode(b.tokenizer, self.eval_texts, b.bos_id, b.eos_id)
        self.eval_windows = training.all_windows(sequences, b.max_positions)
        self.eval_bytes = M.utf8_bytes(self.eval_texts)
        self.max_new_tokens = min(preset.max_new_tokens, b.max_positions - 1)

    def _drop_overlong(self) -> None:
        preset = self.config.preset
        b = self.bundle
        docs = self.corpus.documents
        candidates = sorted(set(range(len(docs))) - set(self.splits.pretrain))
        lengths = [len(ids) + 2 for ids in b.tokenizer([docs[i] for i in candidates],
                                                       add_special_tokens=False)["input_ids"]]
        fits = {i for i, length in zip(candidates, lengths) if length <= b.max_positions}
        self.dropped = len(candidates) - len(fits)
        if len(fits) < preset.n_eval + preset.n + 1:
            raise CollapseError(
                f"{self._n_option}: {len(fits)} of the {len(candidates)} prompt/response examples of "
                f"{self.corpus.name!r} fit in the context of {b.max_positions} tokens, but the run needs "
                f"--n-eval {preset.n_eval} + {self._n_option} {preset.n} + 1; lower them or raise --context")
        self.splits = corpus_mod.make_splits(len(docs), len(self.splits.pretrain), preset.n_eval,
                                             self.config.split_seed, keep=fits.__contains__)
        self.eval_texts = corpus_mod.select(docs, self.splits.evaluation)
        self._log(f"left out {self.dropped} of {len(candidates)} prompt/response examples longer than "
                  f"{b.max_positions} tokens")

    def windows(self, texts: Sequence[str]) -> list:
        from collapse.lm import training

        b = self.bundle
        return training.all_windows(training.encode(b.tokenizer, texts, b.bos_id, b.eos_id), b.max_positions)

    def steps(self, seed: int, real: Sequence[str]) -> int | None:
        """Optimiser steps per iteration under the run's budget (``None``: whole epochs)."""
        budget = self.config.budget
        if budget == EPOCHS:
            return None
        if budget != MATCHED:
            return int(budget)
        if seed not in self._matched:
            from collapse.lm import training

            preset = self.config.preset
            self._matched[seed] = preset.finetune_epochs * training.steps_per_epoch(
                len(self.windows(real)), preset.batch_size)
        return self._matched[seed]


def _compute_iteration(ctx: _Context, label: str, seed: int, t: int, texts: list[str], steps: int | None,
                       hook: Hook | None) -> tuple[dict, list[dict]]:
    from collapse.lm import training

    preset = ctx.config.preset
    b = ctx.bundle
    model = copy.deepcopy(b.model)
    name = f"{label} s{seed} t{t}"
    trained = training.train(
        model, ctx.windows(texts), epochs=preset.finetune_epochs, lr=preset.finetune_lr,
        batch_size=preset.batch_size, seed=seeding.torch_seed(seed, t, seeding.TRAIN),
        pad_id=b.pad_id, weight_decay=preset.weight_decay, steps=steps,
        desc=f"fine-tune {name}", show_progress=ctx._show,
    )
    if hook is not None:
        hook(TRAINED, label, seed, t)
    evaluated = training.evaluate(model, ctx.eval_windows, batch_size=preset.eval_batch_size, pad_id=b.pad_id)
    drawn = training.sample(
        model, b.tokenizer, n=preset.n, bos_id=b.bos_id, eos_id=b.eos_id,
        max_new_tokens=ctx.max_new_tokens, batch_size=preset.sample_batch_size,
        seed=seeding.torch_seed(seed, t, seeding.SAMPLE), temperature=preset.temperature,
        desc=f"sample {name}", show_progress=ctx._show,
    )
    values = {
        M.TEST_NLL: M.cross_entropy_per_token(evaluated.total_nats, evaluated.tokens),
        M.HELDOUT_BPB: M.bits_per_byte(evaluated.total_nats, ctx.eval_bytes),
    }
    values.update(M.sample_metrics(drawn.texts))
    record = {
        "workflow": label,
        "seed": seed,
        "iteration": t,
        "metrics": values,
        "training_set": {
            "documents": len(texts),
            "predicted_tokens": trained.tokens,
            "optimiser_steps": trained.steps,
        },
        "heldout": {"tokens": evaluated.tokens, "bytes": ctx.eval_bytes, "total_nats": evaluated.total_nats},
        "samples": {
            "texts": len(drawn.texts),
            "generated_tokens": sum(drawn.token_counts),
            "ended_fraction": sum(drawn.ended) / len(drawn.ended),
        },
        "timing": {
            "train_seconds": trained.seconds,
            "train_tokens_per_second": trained.tokens_per_second,
            "eval_seconds": evaluated.seconds,
            "sample_seconds": drawn.seconds,
            "sample_tokens_per_second": drawn.tokens_per_second,
        },
    }
    sample_records = [
        {"index": i, "text": text, "tokens": count, "ended": ended}
        for i, (text, count, ended) in enumerate(zip(drawn.texts, drawn.token_counts, drawn.ended))
    ]
    return record, sample_records


def _write_real(path: Path, indices: Sequence[int], texts: Sequence[str], log) -> None:
    """Write the real training set of a seed, replacing a file whose content differs."""
    records = [{"index": i, "text": x} for i, x in zip(indices, texts)]
    if path.is_file():
        if path.read_bytes() == rundir.jsonl_text(records).encode("utf-8"):
            return
        log(f"{path} does not hold this seed's real training set (damaged); rewriting it")
    rundir.write_jsonl(path, records)


def run(
    config: RunConfig,
    output: str | Path,
    *,
    workflows_to_run=WORKFLOWS,
    iterations: int,
    n_seeds: int = 1,
    cache_dir: str | Path | None = None,
    threads: int = 1,
    force: bool = False,
    show_progress: bool = False,
    log: Callable[[str], None] | None = _stderr_log,
    hook: Hook | None = None,
) -> RunResult:
    """Run (or resume) the loop into ``output``; see the module docstring.

    Computes every missing iteration ``t <= iterations`` of every workflow in
    ``workflows_to_run`` (preset names, spec strings or
    :class:`~collapse.analysis.workflows.Workflow` rules; ``"all"`` for the paper's
    three) for seeds ``config.seed .. config.seed + n_seeds - 1``.  Done iterations
    already in ``output`` are reused once verified (:func:`collapse.lm.rundir.check_iteration`,
    and the texts they were trained on must be the ones this call would train on);
    a damaged one is recomputed, and said so through ``log``.
    ``hook(stage, workflow, seed, t)`` is called at stages :data:`TRAINED`,
    :data:`WRITTEN` and :data:`DONE` (tests use it to simulate a kill).
    Returns a :class:`RunResult` whose ``metrics`` hold every requested iteration.
    """
    start = time.perf_counter()
    output = rundir.check_directory(output)
    check_numbers(config.preset, iterations, n_seeds, config.seed)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise CollapseError(f"--threads: must be an integer >= 1 (got {threads})")
    config = RunConfig(**{**config.__dict__, "budget": check_budget(config.budget)})
    rules = check_rules(workflows_to_run, config.preset.n)
    check_cost(config.preset, rules, iterations, n_seeds, config.budget, config.model, force)
    log = log or (lambda message: None)
    ctx = _Context(config, cache_dir, threads, show_progress, log)
    _check_fresh(ctx, rules)
    labels = [rule.label for rule in rules]
    seeds = [config.seed + k for k in range(n_seeds)]
    extent = {"workflows": labels, "iterations": iterations, "seeds": seeds}
    settings = ctx.settings()
    # refuse a mismatched directory before taking the lock or doing any expensive work
    rundir.check_run(output, settings)
    import torch

    previous_threads = torch.get_num_threads()
    try:
        with rundir.locked(output):
            rundir.check_run(output, settings)
            torch.set_num_threads(threads)
            return _loop(ctx, output, rules, seeds, iterations, extent, settings, hook, log, start)
    finally:
        torch.set_num_threads(previous_threads)


def _check_fresh(ctx: _Context, rules) -> None:
    n = ctx.config.preset.n
    if any(rule.real == "fresh" for rule in rules) and len(ctx.splits.pool) < 2 * n:
        raise CollapseError(
            f"--n: fresh real batches need a pool of 2 x --n = {2 * n} documents besides "
            f"pretraining and evaluation, and {ctx.corpus.name!r} leaves {len(ctx.splits.pool)}")


def _loop(ctx: _Context, output: Path, rules, seeds, iterations, extent, settings, hook, log,
          start) -> RunResult:
    from collapse.lm import report
    from collapse.lm.progress import bar

    preset = ctx.config.preset
    cells = [(rule, s, t) for s in seeds for rule in rules for t in range(1, iterations + 1)]
    unverified = sum(1 for rule, s, t in cells
                     if not rundir.is_complete(rundir.iteration_dir(output, rule.label, s, t), rule.label, s, t))
    # the base model loads first, so a bad --model leaves no run directory behind; a chat
    # data set needs its tokenizer to fix the evaluation set and the pool
    if unverified or ctx.corpus.chat:
        ctx.load_base()
        _check_fresh(ctx, rules)
    rundir.open_run(output, settings, extent, ctx.provenance())
    result = RunResult(output=output)
    records = []
    with bar(total=unverified, desc="lm iterations", enabled=ctx._show, unit="it", leave=True) as overall:
        for s in seeds:
            real_indices = corpus_mod.real_training_indices(ctx.splits, preset.n, s)
            real = corpus_mod.select(ctx.corpus.documents, real_indices)
            _write_real(rundir.real_path(output, s), real_indices, real, log)
            fresh: dict[int, list[str]] = {}
            for rule in rules:
                label = rule.label
                samples: list[list[str]] = []
                for t in range(1, iterations + 1):
                    refs = workflows.training_refs(rule, t, len(real), [len(x) for x in samples],
                                                   rng=seeding.numpy_rng(s, t, seeding.SUBSAMPLE))
                    for u in workflows.fresh_batches_needed(rule, t):
                        if u not in fresh:
                            fresh[u] = corpus_mod.select(ctx.corpus.documents, corpus_mod.fresh_indices(
                                ctx.splits, real_indices, preset.n, s, u))
                    texts = workflows.materialise(refs, real, samples, fresh)
                    digest = rundir.texts_sha256(texts)
                    directory = rundir.iteration_dir(output, label, s, t)
                    record, problem = rundir.check_iteration(directory, label, s, t)
                    if record is not None and record["training_set"]["sha256"] != digest:
                        record, problem = None, (f"{directory / rundir.METRICS} was trained on other texts "
                                                 "than this run's D_t (an earlier iteration changed)")
                    if record is not None:
                        samples.append([r["text"] for r in rundir.read_jsonl(directory / rundir.SAMPLES)])
                        records.append(record)
                        result.reused.append((label, s, t))
                        continue
                    if problem:
                        log(f"{label} seed {s} iteration {t}: {problem}; recomputing it")
                    ctx.load_base()
                    record, sample_records = _compute_iteration(
                        ctx, label, s, t, texts, ctx.steps(s, real), hook)
                    record["training_set"].update(_composition(refs), sha256=digest)
                    record = _commit(directory, sample_records, refs, record, hook, (label, s, t))
                    samples.append([r["text"] for r in sample_records])
                    records.append(record)
                    result.computed.append((label, s, t))
                    overall.update(1)
                    timing = record["timing"]
                    log(
                        f"{label} seed {s} iteration {t}/{iterations}: "
                        f"{M.TEST_NLL} {record['metrics'][M.TEST_NLL]:.4f}, "
                        f"|D_t| {record['training_set']['documents']}, "
                        f"{record['training_set']['optimiser_steps']} steps, "
                        f"train {timing['train_seconds']:.1f} s ({timing['train_tokens_per_second']:.0f} tok/s), "
                        f"sample {timing['sample_seconds']:.1f} s ({timing['sample_tokens_per_second']:.0f} tok/s)"
                    )
                    if hook is not None:
                        hook(DONE, label, s, t)
    result.seconds = time.perf_counter() - start
    result.metrics = report.result_from_records(rundir.read_config(output), records, rules, seeds, iterations)
    return result


def _composition(refs: Sequence[tuple[int, int]]) -> dict:
    """How many documents of ``D_t`` are original real, fresh real and synthetic."""
    real = sum(1 for source, _ in refs if source == workflows.REAL)
    fresh = sum(1 for source, _ in refs if source < 0)
    return {"real_documents": real, "fresh_documents": fresh,
            "synthetic_documents": len(refs) - real - fresh}


def _commit(directory: Path, sample_records, refs, record, hook, key) -> dict:
    """Write the iteration's files; ``metrics.json`` (the commit) last."""
    import os

    directory.mkdir(parents=True, exist_ok=True)
    # a leftover commit record of a damaged iteration must go first: until the new
    # metrics.json is in place the iteration counts as not done
    try:
        os.unlink(directory / rundir.METRICS)
    except FileNotFoundError:
        pass
    rundir.write_jsonl(directory / rundir.SAMPLES, sample_records)
    rundir.write_json(directory / rundir.TRAINING_SET, {"refs": [list(r) for r in refs]})
    if hook is not None:
        hook(WRITTEN, *key)
    record = dict(record, files={name: rundir.file_record(directory / name)
                                 for name in (rundir.SAMPLES, rundir.TRAINING_SET)})
    rundir.write_json(directory / rundir.METRICS, record)
    return record
