"""The base model: built, pretrained and cached locally by default, or loaded by name.

Default base (no ``--model``): a byte-level BPE tokenizer (``tokenizers``) with
``vocab_size`` entries and one special token ``<|endoftext|>`` (begin and end of
text, as in GPT-2), trained on the pretraining split only; and a GPT-2 causal
LM (``transformers.GPT2LMHeadModel``) built from the preset's config and
pretrained on that split with :func:`collapse.lm.training.train`.  Both are saved with
``save_pretrained`` in ``<cache>/base-<key>/`` where ``key`` is the SHA-256 of
everything that determines them (preset fields, corpus fingerprint, split
indices, split seed, library versions), so they are built once per setting and
reused by every run, seed and workflow (:mod:`collapse.lm.cache`: ``--cache-dir``,
else ``$COLLAPSE_LM_CACHE``, else ``~/.cache/collapse-lm``).  An entry is
built in a temporary directory and renamed into place, so a killed build never
leaves a half entry.

``--model NAME_OR_PATH`` loads any causal LM and its tokenizer with
``from_pretrained`` instead: an existing directory is read locally; any other
name is looked up in the local Hugging Face cache first and downloaded only if
the hub is reachable (otherwise a one-line error says how to pass a local
directory).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from collapse.analysis.errors import CollapseError  # noqa: E402
from collapse.lm import seeding, training  # noqa: E402
from collapse.lm.cache import settings_key  # noqa: E402
from collapse.lm.presets import Preset  # noqa: E402

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

ENDOFTEXT = "<|endoftext|>"
_META = "collapse-base.json"


@dataclass
class Bundle:
    """A causal LM with its tokenizer and the token ids the loop needs."""

    model: torch.nn.Module
    tokenizer: object
    bos_id: int
    eos_id: int
    pad_id: int
    max_positions: int
    source: str

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE with ``vocab_size`` entries (incl. ``<|endoftext|>``) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[ENDOFTEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT, pad_token=ENDOFTEXT,
    )


def build_model(preset: Preset, vocab_size: int, special_id: int) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 of the preset's shape (initialisation uses the global torch RNG)."""
    config = GPT2Config(
        vocab_size=vocab_size, n_positions=preset.context, n_embd=preset.n_embd,
        n_layer=preset.n_layer, n_head=preset.n_head, resid_pdrop=preset.dropout,
        embd_pdrop=preset.dropout, attn_pdrop=preset.dropout,
        bos_token_id=special_id, eos_token_id=special_id, pad_token_id=special_id,
    )
    return GPT2LMHeadModel(config)


