"""The language-model loop: replace, accumulate and accumulate-subsample on real text.

For every replicate seed ``s`` and workflow, iteration ``t = 1..T``:

1. ``D_t`` (:mod:`collapse.lm.workflows`): the ``n`` real documents at ``t = 1``, then
   the workflow's mix of real and sampled texts;
2. model ``t`` = a fresh copy of the *same* base model fine-tuned on ``D_t``
   (``finetune_epochs`` epochs, AdamW, seed ``(s, t, "train")``);
3. held-out cross-entropy of model ``t`` on the fixed evaluation documents
   (nats per token and bits per byte, :mod:`collapse.lm.metrics`);
4. ``n`` texts sampled from model ``t`` at the preset temperature (1 by
   default) from begin-of-text with no prompt (seed ``(s, t, "sample")``),
   and their length and distinct-bigram statistics.

All randomness comes from :mod:`collapse.lm.seeding`, so an iteration's result is a
function of the settings, ``s``, ``t`` and the earlier iterations' samples;
resumed runs therefore equal uninterrupted ones, and iteration 1 is the same
for every workflow.  Computation is single-threaded by default (``threads=1``)
because the result of a floating-point reduction can depend on the thread
count.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import WORKFLOWS
from collapse.lm import corpus as corpus_mod
from collapse.lm import metrics as M
from collapse.lm import rundir, seeding, workflows
from collapse.lm.presets import Preset

Hook = Callable[[str, str, int, int], None]

#: Hook stages: after fine-tuning model t (before it is evaluated and sampled) and after its commit.
TRAINED = "trained"
DONE = "done"


@dataclass(frozen=True)
class RunConfig:
    """The settings of a run (everything that changes results; see :mod:`collapse.lm.rundir`).

    ``preset`` already carries any ``--n`` / ``--n-eval`` override; ``seed`` is
    the first replicate seed (replicates are ``seed, seed+1, ...``);
    ``split_seed`` fixes the pretraining/evaluation/pool split and the base model.
    """

    preset: Preset
    dataset: str | None = None
    text_field: str | None = None
    model: str | None = None
    seed: int = 0
    split_seed: int = 0


@dataclass
class RunResult:
    """Which ``(workflow, seed, t)`` iterations this call computed and which it found done."""

    output: Path
    computed: list[tuple[str, int, int]] = field(default_factory=list)
    reused: list[tuple[str, int, int]] = field(default_factory=list)
    seconds: float = 0.0


def check_numbers(preset: Preset, iterations: int, n_seeds: int, seed: int) -> None:
    """:class:`CollapseError` naming the first out-of-range number."""
    if iterations < 1:
        raise CollapseError(f"--iterations: must be an integer >= 1 (got {iterations})")
    if n_seeds < 1:
        raise CollapseError(f"--seeds: must be an integer >= 1 (got {n_seeds})")
    if preset.n < 2:
        raise CollapseError(f"--n: must be an integer >= 2 (got {preset.n})")
    if preset.n_eval < 1:
        raise CollapseError(f"--n-eval: must be an integer >= 1 (got {preset.n_eval})")
    if seed < 0:
        raise CollapseError(f"--seed: must be an integer >= 0 (got {seed})")


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
    except Exception:  # no huggingface_hub, or not a valid repository id: let the loader decide
        return False


def _stderr_log(message: str) -> None:
    print(f"lm: {message}", file=sys.stderr, flush=True)


class _Context:
    """Everything shared by the iterations of one call: corpus, splits, base model, eval windows."""

    def __init__(self, config: RunConfig, cache_dir, show_progress: bool, log) -> None:
        from collapse.lm import cache

        self.config = config
        preset = config.preset
        self.corpus = corpus_mod.load_corpus(config.dataset, config.text_field)
        n_pretrain = 0 if config.model else preset.n_pretrain
        corpus_mod.check_sizes(len(self.corpus.documents), n_pretrain, preset.n_eval, preset.n,
                               self.corpus.name)
        self.splits = corpus_mod.make_splits(
            len(self.corpus.documents), n_pretrain, preset.n_eval, config.split_seed)
        self.eval_texts = corpus_mod.select(self.corpus.documents, self.splits.evaluation)
        if config.model:
            check_model_spec(config.model)
            self.base_settings = None
            self.base_key = None
            self.model_spec = config.model
        else:
            self.base_settings = cache.base_settings(
                preset, self.corpus.fingerprint, self.splits.pretrain, config.split_seed)
            self.base_key = cache.settings_key(self.base_settings)
            self.model_spec = None
        self._cache_dir = cache.resolve_cache_dir(cache_dir)
        self._show = show_progress
        self._log = log
        self.bundle = None
        self.eval_windows = None

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
            "base_key": self.base_key,
        }

    def provenance(self) -> dict:
        import torch
        import transformers

        return {
            "dataset": self.corpus.provenance,
            "documents": len(self.corpus.documents),
            "characters": self.corpus.n_chars,
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
        """Build or fetch the base model, then encode the evaluation windows."""
        from collapse.lm import modeling, training

        preset = self.config.preset
        if self.model_spec is None:
            path = modeling.ensure_default_base(
                preset, corpus_mod.select(self.corpus.documents, self.splits.pretrain),
                self.base_settings, self._cache_dir, show_progress=self._show, log=self._log,
            )
            self.bundle = modeling.load(str(path), context=preset.context)
        else:
            self.bundle = modeling.load(self.model_spec, context=preset.context)
        b = self.bundle
        sequences = training.encode(b.tokenizer, self.eval_texts, b.bos_id, b.eos_id)
        self.eval_windows = training.all_windows(sequences, b.max_positions)
        self.eval_bytes = M.utf8_bytes(self.eval_texts)
        self.max_new_tokens = min(preset.max_new_tokens, b.max_positions - 1)


def _compute_iteration(
    ctx: _Context, workflow: str, seed: int, t: int, real: Sequence[str],
    samples: list[list[str]], hook: Hook | None,
) -> tuple[dict, list[dict], list]:
    from collapse.lm import training

    preset = ctx.config.preset
    b = ctx.bundle
    refs = workflows.training_refs(
        workflow, t, len(real), [len(x) for x in samples],
        rng=seeding.numpy_rng(seed, t, seeding.SUBSAMPLE),
    )
    texts = workflows.materialise(refs, real, samples)
    model = copy.deepcopy(b.model)
    train_windows = training.all_windows(training.encode(b.tokenizer, texts, b.bos_id, b.eos_id), b.max_positions)
    label = f"{workflow} s{seed} t{t}"
    trained = training.train(
        model, train_windows, epochs=preset.finetune_epochs, lr=preset.finetune_lr,
        batch_size=preset.batch_size, seed=seeding.torch_seed(seed, t, seeding.TRAIN),
        pad_id=b.pad_id, weight_decay=preset.weight_decay,
        desc=f"fine-tune {label}", show_progress=ctx._show,
    )
    if hook is not None:
        hook(TRAINED, workflow, seed, t)
    evaluated = training.evaluate(model, ctx.eval_windows, batch_size=preset.eval_batch_size, pad_id=b.pad_id)
    drawn = training.sample(
        model, b.tokenizer, n=preset.n, bos_id=b.bos_id, eos_id=b.eos_id,
        max_new_tokens=ctx.max_new_tokens, batch_size=preset.sample_batch_size,
        seed=seeding.torch_seed(seed, t, seeding.SAMPLE), temperature=preset.temperature,
        desc=f"sample {label}", show_progress=ctx._show,
    )
    values = {
        M.HELDOUT_CE: M.cross_entropy_per_token(evaluated.total_nats, evaluated.tokens),
        M.HELDOUT_BPB: M.bits_per_byte(evaluated.total_nats, ctx.eval_bytes),
    }
    values.update(M.sample_metrics(drawn.texts))
    record = {
        "workflow": workflow,
        "seed": seed,
        "iteration": t,
        "metrics": values,
        "training_set": {
            "documents": len(texts),
            "real_documents": sum(1 for source, _ in refs if source == 0),
            "predicted_tokens_per_epoch": trained.tokens // max(preset.finetune_epochs, 1),
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
    return record, sample_records, refs


def run(
    config: RunConfig,
    output: str | Path,
    *,
    workflows_to_run: Sequence[str] = WORKFLOWS,
    iterations: int,
    n_seeds: int = 1,
    cache_dir: str | Path | None = None,
    threads: int = 1,
    show_progress: bool = False,
    log: Callable[[str], None] | None = _stderr_log,
    hook: Hook | None = None,
) -> RunResult:
    """Run (or resume) the loop into ``output``; see the module docstring.

    Computes every missing iteration ``t <= iterations`` of every workflow in
    ``workflows_to_run`` for seeds ``config.seed .. config.seed + n_seeds - 1``;
    complete iterations already in ``output`` are reused, never recomputed.
    ``hook(stage, workflow, seed, t)`` is called at stages :data:`TRAINED`
    and :data:`DONE` (tests use it to simulate a kill).
    """
    start = time.perf_counter()
    check_numbers(config.preset, iterations, n_seeds, config.seed)
    if threads < 1:
        raise CollapseError(f"--threads: must be an integer >= 1 (got {threads})")
    for w in workflows_to_run:
        if w not in WORKFLOWS:
            raise CollapseError(f"--workflow: unknown workflow {w!r}; choose from {', '.join(WORKFLOWS)}, all")
    log = log or (lambda message: None)
    output = Path(output)
    ctx = _Context(config, cache_dir, show_progress, log)
    seeds = [config.seed + k for k in range(n_seeds)]
    extent = {"workflows": list(workflows_to_run), "iterations": iterations, "seeds": seeds}
    # refuse a mismatched directory before any expensive work, and write the
    # configuration only once the base model loads (a bad --model leaves no directory)
    rundir.check_run(output, ctx.settings())
    todo = [
        (w, s, t) for s in seeds for w in workflows_to_run for t in range(1, iterations + 1)
        if not rundir.is_complete(rundir.iteration_dir(output, w, s, t))
    ]
    import torch

    torch.set_num_threads(threads)
    if todo:
        ctx.load_base()
    rundir.open_run(output, ctx.settings(), extent, ctx.provenance())
    result = RunResult(output=output)
    from collapse.lm.progress import bar

    with bar(total=len(todo), desc="lm iterations", enabled=show_progress, unit="it", leave=True) as overall:
        for s in seeds:
            real_indices = corpus_mod.real_training_indices(ctx.splits, config.preset.n, s)
            real = corpus_mod.select(ctx.corpus.documents, real_indices)
            real_file = rundir.real_path(output, s)
            if not real_file.is_file():
                rundir.write_jsonl(real_file, [{"index": i, "text": x} for i, x in zip(real_indices, real)])
            for w in workflows_to_run:
                samples: list[list[str]] = []
                for t in range(1, iterations + 1):
                    directory = rundir.iteration_dir(output, w, s, t)
                    if rundir.is_complete(directory):
                        samples.append([r["text"] for r in rundir.read_jsonl(directory / rundir.SAMPLES)])
                        result.reused.append((w, s, t))
                        continue
                    record, sample_records, refs = _compute_iteration(ctx, w, s, t, real, samples, hook)
                    rundir.write_jsonl(directory / rundir.SAMPLES, sample_records)
                    rundir.write_json(directory / rundir.TRAINING_SET, {"refs": [list(r) for r in refs]})
                    rundir.write_json(directory / rundir.METRICS, record)
                    samples.append([r["text"] for r in sample_records])
                    result.computed.append((w, s, t))
                    overall.update(1)
                    timing = record["timing"]
                    log(
                        f"{w} seed {s} iteration {t}/{iterations}: "
                        f"{M.HELDOUT_CE} {record['metrics'][M.HELDOUT_CE]:.4f}, "
                        f"|D_t| {record['training_set']['documents']}, "
                        f"train {timing['train_seconds']:.1f} s ({timing['train_tokens_per_second']:.0f} tok/s), "
                        f"sample {timing['sample_seconds']:.1f} s ({timing['sample_tokens_per_second']:.0f} tok/s)"
                    )
                    if hook is not None:
                        hook(DONE, w, s, t)
    result.seconds = time.perf_counter() - start
    return result
