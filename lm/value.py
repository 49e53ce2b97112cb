"""The value of synthetic data for a language model: the ``(n_r, n_s)`` grid.

For every replicate seed ``s``:

1. the real set: ``N`` documents drawn from the pool (``seeding`` stream ``(s, 0, "real")``,
   the same draw as the real set of ``collapse lm run`` when ``N = n``);
2. the *generator*: a fresh copy of the base model fine-tuned once on those ``N``
   documents (one pass per preset epoch, seed ``(s, 1, "train")``), which then samples
   ``max(n_s)`` texts at the preset temperature (seed ``(s, 1, "sample")``);
3. for every cell ``(n_r, n_s)``: a *student*, a fresh copy of the same base fine-tuned on
   the first ``n_r`` real documents plus the first ``n_s`` generated texts (seed
   ``(s, 2, "train")`` for every cell, so cells differ by their data only), scored
   by ``test_nll`` (nats per token) and bits per byte on the held-out documents.

``N`` defaults to the largest ``n_r``, as in the paper (whose generator was fitted on
all of HelpSteer2).  The table has the columns :data:`VALUE_COLUMNS` with setting
``lm``: mean and standard error over seeds per cell and metric.

Directory layout (every file written atomically, ``metrics.json`` of a unit last,
with the checksums of the files it vouches for; a unit whose files do not match is
recomputed, as in :mod:`collapse.lm.rundir`)::

    DIR/config.json
    DIR/seed-<s>/generator/samples.jsonl, metrics.json
    DIR/seed-<s>/real-<n_r>-synthetic-<n_s>/metrics.json
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import LM
from collapse.lm import rundir
from collapse.lm.metrics import HELDOUT_BPB, TEST_NLL

FORMAT = "collapse-lm-value/1"
VALUE_COLUMNS: tuple[str, ...] = ("setting", "real_size", "synthetic_size", "metric", "mean", "sem", "replicates")
VALUE_METRICS: tuple[str, ...] = (TEST_NLL, HELDOUT_BPB)
GENERATOR = "generator"


@dataclass
class LMValueResult:
    """Per-seed metrics of every cell, and their table (:data:`VALUE_COLUMNS`).

    ``values[(n_r, n_s)][metric]`` is an array over the seeds (``nan`` where a seed has
    no result yet); ``generator[metric]`` the generator's own scores per seed.
    """

    real_sizes: tuple[int, ...]
    synthetic_sizes: tuple[int, ...]
    generator_n: int
    seeds: tuple[int, ...]
    values: dict
    generator: dict
    output: Path | None = None
    computed: list = field(default_factory=list)
    reused: list = field(default_factory=list)
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def table(self):
        from collapse.simulate.stats import summarize
        from collapse.simulate.tables import Table

        table = Table(VALUE_COLUMNS)
        for n_r in self.real_sizes:
            for n_s in self.synthetic_sizes:
                cell = self.values.get((n_r, n_s))
                if cell is None:
                    continue
                for metric in VALUE_METRICS:
                    x = np.asarray(cell[metric], dtype=float)
                    x = x[np.isfinite(x)]
                    if x.size == 0:
                        continue
                    s = summarize(x[:, None])
                    table.append(LM, n_r, n_s, metric, float(s.mean[0]),
                                 float(s.sem[0]) if x.size >= 2 else None, int(x.size))
        table.notes.extend(self.notes)
        gen = np.asarray(self.generator.get(TEST_NLL, []), dtype=float)
        gen = gen[np.isfinite(gen)]
        if gen.size:
            table.notes.append(f"generator (fine-tuned on N = {self.generator_n} real documents): "
                               f"{TEST_NLL} {gen.mean():.4f} over {gen.size} seeds")
        return table

    def to_frame(self):
        """The table as a pandas DataFrame with exactly the CSV columns."""
        import pandas as pd

        table = self.table
        return pd.DataFrame.from_records(table.rows, columns=list(table.columns))


def _cell_dir(root: Path, seed: int, n_r: int, n_s: int) -> Path:
    return Path(root) / f"seed-{seed}" / f"real-{n_r}-synthetic-{n_s}"


def _generator_dir(root: Path, seed: int) -> Path:
    return Path(root) / f"seed-{seed}" / GENERATOR


def is_value_dir(root: str | Path) -> bool:
    """Whether ``root`` holds a ``config.json`` of a value grid."""
    try:
        return rundir.read_json(Path(root) / rundir.CONFIG).get("format") == FORMAT
    except (ValueError, OSError, AttributeError):
        return False


def check_grid(real_sizes: Sequence[int], synthetic_sizes: Sequence[int], generator_n: int | None,
               n_docs: int | None = None) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """Canonical sorted sizes and ``N``; :class:`CollapseError` naming the bad option."""
    real = tuple(sorted(set(int(r) for r in real_sizes)))
    synthetic = tuple(sorted(set(int(s) for s in synthetic_sizes)))
    if not real or real[0] < 0:
        raise CollapseError("--real-sizes: give integers >= 0")
    if not synthetic or synthetic[0] < 0:
        raise CollapseError("--synthetic-sizes: give integers >= 0")
    if real == (0,) and synthetic[-1] == 0:
        raise CollapseError("--real-sizes: every student needs data, but the grid is only (0, 0)")
    big_n = max(real) if generator_n is None else int(generator_n)
    if big_n < 1:
        raise CollapseError("--generator-n: must be an integer >= 1 (the largest --real-sizes is 0)")
    if max(real) > big_n:
        raise CollapseError(f"--real-sizes: {max(real)} exceeds --generator-n {big_n} (students use "
                            "the generator's real documents)")
    return real, synthetic, big_n


def _valid_record(path: Path, extra: dict) -> tuple[dict | None, str | None]:
    """A unit's ``metrics.json`` if well-formed, matching ``extra`` and its files; else why not."""
    if not path.is_file():
        return None, None
    try:
        record = rundir.read_json(path)
    except (ValueError, OSError):
        return None, f"{path} is not readable JSON"
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in extra.items()):
        return None, f"{path} is not this unit's record"
    values = record.get("metrics")
    nll = values.get(TEST_NLL) if isinstance(values, dict) else None
    if isinstance(nll, bool) or not isinstance(nll, (int, float)) or not math.isfinite(nll):
        return None, f"{path} has no finite {TEST_NLL}"
    files = record.get("files", {})
    if not isinstance(files, dict):
        return None, f"{path} has no checksums"
    for name, entry in files.items():
        file = path.parent / name
        if not file.is_file() or not isinstance(entry, dict) or rundir.file_record(file)["sha256"] != entry.get("sha256"):
            return None, f"{file} does not match the checksum in {path.name}"
    return record, None


