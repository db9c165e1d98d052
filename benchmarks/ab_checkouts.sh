#!/usr/bin/env bash
# Before/after speed of the eager decoding loop between two checkouts of pargs (e.g. a worktree of an older
# commit and this one): top-k and cached PARGS, batch 8, N new tokens, one thread, CPU-time tokens/s.
# Processes alternate (the order swaps every round), so a busy spell slows both alike; each line also
# carries a hash of the tokens, which must agree between the checkouts.
#   git worktree add --detach /tmp/before <commit>
#   bash benchmarks/ab_checkouts.sh /tmp/before "$PWD" [rounds=6] [N=128] [repeats=3]
set -euo pipefail
BASE=$1; HEAD=$2; ROUNDS=${3:-6}; N=${4:-128}; REP=${5:-3}
PY=${PYTHON:-python}
HERE=$(cd "$(dirname "$0")" && pwd)
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then order="$BASE $HEAD"; else order="$HEAD $BASE"; fi
  for root in $order; do
    tag=$([ "$root" = "$BASE" ] && echo base || echo head)
    echo "$r $tag $(OMP_NUM_THREADS=1 "$PY" "$HERE/ab_one.py" "$root" "$N" "$REP")"
  done
done
