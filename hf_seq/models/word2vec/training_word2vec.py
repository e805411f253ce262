"""The fast word2vec trainer, and the family's training API in one import (corpus and conversion re-exported).

Main way to train (`hf-seq train word2vec_timemachine` runs it from an experiment file):

    tokenizer, config, corpus = prepare_word2vec(lines, min_count=5)      # one counting pass
    model = Word2VecForPreTraining(config)
    train_word2vec(model, corpus, Word2VecTrainingArguments(epochs=5))   # sparse SGD, linear LR decay

Per epoch, frequent words are sub-sampled with word2vec.c's keep-probability and every centre word draws its window
1..W, vectorised with numpy. Then one of three backends trains the epoch (`Word2VecTrainingArguments.backend`):

- `compiled` (the default on CPU): word2vec.c's loop, pair by pair, compiled with numba (`word2vec_kernels`); the
  kernels release the GIL, so `workers` Python threads run them at once on the shared vectors (Hogwild, as
  word2vec.c's and gensim's threads). Exactly gensim's updates (tested against a transcription of gensim's
  `word2vec_inner` loop), except that by default the pairs of a skip-gram window share one draw of noise words
  (`negatives_shared_by`, Ji et al. 2016).
- `triton` (the default on a CUDA GPU, `word2vec_triton`): the same per-pair loop as a Triton kernel; each launch
  hands `gpu_programs` Hogwild workers (one warp each, the vector across its lanes) a contiguous span of centre words.
  Equal to the compiled kernel for one worker (tested with Triton's interpreter on CPU).
- `torch` (any device; the fallback where neither runs): all (centre, context) pairs of a chunk of the corpus are
  built at once on the training device with offset arithmetic (`device_window_pairs`) and trained as one batch with word2vec.c's closed-form sparse SGD updates (index_add_ into the
  vector tables); on CPU several workers are forked processes updating the vectors in shared memory. Negative
  sampling draws `negative` noise words per group of `negatives_shared_by` consecutive pairs: each pair still sees
  exactly `negative` words drawn from counts**0.75 (same objective, same expected gradient), but the noise vectors
  are gathered once per group and scored with one small matrix product. `negatives_shared_by=1` gives every pair its
  own noise words, as word2vec.c does.

`Word2VecForPreTraining.forward` computes the same loss with autograd; `word2vec_pair_dataset` feeds it to `Trainer`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers.utils import logging

from . import (
    Word2VecConfig,
    Word2VecForPreTraining,
    keep_probabilities,
)
from . import kernels_word2vec as word2vec_kernels
from . import triton_word2vec as word2vec_triton
from .conversion_word2vec import model_from_keyed_vectors, prepare_remote_code
from .corpus_word2vec import (
    MAX_SENTENCE_LENGTH,
    Word2VecCorpus,
    check_trainable,
    encode_corpus,
    prepare_word2vec,
    word_level_tokenizer_from_vocab,
)

logger = logging.get_logger(__name__)


# ---------------------------------------------------------------------------------------------------------------------
# 2. per-epoch sampling: sub-sampling, dynamic windows, pairs by offset arithmetic
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class _EpochData:
    ids: np.ndarray  # kept token ids
    sentence_ids: np.ndarray
    windows: np.ndarray  # effective window of each kept token, uniform in 1..W
    left_room: np.ndarray  # kept tokens before it in its sentence
    right_room: np.ndarray  # kept tokens after it in its sentence


def sample_epoch(corpus: Word2VecCorpus, config: Word2VecConfig, rng: np.random.Generator) -> _EpochData:
    """Drop frequent words with word2vec.c's keep-probability and draw each centre word's window."""
    keep_prob = keep_probabilities(config.word_counts, config.sample)
    keep = rng.random(len(corpus)) < keep_prob[corpus.ids]
    ids, sent = corpus.ids[keep], corpus.sentence_ids[keep]
    # word2vec.c: b = random % window; the window used is window - b, i.e. uniform in 1..window
    windows = config.window - rng.integers(0, config.window, size=ids.shape[0])
    n = ids.shape[0]
    change = np.flatnonzero(np.diff(sent)) + 1  # sentence ids are non-decreasing along the corpus
    starts, ends = np.concatenate([[0], change]), np.concatenate([change, [n]])
    position = np.arange(n)
    left_room = position - np.repeat(starts, ends - starts)
    right_room = np.repeat(ends - 1, ends - starts) - position
    return _EpochData(ids, sent, windows, left_room, right_room)


@dataclass
class _DeviceEpochData:
    """An epoch's `_EpochData` as torch tensors on the training device. The torch backend cuts its pairs there
    (`device_window_pairs`), so an accelerator is not fed from the host's numpy one batch at a time: on this 2-core
    CPU the numpy pair builder alone tops out at about 8-12M corpus words/s, under the 14M words/s that 10x gensim's
    CBOW would need."""

    ids: torch.Tensor
    windows: torch.Tensor
    left_room: torch.Tensor
    right_room: torch.Tensor
    offsets: torch.Tensor  # -W..-1, 1..W

    @classmethod
    def from_epoch(cls, data: _EpochData, window: int, device: torch.device | str) -> _DeviceEpochData:
        def put(array):
            return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(device)

        offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
        return cls(put(data.ids), put(data.windows), put(data.left_room), put(data.right_room), put(offsets))


def device_window_pairs(data: _DeviceEpochData, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All (centre, context) pairs with centres at kept positions [start, stop), built on `data`'s device.

    Returns `(rows, contexts, centres)`: `centres[i]` is the word at position start+i, and pair p is
    (`centres[rows[p]]`, `contexts[p]`), ordered by centre then offset -W..W as in word2vec.c.
    """
    offsets = data.offsets
    reach = data.windows[start:stop, None]
    left = torch.minimum(reach, data.left_room[start:stop, None])
    right = torch.minimum(reach, data.right_room[start:stop, None])
    valid = torch.where(offsets < 0, -offsets <= left, offsets <= right)  # [C, 2W]
    rows, cols = valid.nonzero(as_tuple=True)
    return rows, data.ids[start + rows + offsets[cols]], data.ids[start:stop]