def _settings(ctx, config, big_n: int, n_samples: int) -> dict:
    settings = ctx.settings()
    settings.pop("budget", None)
    settings.update(kind="value", generator_n=big_n, generator_samples=n_samples)
    return settings


def _check_config(root: Path, settings: dict) -> dict | None:
    path = root / rundir.CONFIG
    if not path.is_file():
        if root.exists() and (not root.is_dir() or any(p.name != rundir.LOCK for p in root.iterdir())):
            raise CollapseError(f"--output: {root} exists and is not an lm value directory (no "
                                f"{rundir.CONFIG}); choose a new or empty directory")
        return None
    try:
        old = rundir.read_json(path)
    except (ValueError, OSError):
        old = None
    if not isinstance(old, dict) or old.get("format") != FORMAT or not isinstance(old.get("settings"), dict) \
            or not isinstance(old.get("extent"), dict):
        raise CollapseError(f"--output: {root} is not an lm value directory, or its {rundir.CONFIG} is "
                            "damaged; use another --output directory")
    key = rundir.first_difference(old["settings"], settings)
    if key is not None:
        names = {"generator_n": "--generator-n", "n": "--generator-n",
                 "generator_samples": "--synthetic-sizes (its largest value, the generator's samples)"}
        name = names.get(key) or rundir._parameter_name(key)
        there, now = rundir._flatten(old["settings"]).get(key), rundir._flatten(settings).get(key)
        raise CollapseError(f"--output: {root} was made with different settings: {name} is {there!r} "
                            f"there but {now!r} now; use another --output directory or the same settings")
    return old


