"""Run by tests/test_word2vec_triton.py in a fresh process with TRITON_INTERPRET=1 (Triton's interpreter must be on
before the kernel is decorated, i.e. before hf_seq is imported): the Triton word2vec kernel on the CPU against the
compiled (numba) kernel, which is itself tested against a transcription of word2vec.c's loop. Prints one JSON line."""

import json
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hf_seq.models.word2vec import Word2VecForPreTraining  # noqa: E402
from hf_seq.models.word2vec.training_word2vec import (  # noqa: E402
    CompiledWord2Vec,
    Word2VecTrainingArguments,
    _DeviceEpochData,
    prepare_word2vec,
    sample_epoch,
    train_word2vec,
)
from hf_seq.models.word2vec.triton_word2vec import TritonWord2Vec  # noqa: E402

LINES = [" ".join(f"w{(i * 7 + j * 3) % 13}" for j in range(6)) for i in range(8)]
VARIANTS = [("skipgram", "negative_sampling", True), ("cbow", "negative_sampling", True),
            ("skipgram", "hierarchical_softmax", True), ("cbow", "hierarchical_softmax", True),
            ("cbow", "negative_sampling", False)]


def pair_of_models(arch, objective, cbow_mean, window=2):
    _, config, corpus = prepare_word2vec(LINES, min_count=1, vector_size=6, window=window, negative=3, sample=0,
                                         architecture=arch, objective=objective, cbow_mean=cbow_mean)
    torch.manual_seed(0)
    a = Word2VecForPreTraining(config)
    with torch.no_grad():  # a random output side, so that every update is non-trivial from the first pair
        a.output_layer.weight.normal_(0, 0.5)
        a.word2vec.embeddings.weight.normal_(0, 0.5)
    b = Word2VecForPreTraining(config)
    b.load_state_dict(a.state_dict())
    return config, corpus, a, b


def max_diff(a, b):
    return max((a.word2vec.embeddings.weight - b.word2vec.embeddings.weight).abs().max().item(),
               (a.output_layer.weight - b.output_layer.weight).abs().max().item())


def moved(a, before):
    return (a.word2vec.embeddings.weight - before).abs().max().item()


def main():
    out = {"spans": {}, "programs": {}, "training": {}}
    # 1. one program over a span = the compiled loop over it (same seed, same linear rate)
    for arch, objective, mean in VARIANTS:
        config, corpus, a, b = pair_of_models(arch, objective, mean)
        data = sample_epoch(corpus, config, np.random.default_rng(1))
        n = data.ids.shape[0]
        before = a.word2vec.embeddings.weight.detach().clone()
        la, ea = CompiledWord2Vec(a).train(data, 2, n - 3, 0.05, 0.01, 12345)
        lb, eb = TritonWord2Vec(b, programs=1).train(_DeviceEpochData.from_epoch(data, config.window, "cpu"), 2, n - 3,
                                                     0.05, 0.01, 12345)
        out["spans"][f"{arch}/{objective}/{'mean' if mean else 'sum'}"] = {
            "loss": [la, float(lb)], "examples": [ea, int(eb)], "max_diff": max_diff(a, b), "moved": moved(a, before)}
    # 2. three programs = the compiled loop over each third in turn, seeded seed + program id, on the launch's rate
    config, corpus, a, b = pair_of_models("skipgram", "negative_sampling", True)
    data = sample_epoch(corpus, config, np.random.default_rng(2))
    n = data.ids.shape[0]
    span = -(-n // 3)
    compiled, loss_a, ex_a = CompiledWord2Vec(a), 0.0, 0
    for p in range(3):
        s, e = p * span, min((p + 1) * span, n)
        la, ea = compiled.train(data, s, e, 0.05 + (0.01 - 0.05) * s / n, 0.05 + (0.01 - 0.05) * e / n, 777 + p)
        loss_a, ex_a = loss_a + la, ex_a + ea
    lb, eb = TritonWord2Vec(b, programs=3).train(_DeviceEpochData.from_epoch(data, config.window, "cpu"), 0, n, 0.05,
                                                 0.01, 777)
    out["programs"] = {"loss": [loss_a, float(lb)], "examples": [ex_a, int(eb)], "max_diff": max_diff(a, b)}
    # 3. train_word2vec(backend="triton") with one program per launch = backend="compiled", batch for batch
    for arch, objective in (("skipgram", "negative_sampling"), ("cbow", "hierarchical_softmax")):
        config, corpus, a, b = pair_of_models(arch, objective, True, window=1)
        common = dict(epochs=2, batch_words=20, alpha=0.05, progress_bar=False, seed=3)
        ha = train_word2vec(a, corpus, Word2VecTrainingArguments(backend="compiled", **common))
        hb = train_word2vec(b, corpus, Word2VecTrainingArguments(backend="triton", gpu_programs=1, **common))
        out["training"][f"{arch}/{objective}"] = {
            "loss": [[h["loss"] for h in ha], [h["loss"] for h in hb]], "pairs": [[h["pairs"] for h in ha],
                                                                                  [h["pairs"] for h in hb]],
            "backend": [ha[0]["backend"], hb[0]["backend"]], "max_diff": max_diff(a, b)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
