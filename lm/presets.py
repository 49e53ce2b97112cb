"""Presets: every size and hyperparameter of an LM run, fixed by one name.

A preset fixes the default tokenizer and base model (used unless ``--model``),
the pretraining recipe, the split sizes, the fine-tuning recipe (the paper's:
one epoch on ``D_t`` starting from the same base every iteration) and the
sampling length.  ``--n`` (the real-set size, also the number of texts sampled
per iteration) and ``--n-eval`` may override the preset's defaults.

Sizes are chosen for this project's 2-core CPU:

``micro``
    smoke tests only (seconds; the model barely learns).
``tiny``
    tests and ``make demo``: ``--workflow all --iterations 3 --seeds 1``
    including tokenizer training and pretraining in about a minute.
``small``
    the documented run (the recipe measured feasible on a 2-core CPU: GPT-2
    with 4 layers of width 128, context 160, 1,024-token byte-level BPE;
    fine-tuned 1 epoch, AdamW lr 3e-4, on ``n = 200`` documents; but
    pretrained 4 epochs on 2,000 documents instead of 900, since the
    default corpus is larger than the one measured there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from collapse.analysis.errors import CollapseError


@dataclass(frozen=True)
class Preset:
    """Sizes and hyperparameters of a run (see the module docstring).

    Units: counts of documents (``n``, ``n_eval``, ``n_pretrain``), tokens
    (``context``, ``max_new_tokens``), epochs (passes over the training set),
    learning rates (AdamW step size, constant).
    """

    name: str
    # tokenizer and model built from a config (ignored with --model)
    vocab_size: int
    n_layer: int
    n_embd: int
    n_head: int
    context: int
    dropout: float
    # pretraining of the base model (ignored with --model)
    n_pretrain: int
    pretrain_epochs: int
    pretrain_lr: float
    # splits and the loop
    n: int
    n_eval: int
    finetune_epochs: int
    finetune_lr: float
    batch_size: int
    temperature: float
    max_new_tokens: int
    sample_batch_size: int
    eval_batch_size: int
    weight_decay: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "micro": Preset(
        name="micro", vocab_size=320, n_layer=1, n_embd=32, n_head=2, context=64,
        dropout=0.0, n_pretrain=80, pretrain_epochs=1, pretrain_lr=3e-3,
        n=12, n_eval=16, finetune_epochs=1, finetune_lr=1e-3, batch_size=8,
        temperature=1.0, max_new_tokens=40, sample_batch_size=16, eval_batch_size=32,
    ),
    "tiny": Preset(
        name="tiny", vocab_size=512, n_layer=2, n_embd=96, n_head=3, context=128,
        dropout=0.1, n_pretrain=1200, pretrain_epochs=4, pretrain_lr=2e-3,
        n=100, n_eval=150, finetune_epochs=1, finetune_lr=5e-4, batch_size=16,
        temperature=1.0, max_new_tokens=127, sample_batch_size=50, eval_batch_size=32,
    ),
    "small": Preset(
        name="small", vocab_size=1024, n_layer=4, n_embd=128, n_head=4, context=160,
        dropout=0.1, n_pretrain=2000, pretrain_epochs=4, pretrain_lr=1e-3,
        n=200, n_eval=200, finetune_epochs=1, finetune_lr=3e-4, batch_size=16,
        temperature=1.0, max_new_tokens=159, sample_batch_size=100, eval_batch_size=32,
    ),
}

#: Presets offered on the command line.
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


def get_preset(name: str) -> Preset:
    """The preset called ``name``; :class:`CollapseError` naming the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise CollapseError(
            f"--preset: unknown preset {name!r}; choose from {', '.join(PRESET_NAMES)}"
        ) from None


def with_overrides(preset: Preset, **changes) -> Preset:
    """A copy of ``preset`` with the non-``None`` ``changes`` applied."""
    changes = {k: v for k, v in changes.items() if v is not None}
    return replace(preset, **changes) if changes else preset
