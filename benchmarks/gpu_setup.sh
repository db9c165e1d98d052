# Sourced by benchmarks/gpu_check.sh, gpu_probe.sh and gpu_last.sh after they set OUT and PY: the clock
# (`start`, `elapsed`), the wheels the GPU machine lacks installed into its Python (WHEELS, a glob under .whl/;
# not with DRY set), PYTHONPATH, and $OUT/versions.txt (torch, transformers, the GPU, cores, load).
mkdir -p "$OUT"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }

if [ -z "${DRY:-}" ] && ls .whl/${WHEELS:-*.whl} >/dev/null 2>&1; then
  # into the machine's Python, not a --target folder: the tests' subprocesses reset PYTHONPATH to the checkout
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade .whl/${WHEELS:-*.whl} 2>&1 | tail -3
fi
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
{
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu \
    --format=csv 2>/dev/null || echo "no nvidia-smi"
  nproc; cat /proc/loadavg
} 2>&1 | tee "$OUT/versions.txt"
echo "setup done at $(elapsed) s"