def run_value(config, output: str | Path, *, real_sizes: Sequence[int], synthetic_sizes: Sequence[int],
              generator_n: int | None = None, n_seeds: int = 1, cache_dir=None, threads: int = 1,
              force: bool = False, show_progress: bool = False, log=None) -> LMValueResult:
    """Compute (or resume) the grid into ``output``; see the module docstring.

    ``config`` is a :class:`collapse.lm.run.RunConfig` (its ``budget`` is not used:
    generator and students train for the preset's epochs).  Returns a
    :class:`LMValueResult` with every requested cell.
    """
    from collapse.lm import corpus as corpus_mod
    from collapse.lm import run as run_mod

    start = time.perf_counter()
    output = rundir.check_directory(output)
    preset = config.preset
    run_mod.check_numbers(preset, 1, n_seeds, config.seed)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise CollapseError(f"--threads: must be an integer >= 1 (got {threads})")
    real, synthetic, big_n = check_grid(real_sizes, synthetic_sizes, generator_n)
    parameters = run_mod.model_parameters(preset, config.model)
    docs = n_seeds * (big_n + len(real) * len(synthetic) * (max(real) + max(synthetic)))
    seconds = docs * 60 / (5e9 / parameters) + n_seeds * max(synthetic) * preset.max_new_tokens / 2 / min(
        2e4, 5e9 / parameters)
    if seconds > run_mod.TIME_LIMIT and not force:
        raise CollapseError(f"--synthetic-sizes: this grid would take about {run_mod._duration(seconds)} of "
                            f"one core (the limit is {run_mod._duration(run_mod.TIME_LIMIT)}); use smaller "
                            "sizes or fewer seeds, or --force to run anyway")
    log = log or (lambda message: None)
    sized = run_mod.RunConfig(**{**config.__dict__, "preset": type(preset)(**{**preset.__dict__, "n": big_n})})
    ctx = run_mod._Context(sized, cache_dir, threads, show_progress, log, n_option="--generator-n")
    settings = _settings(ctx, config, big_n, max(synthetic))
    seeds = tuple(config.seed + k for k in range(n_seeds))
    _check_config(output, settings)
    import torch

    previous = torch.get_num_threads()
    try:
        with rundir.locked(output):
            old = _check_config(output, settings)
            torch.set_num_threads(threads)
            extent = {"real_sizes": list(real), "synthetic_sizes": list(synthetic), "seeds": list(seeds)}
            if old is not None:
                e = old["extent"]
                extent = {k: sorted(set(e.get(k, [])) | set(extent[k])) for k in extent}
            result = LMValueResult(real, synthetic, big_n, seeds, {}, {TEST_NLL: [], HELDOUT_BPB: []},
                                 output=output)
            if ctx.corpus.chat:
                ctx.load_base()  # fixes the pool (over-long examples left out)
            for s in seeds:
                indices = corpus_mod.real_training_indices(ctx.splits, big_n, s)
                texts = corpus_mod.select(ctx.corpus.documents, indices)
                generated = _generator(ctx, output, s, texts, max(synthetic), result, log, settings, extent)
                for n_r in real:
                    for n_s in synthetic:
                        if n_r + n_s == 0:
                            continue
                        record = _cell(ctx, output, s, n_r, n_s, texts[:n_r] + generated[:n_s], result, log)
                        cell = result.values.setdefault((n_r, n_s), {m: [] for m in VALUE_METRICS})
                        for m in VALUE_METRICS:
                            cell[m].append(record["metrics"][m])
    finally:
        torch.set_num_threads(previous)
    result.seconds = time.perf_counter() - start
    return result


def _open(ctx, output: Path, settings: dict, extent: dict) -> None:
    if not (output / rundir.CONFIG).is_file() or rundir.read_json(output / rundir.CONFIG).get("extent") != extent:
        rundir.write_json(output / rundir.CONFIG, {"format": FORMAT, "settings": settings, "extent": extent,
                                                   "provenance": ctx.provenance()})


