"""GPU kernel for word2vec training: word2vec.c's per-pair SGD as a Triton kernel, one warp per Hogwild worker.

The batched torch updates of `Word2VecSGD` run on any device, but they must sum the updates of a whole batch; the
summed, stale updates lose quality as the batch grows (WikiText-2, the same arithmetic on CPU,
benchmarks/results/word2vec_torch_batch_size.md: skip-gram analogy 4.72% at 1,024 centre words per batch, 2.87% at
16,384, 0.87% at 65,536, against gensim's 5.11%), and a GPU needs large batches to be fast. This kernel instead does what word2vec.c's threads and `word2vec_kernels`'
compiled loop do, on thousands of workers at once: every program (one warp, the vector dimension across its lanes)
takes a contiguous span of kept centre words and runs word2vec.c's loop over it, pair after pair, each reading the
vectors as the previous pair left them, Hogwild with the other programs (plain loads and stores, no locks), as
BlazingText (Gupta and Khare, 2017) runs word2vec on a GPU.

The arithmetic is `word2vec_kernels.train_span`'s, line for line: word2vec.c's sigmoid table read at its integer
index factor 83, a score with |f| >= 6 skipped (gensim's rule, both objectives), noise words from the alias table read
with word2vec.c's linear congruential generator (one generator per program, seeded with `seed + program id`), drawn
per example or shared by `negatives_shared_by` consecutive centre words, CBOW mean or sum with the whole error given
to every context word, the learning rate falling
linearly along the launch. A single program over a span gives `train_span`'s result on the same span and seed (up to
float rounding: the dot products are summed in a different order); tested with Triton's interpreter on CPU
(`TRITON_INTERPRET=1`).
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import numpy as np
import torch

try:  # Triton ships with PyTorch's CUDA wheels; without it the GPU falls back to the batched torch updates
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = None

from .kernels_word2vec import EXP_TABLE_SIZE, MAX_EXP, TABLE_SCALE, kernel_tables

_UNIT = 1.0 / 9007199254740992.0  # 2**-53


def available() -> bool:
    """True when Triton is importable."""
    return triton is not None


def interpreted() -> bool:
    """True when Triton runs its kernels on the CPU through its interpreter (`TRITON_INTERPRET=1`, for tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def usable_on(device: torch.device) -> bool:
    """Whether the Triton kernel can train tensors on `device`: a CUDA device, or the CPU under the interpreter."""
    if triton is None:
        return False
    return device.type == "cuda" or (device.type == "cpu" and interpreted())


if triton is not None:
    # a @triton.jit function reads module globals only when they are constexpr
    _MAX_EXP_C = tl.constexpr(MAX_EXP)
    _TABLE_SCALE_C = tl.constexpr(TABLE_SCALE)
    _TABLE_SIZE_C = tl.constexpr(EXP_TABLE_SIZE)
    _UNIT_C = tl.constexpr(_UNIT)

    @triton.jit
    def _draw_noise(state, alias_prob, alias, vocab, NEG_BLOCK: tl.constexpr, NEGATIVE: tl.constexpr):
        """`word2vec_kernels._draw_noise`: NEGATIVE words of the noise distribution in lanes 0..NEGATIVE-1."""
        lanes = tl.arange(0, NEG_BLOCK)
        noise = tl.zeros((NEG_BLOCK,), dtype=tl.int64)
        for k in range(0, NEGATIVE):
            state = state * 25214903917 + 11
            u = (state >> 11).to(tl.float64) * _UNIT_C * vocab  # Walker's alias method: a bucket, then a coin
            bucket = tl.minimum(u.to(tl.int64), vocab - 1)
            keep = (u - bucket.to(tl.float64)) < tl.load(alias_prob + bucket)
            noise = tl.where(lanes == k, tl.where(keep, bucket, tl.load(alias + bucket)), noise)
        return noise, state

    @triton.jit
    def _output_step(h, neu1e, target, alpha, syn1, offs, mask, HS: tl.constexpr, points, codes, lengths,
                     max_depth, noise, NEG_BLOCK: tl.constexpr, NEGATIVE: tl.constexpr, sig_table, logsig_table,
                     DIM: tl.constexpr):
        """`word2vec_kernels._output_step`: moves the output rows, returns (error of h, loss). A score with
        |f| >= 6 is skipped for both objectives (gensim's rule); the loss takes the asymptote of -log sig there."""
        loss = tl.zeros((), dtype=tl.float32)
        if HS:
            length = tl.load(lengths + target).to(tl.int32)
            for n in range(0, length):
                node = tl.load(points + target * max_depth + n)
                row = tl.load(syn1 + node * DIM + offs, mask=mask, other=0.0)
                f = tl.sum(h * row, axis=0)
                code = tl.load(codes + target * max_depth + n).to(tl.int32)
                inside = (f > -_MAX_EXP_C) & (f < _MAX_EXP_C)
                idx = tl.minimum(tl.maximum(((f + _MAX_EXP_C) * _TABLE_SCALE_C).to(tl.int32), 0), _TABLE_SIZE_C - 1)
                table_loss = tl.load(logsig_table + (1 - code) * _TABLE_SIZE_C + idx)
                wrong_side = (f > 0.0) != (code == 0)
                loss += tl.where(inside, table_loss, tl.where(wrong_side, tl.abs(f), 0.0))
                if inside:
                    g = (1.0 - code.to(tl.float32) - tl.load(sig_table + idx)) * alpha
                    neu1e += g * row  # the error reads the node vector before it moves
                    tl.store(syn1 + node * DIM + offs, row + g * h, mask=mask)
        else:
            lanes = tl.arange(0, NEG_BLOCK)
            for k in range(0, NEGATIVE + 1):
                word = target
                label = 1.0
                if k > 0:
                    word = tl.sum(tl.where(lanes == k - 1, noise, 0), axis=0)
                    label = 0.0
                if (k == 0) | (word != target):  # a noise word equal to the target is skipped
                    row = tl.load(syn1 + word * DIM + offs, mask=mask, other=0.0)
                    f = tl.sum(h * row, axis=0)
                    inside = (f > -_MAX_EXP_C) & (f < _MAX_EXP_C)
                    idx = tl.minimum(tl.maximum(((f + _MAX_EXP_C) * _TABLE_SCALE_C).to(tl.int32), 0), _TABLE_SIZE_C - 1)
                    table_loss = tl.load(logsig_table + label.to(tl.int32) * _TABLE_SIZE_C + idx)
                    wrong_side = (f > 0.0) != (label > 0.0)
                    loss += tl.where(inside, table_loss, tl.where(wrong_side, tl.abs(f), 0.0))
                    if inside:
                        g = (label - tl.load(sig_table + idx)) * alpha
                        neu1e += g * row  # the error reads the output vector before it moves
                        tl.store(syn1 + word * DIM + offs, row + g * h, mask=mask)
        return neu1e, loss

    @triton.jit
    def _example(h, target, alpha, syn1, offs, mask, HS: tl.constexpr, points, codes, lengths, max_depth, noise, state,
                 shared_by, alias_prob, alias, vocab, NEG_BLOCK: tl.constexpr, NEGATIVE: tl.constexpr, sig_table,
                 logsig_table, DIM: tl.constexpr, BLOCK: tl.constexpr):
        """`word2vec_kernels._example`: one example's error starts at zero, its noise words are drawn unless a shared
        draw serves it, then `_output_step`. Returns (error, loss, noise, generator state)."""
        neu1e = tl.zeros((BLOCK,), dtype=tl.float32)
        if not HS:
            if shared_by == 0:
                noise, state = _draw_noise(state, alias_prob, alias, vocab, NEG_BLOCK, NEGATIVE)
        neu1e, step_loss = _output_step(h, neu1e, target, alpha, syn1, offs, mask, HS, points, codes, lengths,
                                        max_depth, noise, NEG_BLOCK, NEGATIVE, sig_table, logsig_table, DIM)
        return neu1e, step_loss, noise, state

    # integer arguments that change from launch to launch are not specialised on (Triton compiles a variant for
    # values equal to 1 or divisible by 16): one compile per model shape, not one per batch size
    @triton.jit(do_not_specialize=["base", "total", "span", "max_depth", "vocab", "seed", "shared_by"])
    def _train_spans(syn0, syn1, ids, windows, left_room, right_room, base, total, span, alpha_start, alpha_end,
                     CBOW: tl.constexpr, CBOW_MEAN: tl.constexpr, HS: tl.constexpr, points, codes, lengths,
                     max_depth, alias_prob, alias, vocab, NEGATIVE: tl.constexpr, seed, sig_table, logsig_table,
                     loss_out, examples_out, shared_by, DIM: tl.constexpr, BLOCK: tl.constexpr,
                     NEG_BLOCK: tl.constexpr):
        """Program p trains the kept centre words [base + p*span, base + (p+1)*span) of the launch [base, base+total)
        with `train_span`'s loop; the learning rate falls linearly from alpha_start at `base` to alpha_end at
        base+total. Writes the program's summed loss and its examples (pairs, or CBOW centres with a context)."""
        pid = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        mask = offs < DIM
        start = base + pid * span
        stop = tl.minimum(start + span, base + total)
        state = seed.to(tl.uint64) + pid.to(tl.uint64)
        loss = tl.zeros((), dtype=tl.float32)
        examples = tl.zeros((), dtype=tl.int32)
        noise = tl.zeros((NEG_BLOCK,), dtype=tl.int64)
        since = shared_by  # centre words served by the current draw (`train_span`)
        for i in range(start, stop):
            alpha = alpha_start + (alpha_end - alpha_start) * ((i - base).to(tl.float32) / total)
            reach = tl.load(windows + i)
            lo = i - tl.minimum(reach, tl.load(left_room + i))
            hi = i + tl.minimum(reach, tl.load(right_room + i))
            centre = tl.load(ids + i)
            if not HS:
                if (hi > lo) & (shared_by > 0):
                    if since >= shared_by:
                        noise, state = _draw_noise(state, alias_prob, alias, vocab, NEG_BLOCK, NEGATIVE)
                        since = 0
                    since += 1
            if CBOW:
                neu1 = tl.zeros((BLOCK,), dtype=tl.float32)
                count = tl.zeros((), dtype=tl.int32)
                for j in range(lo, hi + 1):
                    if j != i:
                        neu1 += tl.load(syn0 + tl.load(ids + j) * DIM + offs, mask=mask, other=0.0)
                        count += 1
                if count > 0:  # word2vec.c skips a centre word left without context
                    if CBOW_MEAN:
                        neu1 = neu1 / count.to(tl.float32)
                    neu1e, step_loss, noise, state = _example(
                        neu1, centre, alpha, syn1, offs, mask, HS, points, codes, lengths, max_depth, noise, state,
                        shared_by, alias_prob, alias, vocab, NEG_BLOCK, NEGATIVE, sig_table, logsig_table, DIM, BLOCK)
                    loss += step_loss
                    examples += 1
                    for j in range(lo, hi + 1):
                        if j != i:  # every context word gets the whole error (word2vec.c)
                            where = syn0 + tl.load(ids + j) * DIM + offs
                            tl.store(where, tl.load(where, mask=mask, other=0.0) + neu1e, mask=mask)
            else:
                for j in range(lo, hi + 1):
                    if j != i:  # word2vec.c: the context word's input vector predicts the centre word
                        where = syn0 + tl.load(ids + j) * DIM + offs
                        h = tl.load(where, mask=mask, other=0.0)
                        neu1e, step_loss, noise, state = _example(
                            h, centre, alpha, syn1, offs, mask, HS, points, codes, lengths, max_depth, noise, state,
                            shared_by, alias_prob, alias, vocab, NEG_BLOCK, NEGATIVE, sig_table, logsig_table, DIM,
                            BLOCK)
                        loss += step_loss
                        examples += 1
                        tl.store(where, tl.load(where, mask=mask, other=0.0) + neu1e, mask=mask)
        tl.store(loss_out + pid, loss)
        tl.store(examples_out + pid, examples)


class TritonWord2Vec:
    """A `Word2VecForPreTraining` on a CUDA device as `_train_spans` takes it: the Huffman paths or the alias table of
    the noise distribution, and word2vec.c's sigmoid tables, on the model's device, built once per training.
    `programs` Hogwild workers share each launch (`train`), one contiguous span of its centre words each."""

    def __init__(self, model, programs: int = 2048, negatives_shared_by: int = 0):
        if triton is None:
            raise ImportError("the Triton word2vec kernel needs triton (installed with PyTorch's CUDA wheels)")
        self.model = model
        config = model.config
        self.config = config
        self.device = model.word2vec.embeddings.weight.device
        if not usable_on(self.device):
            raise ValueError(f"the Triton word2vec kernel trains on a CUDA device, got {self.device} (the CPU only "
                             "under TRITON_INTERPRET=1, for tests): use backend='compiled' or 'torch'")
        for name, table in (("input", self.syn0), ("output", self.syn1)):
            if table.dtype != torch.float32 or not table.is_contiguous():
                raise TypeError(f"the Triton word2vec kernel trains contiguous float32 vectors, got {name} vectors "
                                f"of {table.dtype}: use backend='torch' for another dtype")
        if programs < 1:
            raise ValueError(f"programs must be >= 1, got {programs}")
        self.programs = int(programs)
        if negatives_shared_by < 0:
            raise ValueError(f"negatives_shared_by must be >= 0, got {negatives_shared_by}")
        self.shared_by = int(negatives_shared_by)  # `word2vec_kernels.train_span`'s shared_by
        # the compiled kernel's tables, on the device
        tables = kernel_tables(model.output_layer, config.objective)
        self.tables = tables._replace(**{name: torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
                                         for name, array in tables._asdict().items() if name != "hs"})
        self.block = triton.next_power_of_2(config.vector_size)
        self.compile_seconds = self._warm_up()

    def _warm_up(self) -> float:
        """Compiles the kernel for this model (or loads it from Triton's cache) before any timing: one launch over a
        dummy two-word span at learning rate 0, which leaves every vector as it was. Returns the seconds spent."""
        t0 = time.perf_counter()
        zeros, ones = (torch.tensor(v, dtype=torch.long, device=self.device) for v in ([0, 0], [1, 1]))
        dummy = SimpleNamespace(ids=zeros, windows=ones, left_room=torch.tensor([0, 1], device=self.device),
                                right_room=torch.tensor([1, 0], device=self.device))
        loss, _ = self.train(dummy, 0, 2, 0.0, 0.0, 1, programs=1)
        float(loss)  # waits for the launch
        return time.perf_counter() - t0

    @property
    def syn0(self) -> torch.Tensor:
        return self.model.word2vec.embeddings.weight.data

    @property
    def syn1(self) -> torch.Tensor:
        return self.model.output_layer.weight.data

    def train(self, data, start: int, stop: int, lr_start: float, lr_end: float, seed: int,
              programs: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Trains the kept centre words [start, stop) of `data` (a `_DeviceEpochData` on the model's device) with
        up to `programs` (default `self.programs`) workers; returns the (summed loss, examples) as device scalars
        (no host synchronisation)."""
        total = int(stop) - int(start)
        if total <= 0:
            zero = torch.zeros((), device=self.device)
            return zero, zero.long()
        workers = max(1, min(programs or self.programs, total))
        span = -(-total // workers)
        workers = -(-total // span)
        loss = torch.empty(workers, dtype=torch.float32, device=self.device)
        examples = torch.empty(workers, dtype=torch.int32, device=self.device)
        c, t = self.config, self.tables
        _train_spans[(workers,)](
            self.syn0, self.syn1, data.ids, data.windows, data.left_room, data.right_room, int(start), total, span,
            float(lr_start), float(lr_end), c.architecture == "cbow", bool(c.cbow_mean), t.hs, t.points, t.codes,
            t.lengths, t.points.shape[1], t.alias_prob, t.alias, t.alias_prob.shape[0],
            int(c.negative or 0) if not t.hs else 0, int(seed) % 2**63, t.sig_table, t.logsig_table, loss, examples,
            self.shared_by, DIM=c.vector_size, BLOCK=self.block,
            NEG_BLOCK=triton.next_power_of_2(max(1, int(c.negative or 0) if not t.hs else 1)), num_warps=1)
        return loss.sum(), examples.sum()
