#!/usr/bin/env bash
# Issue 15, item 8: the time-to-accuracy and throughput benchmarks on a CUDA GPU, in one short run.
#
# Made for a lent GPU machine that has PyTorch but neither cnnlab installed nor network access:
# cnnlab runs from this checkout (PYTHONPATH=src), Fashion-MNIST is read from $CNNLAB_DATA (copy
# /usr/share/datasets/fashion-mnist/*.gz into DATA/fashion-mnist/ and carry DATA along). Results
# (JSON and a log) go to $OUT. Each stage is independent; a failed stage is logged and the next one
# runs. About 8 minutes on one H200.
#
#     OUT=/tmp/cuda CNNLAB_DATA=.gpu bash benchmarks/cuda_check.sh [SEEDS_FAST] [SEEDS_94]
#
# Then, here: python benchmarks/time_to_accuracy.py --markdown $OUT/time_to_accuracy_cuda.json
# and python benchmarks/throughput.py --markdown $OUT/throughput_cuda.json.
set -u
OUT=${OUT:?set OUT to the folder the results go to}
export CNNLAB_DATA=$(realpath "${CNNLAB_DATA:?set CNNLAB_DATA to the folder holding fashion-mnist/}")
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
FAST_SEEDS=${1:-104 105 106}
SEEDS_94=${2:-107 108 109}
mkdir -p "$OUT"
log() { echo "== $(date -u +%T) $*" | tee -a "$OUT/log.txt"; }
stage() {  # stage NAME COMMAND...: run, log its output and status, never stop the script
    log "$1: ${*:2}"
    "${@:2}" 2>&1 | tee -a "$OUT/log.txt"
    log "$1: exit ${PIPESTATUS[0]}"
}

stage gpu nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
stage versions "$PY" -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0))"
# A tiny run first: if training on CUDA is broken, it says so within seconds.
stage smoke "$PY" -m cnnlab train --device cuda --epochs 1 --limit-train 2048 --limit-test 500 \
    --val-size 500 --stall-patience 0 --out "$(mktemp -d)/smoke" --no-progress
stage tta "$PY" benchmarks/time_to_accuracy.py --seed $FAST_SEEDS \
    --json "$OUT/time_to_accuracy_cuda.json" -- --device cuda
stage throughput "$PY" benchmarks/throughput.py --device cuda --json "$OUT/throughput_cuda.json"
stage tta94 "$PY" benchmarks/time_to_accuracy.py --recipe fast94 --seed $SEEDS_94 \
    --json "$OUT/time_to_accuracy_fast94_cuda.json" -- --device cuda
log done
