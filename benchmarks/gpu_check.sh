#!/usr/bin/env bash
# One prepared run for a machine with an NVIDIA GPU (issue 9), < 10 min on one H100/H200:
#   1. the test suite with CUDA as torch's default device (informative: counts + failures, junit XML),
#   2. GPU correctness per family (cached == uncached, save/load, training, fp16/bf16 vs fp32),
#   3. speed: cuDNN RNN vs a plain Python loop, SDPA flash vs math / the Transformer's sdpa vs eager path,
#      word2vec on the GPU vs gensim on the CPU (words/s and peak memory).
# Writes everything to benchmarks/results/gpu/ (summary.md first).
#   bash benchmarks/gpu_check.sh            # from the repository root
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/results/gpu
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD:$PWD/benchmarks:${PYTHONPATH:-}"
start=$(date +%s)

{ date -u; nvidia-smi || echo "nvidia-smi: not available"; python - <<'PY'
import torch, transformers
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("transformers", transformers.__version__)
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0), "cudnn", torch.backends.cudnn.version())
PY
} > "$OUT/env.txt" 2>&1
if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device: nothing to do (see $OUT/env.txt)"; exit 2
fi

# 1. the suite on CUDA (5 min cap; the slow marker stays excluded)
timeout 300 python -m pytest -q -p no:cacheprovider -p cuda_pytest_plugin -x --timeout 120 \
  --junitxml="$OUT/pytest_cuda.xml" > "$OUT/pytest_cuda.log" 2>&1
echo "pytest on CUDA: exit $?" >> "$OUT/env.txt"
# without -x as well, to count every failure (capped at 2 min)
timeout 120 python -m pytest -q -p no:cacheprovider -p cuda_pytest_plugin --timeout 60 \
  > "$OUT/pytest_cuda_all.log" 2>&1 || true

# 2 + 3. correctness and speed (4 min cap)
timeout 240 python benchmarks/gpu_bench.py --out "$OUT" > "$OUT/gpu_bench.log" 2>&1
echo "gpu_bench: exit $?" >> "$OUT/env.txt"

python - "$OUT" <<'PY' > "$OUT/summary.md"
import json, os, re, sys
out = sys.argv[1]
print("# GPU check (benchmarks/gpu_check.sh)\n")
print("```\n" + open(os.path.join(out, "env.txt")).read().strip() + "\n```\n")
for log in ("pytest_cuda.log", "pytest_cuda_all.log"):
    path = os.path.join(out, log)
    if os.path.isfile(path):
        lines = [l for l in open(path).read().splitlines() if re.search(r"passed|failed|error", l)]
        print(f"- {log}: {lines[-1] if lines else 'no summary line'}")
for name in ("correctness", "rnn", "attention", "word2vec"):
    path = os.path.join(out, f"{name}.json")
    if not os.path.isfile(path):
        print(f"\n## {name}\nnot run"); continue
    data = json.load(open(path))
    data.pop("env", None); data.pop("trace", None)
    print(f"\n## {name}\n\n```json\n{json.dumps(data, indent=1, default=str)[:4000]}\n```")
PY
echo "done in $(( $(date +%s) - start )) s -> $OUT/summary.md"
