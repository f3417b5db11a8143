#!/usr/bin/env bash
# GPU figures for haneul.lm, in one run on one GPU:
#   1. ko-small training throughput and MFU (bf16 autocast), eager and torch.compile'd, each against a
#      Hugging Face LlamaForCausalLM of the same shape (benchmarks/bench_lm_train.py);
#   2. a real `haneul lm pretrain --compile` run of the ko-small architecture on prepared token shards
#      (any folder written by `haneul lm prepare`), whose summary carries tokens/s and FLOPs per token.
#
#   bash benchmarks/gpu_lm.sh OUT_DIR [TOKEN_DIR]
#
# Writes OUT_DIR/lm_train_gpu_eager.json, lm_train_gpu_compiled.json and, with TOKEN_DIR,
# pretrain_gpu.json and pretrain_gpu.log.
set -u
out=${1:?usage: bash benchmarks/gpu_lm.sh OUT_DIR [TOKEN_DIR]}
data=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
bench() {  # $1: label, rest: extra flags
    local label=$1; shift
    timeout 300 "$py" "$here/benchmarks/bench_lm_train.py" --preset ko-small --device cuda \
        --batch-size 32 --seq-len 1024 --steps 10 --rounds 2 --out "$out/lm_train_gpu_$label.json" "$@" \
        | grep -E '"(tokens_per_s|mfu|speedup_vs_transformers|peak_memory_gib)"' -A2
}
bench eager
bench compiled --compile
if [ -n "$data" ]; then
    run=$(mktemp -d)
    timeout 300 "$py" -m haneul lm pretrain --data "$data" --out "$run" --preset ko-small --steps 300 \
        --batch-size 32 --seq-len 1024 --warmup 30 --lr 1e-3 --eval-every 150 --eval-batches 10 \
        --save-every 300 --compile --json >"$out/pretrain_gpu.json" 2>"$out/pretrain_gpu.log"
    echo "pretrain exit $?"
    grep -E '"(step|val_bpc|seconds|tokens_per_s|flops_per_token|peak_flops)"' "$out/pretrain_gpu.json"
    tail -3 "$out/pretrain_gpu.log"
fi
