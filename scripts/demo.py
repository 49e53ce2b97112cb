"""The main job (`make demo`): exact theory against Monte Carlo at the paper's settings.

For every configuration it calls :func:`collapse.compare` for all three workflows,
writes the full comparison CSV and a figure under ``--output``, and prints one verdict
line per configuration and workflow (rows tested, set aside, rejected).  Then a tiny
language-model loop runs and is summarised.  Exit status 1 if any comparison is
inconsistent (3 if one could test no row).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import collapse
from collapse.simulate import stats

KDE_RUNS = [
    # (n, bandwidth, replicates): blobs truth, the paper's n and bandwidths.
    (10, 0.1, 1000),
    (10, 0.5, 1000),
    (100, 0.1, 300),
    (100, 0.5, 300),
]

GAUSSIAN_RUNS = [
    # (dim, n, replicates): the paper's d in {1, 10}, n in {10, 100}, 100 iterations.
    (1, 10, 5000),
    (1, 100, 5000),
    (10, 10, 3000),
    (10, 100, 3000),
]

SEED = 2024


def verdict_lines(result: collapse.ComparisonResult, label: str) -> list[str]:
    """One line per workflow: its verdict and the rows it rests on."""
    lines = []
    rows = result.statistics.table.rows
    status = result.statistics.status
    for workflow in result.workflows:
        mine = [i for i, row in enumerate(rows) if row[1] == workflow.label]
        tested = [i for i in mine if status[i] == stats.TESTED]
        rejected = sum(1 for i in tested if rows[i][9] is False)
        aside = sum(1 for i in mine if status[i] not in (stats.TESTED, stats.NO_THEORY))
        verdict = "INCONSISTENT" if rejected else ("consistent" if tested else "UNTESTED")
        lines.append(f"{label} {workflow.label:22s} {verdict:12s} ({len(tested)} rows tested, "
                     f"{aside} set aside, {rejected} rejected)")
    return lines


def run_lm(out: Path) -> str:
    """The tiny LM loop (3 iterations, one seed), summarised like the other settings."""
    from collapse.lm.presets import get_preset
    from collapse.lm.run import RunConfig, run
    from collapse.simulate.tables import write_text

    directory = out / "lm-tiny"
    result = run(RunConfig(preset=get_preset("tiny")), directory, iterations=3, n_seeds=1, log=None).metrics
    write_text(out / "lm-tiny.txt", result.table.to_text())
    result.save_plot(out / "lm-tiny.png")
    return f"lm tiny preset: report in {out / 'lm-tiny.txt'}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("results"))
    parser.add_argument("--iterations", type=int, default=100,
                        help="Gaussian iterations (default 100, as in the paper)")
    parser.add_argument("--kde-iterations", type=int, default=30,
                        help="KDE iterations (default 30: enough to show the shapes)")
    parser.add_argument("--skip-lm", action="store_true", help="leave out the tiny LM run")
    args = parser.parse_args(argv)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    status = 0
    lines = []
    summaries = []
    start = time.perf_counter()
    configs = [(collapse.Gaussian(dim=d, n=n), args.iterations, reps, f"gaussian_d{d}_n{n}",
                f"gaussian d={d:<3d} n={n:<4d}") for d, n, reps in GAUSSIAN_RUNS]
    configs += [(collapse.KDE(truth="blobs", n=n, bandwidth=h), args.kde_iterations, reps,
                 f"kde_blobs_n{n}_h{h}", f"kde blobs n={n:<4d} h={h:<4g}")
                for n, h, reps in KDE_RUNS]
    for problem, iterations, reps, stem, label in configs:
        t0 = time.perf_counter()
        result = collapse.compare(problem, "all", iterations, reps, SEED)
        result.to_csv(out / f"{stem}.csv")
        result.save_plot(out / f"{stem}.png")
        summaries.append(result.summary())
        status = max(status, result.exit_status)
        lines += verdict_lines(result, label)
        lines.append(f"  ({time.perf_counter() - t0:.1f} s, {reps} replicates; "
                     f"{result.verdict_line()})")
    if not args.skip_lm:
        t0 = time.perf_counter()
        lines.append(f"{run_lm(out)} ({time.perf_counter() - t0:.1f} s)")
    (out / "demo.log").write_text("\n".join(summaries))
    print("\n== verdicts: exact theory vs Monte Carlo (details in demo.log) ==")
    print("\n".join(lines))
    print(f"results in {out}/ ({time.perf_counter() - start:.0f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
