"""Write the checked-in LM evidence tables from the run directories of ``scripts/lm_evidence.sh``.

    python scripts/lm_evidence.py [RUNS_DIR] [--docs docs/results/lm]

For every run directory in RUNS_DIR (default ``runs/evidence``) this writes
``DOCS/<name>/``:

* ``summary.csv``: ``collapse lm report`` of the directory (mean and standard error over
  seeds per workflow, iteration and metric);
* ``values.csv``: every per-seed value (``workflow,seed,iteration,metric,value``), from
  which the docs compute the between-workflow tests at build time;
* ``pairs.csv``: those tests for ``test_nll`` at the last iteration (Welch, Holm, Hedges'
  g, paired; :mod:`collapse.lm.evidence`), the same numbers the docs show;
* ``curves.png``: the report's figure;
* ``README.rst``: the exact command, wall time, machine, library versions and settings.

For a value-grid directory (``collapse lm value``) it writes ``value.csv``, ``value.png``
and ``README.rst``.  It prints the last-iteration tables and the tests, and never edits
anything else.  Nothing here trains a model: it only reads JSON files.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import sys
from pathlib import Path

from collapse.lm import evidence, report, rundir, value
from collapse.lm.metrics import TEST_NLL
from collapse.simulate.plotting import save_figure
from collapse.simulate.tables import write_text

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


def times(runs: Path) -> dict[str, tuple[int, str]]:
    """``name -> (wall seconds, arguments)`` from ``times.tsv`` (the last line per name)."""
    out = {}
    path = runs / "times.tsv"
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                out[parts[0]] = (int(parts[1]), parts[2])
    return out


def commits(runs: Path) -> dict[str, str]:
    path = runs / "commits.tsv"
    if not path.is_file():
        return {}
    return dict(line.split("\t")[:2] for line in path.read_text().splitlines() if "\t" in line)


def command(arguments: str, name: str) -> str:
    """The recorded arguments as a ``collapse lm`` command, with the run directory as runs/NAME."""
    words = arguments.split()
    for i, word in enumerate(words):
        if word == "--output":
            words[i + 1] = f"runs/{name}"
    return "collapse lm " + " ".join(words)


def base_parameters(config: dict, cache: Path) -> str:
    key = config["settings"].get("base_key")
    meta = cache / f"base-{key}" / "collapse-base.json"
    if not key or not meta.is_file():
        return "unknown"
    data = json.loads(meta.read_text())
    return f"{data['n_parameters']:,} parameters, pretrained in {data['pretrain']['seconds']:.0f} s"


def wall_sentence(wall: int, compute: float | None) -> str:
    """The README's sentence on time.  A run interrupted and resumed records only its last
    leg's wall time, which is then shorter than the iterations' own timings: say so."""
    where = f"on {machine()}, shared with other jobs"
    own = (f"the iterations' own timings (fine-tuning, evaluation, sampling) add up to "
           f"{compute:.0f} s" if compute else "")
    if compute and compute > wall:
        return (f"The run was interrupted and resumed: its last leg took {wall} s ({wall / 60:.1f} min) "
                f"of wall time {where}; {own}; the commit named below is that of the last leg.")
    return (f"Wall time: {wall} s ({wall / 60:.1f} min) {where} (so the time is an upper bound on "
            "what the run needs)" + (f"; {own}." if own else "."))


def readme(name: str, config: dict, wall: tuple[int, str] | None, commit: str | None, cache: Path,
           kind: str, compute: float | None = None) -> str:
    settings, provenance = config["settings"], config.get("provenance") or {}
    preset = settings["preset"]
    lines = [f".. rubric:: How ``{name}`` was run", ""]
    if wall:
        lines += ["Command (run by ``scripts/lm_evidence.sh``, one torch thread, ``nice -n 19``, "
                  "``--cache-dir`` and ``--quiet`` left out here):", "", ".. code-block:: bash", "",
                  f"   {command(wall[1], name)}", "",
                  wall_sentence(wall[0], compute), ""]
    lines += [f"Code: commit ``{commit}`` of the project." if commit else "Code: this project.", "",
              f"Versions: Python {provenance.get('python')}, torch {provenance.get('torch')}, "
              f"transformers {provenance.get('transformers')}.", "",
              f"Settings: preset ``{preset['name']}`` (base model {base_parameters(config, cache)}), "
              f"``n = {settings['n']}`` real documents, {settings['n_eval']} held-out documents, "
              f"fine-tuning learning rate {preset['finetune_lr']:g}, batch {preset['batch_size']}, "
              + (f"budget ``{settings.get('budget', 'epochs')}``, " if kind == "run" else "")
              + f"torch threads {settings.get('threads')}, data set ``{settings['dataset']}`` "
              f"({provenance.get('documents')} documents).", ""]
    return "\n".join(lines)


def write_run(name: str, directory: Path, out: Path, info: dict) -> None:
    result = report.load_result(directory)
    out.mkdir(parents=True, exist_ok=True)
    result.to_csv(out / "summary.csv")
    rows = evidence.long_records(result)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["workflow", "seed", "iteration", "metric", "value"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "values.csv", buffer.getvalue())
    t, values, seeds = evidence.last_iteration_values(rows, TEST_NLL)
    pairs = evidence.pairwise_table(values, seeds)
    write_text(out / "pairs.csv", pairs.to_csv())
    save_figure(result.plot(), out / "curves.png")
    config = rundir.read_config(directory)
    compute = sum(r["timing"][k] for r in result.records
                  for k in ("train_seconds", "eval_seconds", "sample_seconds"))
    write_text(out / "README.rst", readme(name, config, info["times"].get(name), info["commits"].get(name),
                                          info["cache"], "run", compute))
    print(f"\n== {name}: {TEST_NLL} at t = {t}")
    for w, vals in values.items():
        mean = sum(vals) / len(vals)
        sem = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1) / len(vals)) ** 0.5
        print(f"  {w:22s} {mean:.4f} +- {sem:.4f} ({len(vals)} seeds)")
    for r in evidence.pairwise(values, seeds):
        print(f"  {r['a']} - {r['b']}: {r['difference']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] "
              f"Welch p {r['welch_p']:.3g} (Holm {r['welch_p_holm']:.3g}), g {r['hedges_g']:+.2f}, "
              f"paired p {r['paired_p']:.3g}")


def write_value(name: str, directory: Path, out: Path, info: dict) -> None:
    result = value.load_value(directory)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "value.csv", result.table.to_csv())
    value.save_heatmap(result, out / "value.png")
    config = rundir.read_json(directory / rundir.CONFIG)
    write_text(out / "README.rst", readme(name, config, info["times"].get(name), info["commits"].get(name),
                                          info["cache"], "value"))
    print(f"\n== {name}: value grid, {len(result.seeds)} seeds")
    print(result.table.select(metric=TEST_NLL).to_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", default="runs/evidence")
    parser.add_argument("--docs", default=str(ROOT / "docs" / "results" / "lm"))
    args = parser.parse_args(argv)
    runs, docs = Path(args.runs), Path(args.docs)
    info = {"times": times(runs), "commits": commits(runs), "cache": runs / "cache"}
    for directory in sorted(p for p in runs.iterdir() if (p / rundir.CONFIG).is_file()):
        if value.is_value_dir(directory):
            write_value(directory.name, directory, docs / directory.name, info)
        else:
            write_run(directory.name, directory, docs / directory.name, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
