#!/usr/bin/env bash
# The GPU checks of `planner calibrate` (issue: calibrate), one step per call of at most ~9.5 minutes,
# for a machine with one CUDA GPU that is lent for a short session (each command limited to 10 minutes).
#
#   bench/gpu_session.sh tests       # pytest -m gpu: bf16 + compile + fused AdamW, attention kernels,
#                                    #   batch modes, forced single-GPU DDP, OOM recorded as failed
#   bench/gpu_session.sh bench       # planner probes vs a plain compiled loop, tokens/s and MFU per size,
#                                    #   packed small probes (the README's GPU table)
#   bench/gpu_session.sh sweeps      # the levers: cuDNN attention, max-autotune, head dim 128, packing
#   bench/gpu_session.sh calibrate   # `planner calibrate --gpus 1 --budget-gpu-hours 0.3`; rerun the
#                                    #   same step until it prints "calibration done": it resumes
#
# Logs and results go to $OUT (the device tool's return folder, which brings back at most 8 files: no step
# writes more) or ./gpu-session when OUT is unset.
# Every step stops itself (SIGINT, so calibrate keeps its finished probes) before the 10-minute limit.
set -uo pipefail
cd "$(dirname "$0")/.."

step=${1:?"usage: bench/gpu_session.sh tests|bench|sweeps|calibrate"}
case "$step" in
tests | bench | sweeps | calibrate) ;;
*) echo "unknown step: $step (tests|bench|sweeps|calibrate)" >&2; exit 2 ;;
esac
out=${OUT:-gpu-session}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
limit=${GPU_STEP_LIMIT_S:-560}  # seconds; the device tool allows 600 per command
python=${PYTHON:-python3}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt" 2>&1 || true
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
    >>"$out/gpu.txt" 2>&1

case "$step" in
tests)
    timeout -s INT "$limit" "$python" -m pytest -m gpu tests/calibrate -q -rs 2>&1 | tee "$out/gpu_tests.log"
    ;;
bench)
    timeout -s INT "$limit" "$python" bench/bench_probe_mfu.py --budget-s $((limit - 60)) \
        --json "$out/probe_mfu.json" 2>"$out/probe_mfu.err" | tee "$out/probe_mfu.md"
    ;;
sweeps)
    # One warm process cache (inductor) serves every sweep; each is budgeted to a quarter of the step.
    quarter=$(((limit - 40) / 4))
    for args in "--attention cudnn" "--compile-mode max-autotune-no-cudagraphs" "--head-dim 128"; do
        name=$(echo "$args" | tr -c 'a-z0-9\n' '_' | sed 's/^_*//')
        timeout -s INT $((quarter + 30)) "$python" bench/bench_probe_mfu.py --sizes 12x768,16x1024 --only table \
            --budget-s "$quarter" $args --json "$out/sweep_$name.json" 2>>"$out/sweeps.err" | tee -a "$out/sweeps.md"
    done
    timeout -s INT $((quarter + 30)) "$python" bench/bench_probe_mfu.py --only pack --budget-s "$quarter" \
        --json "$out/sweep_pack.json" 2>>"$out/sweeps.err" | tee -a "$out/sweeps.md"
    ;;
calibrate)
    # calibration/ is git-ignored and stays on the warm machine between calls; rerunning resumes.
    timeout -s INT "$limit" "$python" -m planner calibrate --gpus 1 --budget-gpu-hours 0.3 --out calibration \
        2>&1 | tee -a "$out/calibrate.log"
    status=${PIPESTATUS[0]}
    for f in law.yaml batch.yaml report.md mfu.csv loss.png cbs.png; do
        [ -f "calibration/$f" ] && cp "calibration/$f" "$out/"
    done
    if [ "$status" -eq 0 ]; then echo "calibration done"; else echo "calibration stopped ($status): rerun to resume"; fi
    ;;
esac
