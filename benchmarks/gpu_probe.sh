#!/usr/bin/env bash
# Issue 24's probe on the H200, ~170 s of command time: where a decoding step's time goes on the graphs path
# (torch.profiler tables, top-k 7B and PARGS 7B + 1B at batch 8), compiled vs graphs vs eager step times and
# first-call costs at 7B and at the quickstart's size (what `auto` is set from), and Hugging Face eager in a
# fresh process (also timed the way the old benchmark did), every case in a process of its own
# (benchmarks/decoding_gpu.py --plan probe; the cases: benchmarks/gpu_case.py).
#
# 1. Here, the wheels the GPU machine lacks, into .whl/ (gpu_check.sh's header says how, from a worktree).
# 2. One device `run` from the checkout's root, with carry [".whl"] and timeout_s 240:
#      bash benchmarks/gpu_probe.sh
#    It writes under $OUT (6 files): versions.txt, probe.md (the summary), probe.jsonl (every case's numbers),
#    probe.log (the cases' own output: recompilation reasons, tracebacks), profile_topk_graphs.txt and
#    profile_pargs_graphs.txt (kernels by device time, operators by host time, device vs wall ms per step).
# Here, on a CPU, the same plan on tiny models (checks the script and the Python; minutes on 2 busy cores):
#      DRY=1 OUT=/tmp/gpu_probe PY=/work/main/.venv/bin/python TOTAL=900 bash benchmarks/gpu_probe.sh
set -u
OUT=${OUT:-/tmp/gpu_probe}
TOTAL=${TOTAL:-170}  # seconds for the whole script; the cases get what the setup leaves, less 5
PY=${PY:-python3}
WHEELS='transformers-*.whl'  # the probe needs transformers only (the machine's is older)
source "$(dirname "$0")/gpu_setup.sh"

left=$(( TOTAL - 5 - $(elapsed) ))
device=cuda
[ -n "${DRY:-}" ] && device=cpu
$PY benchmarks/decoding_gpu.py --plan probe --device $device --budget $left --out "$OUT" 2>&1 | grep -v '^{' | tail -70
echo "probe done at $(elapsed) s (exit ${PIPESTATUS[0]})"
cat /proc/loadavg >> "$OUT/versions.txt"
