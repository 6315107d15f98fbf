#!/usr/bin/env bash
# GPU check: the tutorial run and one sweep step with trainer.accelerator=gpu, per-epoch times.
#
# usage: bench/gpu_check.sh [EXP_DIR]     (default: a fresh temporary directory, removed after)
#
# Prints the device name, then each run's "epoch k/n ... (s)" lines and its wall time. On a
# machine where torch sees no CUDA device it prints "no GPU: ..." and exits 0, so the script
# can be tried anywhere. Both runs together take about a minute on a GPU machine (a cold
# dataset cache adds the synth_2 generation once). Exit status: 0, or the first failing run's.
# GPU_CHECK_ACCELERATOR=cpu GPU_CHECK_EXTRA="trainer.max_epochs=1" dry-runs the script on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=${PYTHON:-python3}; fi
APP=("$PY" -m knowit_app)

ACCEL=${GPU_CHECK_ACCELERATOR:-gpu}
read -r -a EXTRA <<<"${GPU_CHECK_EXTRA:-}"
if [ "$ACCEL" = gpu ] && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null
then
    echo "no GPU: torch $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)" \
         "sees no CUDA device on $(hostname); nothing to check"
    exit 0
fi
"$PY" - <<'EOF'
import torch
if not torch.cuda.is_available():
    print(f"device: none (dry run on the CPU), torch {torch.__version__}")
    raise SystemExit(0)
p = torch.cuda.get_device_properties(0)
print(f"device: {p.name} ({p.total_memory / 2**30:.0f} GiB), {torch.cuda.device_count()} visible;"
      f" torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF

EXP=${1:-}
if [ -z "$EXP" ]; then EXP=$(mktemp -d); trap 'rm -rf "$EXP"' EXIT; fi
mkdir -p "$EXP"
export WANDB_SILENT=true WANDB_MODE=offline
status=0

run() {  # run LABEL MODEL ARGS...: one app invocation, its epoch lines and wall time
    local label=$1 model=$2; shift 2
    local log="$EXP/$label.log" t0 t1 rc
    t0=$(date +%s%N)
    "${APP[@]}" "$@" "model_name=$model" "exp_dir=$EXP" "trainer.accelerator=$ACCEL" trainer.devices=1 "${EXTRA[@]}" >"$log" 2>&1
    rc=$?
    t1=$(date +%s%N)
    echo "== $label: exit $rc, $(( (t1 - t0) / 1000000 )) ms wall"
    # The app's output, or (sweep runs) each run's own log file under the model's directory.
    { cat "$log"; find "$EXP/models/$model" -name "*.log" -exec cat {} + 2>/dev/null; } \
        | grep -oE "epoch [0-9]+/[0-9]+: .*" | sort -u | sed 's/^/   /'
    if [ "$rc" -ne 0 ]; then tail -n 20 "$log" | sed 's/^/   | /'; [ "$status" -eq 0 ] && status=$rc; fi
}

# The tutorial run (5 epochs, batch 64) as the README starts it, on the GPU.
run tutorial gpu_tutorial
# One step of the demo sweep (its first grid point), on the GPU.
run sweep_step gpu_sweep -m sweep=tutorial_grid hydra.sweeper.count=1
exit "$status"