def _generator(ctx, output: Path, seed: int, real: list[str], n_samples: int, result: LMValueResult, log,
               settings: dict, extent: dict) -> list[str]:
    from collapse.lm import seeding, training

    directory = _generator_dir(output, seed)
    record, problem = _valid_record(directory / rundir.METRICS,
                                    {"unit": GENERATOR, "seed": seed, "training_sha256": rundir.texts_sha256(real)})
    if record is not None:
        try:
            texts = [r["text"] for r in rundir.read_jsonl(directory / rundir.SAMPLES)]
        except (ValueError, OSError, KeyError, TypeError):
            texts = []
        if len(texts) == n_samples:
            for m in VALUE_METRICS:
                result.generator[m].append(record["metrics"][m])
            result.reused.append((GENERATOR, seed))
            _open(ctx, output, settings, extent)
            return texts
        problem = f"{directory / rundir.SAMPLES} does not hold {n_samples} texts"
    if problem:
        log(f"seed {seed} generator: {problem}; recomputing it")
    ctx.load_base()
    _open(ctx, output, settings, extent)
    preset = ctx.config.preset
    b = ctx.bundle
    model = copy.deepcopy(b.model)
    training.train(model, ctx.windows(real), epochs=preset.finetune_epochs, lr=preset.finetune_lr,
                   batch_size=preset.batch_size, seed=seeding.torch_seed(seed, 1, seeding.TRAIN),
                   pad_id=b.pad_id, weight_decay=preset.weight_decay, desc=f"generator s{seed}",
                   show_progress=ctx._show)
    values = _score(ctx, model)
    drawn = training.sample(model, b.tokenizer, n=n_samples, bos_id=b.bos_id, eos_id=b.eos_id,
                            max_new_tokens=ctx.max_new_tokens, batch_size=preset.sample_batch_size,
                            seed=seeding.torch_seed(seed, 1, seeding.SAMPLE), temperature=preset.temperature,
                            desc=f"sample s{seed}", show_progress=ctx._show) if n_samples else None
    texts = drawn.texts if drawn else []
    directory.mkdir(parents=True, exist_ok=True)
    _unlink(directory / rundir.METRICS)
    rundir.write_jsonl(directory / rundir.SAMPLES, [{"index": i, "text": x} for i, x in enumerate(texts)])
    rundir.write_json(directory / rundir.METRICS, {
        "unit": GENERATOR, "seed": seed, "training_sha256": rundir.texts_sha256(real),
        "real_documents": len(real), "samples": len(texts), "metrics": values,
        "files": {rundir.SAMPLES: rundir.file_record(directory / rundir.SAMPLES)}})
    for m in VALUE_METRICS:
        result.generator[m].append(values[m])
    result.computed.append((GENERATOR, seed))
    log(f"seed {seed} generator on {len(real)} real documents: {TEST_NLL} {values[TEST_NLL]:.4f}")
    return texts


def _cell(ctx, output: Path, seed: int, n_r: int, n_s: int, texts: list[str], result: LMValueResult,
          log) -> dict:
    from collapse.lm import seeding, training

    directory = _cell_dir(output, seed, n_r, n_s)
    digest = rundir.texts_sha256(texts)
    expected = {"unit": "student", "seed": seed, "real_size": n_r, "synthetic_size": n_s,
                "training_sha256": digest}
    record, problem = _valid_record(directory / rundir.METRICS, expected)
    if record is not None:
        result.reused.append((seed, n_r, n_s))
        return record
    if problem:
        log(f"seed {seed} cell ({n_r}, {n_s}): {problem}; recomputing it")
    ctx.load_base()
    preset = ctx.config.preset
    b = ctx.bundle
    model = copy.deepcopy(b.model)
    trained = training.train(model, ctx.windows(texts), epochs=preset.finetune_epochs, lr=preset.finetune_lr,
                             batch_size=preset.batch_size, seed=seeding.torch_seed(seed, 2, seeding.TRAIN),
                             pad_id=b.pad_id, weight_decay=preset.weight_decay,
                             desc=f"student s{seed} ({n_r}, {n_s})", show_progress=ctx._show)
    record = dict(expected, metrics=_score(ctx, model), optimiser_steps=trained.steps,
                  predicted_tokens=trained.tokens, files={})
    directory.mkdir(parents=True, exist_ok=True)
    rundir.write_json(directory / rundir.METRICS, record)
    result.computed.append((seed, n_r, n_s))
    log(f"seed {seed} student ({n_r} real + {n_s} synthetic): {TEST_NLL} {record['metrics'][TEST_NLL]:.4f}")
    return record


