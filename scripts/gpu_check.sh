#!/usr/bin/env bash
# One GPU check of the suite in a few minutes (issue 25, item 5): bench chain, bench lm, the paper
# tier of chain-emergence at m = 8 for one seed, and a paper-tier chain-simple-mass sweep over a few
# c values and seeds. Each part has its own timeout; a part that fails or times out is logged and
# the next one runs. Everything worth keeping lands flat in $OUT (at most 8 files):
#   env.txt  gpu_check.log  bench_chain.json  bench_lm.json  emergence_summary.json  sweep_summary.json
# Run folders go under $RUNS (default a fresh /tmp/theoryrl_gpu_check.XXXXXX), not into the repository.
#
#   OUT=/tmp/out bash scripts/gpu_check.sh            # the GPU check (about 9 minutes at most)
#   QUICK=1 OUT=/tmp/out bash scripts/gpu_check.sh    # the same commands shrunk to a CPU smoke run
#
# Knobs (environment): PYTHON (default python3), RUNS, PARTS (default bench_chain,bench_lm,emergence,sweep:
# run a subset, e.g. to split the check over two device calls), the per-part timeouts in seconds
# T_BENCH_CHAIN, T_BENCH_LM, T_EMERGENCE, T_SWEEP (GPU defaults 120 + 90 + 210 + 120 s, under a device
# call's 10 minutes), SWEEP_C (default 0.05,0.2,0.5) and SWEEP_SEEDS (default 2): the sweep's grid of c
# values and its seeds per grid point.
set -u -o pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder that receives the logs and JSON}
RUNS=${RUNS:-$(mktemp -d /tmp/theoryrl_gpu_check.XXXXXX)}
PYTHON=${PYTHON:-python3}
QUICK=${QUICK:-0}
SWEEP_C=${SWEEP_C:-0.05,0.2,0.5}
SWEEP_SEEDS=${SWEEP_SEEDS:-2}
PARTS=",${PARTS:-bench_chain,bench_lm,emergence,sweep},"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export THEORYRL_BASES="$RUNS/bases"
mkdir -p "$OUT" "$RUNS"
LOG="$OUT/gpu_check.log"
: >"$LOG"

if [ "$QUICK" = 1 ]; then
  T_BENCH_CHAIN=${T_BENCH_CHAIN:-300} T_BENCH_LM=${T_BENCH_LM:-300} T_EMERGENCE=${T_EMERGENCE:-300} T_SWEEP=${T_SWEEP:-300}
  TIER=quick
  BENCH_CHAIN_ARGS=(--quick --m 4 --steps 1 --reps 2 --no-split)
  BENCH_LM_ARGS=(--quick --reps 1 --cache-block 0)
  TINY=(--set softmax.batch=200 --set softmax.epochs=2 --set softmax.steps_per_epoch=2 --set softmax.eval_size=100
        --set linear.batch=200 --set linear.epochs=2 --set linear.steps_per_epoch=2 --set linear.eval_size=100)
  EMERGENCE_ARGS=(--set m=4 "${TINY[@]}")
  SWEEP_ARGS=(--set m=5 --set recipe.batch=200 --set recipe.epochs=2 --set recipe.steps_per_epoch=2
              --set recipe.eval_size=100 --set recipe.epochs_per_chunk=1)
else
  T_BENCH_CHAIN=${T_BENCH_CHAIN:-120} T_BENCH_LM=${T_BENCH_LM:-90} T_EMERGENCE=${T_EMERGENCE:-210} T_SWEEP=${T_SWEEP:-120}
  TIER=paper
  BENCH_CHAIN_ARGS=(--no-split)  # the split compiles four more programs per row
  BENCH_LM_ARGS=(--models 5M --reps 5)
  EMERGENCE_ARGS=(--set m=8)
  SWEEP_ARGS=()
fi

say() { echo "[gpu_check $(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }

# part KEY NAME TIMEOUT STDOUT_FILE CMD...: unless KEY is left out of PARTS, run CMD under a timeout; its
# stdout goes to STDOUT_FILE when one is named (else to the log), its stderr to the log; the wall time
# and exit status are logged.
part() {
  local key=$1 name=$2 limit=$3 stdout=$4 start rc
  shift 4
  case $PARTS in *",$key,"*) ;; *) say "$name: skipped (not in PARTS)"; return 0 ;; esac
  say "$name: start (timeout ${limit}s): $*"
  start=$(date +%s)
  if [ -n "$stdout" ]; then
    timeout --kill-after=10 "$limit" "$@" >"$stdout" 2>>"$LOG"
  else
    timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
  fi
  rc=$?
  say "$name: exit $rc after $(( $(date +%s) - start ))s$([ $rc = 124 ] && echo ' (TIMED OUT)')"
  return 0
}

{
  echo "date_utc $(date -u +%Y-%m-%dT%H:%M:%SZ)  quick=$QUICK  tier=$TIER"
  echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)  dirty_files $(git status --short 2>/dev/null | wc -l)"
  echo "uptime $(uptime)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "no nvidia-smi"
  "$PYTHON" -c "import sys, jax, jaxlib, optax, flax; print('python', sys.version.split()[0], 'jax', jax.__version__,
'jaxlib', jaxlib.__version__, 'optax', optax.__version__, 'flax', flax.__version__); print('devices', jax.devices())" 2>&1
} >"$OUT/env.txt"
cat "$OUT/env.txt" >>"$LOG"

part bench_chain "bench chain" "$T_BENCH_CHAIN" "$OUT/bench_chain.json" \
  "$PYTHON" -m theoryrl bench chain --json "${BENCH_CHAIN_ARGS[@]}"
part bench_lm "bench lm" "$T_BENCH_LM" "$OUT/bench_lm.json" \
  "$PYTHON" -m theoryrl bench lm --json "${BENCH_LM_ARGS[@]}"
part emergence "chain-emergence ($TIER, one seed)" "$T_EMERGENCE" "" \
  "$PYTHON" -m theoryrl run chain-emergence --tier "$TIER" --set seeds=42 "${EMERGENCE_ARGS[@]}" \
  --out "$RUNS/chain-emergence" --figures "$RUNS/figures" --ckpt-every 1000
part sweep "sweep chain-simple-mass ($TIER, c in $SWEEP_C, $SWEEP_SEEDS seeds)" "$T_SWEEP" "" \
  "$PYTHON" -m theoryrl sweep chain-simple-mass --tier "$TIER" --grid "c=$SWEEP_C" --seeds "$SWEEP_SEEDS" \
  "${SWEEP_ARGS[@]}" --out "$RUNS/chain-simple-mass" --ckpt-every 1000

for name in chain-emergence chain-simple-mass; do
  short=$([ $name = chain-emergence ] && echo emergence || echo sweep)
  if [ -f "$RUNS/$name/summary.json" ]; then
    cp "$RUNS/$name/summary.json" "$OUT/${short}_summary.json"
  else
    say "$name: no summary.json (unfinished; its progress lines are in gpu_check.log)"
  fi
done
say "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
