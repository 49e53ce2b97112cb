"""Mutation testing: plant realistic bugs one at a time and check the tests catch them.

Each mutant replaces one exact snippet of one file (it must occur exactly once) by a
plausible wrong version: a divisor off by one, a variance scaled wrongly, a check
removed, a stream reused.  For every mutant the script copies the tracked files of the
repository into a temporary directory, applies the mutant there, lays out the
``collapse`` package over the copy (so the installed project is untouched) and runs
the tests that guard that code (``-m "not slow"``, stopping at the first failure).  A
mutant is *killed* when those tests fail, *survives* when they pass.  Before any
mutant, the same test selections run on the unmutated copy and must pass, so that a
kill means the mutant and not a broken test.

    python scripts/mutation_test.py               # every mutant, 2 at a time
    python scripts/mutation_test.py --list        # the mutants
    python scripts/mutation_test.py --only NAME   # some of them

The score is ``killed / (killed + survived)``; the report lists the survivors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


def M(name: str, path: str, old: str, new: str, *tests: str) -> Mutant:
    return Mutant(name, path, old, new, tests)


GAUSSIAN_THEORY = ("tests/test_gaussian_theory.py", "tests/test_cli.py")
KDE_THEORY = ("tests/test_kde_theory.py", "tests/test_cli_kde.py")
GAUSSIAN_ENGINE = ("tests/test_gaussian_engine.py",)
KDE_ENGINE = ("tests/test_kde_engine.py",)
STATS = ("tests/test_stats.py", "tests/test_compare_calibration.py")
API = ("tests/test_api.py", "tests/test_cli.py", "tests/test_reliability.py")
REGRESSION = ("tests/test_regression.py", "tests/test_cli_regression.py")
DISCRETE = ("tests/test_discrete.py", "tests/test_cli_discrete.py")
LM = ("tests/test_lm_data.py", "tests/test_lm_rules.py", "tests/test_lm_reliability.py", "tests/test_lm_loop.py")

MUTANTS: list[Mutant] = [
    # --- exact Gaussian theory
    M("gaussian-subsample-mean-cov", "analysis/gaussian.py",
      "h = (big_n - n) / (n * (big_n - 1))", "h = (big_n - n) / (n * big_n)", *GAUSSIAN_THEORY),
    M("gaussian-subsample-cov-factor", "analysis/gaussian.py",
      "g = _divisor_correction(n, covariance, one) * (n - 1) / n * big_n / (big_n - 1)",
      "g = _divisor_correction(n, covariance, one) * (n - 1) / n", *GAUSSIAN_THEORY),
    M("gaussian-accumulate-cross-term", "analysis/gaussian.py",
      "big_a = norm(big_a * (1 + one * 2 / t) + new_sq)",
      "big_a = norm(big_a * (1 + one / t) + new_sq)", *GAUSSIAN_THEORY),
    M("gaussian-new-batch-noise", "analysis/gaussian.py",
      "new_sq = a + b / n", "new_sq = a + b / (n - 1)", *GAUSSIAN_THEORY),
    M("gaussian-replace-divisor", "analysis/gaussian.py",
      "c = (n - 1) / divisor", "c = n / divisor", *GAUSSIAN_THEORY),
    M("gaussian-inverse-wishart", "analysis/gaussian.py",
      "inv = Fraction(nu, n - dim - 2) if n > dim + 2 else math.inf",
      "inv = Fraction(nu, n - dim - 1) if n > dim + 2 else math.inf", *GAUSSIAN_THEORY),
    M("gaussian-logdet-digamma", "analysis/gaussian.py",
      "_MP.digamma(_MP.mpf(n - i) / 2)", "_MP.digamma(_MP.mpf(n - i + 1) / 2)",
      *GAUSSIAN_THEORY),
    # --- exact KDE theory
    M("kde-theory-self-term", "analysis/kde.py",
      "coalesced_overlap = (2 * np.pi * (steps + 2) * h * h) ** (-d / 2)",
      "coalesced_overlap = (2 * np.pi * (steps + 1) * h * h) ** (-d / 2)", *KDE_THEORY),
    # --- exact theory of rules and of the value of synthetic data
    M("rules-first-synthetic-noise", "analysis/gaussian_rules.py",
      "    g_new = norm(a + b / n)  # G(S_1, S_1)", "    g_new = norm(a + b / (n - 1))  # G(S_1, S_1)",
      "tests/test_gaussian_rules.py"),
    M("value-generator-trace", "analysis/value.py",
      "generator_trace = kappa_g * (big_n - 1) / big_n", "generator_trace = kappa_g",
      "tests/test_value.py"),
    # --- Gaussian engines
    M("stats-engine-mean-noise", "simulate/gaussian_stats.py",
      'mu = mu + np.einsum("rij,rj->ri", factor, draws.mean_noise) * (1.0 / math.sqrt(n))',
      'mu = mu + np.einsum("rij,rj->ri", factor, draws.mean_noise) * (1.0 / math.sqrt(n - 1))',
      *GAUSSIAN_ENGINE),
    M("stats-engine-merge-term", "simulate/gaussian_stats.py",
      "+ (size * n / merged) * shift[:, :, None] * shift[:, None, :])",
      "+ (n / merged) * shift[:, :, None] * shift[:, None, :])", *GAUSSIAN_ENGINE),
    M("stats-engine-bartlett-df", "simulate/gaussian_stats.py",
      "draws = _BatchDraws(real.shape[0], k, n - 1)",
      "draws = _BatchDraws(real.shape[0], k, n)", *GAUSSIAN_ENGINE),
    M("fit-mle-divisor", "simulate/gaussian_fit.py",
      "return m - 1 if self.unbiased else m", "return m - 1 if self.unbiased else m + 1",
      *GAUSSIAN_ENGINE),
    M("subset-with-replacement", "simulate/gaussian_points.py",
      "    subset.sort(axis=-1)\n    rows = np.arange(reps)",
      "    subset.sort(axis=-1)\n    return subset\n    rows = np.arange(reps)",
      *GAUSSIAN_ENGINE),
    # --- KDE engine
    M("kde-pair-normalisation", "simulate/kde.py",
      "return _gauss_norm(2.0 * h * h, d) * pair_sum / (m * m)",
      "return _gauss_norm(2.0 * h * h, d) * pair_sum / (m * (m - 1))", *KDE_ENGINE),
    M("kde-nll-normalisation", "simulate/kde.py",
      "return -log_sums.mean(axis=-1) + math.log(m) + 0.5 * d",
      "return -log_sums.mean(axis=-1) + math.log(m + 1) + 0.5 * d", *KDE_ENGINE),
    M("kde-scott-exponent", "simulate/kde.py",
      "return float(m) ** (-1.0 / (d + 4))", "return float(m) ** (-1.0 / (d + 5))",
      *KDE_ENGINE),
    M("datasets-noise", "simulate/datasets.py",
      "SKLEARN_NOISE = 0.05", "SKLEARN_NOISE = 0.06", *KDE_ENGINE),
    # --- statistics
    M("stats-sem-ddof", "simulate/stats.py",
      "sd = xs.std(axis=0, ddof=1)\n", "sd = xs.std(axis=0, ddof=0)\n", *STATS),
    M("stats-holm-off", "simulate/stats.py",
      'alpha=alpha, method="holm")', 'alpha=alpha * 20, method="holm")', *STATS),
    M("stats-min-replicates", "simulate/stats.py",
      "MIN_REPLICATES = 10", "MIN_REPLICATES = 2", *STATS, "tests/test_cli.py"),
    # --- API and command-line checks
    M("api-alpha-range", "simulate/api.py",
      '        check_real("alpha", alpha, low=0, high=1, high_open=True)\n        check_real("theory_scale", theory_scale)\n    setting.check_simulation',
      '        check_real("theory_scale", theory_scale)\n    setting.check_simulation', *API),
    M("api-compare-one-replicate", "simulate/api.py",
      'minimum = _min_replicates() if command == "compare" else 1',
      "minimum = 1", *API),
    M("api-untested-consistent", "simulate/results.py",
      '    def verdict(self) -> str:\n        if not self.statistics.consistent:\n            return "INCONSISTENT"\n        return "CONSISTENT" if self.tested else "UNTESTED"',
      '    def verdict(self) -> str:\n        if not self.statistics.consistent:\n            return "INCONSISTENT"\n        return "CONSISTENT"', *API),
    M("checkpoint-trusts-key", "simulate/checkpoint.py",
      'if stored != expected:', 'if False:', "tests/test_cli.py", "tests/test_reliability.py"),
    M("tables-replace-specials", "simulate/tables.py",
      "        if _is_special(path):\n            with open(path, \"wb\") as handle:",
      "        if False:\n            with open(path, \"wb\") as handle:", *API),
    M("budget-off", "simulate/budget.py",
      "    if force:\n        return\n", "    return\n", *API),
    # --- regression and discrete settings
    M("regression-inverse-trace", "analysis/regression.py",
      "        return Fraction(dim, n - dim - 1)", "        return Fraction(dim, n - dim)",
      *REGRESSION),
    M("regression-engine-fresh-noise", "simulate/regression.py",
      "                delta = (fresh + synthetic) / (count + 1)",
      "                delta = (fresh + synthetic) / count", *REGRESSION),
    M("discrete-gini-noise", "analysis/discrete.py",
      "        noise_variance=lambda d: (one - d) / n,",
      "        noise_variance=lambda d: (one - d) / (n - 1),", *DISCRETE),
    M("discrete-subsample-fpc", "analysis/discrete.py",
      "(one - p) * (size - m) / (m * (size - 1))", "(one - p) * (size - m) / (m * size)",
      *DISCRETE),
    # --- the language-model loop
    M("lm-trusts-damaged-files", "lm/rundir.py",
      'if file_record(file)["sha256"] != record["files"][name]["sha256"]:',
      'if not file_record(file)["sha256"]:', *LM),
    M("lm-done-when-samples-exist", "lm/rundir.py",
      "    return check_iteration(directory, workflow, seed, t)[0] is not None",
      "    return (directory / SAMPLES).is_file()", *LM),
    M("lm-synthetic-batch-off-by-one", "lm/workflows.py",
      "for i in range(sample_counts[k - 1])]",
      "for i in range(sample_counts[k - 1] - 1)]", *LM),
    M("lm-welch-pooled-variance", "lm/evidence.py",
      "test = stats.ttest_ind(x, y, equal_var=False)",
      "test = stats.ttest_ind(x, y, equal_var=True)", *LM),
]


def _copy_tree(destination: Path) -> Path:
    """The tracked files (working-tree versions) in ``destination``; returns the package root."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            target = destination / "tree" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    tree = destination / "tree"
    # some tests list the project's files with git: the copy is a repository of its own
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tree, check=True)
    package = destination / "site" / "collapse"
    package.mkdir(parents=True)
    shutil.move(str(tree / "collapse" / "__init__.py"), package / "__init__.py")
    shutil.rmtree(tree / "collapse")  # else the copy's folder would shadow the package
    for part in ("analysis", "simulate", "lm"):
        os.symlink(tree / part, package / part)
    return destination


