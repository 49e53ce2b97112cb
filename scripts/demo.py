"""The main job (`make demo`): theory against Monte Carlo at the paper's settings.

For every configuration it runs ``collapse compare`` for all three workflows,
writes the full comparison CSV and a figure under ``--output``, and prints one
verdict line per configuration and workflow.  Exit status 1 if any comparison is
inconsistent.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections import defaultdict
from pathlib import Path

from collapse.simulate.cli import main as collapse
from collapse.simulate.tables import Table

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


def _verdicts(csv_path: Path) -> dict[str, str]:
    table = Table.from_csv(csv_path)
    seen: dict[str, list] = defaultdict(list)
    for rec in table.records():
        seen[rec["workflow"]].append(rec["consistent"])
    out = {}
    for workflow, flags in seen.items():
        tested = [f for f in flags if f is not None]
        rejected = sum(1 for f in tested if f is False)
        verdict = "INCONSISTENT" if rejected else "consistent"
        out[workflow] = f"{verdict:12s} ({len(tested)} rows tested, {rejected} rejected)"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("results"))
    parser.add_argument("--iterations", type=int, default=100,
                        help="Gaussian iterations (default 100, as in the paper)")
    parser.add_argument("--kde-iterations", type=int, default=30,
                        help="KDE iterations (default 30: enough to show the shapes)")
    parser.add_argument("--skip-lm", action="store_true", help="leave out the tiny LM run")
    args = parser.parse_args(argv)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    # Each comparison's per-metric summary goes to a log; the verdicts are printed below.
    log = open(out / "demo.log", "w")
    with contextlib.redirect_stderr(log):
        status, lines, elapsed = _run_all(args, out)
    log.close()
    print("\n== verdicts: exact theory vs Monte Carlo (details in demo.log) ==")
    print("\n".join(lines))
    print(f"results in {out}/ ({elapsed:.0f} s)")
    return status


def _run_all(args, out: Path):
    status = 0
    lines = []
    start = time.perf_counter()
    for dim, n, reps in GAUSSIAN_RUNS:
        stem = out / f"gaussian_d{dim}_n{n}"
        t0 = time.perf_counter()
        code = collapse([
            "compare", "gaussian", "--workflow", "all", "--dim", str(dim), "--n", str(n),
            "--iterations", str(args.iterations), "--replicates", str(reps), "--seed", "2024",
            "--format", "csv", "--output", f"{stem}.csv", "--plot", f"{stem}.png",
        ])
        status = max(status, code)
        for workflow, text in _verdicts(Path(f"{stem}.csv")).items():
            lines.append(f"gaussian d={dim:<3d} n={n:<4d} {workflow:22s} {text}")
        lines.append(f"  ({time.perf_counter() - t0:.1f} s, {reps} replicates)")
    for n, h, reps in KDE_RUNS:
        stem = out / f"kde_blobs_n{n}_h{h}"
        t0 = time.perf_counter()
        code = collapse([
            "compare", "kde", "--truth", "blobs", "--workflow", "all", "--n", str(n),
            "--bandwidth", str(h), "--iterations", str(args.kde_iterations),
            "--replicates", str(reps), "--seed", "2024",
            "--format", "csv", "--output", f"{stem}.csv", "--plot", f"{stem}.png",
        ])
        status = max(status, code)
        for workflow, text in _verdicts(Path(f"{stem}.csv")).items():
            lines.append(f"kde blobs n={n:<4d} h={h:<4g} {workflow:22s} {text}")
        lines.append(f"  ({time.perf_counter() - t0:.1f} s, {reps} replicates)")
    if not args.skip_lm:
        t0 = time.perf_counter()
        lm_dir = out / "lm-tiny"
        code = collapse(["lm", "run", "--workflow", "all", "--iterations", "3", "--seeds", "1",
                         "--preset", "tiny", "--output", str(lm_dir), "--quiet"])
        status = max(status, code)
        code = collapse(["lm", "report", str(lm_dir), "--format", "table",
                         "--output", str(out / "lm-tiny.txt"), "--plot", str(out / "lm-tiny.png")])
        status = max(status, code)
        lines.append(f"lm tiny preset: report in {out / 'lm-tiny.txt'} "
                     f"({time.perf_counter() - t0:.1f} s)")
    return status, lines, time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