def window_pairs(data: _EpochData, start: int, stop: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`device_window_pairs` on the CPU as numpy arrays, from an `_EpochData` and the window it was drawn with."""
    pairs = device_window_pairs(_DeviceEpochData.from_epoch(data, window, "cpu"), start, stop)
    return tuple(t.numpy() for t in pairs)


# ---------------------------------------------------------------------------------------------------------------------
# 3. closed-form sparse SGD (word2vec.c's updates, batched)
# ---------------------------------------------------------------------------------------------------------------------
MAX_EXP = 6.0  # word2vec.c: hierarchical softmax leaves out a node whose |h . v| is at least this (the sigmoid table's
# range); negative sampling saturates the sigmoid there instead, which the exact sigmoid does already


def _scatter_weighted_rows(table, index, source, source_rows, weights=None, *, cap=None, grouped=False) -> None:
    """table[index[t]] += weights[t] * source[source_rows[t]] for every t, summed over repeated indices.

    The Huffman nodes near the root are on nearly every path, so `index` repeats heavily; `index_add_` then costs a
    row operation per entry. Sorting by index, summing each index's rows with one fused `embedding_bag` (gather +
    weighted sum, no [T, d] intermediate) and adding once per distinct index is several times faster on CPU.
    `grouped=True`: `index` already comes in runs (pairs ordered by centre word), so the sort is skipped.
    `cap`: a row hit n > cap times gets its summed update scaled by cap / n (`Word2VecSGD.max_row_updates`)."""
    if grouped and cap is not None:
        raise ValueError("cap needs every occurrence of a row in one run: use grouped=False")
    if not grouped:
        order = torch.argsort(index)
        index, source_rows = index[order], source_rows[order]
        weights = None if weights is None else weights[order]
    unique, counts = torch.unique_consecutive(index, return_counts=True)
    offsets = torch.cumsum(counts, 0) - counts
    summed = F.embedding_bag(source_rows, source, offsets, mode="sum", per_sample_weights=weights)
    if cap is not None:
        summed.mul_((cap / counts.clamp(min=cap).to(summed.dtype))[:, None])
    table.index_add_(0, unique, summed)


class Word2VecSGD:
    """Applies word2vec.c's SGD updates for a batch of pairs in place on a `Word2VecForPreTraining`.

    For a pair with hidden vector h and target w, word2vec.c computes g = lr * (label - sigmoid(h·v)) for each
    output vector v (the target and the noise words, or the inner nodes on w's Huffman path), adds g*h to v and
    g*v to the error of h, then adds that error to every input vector that formed h (for CBOW-mean too: the error is
    not divided by the context size). With hierarchical softmax a node whose |h·v| >= MAX_EXP (6) is skipped, as
    word2vec.c and gensim do (the reported loss still counts it). Here all pairs of a batch are done at once, reading the vectors before the
    batch and summing their updates (Hogwild-style).

    Summing is what word2vec.c does one pair at a time, except that a row hit n times in one batch moves n steps
    without seeing its own moves: for the most frequent words and the Huffman nodes near the root (hit by every
    pair) n*lr grows past the point where the summed step overshoots and the vectors diverge. `max_row_updates`
    caps the summed step of any row at that many average updates (the row's updates are scaled by
    max_row_updates / n when n is larger); rows hit fewer times get exactly word2vec.c's summed update.
    `max_row_updates=None` sums everything (exact for small batches, see tests). Returns the summed loss of the batch.
    """

    def __init__(
        self,
        model: Word2VecForPreTraining,
        negatives_shared_by: int = 32,
        seed: int = 0,
        max_row_updates: float | None = 64.0,
    ):
        config = model.config
        self.config = config
        self.input_vectors = model.word2vec.embeddings.weight.data
        layer = model.output_layer
        self.output_vectors = layer.weight.data
        self.device = self.input_vectors.device
        self.negatives_shared_by = max(1, int(negatives_shared_by))
        self.max_row_updates = max_row_updates
        # noise words are drawn on the training device (no host round trip per batch), reproducibly per seed
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed) % 2**63)
        self._workspace: dict[str, torch.Tensor] = {}
        if config.objective == "negative_sampling":
            cdf_dtype = torch.float32 if self.device.type == "mps" else torch.float64  # mps has no float64
            cdf = torch.cumsum(layer.noise_distribution.detach().to(self.device, torch.float64), 0)
            self.noise_cdf = (cdf / cdf[-1]).to(cdf_dtype)
            self._noise = torch.zeros(0, dtype=torch.long, device=self.device)
        else:
            self.points, self.codes, self.lengths = layer.huffman_points, layer.huffman_codes, layer.huffman_lengths

    def _buffer(self, name: str, *shape: int) -> torch.Tensor:
        """A reusable scratch tensor: fresh large allocations cost page faults that dominate these memory-bound ops."""
        numel = math.prod(shape)
        buf = self._workspace.get(name)
        if buf is None or buf.numel() < numel:
            buf = torch.empty(max(numel, 1) * 5 // 4, dtype=self.input_vectors.dtype, device=self.device)
            self._workspace[name] = buf
        return buf[:numel].view(*shape)

    def _row_scale(self, index: torch.Tensor, num_rows: int, weights: torch.Tensor | None = None):
        """Per-occurrence factor capping each row's summed update at `max_row_updates` updates (None = no cap)."""
        if self.max_row_updates is None:
            return None
        hits = torch.bincount(index, weights=weights, minlength=num_rows)
        scale = (self.max_row_updates / hits.clamp(min=self.max_row_updates)).to(self.input_vectors.dtype)
        return scale.index_select(0, index)

    def draw_noise(self, num: int) -> torch.Tensor:
        """`num` words from the noise distribution, drawn ahead in blocks (one vectorised inverse-CDF lookup)."""
        if self._noise.shape[0] < num:
            block = max(num, 1 << 16)
            uniform = torch.rand(block, generator=self.generator, device=self.device, dtype=self.noise_cdf.dtype)
            fresh = torch.searchsorted(self.noise_cdf, uniform, right=True).clamp_(max=self.noise_cdf.shape[0] - 1)
            self._noise = torch.cat([self._noise, fresh])
        out, self._noise = self._noise[:num], self._noise[num:]
        return out

    # 3a. output side: returns (error of h [N, d] before the input-row cap, summed loss)
    def _negative_sampling(self, hidden, targets, lr):
        num, dim = hidden.shape
        k, group = self.config.negative, min(self.negatives_shared_by, num)
        full = num // group  # groups of `group` pairs; the remainder forms one smaller group
        sizes = [(0, full * group, full, group)] + ([(full * group, num, 1, num - full * group)] if num % group else [])
        noise = self.draw_noise(sum(n_groups for _, _, n_groups, _ in sizes) * k)
        w_out = self.output_vectors
        vocab_size = w_out.shape[0]
        v_target = torch.index_select(w_out, 0, targets, out=self._buffer("v_target", num, dim))  # [N, d]
        pos_score = torch.mul(hidden, v_target, out=self._buffer("product", num, dim)).sum(1)  # [N]
        sig_pos = torch.sigmoid(pos_score)
        loss = -torch.log(sig_pos.clamp(min=1e-30)).sum()
        g_pos = sig_pos.sub_(1.0).mul_(-lr)  # lr * (1 - sigmoid)
        # 1. noise scores per group; a noise word equal to the pair's target is skipped (word2vec.c)
        v_noise_all = torch.index_select(w_out, 0, noise, out=self._buffer("v_noise", noise.shape[0], dim))
        sigs, usables, offset = [], [], 0
        for start, stop, n_groups, size in sizes:
            v_noise = v_noise_all[offset : offset + n_groups * k].view(n_groups, k, dim)
            sig = torch.sigmoid(torch.bmm(hidden[start:stop].view(n_groups, size, dim), v_noise.transpose(1, 2)))
            usable = noise[offset : offset + n_groups * k].view(n_groups, 1, k) != targets[start:stop].view(
                n_groups, size, 1
            )
            loss = loss - (torch.log((1.0 - sig).clamp_(min=1e-30)) * usable).sum()
            sigs.append(sig.mul_(usable).mul_(-lr))  # lr * (0 - sigmoid), [G, size, k]
            usables.append(usable)
            offset += n_groups * k
        # 2. caps for rows hit many times in this batch (output rows: targets and noise words together)
        out_index = torch.cat([targets, noise])
        hits_weight = torch.cat([torch.ones(num, device=hidden.device)] + [u.sum(1).flatten().float() for u in usables])
        out_scale = self._row_scale(out_index, vocab_size, hits_weight)
        # 3. updates: output rows get g*h, the error of h collects g*v
        g_target = g_pos if out_scale is None else g_pos * out_scale[:num]
        error = v_target.mul_(g_pos[:, None])  # reuse the buffer
        grad_noise = self._buffer("grad_noise", noise.shape[0], dim)
        offset = 0
        for (start, stop, n_groups, size), sig in zip(sizes, sigs):
            v_noise = v_noise_all[offset : offset + n_groups * k].view(n_groups, k, dim)
            h_g = hidden[start:stop].view(n_groups, size, dim)
            error[start:stop].view(n_groups, size, dim).baddbmm_(sig, v_noise)
            sig_noise = sig
            if out_scale is not None:
                sig_noise = sig * out_scale[num + offset : num + offset + n_groups * k].view(n_groups, 1, k)
            torch.bmm(sig_noise.transpose(1, 2), h_g, out=grad_noise[offset : offset + n_groups * k].view(n_groups, k, dim))
            offset += n_groups * k
        # targets repeat (a skip-gram centre word is the target of all its context pairs): summed per distinct row
        _scatter_weighted_rows(w_out, targets, hidden, torch.arange(num, device=hidden.device), g_target, grouped=True)
        w_out.index_add_(0, noise, grad_noise)
        return error, loss

    def _hierarchical_softmax(self, hidden, targets, lr):
        num, dim = hidden.shape
        depth = self.points.shape[1]
        mask = torch.arange(depth, device=hidden.device) < self.lengths[targets][:, None]  # [N, D]
        flat = mask.view(-1).nonzero().squeeze(1)
        rows = flat // depth
        nodes = self.points[targets].view(-1)[flat]
        codes = self.codes[targets].view(-1)[flat].to(hidden.dtype)
        total = nodes.shape[0]
        w_node = self.output_vectors
        v_node = torch.index_select(w_node, 0, nodes, out=self._buffer("v_node", total, dim))  # [T, d]
        h_rows = torch.index_select(hidden, 0, rows, out=self._buffer("h_rows", total, dim))  # [T, d]
        score = torch.mul(v_node, h_rows, out=self._buffer("product", total, dim)).sum(1)
        sig = torch.sigmoid(score)
        # -log sigmoid(+-score): the branch probability is sig for code 0 and 1 - sig for code 1
        loss = -torch.log(torch.where(codes > 0, 1.0 - sig, sig).clamp_(min=1e-30)).sum()
        g = (1.0 - codes - sig).mul_(lr)  # word2vec.c: (1 - code - f) * alpha
        g.mul_(score.abs() < MAX_EXP)  # word2vec.c (and gensim) skip a node whose |score| >= MAX_EXP
        # error of h = sum over its path of g * v_node: one fused gather-and-weighted-sum per pair (the nodes of a
        # pair are contiguous), read before the node vectors move
        lengths = self.lengths[targets]
        offsets = torch.cumsum(lengths, 0) - lengths
        error = F.embedding_bag(nodes, w_node, offsets, mode="sum", per_sample_weights=g)
        node_scale = self._row_scale(nodes, w_node.shape[0])
        if node_scale is not None:
            g = g * node_scale
        _scatter_weighted_rows(w_node, nodes, hidden, rows, g)  # w_node[nodes[t]] += g[t] * hidden[rows[t]]
        return error, loss

    def _output_step(self, hidden, targets, lr):
        if self.config.objective == "negative_sampling":
            return self._negative_sampling(hidden, targets, lr)
        return self._hierarchical_softmax(hidden, targets, lr)

    # 3b. architectures
    @torch.no_grad()
    def skipgram(self, inputs: torch.Tensor, targets: torch.Tensor, lr: float) -> float:
        """Pairs (input word, predicted word); word2vec.c feeds the context word and predicts the centre."""
        num, dim = inputs.shape[0], self.input_vectors.shape[1]
        hidden = torch.index_select(self.input_vectors, 0, inputs, out=self._buffer("hidden", num, dim))
        error, loss = self._output_step(hidden, targets, lr)
        _scatter_weighted_rows(self.input_vectors, inputs, error, torch.arange(num, device=error.device),
                               cap=self.max_row_updates)
        return float(loss)

    @torch.no_grad()
    def skipgram_by_centre(self, rows: torch.Tensor, contexts: torch.Tensor, centres: torch.Tensor, lr: float) -> float:
        """`skipgram(contexts, centres[rows], lr)` for pairs grouped by centre word (`window_pairs`' layout: pair p
        is (`contexts[p]` -> `centres[rows[p]]`), rows sorted). Same updates; with hierarchical softmax the pairs of
        one centre share its Huffman path, so the path's node vectors are read once per centre and the scores and
        updates of all its pairs are small batched matmuls ([centres, pairs, depth]) instead of one gathered node
        vector per (pair, node): about 4x less memory traffic. Negative sampling goes through `skipgram`."""
        if self.config.objective != "hierarchical_softmax":
            return self.skipgram(contexts, centres.index_select(0, rows), lr)
        counts = torch.bincount(rows, minlength=centres.shape[0])
        if not bool((counts > 0).all()):  # centres left without a pair in their window
            keep = (counts > 0).nonzero().squeeze(1)
            centres, counts = centres.index_select(0, keep), counts.index_select(0, keep)
            remap = torch.full((int(rows.max()) + 1,), -1, dtype=rows.dtype, device=rows.device)
            remap[keep] = torch.arange(keep.shape[0], device=keep.device)
            rows = remap[rows]
        num_centres, num_pairs = centres.shape[0], rows.shape[0]
        dim, dtype, device = self.input_vectors.shape[1], self.input_vectors.dtype, self.input_vectors.device
        width = int(counts.max())
        slot = torch.arange(num_pairs, device=device) - (torch.cumsum(counts, 0) - counts).index_select(0, rows)
        flat_pair = rows * width + slot  # where pair p sits in the padded [centres, width] layout
        pair_mask = torch.zeros(num_centres * width, dtype=dtype, device=device)
        pair_mask[flat_pair] = 1.0
        padded_inputs = torch.zeros(num_centres * width, dtype=contexts.dtype, device=device)
        padded_inputs[flat_pair] = contexts
        hidden = torch.index_select(self.input_vectors, 0, padded_inputs,
                                    out=self._buffer("hidden", num_centres * width, dim)).view(num_centres, width, dim)
        lengths = self.lengths.index_select(0, centres)
        depth = int(lengths.max())
        nodes = self.points.index_select(0, centres)[:, :depth]  # [C, D]
        codes = self.codes.index_select(0, centres)[:, :depth].to(dtype).unsqueeze(1)  # [C, 1, D]
        depth_mask = (torch.arange(depth, device=device) < lengths[:, None]).to(dtype)  # [C, D]
        w_node = self.output_vectors
        v_node = torch.index_select(w_node, 0, nodes.reshape(-1), out=self._buffer("v_node", num_centres * depth, dim))
        v_node = v_node.view(num_centres, depth, dim)
        score = torch.bmm(hidden, v_node.transpose(1, 2))  # [C, W, D]
        sig = torch.sigmoid(score)
        mask = pair_mask.view(num_centres, width, 1) * depth_mask.view(num_centres, 1, depth)
        # -log sigmoid(+-score): the branch probability is sig for code 0 and 1 - sig for code 1
        loss = -(torch.log(torch.where(codes > 0, 1.0 - sig, sig).clamp_(min=1e-30)) * mask).sum()
        g = (1.0 - codes - sig).mul_(mask).mul_(lr)  # word2vec.c: (1 - code - f) * alpha, 0 on padding
        g.mul_(score.abs() < MAX_EXP)  # word2vec.c (and gensim) skip a node whose |score| >= MAX_EXP
        error = torch.bmm(g, v_node)  # [C, W, d]: error of each pair's h, from the node vectors before the batch
        node_grad = torch.bmm(g.transpose(1, 2), hidden)  # [C, D, d]: summed over the centre's pairs
        valid = depth_mask.view(-1).nonzero().squeeze(1)
        node_index = nodes.reshape(-1).index_select(0, valid)
        if self.max_row_updates is None:
            node_weights = torch.ones(valid.shape[0], dtype=dtype, device=device)
        else:  # a node's hits = the pairs whose path crosses it, as `_row_scale` counts them in `skipgram`
            pairs_per_entry = counts[:, None].expand(num_centres, depth).reshape(-1).index_select(0, valid)
            node_weights = self._row_scale(node_index, w_node.shape[0], pairs_per_entry.to(dtype))
        _scatter_weighted_rows(w_node, node_index, node_grad.view(-1, dim), valid, node_weights)
        _scatter_weighted_rows(self.input_vectors, contexts, error.view(-1, dim), flat_pair, cap=self.max_row_updates)
        return float(loss)

    @torch.no_grad()
    def cbow(self, rows: torch.Tensor, contexts: torch.Tensor, centres: torch.Tensor, lr: float) -> float:
        """Centres `[N]` predicted from their contexts: `contexts[p]` belongs to centre `rows[p]` (rows sorted)."""
        counts = torch.bincount(rows, minlength=centres.shape[0])
        offsets = torch.cumsum(counts, 0) - counts
        mode = "mean" if self.config.cbow_mean else "sum"
        hidden = F.embedding_bag(contexts, self.input_vectors, offsets, mode=mode)  # [N, d]
        has_context = counts > 0
        if not bool(has_context.all()):  # word2vec.c skips a centre word left without context
            keep = has_context.nonzero().squeeze(1)
            hidden, centres = hidden.index_select(0, keep), centres.index_select(0, keep)
            remap = torch.full_like(counts, -1)
            remap[keep] = torch.arange(keep.shape[0], device=keep.device)
            rows = remap[rows]
        error, loss = self._output_step(hidden, centres, lr)
        # every context word of a centre gets the centre's error (not divided by the context size, as word2vec.c)
        _scatter_weighted_rows(self.input_vectors, contexts, error, rows, cap=self.max_row_updates)
        return float(loss)


# ---------------------------------------------------------------------------------------------------------------------
# 4. the training loop
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class Word2VecTrainingArguments:
    """Hyper-parameters of `train_word2vec` (the model's own settings live in `Word2VecConfig`)."""

    epochs: int = field(default=5, metadata={"help": "passes over the corpus"})
    alpha: float | None = field(
        default=None, metadata={"help": "start learning rate; None = word2vec.c's 0.025 (skip-gram) / 0.05 (CBOW)"}
    )
    min_alpha: float = field(default=1e-4, metadata={"help": "learning rate at the very end (linear decay)"})
    backend: str = field(
        default="auto",
        metadata={"help": "'compiled' (word2vec.c's per-pair SGD compiled with numba, CPU only), 'triton' (the same "
                          "per-pair SGD as a Triton kernel, thousands of Hogwild warps on a CUDA GPU), 'torch' "
                          "(batched sparse updates, any device) or 'auto' (compiled on CPU when numba is installed, "
                          "triton on CUDA when triton is installed, torch otherwise)"},
    )
    gpu_programs: int = field(
        default=2048,
        metadata={"help": "triton backend: Hogwild workers (one warp each) sharing a launch, each running word2vec.c's "
                          "loop over its own contiguous span of the launch's centre words"},
    )
    batch_words: int | None = field(
        default=None,
        metadata={"help": "centre words per batch (all their pairs at once); None = 10000 for the compiled backend "
                          "(gensim's batch_words), 128 per program for triton (one launch); for torch 1024 for "
                          "skip-gram (~6k pairs), 4096 for CBOW with one worker (one example per centre word), 1024 "
                          "with several"},
    )
    negatives_shared_by: int | None = field(
        default=None,
        metadata={"help": "negative sampling: how many examples share one draw of noise words. torch backend: "
                          "consecutive pairs (1 = word2vec.c); compiled and triton backends: consecutive centre words, "
                          "all of their pairs (skip-gram) or examples (CBOW), 0 = a fresh draw for every pair or "
                          "CBOW example (word2vec.c, gensim). None = `default_negatives_shared_by`"},
    )
    max_row_updates: float | None = field(
        default=64.0,
        metadata={"help": "torch backend: cap on the summed update of a row hit many times in one batch (see "
                          "Word2VecSGD); None = off. The compiled backend updates pair by pair and needs no cap"},
    )
    workers: int = field(
        default=1, metadata={"help": "Hogwild workers; on CPU torch runs 1 intra-op thread in each while training"}
    )
    parallel: str = field(
        default="auto",
        metadata={"help": "how several CPU workers run: 'thread' (one process; the compiled kernels release the GIL), "
                          "'process' (forked processes updating the vectors in shared memory, no GIL between them) "
                          "or 'auto' (threads for the compiled backend, processes for torch; other devices always use "
                          "threads)"},
    )
    seed: int = field(default=1, metadata={"help": "seeds sub-sampling, windows and noise words of every epoch"})
    progress_bar: bool = field(default=True, metadata={"help": "tqdm bar with words/s and the running loss"})
    device: str = field(default="cpu", metadata={"help": "torch device the model is trained on"})


def resolve_backend(args: Word2VecTrainingArguments) -> str:
    """'compiled', 'triton' or 'torch' for `args` (see `Word2VecTrainingArguments.backend`), with a clear error for a
    request that cannot run."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={args.device!r} but this torch sees no CUDA device (torch {torch.__version__}): "
                         "train on device='cpu', or install a CUDA build of torch on a machine with a GPU")
    if args.backend not in ("auto", "compiled", "triton", "torch"):
        raise ValueError(f"backend must be 'auto', 'compiled', 'triton' or 'torch', got {args.backend!r}")
    if args.gpu_programs < 1:
        raise ValueError(f"gpu_programs must be >= 1, got {args.gpu_programs}")
    if args.parallel not in ("auto", "thread", "process"):
        raise ValueError(f"parallel must be 'auto', 'thread' or 'process', got {args.parallel!r}")
    if args.backend == "compiled":
        if device.type != "cpu":
            raise ValueError(f"backend='compiled' trains on the CPU only, got device={args.device!r}: use "
                             "backend='torch' (or 'auto') on an accelerator")
        if not word2vec_kernels.available():
            raise ImportError("backend='compiled' needs numba (pip install numba), or use backend='torch'")
        return "compiled"
    if args.backend == "triton":
        if not word2vec_triton.available():
            raise ImportError("backend='triton' needs triton (it comes with PyTorch's CUDA wheels; pip install "
                              "triton), or use backend='torch'")
        if not word2vec_triton.usable_on(device):
            raise ValueError(f"backend='triton' trains on a CUDA device, got device={args.device!r}: use "
                             "backend='compiled' (or 'auto') on the CPU")
        return "triton"
    if args.backend == "auto" and device.type == "cpu" and word2vec_kernels.available():
        return "compiled"
    if args.backend == "auto" and device.type == "cuda" and word2vec_triton.available():
        return "triton"
    return "torch"


def default_alpha(config: Word2VecConfig) -> float:
    return 0.025 if config.architecture == "skipgram" else 0.05


def default_batch_words(config: Word2VecConfig, workers: int = 1, backend: str = "torch", programs: int = 2048) -> int:
    """Centre words per batch when `batch_words` is None. The compiled kernels take 10,000 (gensim's batch_words: a
    batch is only a unit of work handed to a thread there). A skip-gram centre makes ~2 x mean window (about 6) pairs,
    a CBOW centre one example, so one CBOW worker takes 4x the centres for a similar amount of work per batch. On
    WikiText-2 (5 epochs, one thread) CBOW at 4096 ran 1.55x faster than at 1024 with analogy accuracy -0.07 points
    and WordSim-353 / SimLex Spearman +2.4 / +1.7 points. With 2 Hogwild workers CBOW at 4096 diverged (their
    concurrent summed updates of the frequent rows overshoot) while 1024 converged, so several workers keep 1024."""
    if backend == "compiled":
        return 10000
    if backend == "triton":  # one launch: `programs` Hogwild warps, 128 centre words each
        return 128 * max(1, int(programs))
    return 4096 if config.architecture == "cbow" and workers <= 1 else 1024


def default_negatives_shared_by(config: Word2VecConfig, backend: str) -> int:
    """`negatives_shared_by` when None. torch: 32 consecutive pairs share a draw (one small matrix product per group).
    compiled / triton, skip-gram: 1, the pairs of one window share the draw of their centre word (Ji et al. 2016,
    "Parallelizing Word2Vec in Shared and Distributed Memory"): on WikiText-2 1.5-1.6x the words/s of a draw per pair
    at equal quality (benchmarks/results/word2vec_vs_gensim_wikitext2_2threads_issue24.md). CBOW: 0, a fresh draw
    per centre word, gensim's updates exactly."""
    if backend == "torch":
        return 32
    return 1 if config.architecture == "skipgram" else 0


def resolve_parallel(args: Word2VecTrainingArguments, backend: str) -> str:
    """'thread' or 'process' for several CPU workers: `args.parallel`, with 'auto' = threads for the compiled kernels
    (they release the GIL), forked processes for the torch backend."""
    if args.parallel != "auto":
        return args.parallel
    return "thread" if backend == "compiled" else "process"


class CompiledWord2Vec:
    """A `Word2VecForPreTraining` as the compiled kernels (`word2vec_kernels.train_span`) take it: the Huffman paths
    or the noise distribution's alias table and word2vec.c's sigmoid table, built once per training, and numpy views
    of the input and output vectors (updated in place, shared with the model and every worker), taken at each use so
    that they follow the tables into shared memory when the workers are processes. Holds no per-worker state: one
    object serves every thread."""

    def __init__(self, model: Word2VecForPreTraining, negatives_shared_by: int = 0):
        self.model = model
        config = model.config
        self.config = config
        if negatives_shared_by < 0:
            raise ValueError(f"negatives_shared_by must be >= 0, got {negatives_shared_by}")
        self.shared_by = int(negatives_shared_by)  # `word2vec_kernels.train_span`'s shared_by
        if self.syn0.dtype != np.float32 or self.syn1.dtype != np.float32:
            raise TypeError(f"the compiled word2vec kernels train float32 vectors, got {self.syn0.dtype}: use "
                            "backend='torch' for another dtype")
        self.tables = word2vec_kernels.kernel_tables(model.output_layer, config.objective)

    @property
    def syn0(self) -> np.ndarray:
        return self.model.word2vec.embeddings.weight.data.numpy()

    @property
    def syn1(self) -> np.ndarray:
        return self.model.output_layer.weight.data.numpy()

    def train(self, data: _EpochData, start: int, stop: int, lr_start: float, lr_end: float, seed: int):
        """(summed loss, examples) of the centre words at kept positions [start, stop), trained in place."""
        c, t = self.config, self.tables
        loss, examples = word2vec_kernels.train_span(
            self.syn0, self.syn1, data.ids, data.windows, data.left_room, data.right_room, int(start), int(stop),
            float(lr_start), float(lr_end), c.architecture == "cbow", bool(c.cbow_mean), t.hs, t.points, t.codes,
            t.lengths, t.alias_prob, t.alias, int(c.negative or 0), seed, t.sig_table, t.logsig_table, self.shared_by)
        return float(loss), int(examples)


def train_word2vec(
    model: Word2VecForPreTraining,
    corpus: Word2VecCorpus,
    args: Word2VecTrainingArguments | None = None,
    *,
    first_epoch: int = 0,
    last_epoch: int | None = None,
    callback: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train `model` in place for epochs `first_epoch .. last_epoch-1` of an `args.epochs` schedule.

    The learning rate falls linearly from `alpha` to `min_alpha` over all `args.epochs` epochs; epoch e draws its
    randomness from `(args.seed, e)`, so training epochs 0..1, saving, reloading and training epoch 2 gives the same
    vectors as training epochs 0..2 at once (with `workers=1`). Returns one dict per epoch: mean loss per pair,
    pairs, words/s, seconds.
    """
    args = args or Word2VecTrainingArguments()
    config = model.config
    check_trainable(config, corpus)
    last_epoch = args.epochs if last_epoch is None else last_epoch
    if not 0 <= first_epoch <= last_epoch <= args.epochs:
        raise ValueError(f"need 0 <= first_epoch ({first_epoch}) <= last_epoch ({last_epoch}) <= epochs ({args.epochs})")
    alpha = default_alpha(config) if args.alpha is None else args.alpha
    backend = resolve_backend(args)
    shared_by = (default_negatives_shared_by(config, backend) if args.negatives_shared_by is None
                 else int(args.negatives_shared_by))
    if shared_by < (1 if backend == "torch" else 0):
        raise ValueError(f"negatives_shared_by must be >= {1 if backend == 'torch' else 0} for the {backend} backend, "
                         f"got {args.negatives_shared_by}")
    compiled = None
    if backend == "compiled":
        word2vec_kernels.warm_up()  # compiled (or loaded from numba's cache) once per process, before any timing
        compiled = CompiledWord2Vec(model, shared_by)
    device = torch.device(args.device)
    model.to(device)
    if backend == "triton":
        compiled = word2vec_triton.TritonWord2Vec(model, args.gpu_programs, shared_by)
    workers = max(1, int(args.workers))
    history = []
    bar = None
    if args.progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=corpus.raw_words * (last_epoch - first_epoch), unit="w", unit_scale=True, desc="word2vec")
    previous_threads = torch.get_num_threads()
    if device.type == "cpu":
        # the batch ops are small and memory-bound: intra-op threads only add spin-waits (catastrophic on a loaded
        # machine); parallelism comes from the Hogwild `workers`. Restored when training ends.
        torch.set_num_threads(1)
    try:
        for epoch in range(first_epoch, last_epoch):
            stats = _train_epoch(model, corpus, args, epoch, alpha, workers, device, bar, compiled)
            stats["backend"] = backend
            history.append(stats)
            logger.info("word2vec epoch %d: %s", epoch, stats)
            if callback is not None:
                callback(stats)
    finally:
        torch.set_num_threads(previous_threads)
        if bar is not None:
            bar.close()
    return history


@dataclass
class _Epoch:
    """One epoch's sub-sampled corpus cut into batches of `chunk` centre words, and how each batch is trained."""

    model: Word2VecForPreTraining
    args: Word2VecTrainingArguments
    epoch: int
    alpha: float
    data: _EpochData
    chunk: int
    raw_per_kept: float
    device: torch.device
    # the compiled or triton backend's kernel object, shared by every worker; None = the torch backend
    compiled: CompiledWord2Vec | word2vec_triton.TritonWord2Vec | None = None
    # the epoch as the backend reads it: `data` itself (compiled) or its tensors on the training device (triton, torch)
    kernel_data: _EpochData | _DeviceEpochData | None = None
    bar: Any = None
    t0: float = field(default_factory=time.perf_counter)

    @property
    def num_batches(self) -> int:
        return -(-self.data.ids.shape[0] // self.chunk)

    def lr_at(self, start: int) -> float:
        progress = (self.epoch + start / max(self.data.ids.shape[0], 1)) / self.args.epochs
        return max(self.args.min_alpha, self.alpha * (1.0 - progress))  # word2vec.c's linear decay

    def kernel(self, worker_id: int) -> Word2VecSGD | CompiledWord2Vec:
        if self.compiled is not None:
            return self.compiled
        seed = int(np.random.default_rng([self.args.seed, self.epoch, worker_id]).integers(2**62))
        shared_by = self.args.negatives_shared_by
        shared_by = default_negatives_shared_by(self.model.config, "torch") if shared_by is None else shared_by
        return Word2VecSGD(self.model, shared_by, seed, self.args.max_row_updates)

    def train_batch(self, kernel: Word2VecSGD, i: int) -> tuple[float, int, float, float]:
        """Batch i: the pairs of the centre words at kept positions [i*chunk, (i+1)*chunk). Returns (summed loss,
        examples, corpus words it stands for, learning rate)."""
        start = i * self.chunk
        stop = min(start + self.chunk, self.data.ids.shape[0])
        lr = self.lr_at(start)
        words = (stop - start) * self.raw_per_kept
        if isinstance(kernel, (CompiledWord2Vec, word2vec_triton.TritonWord2Vec)):
            # the batch's noise draws depend on (seed, epoch, batch) only: one worker reproduces itself exactly
            seed = int(np.random.default_rng([self.args.seed, self.epoch, i]).integers(1, 2**63))
            loss, examples = kernel.train(self.kernel_data, start, stop, lr, self.lr_at(stop), seed)
            return float(loss), int(examples), words, lr
        rows, contexts, centres = device_window_pairs(self.kernel_data, start, stop)
        if rows.shape[0] == 0:
            return 0.0, 0, words, lr
        if self.model.config.architecture == "skipgram":
            # word2vec.c: the context word's input vector predicts the centre word
            return kernel.skipgram_by_centre(rows, contexts, centres, lr), rows.shape[0], words, lr
        loss = kernel.cbow(rows, contexts, centres, lr)
        return loss, int(torch.count_nonzero(torch.bincount(rows))), words, lr  # centres with a context word

    def show(self, words: float, loss: float, pairs: int, lr: float) -> None:
        self.bar.set_postfix(loss=f"{loss / max(pairs, 1):.4f}", lr=f"{lr:.5f}",
                             words_per_s=f"{words / max(time.perf_counter() - self.t0, 1e-9):,.0f}", refresh=False)


def _train_epoch(model, corpus, args, epoch, alpha, workers, device, bar, compiled=None) -> dict:
    backend = "torch" if compiled is None else "compiled" if isinstance(compiled, CompiledWord2Vec) else "triton"
    data = sample_epoch(corpus, model.config, np.random.default_rng([args.seed, epoch]))
    n = data.ids.shape[0]
    ep = _Epoch(model, args, epoch, alpha, data, chunk=max(1, int(args.batch_words or default_batch_words(
        model.config, workers, backend, args.gpu_programs))), raw_per_kept=corpus.raw_words / max(n, 1),
        device=device, compiled=compiled, bar=bar,
        kernel_data=data if backend == "compiled" else _DeviceEpochData.from_epoch(data, model.config.window, device))
    if workers > 1 and device.type == "cpu" and resolve_parallel(args, backend) == "process":
        loss, pairs = _run_processes(ep, workers)
    else:
        loss, pairs = _run_threads(ep, workers)
    seconds = time.perf_counter() - ep.t0
    return {
        "epoch": epoch,
        "loss": loss / max(pairs, 1),
        "pairs": pairs,
        "kept_words": int(n),
        "words_per_s": corpus.raw_words / max(seconds, 1e-9),
        "seconds": seconds,
    }


def _run_threads(ep: _Epoch, workers: int) -> tuple[float, int]:
    """Hogwild in one process: `workers` threads take the next batch from a shared counter. The compiled kernels
    release the GIL for a whole batch; torch releases it inside its ops only (the numpy window code and Python
    between the ops hold it)."""
    lock = threading.Lock()
    state = {"next": 0, "loss": 0.0, "pairs": 0, "words": 0.0, "error": None}

    def work(worker_id: int):
        kernel = ep.kernel(worker_id)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= ep.num_batches or state["error"] is not None:
                return
            loss, pairs, words, lr = ep.train_batch(kernel, i)
            with lock:
                state["loss"] += loss
                state["pairs"] += pairs
                state["words"] += words
                if ep.bar is not None:
                    ep.bar.update(words)
                    ep.show(state["words"], state["loss"], state["pairs"], lr)

    def guarded(worker_id):
        try:
            work(worker_id)
        except BaseException as exc:  # surface errors from threads in the caller
            state["error"] = exc

    if workers == 1:
        work(0)
    else:
        threads = [threading.Thread(target=guarded, args=(w,), daemon=True) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if state["error"] is not None:
            raise state["error"]
    return state["loss"], state["pairs"]


def _run_processes(ep: _Epoch, workers: int) -> tuple[float, int]:
    """Hogwild across forked processes, as word2vec.c's threads: the input and output vectors move to shared memory
    (`share_memory_`, in place: the model keeps them), every worker takes the next batch from a shared counter and
    updates them without locks; no GIL is shared, so the numpy window code and the Python between the torch ops run
    in parallel too. The epoch's sub-sampled corpus is inherited by the fork (copy-on-write, nothing is pickled)."""
    import multiprocessing as mp
    import traceback

    for table in (ep.model.word2vec.embeddings.weight, ep.model.output_layer.weight):
        if not table.is_shared():
            table.data.share_memory_()
    ctx = mp.get_context("fork")
    next_batch = ctx.Value("q", 0)
    done = ctx.Array("d", 3)  # words, loss, examples: summed over every worker
    messages = ctx.SimpleQueue()

    def child(worker_id: int):
        code = 0
        try:
            torch.set_num_threads(1)
            kernel = ep.kernel(worker_id)
            while True:
                with next_batch.get_lock():
                    i = next_batch.value
                    next_batch.value += 1
                if i >= ep.num_batches:
                    break
                loss, pairs, words, _ = ep.train_batch(kernel, i)
                with done.get_lock():
                    done[0] += words
                    done[1] += loss
                    done[2] += pairs
            messages.put((worker_id, None))
        except BaseException:
            messages.put((worker_id, traceback.format_exc()))
            code = 1
        finally:
            os._exit(code)  # no atexit handlers, no flushing of the parent's inherited buffers

    procs = [ctx.Process(target=child, args=(w,), daemon=True) for w in range(workers)]
    for p in procs:
        p.start()
    shown, reports = 0.0, {}

    def drain():  # read reports as they come, so that no worker blocks on a full pipe
        while not messages.empty():
            worker_id, error = messages.get()
            reports[worker_id] = error

    while any(p.is_alive() for p in procs):
        time.sleep(0.2)
        drain()
        if ep.bar is not None:
            with done.get_lock():
                words, loss, pairs = done[0], done[1], int(done[2])
            ep.bar.update(words - shown)
            shown = words
            with next_batch.get_lock():
                i = min(next_batch.value, ep.num_batches - 1)
            ep.show(words, loss, pairs, ep.lr_at(i * ep.chunk))
    for p in procs:
        p.join()
    drain()
    failed = {w: reports.get(w, f"exit code {p.exitcode}") for w, p in enumerate(procs)
              if reports.get(w) is not None or p.exitcode != 0}
    if failed:
        detail = "\n".join(f"worker {w}: {e}" for w, e in failed.items())
        raise RuntimeError(f"word2vec training failed in {len(failed)} of {workers} worker processes:\n{detail}")
    if ep.bar is not None:
        ep.bar.update(done[0] - shown)
    return float(done[1]), int(done[2])


# ---------------------------------------------------------------------------------------------------------------------
# 6. Trainer path and plots
# ---------------------------------------------------------------------------------------------------------------------
def word2vec_pair_dataset(corpus: Word2VecCorpus, config: Word2VecConfig, seed: int = 1, epoch: int = 0):
    """One epoch of training examples for `Trainer` + `Word2VecForPreTraining.forward` (autograd path).

    Skip-gram: `{"input_ids": context word, "labels": centre word}`; CBOW: `input_ids` = the window padded to 2W with
    `attention_mask`. Returns a `torch.utils.data.TensorDataset`-like map dataset of dicts.
    """
    check_trainable(config, corpus)
    data = sample_epoch(corpus, config, np.random.default_rng([seed, epoch]))
    rows, contexts, centres = window_pairs(data, 0, data.ids.shape[0], config.window)
    if config.architecture == "skipgram":
        columns = {"input_ids": torch.from_numpy(contexts), "labels": torch.from_numpy(centres[rows])}
    else:
        counts = np.bincount(rows, minlength=centres.shape[0])
        slot = np.arange(rows.shape[0]) - (np.cumsum(counts) - counts)[rows]
        width = 2 * config.window
        ids = np.full((centres.shape[0], width), config.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((centres.shape[0], width), dtype=np.int64)
        ids[rows, slot], mask[rows, slot] = contexts, 1
        has = counts > 0
        columns = {
            "input_ids": torch.from_numpy(ids[has]),
            "attention_mask": torch.from_numpy(mask[has]),
            "labels": torch.from_numpy(centres[has]),
        }
    return _DictDataset(columns)


class _DictDataset(torch.utils.data.Dataset):
    def __init__(self, columns: dict[str, torch.Tensor]):
        self.columns = columns

    def __len__(self):
        return int(next(iter(self.columns.values())).shape[0])

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.columns.items()}


__all__ = [
    "CompiledWord2Vec",
    "MAX_EXP",
    "MAX_SENTENCE_LENGTH",
    "Word2VecCorpus",
    "Word2VecSGD",
    "Word2VecTrainingArguments",
    "check_trainable",
    "default_alpha",
    "default_batch_words",
    "default_negatives_shared_by",
    "device_window_pairs",
    "encode_corpus",
    "model_from_keyed_vectors",
    "prepare_remote_code",
    "prepare_word2vec",
    "resolve_backend",
    "resolve_parallel",
    "sample_epoch",
    "train_word2vec",
    "window_pairs",
    "word2vec_pair_dataset",
    "word_level_tokenizer_from_vocab",
]
