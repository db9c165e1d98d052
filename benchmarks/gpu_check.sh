#!/usr/bin/env bash
# The GPU checks of issue 24 in one run of about 6.5 minutes: `pytest -m gpu tests/decoding` (the static path's
# tests and the token agreement of every path), `pargs quickstart` timed on the GPU, then the decoding benchmark
# (benchmarks/decoding_gpu.py --plan final: every case in a fresh process, pargs' paths next to Hugging Face
# `generate` eager and static cache + compile at batches 8 and 32, the bandwidth bound, first-call costs, token
# agreement, the quickstart's regime), which writes the table of the issue.
#
# 1. Here, the wheels the GPU machine lacks, into .whl/ (/work/shared/gpu/README.md). In a git worktree
#    /work/shared/gpu/wheels.sh stops at `mkdir .git/info` (.git is a file there); this variant skips the
#    git-ignore step, so .whl/ stays untracked (it travels to the machine anyway; never commit it):
#      sed -e 's#^mkdir -p .git/info .whl$#mkdir -p .whl#' -e 's#^grep -qx .*exclude$#true#' \
#        /work/shared/gpu/wheels.sh | bash
# 2. One device `run` from the checkout's root, with carry [".whl"] and timeout_s 450:
#      bash benchmarks/gpu_check.sh
#    It writes under $OUT (6 files): versions.txt, pytest_gpu.log, quickstart.log, decoding_gpu.md, final.jsonl
#    (every case's numbers), final.log (the cases' own output). Commit $OUT/decoding_gpu.md as
#    benchmarks/results/decoding_gpu.md; then `give_back`.
# Here, on a CPU, the same steps on tiny models (checks the script and the Python; the gpu tests skip; the
# quickstart is left out unless QUICKSTART=1, it takes minutes on 2 cores):
#      DRY=1 OUT=/tmp/gpu_check PY=/work/main/.venv/bin/python TOTAL=1200 bash benchmarks/gpu_check.sh
set -u
OUT=${OUT:-/tmp/gpu_check}
TOTAL=${TOTAL:-400}  # seconds for the whole script; the benchmark gets what the tests and the quickstart leave
PY=${PY:-python3}
source "$(dirname "$0")/gpu_setup.sh"

# 1. the decoding gpu tests (captured and compiled steps give the eager tokens; agreement); -rP prints their output
timeout 90 $PY -m pytest -m gpu -q -p no:cacheprovider -rP tests/decoding 2>&1 | tee "$OUT/pytest_gpu.log" | tail -30
echo "pytest -m gpu tests/decoding: exit ${PIPESTATUS[0]}, done at $(elapsed) s"

# 2. the quickstart on the GPU: its total and its steps (the predict step's target: under 20 s)
if [ -z "${DRY:-}" ] || [ -n "${QUICKSTART:-}" ]; then
  qs=$(mktemp -d)
  timeout 100 $PY -m pargs quickstart --out "$qs/run" > "$OUT/quickstart.log" 2>&1
  echo "quickstart: exit $?, done at $(elapsed) s"
  grep "^run directory" "$OUT/quickstart.log"
  rm -rf "$qs"
fi

# 3. the benchmark, in the time left but 10 s (cases that no longer fit are listed as not run; the table is
#    rewritten after every case, so a run cut short still leaves what it measured)
left=$(( TOTAL - 10 - $(elapsed) ))
device=cuda
[ -n "${DRY:-}" ] && device=cpu
$PY benchmarks/decoding_gpu.py --plan final --device $device --budget $left --out "$OUT" 2>&1 | grep -v '^{' | tail -60
echo "benchmark: exit ${PIPESTATUS[0]}, done at $(elapsed) s"
if [ -f "$OUT/quickstart.log" ] && [ -f "$OUT/decoding_gpu.md" ]; then
  { echo; echo "## The quickstart on this GPU"; echo
    echo "\`pargs quickstart\` (every step, \`decode_path: auto\`):"
    grep "^run directory" "$OUT/quickstart.log" | sed 's#^run directory: [^ ]* *#- #'
  } >> "$OUT/decoding_gpu.md"
fi
cat /proc/loadavg >> "$OUT/versions.txt"
echo "all done at $(elapsed) s"