def _score(ctx, model) -> dict:
    from collapse.lm import metrics as M
    from collapse.lm import training

    preset = ctx.config.preset
    evaluated = training.evaluate(model, ctx.eval_windows, batch_size=preset.eval_batch_size,
                                  pad_id=ctx.bundle.pad_id)
    return {TEST_NLL: M.cross_entropy_per_token(evaluated.total_nats, evaluated.tokens),
            HELDOUT_BPB: M.bits_per_byte(evaluated.total_nats, ctx.eval_bytes)}


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def load_value(root: str | Path) -> LMValueResult:
    """The :class:`LMValueResult` of a value directory (every verified cell of its extent)."""
    root = Path(root)
    try:
        config = rundir.read_json(root / rundir.CONFIG)
        extent = config["extent"]
        real = tuple(int(x) for x in extent["real_sizes"])
        synthetic = tuple(int(x) for x in extent["synthetic_sizes"])
        seeds = tuple(int(x) for x in extent["seeds"])
        big_n = int(config["settings"]["generator_n"])
    except (ValueError, OSError, KeyError, TypeError, AttributeError):
        raise CollapseError(f"DIR: {root / rundir.CONFIG} is damaged; use another directory") from None
    result = LMValueResult(real, synthetic, big_n, seeds, {}, {m: [] for m in VALUE_METRICS}, output=root)
    for s in seeds:
        gen, _ = _valid_record(_generator_dir(root, s) / rundir.METRICS, {"unit": GENERATOR, "seed": s})
        for m in VALUE_METRICS:
            result.generator[m].append(gen["metrics"].get(m, math.nan) if gen else math.nan)
        for n_r in real:
            for n_s in synthetic:
                if n_r + n_s == 0:
                    continue
                record, problem = _valid_record(_cell_dir(root, s, n_r, n_s) / rundir.METRICS,
                                                {"unit": "student", "seed": s, "real_size": n_r,
                                                 "synthetic_size": n_s})
                if problem:
                    result.notes.append(f"left out seed {s} cell ({n_r}, {n_s}): {problem}")
                cell = result.values.setdefault((n_r, n_s), {m: [] for m in VALUE_METRICS})
                for m in VALUE_METRICS:
                    cell[m].append(record["metrics"].get(m, math.nan) if record else math.nan)
    if not any(np.isfinite(np.asarray(c[TEST_NLL], dtype=float)).any() for c in result.values.values()):
        raise CollapseError(f"DIR: {root} holds no completed cell yet")
    return result


def heatmap_figure(result: LMValueResult, metric: str = TEST_NLL):
    """Two heat maps (a bare :class:`~matplotlib.figure.Figure`): the mean ``metric`` per cell,
    and its change from the same ``n_r`` with no synthetic data (negative: synthetic data helped)."""
    from matplotlib.figure import Figure

    real, synthetic = list(result.real_sizes), list(result.synthetic_sizes)
    table = result.table.select(metric=metric).records()
    mean = np.full((len(real), len(synthetic)), np.nan)
    sem = np.full_like(mean, np.nan)
    for r in table:
        i, j = real.index(r["real_size"]), synthetic.index(r["synthetic_size"])
        mean[i, j] = r["mean"]
        sem[i, j] = r["sem"] if r["sem"] is not None else np.nan
    # the change is computed per seed (the cells of one seed share the generator and the
    # real documents), so its standard error is that of the paired differences
    delta = np.full_like(mean, np.nan)
    delta_sem = np.full_like(mean, np.nan)
    if synthetic[0] == 0:
        for i, n_r in enumerate(real):
            base = result.values.get((n_r, 0))
            for j, n_s in enumerate(synthetic):
                cell = result.values.get((n_r, n_s))
                if base is None or cell is None:
                    continue
                d = np.asarray(cell[metric], dtype=float) - np.asarray(base[metric], dtype=float)
                d = d[np.isfinite(d)]
                if d.size:
                    delta[i, j] = d.mean()
                    delta_sem[i, j] = d.std(ddof=1) / np.sqrt(d.size) if d.size >= 2 else np.nan
    fig = Figure(figsize=(11, 0.55 * len(real) + 2.6))
    axes = fig.subplots(1, 2)
    panels = ((mean, sem, f"{metric} (nats/token), mean ± sem over {len(result.seeds)} seeds", "viridis", None),
              (delta, delta_sem, "change from n_s = 0, paired by seed (negative: synthetic data helped)",
               "RdBu_r", 0.0))
    for ax, (data, err, title, cmap, centre) in zip(axes, panels):
        finite = data[np.isfinite(data)]
        if centre is not None and finite.size:
            span = float(np.max(np.abs(finite))) or 1.0
            image = ax.imshow(data, cmap=cmap, vmin=-span, vmax=span, aspect="auto")
        else:
            image = ax.imshow(data, cmap=cmap, aspect="auto")
        for i in range(len(real)):
            for j in range(len(synthetic)):
                if np.isfinite(data[i, j]):
                    text = f"{data[i, j]:.3f}" + (f"\n±{err[i, j]:.3f}" if np.isfinite(err[i, j]) else "")
                else:
                    text = "n/a"
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(synthetic)), [str(s) for s in synthetic])
        ax.set_yticks(range(len(real)), [str(r) for r in real])
        ax.set_xlabel("synthetic documents n_s")
        ax.set_ylabel("real documents n_r")
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(f"value of synthetic data (generator fine-tuned on N = {result.generator_n} real documents)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def save_heatmap(result: LMValueResult, path: str | Path) -> None:
    """:func:`heatmap_figure` written to ``path`` (png, pdf or svg, from the extension)."""
    from collapse.simulate.plotting import save_figure

    save_figure(heatmap_figure(result), path)
