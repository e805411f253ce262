#!/usr/bin/env bash
# Issue 6's GPU point, one prepared run (about 6-8 min on one H100/H200 with WikiText-2 in ../shared/data):
# hf-seq word2vec trained on the GPU (the Triton kernel: word2vec.c's per-pair loop in thousands of Hogwild warps)
# against gensim 4 on 2 CPU threads, the CPU comparison's four settings (vector 100, window 5, negative 5 / hs,
# sample 1e-3, min_count 5, 5 epochs, alpha 0.025), same corpus, same evaluation: words/s, peak memory, analogy,
# WordSim-353, SimLex-999 side by side. Then skip-gram and CBOW with negative sampling again with 256 warps instead
# of 2048: fewer concurrent workers, less Hogwild staleness, to see what the concurrency costs in quality.
#   bash benchmarks/gpu_word2vec.sh     # from the repository root; writes benchmarks/results/word2vec_vs_gensim_wikitext2_gpu*.{json,md}
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to do')"
python benchmarks/bench_word2vec.py --device cuda --threads 2 --settings skipgram_ns cbow_ns skipgram_hs cbow_hs \
  --out benchmarks/results/word2vec_vs_gensim_wikitext2_gpu
python benchmarks/bench_word2vec.py --device cuda --threads 2 --settings skipgram_ns cbow_ns --gpu-programs 256 \
  --out benchmarks/results/word2vec_vs_gensim_wikitext2_gpu_256warps
