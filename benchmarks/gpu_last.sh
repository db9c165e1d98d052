#!/usr/bin/env bash
# Issue 24's last GPU run, ~145 s of command time on the H200: what the run of 2026-12-04 left open, every case in
# a fresh process (benchmarks/decoding_gpu.py --plan last; the cases: benchmarks/gpu_case.py), in this order:
#   1. PARGS 7B + 1B RM, batch 8, compiled (the PARGS target, 1,100 tok/s; never measured: compiled PARGS at 7B)
#   2. top-k 7B, batch 32, compiled (the top-k target at batch 32: 1.1x HF static + compile = 4,037 tok/s)
#   3. the quickstart's regime, eager and graphs (auto's eager and captured costs at 2 and 2 + 2 layers)
#   4. PARGS 7B + 1B RM, batch 32, graphs (the batch-32 target, 3,000 tok/s; never measured)
#   5. PARGS 7B + 1B RM, batch 8, graphs again (its step is unchanged since 2026-12-04; only if time is left)
#
# 1. Here, the wheels the GPU machine lacks, into .whl/ (gpu_check.sh's header says how, from a worktree).
# 2. One device `run` from the checkout's root, with carry [".whl"] and timeout_s 200:
#      bash benchmarks/gpu_last.sh
#    It writes under $OUT (4 files): versions.txt, last.md (the summary), last.jsonl (every case's numbers),
#    last.log (the cases' own output: recompilation reasons, tracebacks). Then `give_back`.
# 3. Here, merge its rows into the table of 2026-12-04 (every number marked with the run it came from):
#      python benchmarks/decoding_gpu.py --out benchmarks/results \
#        --merge /work/helpers/gpu_run1/final.jsonl "H200, 2026-12-04, plan final" \
#        --merge FILES_AT/last.jsonl "H200, DATE, plan last"
# Here, on a CPU, the same plan on tiny models (checks the script and the Python; minutes on 2 busy cores):
#      DRY=1 OUT=/tmp/gpu_last PY=/work/main/.venv/bin/python TOTAL=900 bash benchmarks/gpu_last.sh
set -u
OUT=${OUT:-/tmp/gpu_last}
TOTAL=${TOTAL:-145}  # seconds for the whole script; the cases get what the setup leaves, less 3
PY=${PY:-python3}
source "$(dirname "$0")/gpu_setup.sh"

left=$(( TOTAL - 3 - $(elapsed) ))
device=cuda
[ -n "${DRY:-}" ] && device=cpu
$PY benchmarks/decoding_gpu.py --plan last --device $device --budget $left --out "$OUT" 2>&1 | grep -v '^{' | tail -50
echo "last run done at $(elapsed) s (exit ${PIPESTATUS[0]})"
cat /proc/loadavg >> "$OUT/versions.txt"
