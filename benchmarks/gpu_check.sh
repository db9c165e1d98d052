#!/usr/bin/env bash
# The GPU checks of issue 16 in one run of at most ~8 minutes: `pytest -m gpu` (the static path's tests first),
# then the GPU decoding benchmark, then the other gpu tests if a minute is left.
#
# 1. Here, the wheels the GPU machine lacks, into .whl/ (/work/shared/gpu/README.md). In a git worktree
#    /work/shared/gpu/wheels.sh stops at `mkdir .git/info` (.git is a file there); this variant skips the
#    git-ignore step, so .whl/ stays untracked (it travels to the machine anyway; never commit it):
#      sed -e 's#^mkdir -p .git/info .whl$#mkdir -p .whl#' -e 's#^grep -qx .*exclude$#true#' \
#        /work/shared/gpu/wheels.sh | bash
# 2. One device `run` from the checkout's root, with carry [".whl"] and timeout_s 520:
#      bash benchmarks/gpu_check.sh
#    It writes under $OUT: versions.txt, pytest_gpu.log, bench.log, decoding_gpu.md, pytest_gpu_rest.log.
#    Commit $OUT/decoding_gpu.md as benchmarks/results/decoding_gpu.md; then `give_back`.
# Here, on a CPU, the same steps on tiny models (checks the script and the benchmark's Python; the gpu tests skip):
#      DRY=1 OUT=/tmp/gpu_check PY=/work/main/.venv/bin/python bash benchmarks/gpu_check.sh
set -u
OUT=${OUT:-/tmp/gpu_check}
TOTAL=${TOTAL:-460}  # seconds for the whole script; the benchmark gets what pytest leaves
mkdir -p "$OUT"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
PY=${PY:-python3}

if [ -z "${DRY:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
  # into the machine's Python, not a --target folder: the tests' subprocesses reset PYTHONPATH to the checkout
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade .whl/*.whl 2>&1 | tail -3
fi
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
$PY - <<'EOF' 2>&1 | tee "$OUT/versions.txt"
import torch, transformers
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
print(f"torch {torch.__version__}, transformers {transformers.__version__}, {gpu}")
EOF
echo "setup done at $(elapsed) s"

# 1. the static path's gpu tests (CUDA graphs and the compiled step give the eager tokens); -rP prints their output
timeout 150 $PY -m pytest -m gpu -q -p no:cacheprovider -rP tests/decoding 2>&1 | tee "$OUT/pytest_gpu.log" | tail -30
echo "pytest -m gpu tests/decoding: exit ${PIPESTATUS[0]}, done at $(elapsed) s"

# 2. the benchmark, in the time left but 60 s (cases that no longer fit are listed as not run; the table is rewritten
#    after every case, so a run cut short still leaves what it measured)
left=$(( TOTAL - 60 - $(elapsed) ))
if [ -n "${DRY:-}" ]; then
  args=(--device cpu --dtype float32 --preset tiny --paths static --new-tokens 16 --prompt-len 8 --repeats 1)
else
  args=(--device cuda --dtype bfloat16 --preset 7b+1b 7b+7b)
fi
timeout $(( left > 30 ? left : 30 )) $PY benchmarks/decoding.py "${args[@]}" --budget $(( left > 90 ? left - 60 : 30 )) \
  --out "$OUT/decoding_gpu.md" 2>&1 | tee "$OUT/bench.log" | grep -v '^{' | tail -60
echo "benchmark: exit ${PIPESTATUS[0]}, done at $(elapsed) s"

# 3. the other gpu tests (Lightning FSDP, unchanged here; 42 s when last measured) if a minute is left
left=$(( TOTAL - $(elapsed) ))
if [ $left -ge 55 ]; then
  timeout $left $PY -m pytest -m gpu -q -p no:cacheprovider tests --ignore=tests/decoding 2>&1 \
    | tee "$OUT/pytest_gpu_rest.log" | tail -5
else
  echo "skipped the other gpu tests: $left s left" | tee "$OUT/pytest_gpu_rest.log"
fi
echo "all done at $(elapsed) s"
