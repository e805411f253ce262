"""The GPU kernel (hf_seq/models/word2vec/triton_word2vec.py): word2vec.c's per-pair loop as a Triton kernel, one warp per Hogwild
worker. There is no GPU here, so it runs through Triton's interpreter on the CPU (TRITON_INTERPRET=1, in a fresh
process: tests/triton_word2vec_check.py) and must give the compiled kernel's result: for one span, for several
programs (each its own span and generator), and through train_word2vec batch for batch."""

import json
import os
import subprocess
import sys

import pytest
import torch

from hf_seq.models.word2vec import Word2VecForPreTraining
from hf_seq.models.word2vec import triton_word2vec as word2vec_triton
from hf_seq.models.word2vec.training_word2vec import (
    Word2VecTrainingArguments,
    default_batch_words,
    prepare_word2vec,
    resolve_backend,
    train_word2vec,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-5  # float32 dot products summed in another order


@pytest.fixture(scope="module")
def check():
    assert word2vec_triton.available(), "triton is a test dependency (pip install -e '.[test]')"
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "triton_word2vec_check.py")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_one_program_is_the_compiled_loop_for_every_variant(check):
    assert len(check["spans"]) == 5
    for variant, r in check["spans"].items():
        assert r["examples"][0] == r["examples"][1] > 0, variant
        assert r["loss"][1] == pytest.approx(r["loss"][0], rel=1e-6), variant
        assert r["moved"] > 0.05 and r["max_diff"] < TOL, (variant, r)


def test_several_programs_are_spans_with_their_own_generators(check):
    r = check["programs"]
    assert r["examples"][0] == r["examples"][1] > 0
    assert r["loss"][1] == pytest.approx(r["loss"][0], rel=1e-6)
    assert r["max_diff"] < TOL


def test_train_word2vec_with_the_triton_backend_is_the_compiled_training(check):
    for variant, r in check["training"].items():
        assert r["backend"] == ["compiled", "triton"], variant
        assert r["pairs"][0] == r["pairs"][1], variant
        assert r["loss"][1] == pytest.approx(r["loss"][0], rel=1e-6), variant
        assert r["max_diff"] < TOL, (variant, r)


def test_backend_choice_and_errors_without_a_gpu(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    # auto: compiled on the CPU; triton is chosen on CUDA only
    assert resolve_backend(Word2VecTrainingArguments()) == "compiled"
    with pytest.raises(ValueError, match="backend='triton' trains on a CUDA device, got device='cpu'"):
        resolve_backend(Word2VecTrainingArguments(backend="triton"))
    with pytest.raises(ValueError, match="gpu_programs must be >= 1, got 0"):
        resolve_backend(Word2VecTrainingArguments(backend="triton", gpu_programs=0))
    _, config, corpus = prepare_word2vec(["a b c d e f"] * 4, min_count=1, vector_size=4, window=2)
    with pytest.raises(ValueError, match="trains on a CUDA device, got cpu"):
        word2vec_triton.TritonWord2Vec(Word2VecForPreTraining(config))
    with pytest.raises(ValueError, match="backend='triton' trains on a CUDA device"):
        train_word2vec(Word2VecForPreTraining(config), corpus, Word2VecTrainingArguments(backend="triton"))
    if not torch.cuda.is_available():  # asking for a GPU that is not there is refused before any model moves
        with pytest.raises(ValueError, match="device='cuda' but this torch sees no CUDA device"):
            train_word2vec(Word2VecForPreTraining(config), corpus, Word2VecTrainingArguments(device="cuda"))
    # a launch is 128 centre words per program
    assert default_batch_words(config, 1, "triton", programs=2048) == 262144
    assert default_batch_words(config, 1, "triton", programs=3) == 384


def test_only_float32_vectors(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # usable_on(cpu) is then true; the dtype check comes next
    _, config, _ = prepare_word2vec(["a b c d e f"] * 4, min_count=1, vector_size=4, window=2)
    model = Word2VecForPreTraining(config).to(torch.float64)
    with pytest.raises(TypeError, match="contiguous float32 vectors, got input vectors of torch.float64"):
        word2vec_triton.TritonWord2Vec(model)


@pytest.mark.parametrize("cbow,hs", [(False, False), (True, False), (False, True), (True, True)])
def test_the_kernel_compiles_for_a_hopper_gpu_without_one(cbow, hs):
    """Triton's whole pipeline down to the GPU binary (TTIR, TTGIR, LLVM IR, PTX, cubin for sm_90) runs without a GPU:
    what the interpreter does not check (constexpr-only globals, the types of every branch and loop) is checked here."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    assert isinstance(word2vec_triton._train_spans, triton.runtime.JITFunction)
    signature = {"syn0": "*fp32", "syn1": "*fp32", "ids": "*i64", "windows": "*i64", "left_room": "*i64",
                 "right_room": "*i64", "base": "i32", "total": "i32", "span": "i32", "alpha_start": "fp32",
                 "alpha_end": "fp32", "CBOW": "constexpr", "CBOW_MEAN": "constexpr", "HS": "constexpr", "points": "*i64",
                 "codes": "*i64", "lengths": "*i64", "max_depth": "i32", "alias_prob": "*fp64", "alias": "*i64",
                 "vocab": "i32", "NEGATIVE": "constexpr", "seed": "i64", "sig_table": "*fp32", "logsig_table": "*fp32",
                 "loss_out": "*fp32", "examples_out": "*i32", "shared_by": "i32", "DIM": "constexpr",
                 "BLOCK": "constexpr", "NEG_BLOCK": "constexpr"}
    source = ASTSource(fn=word2vec_triton._train_spans, signature=signature,
                       constexprs={"CBOW": cbow, "CBOW_MEAN": True, "HS": hs, "NEGATIVE": 0 if hs else 5, "DIM": 100,
                                   "BLOCK": 128, "NEG_BLOCK": 1 if hs else 8})
    kernel = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 1})
    assert {"ttir", "ptx", "cubin"} <= set(kernel.asm) and len(kernel.asm["cubin"]) > 1000
    assert ".target sm_90" in kernel.asm["ptx"]