def _run(workdir: Path, tests: tuple[str, ...]) -> tuple[bool, str]:
    env = dict(os.environ, PYTHONPATH=str(workdir / "site"), PYTHONDONTWRITEBYTECODE="1")
    # the copy's collapse/ folder lives in site/, so the tests that pip-install the tree
    # itself cannot run there (they guard packaging, which no mutant touches)
    proc = subprocess.run([PYTHON, "-m", "pytest", "-x", "-q", "-m", "not slow",
                           "-k", "not regular_install and not front_page_example",
                           "-p", "no:cacheprovider", *tests], cwd=workdir / "tree", env=env,
                          capture_output=True, text=True, timeout=3600)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
    return proc.returncode == 0, tail[0]


def _mutate(mutant: Mutant, workdir: Path) -> None:
    path = workdir / "tree" / mutant.path
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name}: its snippet occurs {count} times in "
                         f"{mutant.path} (must be once); update the mutant")
    path.write_text(text.replace(mutant.old, mutant.new))
    compile(path.read_text(), str(path), "exec")


def run_mutant(mutant: Mutant) -> tuple[Mutant, bool, str, float]:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        workdir = _copy_tree(Path(tmp))
        _mutate(mutant, workdir)
        passed, tail = _run(workdir, mutant.tests)
    return mutant, not passed, tail, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.name:32s} {m.path}")
        return 0
    for m in mutants:  # fail fast on stale snippets
        text = (ROOT / m.path).read_text()
        if text.count(m.old) != 1:
            raise SystemExit(f"mutant {m.name}: snippet occurs {text.count(m.old)} times in "
                             f"{m.path}")
    selections = sorted({m.tests for m in mutants})
    print(f"baseline: {len(selections)} test selections on the unmutated copy", flush=True)
    with tempfile.TemporaryDirectory(prefix="baseline-") as tmp:
        workdir = _copy_tree(Path(tmp))
        with ThreadPoolExecutor(args.jobs) as pool:
            for tests, (passed, tail) in zip(selections, pool.map(lambda t: _run(workdir, t),
                                                                  selections)):
                if not passed:
                    raise SystemExit(f"baseline fails for {' '.join(tests)}: {tail}")
    killed, survived = [], []
    with ThreadPoolExecutor(args.jobs) as pool:
        for mutant, dead, tail, seconds in pool.map(run_mutant, mutants):
            (killed if dead else survived).append(mutant)
            print(f"{'killed  ' if dead else 'SURVIVED'} {mutant.name:32s} {seconds:6.0f} s  "
                  f"{tail}", flush=True)
    total = len(killed) + len(survived)
    print(f"\nscore: {len(killed)}/{total} = {len(killed) / total:.1%} killed")
    for m in survived:
        print(f"  survivor: {m.name} ({m.path}: {m.old!r} -> {m.new!r})")
    return 0 if not survived else 1


if __name__ == "__main__":
    sys.exit(main())