def _entry_files(entry: Path) -> dict[str, str]:
    """SHA-256 of every file of a cache entry except its metadata file."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(entry).iterdir()) if p.is_file() and p.name != _META}


def _entry_problem(entry: Path, settings: dict) -> str | None:
    """Why the cache entry ``entry`` cannot be trusted, or ``None``."""
    try:
        meta = json.loads((entry / _META).read_bytes().decode("utf-8"))
    except (ValueError, OSError):
        return f"{_META} is unreadable"
    if not isinstance(meta, dict) or meta.get("settings") != settings:
        return f"{_META} does not describe these settings"
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        return "it records no checksums (made by an earlier version)"
    try:
        actual = _entry_files(entry)
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    for name, digest in files.items():
        if actual.get(name) != digest:
            return f"{name} does not match its checksum" if name in actual else f"{name} is missing"
    return None


def _build_default_base(preset: Preset, pretrain_texts: Sequence[str], settings: dict, target: Path,
                        show_progress: bool, log) -> None:
    """Train the tokenizer and pretrain the model, then move the entry into ``target``."""
    cache_dir = target.parent
    cache_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if log:
        log(f"building base model {target.name} (tokenizer + pretraining on {len(pretrain_texts)} documents)")
    tokenizer = train_tokenizer(pretrain_texts, preset.vocab_size)
    special = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    seed = seeding.torch_seed(settings["split_seed"], 0, seeding.PRETRAIN)
    torch.manual_seed(seed)
    model = build_model(preset, len(tokenizer), special)
    sequences = training.encode(tokenizer, pretrain_texts, special, special)
    stats = training.train(
        model, training.all_windows(sequences, preset.context),
        epochs=preset.pretrain_epochs, lr=preset.pretrain_lr, batch_size=preset.batch_size,
        seed=seed, pad_id=special, weight_decay=preset.weight_decay,
        desc="pretrain", show_progress=show_progress,
    )
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{target.name}-"))
    try:
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        meta = {
            "settings": settings,
            "files": _entry_files(tmp),
            "pretrain": {
                "tokens": stats.tokens, "steps": stats.steps, "seconds": stats.seconds,
                "tokens_per_second": stats.tokens_per_second, "last_loss": stats.last_loss,
            },
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "wall_seconds": time.perf_counter() - start,
        }
        (tmp / _META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:
            # another process finished the same entry first: theirs is equivalent
            if not (target / _META).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _discard(entry: Path) -> None:
    """Move a damaged entry aside (one rename, so no reader sees half of it), then delete it."""
    aside = entry.with_name(f".{entry.name}-damaged-{os.getpid()}")
    os.rename(entry, aside)
    shutil.rmtree(aside, ignore_errors=True)


def default_base(
    preset: Preset,
    pretrain_texts: Sequence[str],
    settings: dict,
    cache_dir: Path,
    *,
    show_progress: bool = False,
    log=None,
) -> Bundle:
    """The default base model for ``settings``, from the cache or built (and cached) first.

    Tokenizer and model are trained on ``pretrain_texts`` (seed:
    ``seeding.torch_seed(split_seed, 0, "pretrain")``), then saved with
    ``save_pretrained`` next to a ``collapse-base.json`` holding ``settings``, the
    SHA-256 of every saved file and the pretraining statistics.  A cached entry whose
    files do not match their checksums, or that does not load, is damaged: it is
    rebuilt (and the rebuild logged), never blamed on ``--model``.
    """
    target = Path(cache_dir) / f"base-{settings_key(settings)}"
    if (target / _META).is_file() or target.is_dir():
        problem = _entry_problem(target, settings)
        if problem is None:
            try:
                return _load_local(target, preset.context)
            except Exception as exc:  # noqa: BLE001 - any load failure means a damaged entry
                problem = f"it does not load ({_first_line(exc)})"
        if log:
            log(f"cached base model {target} is damaged: {problem}; rebuilding it")
        _discard(target)
    _build_default_base(preset, pretrain_texts, settings, target, show_progress, log)
    return _load_local(target, preset.context)


def _is_path_like(spec: str) -> bool:
    return spec.startswith(("/", ".", "~")) or (os.sep in spec and Path(spec).expanduser().exists())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _from_pretrained(source: str, local_only: bool):
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local_only, dtype=torch.float32)
    return tokenizer, model


def load(spec: str, *, context: int | None = None) -> Bundle:
    """Load a causal LM and its tokenizer from a local directory or a hub name.

    Begin-of-text is the tokenizer's BOS token, else its EOS token (GPT-2
    style); end-of-text is its EOS token.  ``max_positions`` is the model's
    position limit, capped at ``context`` when given.
    """
    from collapse.lm import hub

    path = Path(spec).expanduser()
    if path.is_dir():
        try:
            tokenizer, model = _from_pretrained(str(path), local_only=True)
        except Exception as exc:  # noqa: BLE001 - any loader failure is a bad model directory
            raise CollapseError(f"--model: cannot load a causal LM and tokenizer from {spec!r}: {_first_line(exc)}") from None
    elif _is_path_like(spec) or path.exists():
        raise CollapseError(f"--model: no such model directory {spec!r}")
    else:
        try:
            tokenizer, model = _from_pretrained(spec, local_only=True)
        except Exception:
            hub.require_hub("--model", spec, hub.MODEL_ALTERNATIVE)
            try:
                tokenizer, model = _from_pretrained(spec, local_only=False)
            except Exception as exc:
                raise CollapseError(f"--model: cannot load {spec!r} from the hub: {_first_line(exc)}") from None
    return _bundle(tokenizer, model, spec, context)


def _load_local(path: Path, context: int | None) -> Bundle:
    """A bundle from a local directory, letting any loader exception through."""
    tokenizer, model = _from_pretrained(str(path), local_only=True)
    return _bundle(tokenizer, model, str(path), context)


def _bundle(tokenizer, model, spec: str, context: int | None) -> Bundle:
    eos = tokenizer.eos_token_id
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    if eos is None or bos is None:
        raise CollapseError(f"--model: the tokenizer of {spec!r} has no end-of-text token")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    config = model.config
    limit = None
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 1:
            limit = value
            break
    limit = limit or 1024
    if context is not None:
        limit = min(limit, context)
    model.eval()
    return Bundle(model=model, tokenizer=tokenizer, bos_id=int(bos), eos_id=int(eos), pad_id=int(pad),
                  max_positions=int(limit), source=spec)
