#!/usr/bin/env bash
# The language-model evidence runs: every experiment of docs/results/lm/, in order.
#
#   scripts/lm_evidence.sh [RUNS_DIR [STEP...]]    (default runs/evidence, every step)
#
# Each `collapse lm run` resumes, so rerunning this script after an interruption
# computes only what is missing.  The steps are independent: two lanes of them may
# run at once (each `collapse lm run` locks its own directory).  One torch thread per run, at the lowest CPU
# priority, one run at a time; wall times go to RUNS_DIR/times.tsv (and the code's
# commit, if COLLAPSE_COMMIT is set, to RUNS_DIR/commits.tsv).  Afterwards
# `python scripts/lm_evidence.py RUNS_DIR` writes the tables under docs/results/lm/.
set -euo pipefail
runs=${1:-runs/evidence}
shift || true
wanted=" ${*:-all} "
collapse=${COLLAPSE:-collapse}
mkdir -p "$runs"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
cache="$runs/cache"

step() {  # step NAME ARGS...: run one experiment and record its wall time
    local name=$1; shift
    local start end
    case "$wanted" in *" all "*|*" $name "*) ;; *) return 0 ;; esac
    start=$(date +%s)
    nice -n 19 "$collapse" lm "$@" --cache-dir "$cache" --quiet > "$runs/$name.out"
    end=$(date +%s)
    printf '%s\t%s\t%s\n' "$name" "$((end - start))" "$*" >> "$runs/times.tsv"
    if [ -n "${COLLAPSE_COMMIT:-}" ]; then printf '%s\t%s\n' "$name" "$COLLAPSE_COMMIT" >> "$runs/commits.tsv"; fi
}

step tiny-epochs   run --workflow all,fresh --iterations 10 --seeds 8 --preset tiny --output "$runs/tiny-epochs"
step tiny-matched  run --workflow all,fresh --iterations 10 --seeds 8 --preset tiny --budget matched --output "$runs/tiny-matched"
step small-epochs  run --workflow all,fresh --iterations 10 --seeds 5 --preset small --output "$runs/small-epochs"
step small-matched run --workflow all,fresh --iterations 10 --seeds 5 --preset small --budget matched --output "$runs/small-matched"
step tiny-lr-low   run --workflow all,fresh --iterations 10 --seeds 8 --preset tiny --lr 1.5e-4 --output "$runs/tiny-lr-low"
step tiny-lr-high  run --workflow all,fresh --iterations 10 --seeds 8 --preset tiny --lr 1.5e-3 --output "$runs/tiny-lr-high"
step value-tiny    value --real-sizes 25,50,100,200,400 --synthetic-sizes 0,100,200,400,800 --seeds 5 --preset tiny --output "$runs/value-tiny"
