"""`Trainer` pieces: stateful truncated BPTT for the recurrent LMs, a per-epoch learning-rate decay, a wall-clock budget."""

from __future__ import annotations

import math
import os
import time

import torch.nn.functional as F
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.utils import logging

from ..io_utils import atomic_write
from .checkpointing import CARRIED_STATE, safetensors_problem

logger = logging.get_logger(__name__)


def save_carried_state(folder: str, cache, epoch_of_state: int | None, global_step: int) -> str:
    """Write the state `StatefulLMTrainer` carries into the next batch to `<folder>/carried_state.safetensors`
    (atomically): one tensor `layers.<i>.<j>` per layer and tensor of the `RecurrentCache` (none before the first
    batch of an epoch), the epoch it belongs to and the step it was saved at."""
    from safetensors.torch import save

    tensors = {}
    if cache is not None:
        for i, layer in enumerate(cache.states):
            for j, t in enumerate(layer):
                tensors[f"layers.{i}.{j}"] = t.detach().to("cpu", copy=True).contiguous()
    metadata = {
        "format": "hf_seq.RecurrentCache",
        "carried": "yes" if cache is not None else "no",
        "num_layers": str(len(cache.states) if cache is not None else 0),
        "seen_tokens": str(getattr(cache, "seen_tokens", 0) if cache is not None else 0),
        "epoch_of_state": "none" if epoch_of_state is None else str(int(epoch_of_state)),
        "global_step": str(int(global_step)),
    }
    path = os.path.join(folder, CARRIED_STATE)
    with atomic_write(path, "wb") as f:
        f.write(save(tensors, metadata=metadata))
    return path


def load_carried_state(folder: str, device=None, global_step: int | None = None):
    """(cache or None, epoch_of_state or None) from `save_carried_state`'s file in `folder`; ValueError naming the
    file when it is truncated, of another format, or saved at another step than `global_step`."""
    from safetensors import safe_open

    from ..models.recurrent import RecurrentCache

    path = os.path.join(folder, CARRIED_STATE)
    problem = safetensors_problem(path)
    if problem is not None:
        raise ValueError(problem)
    with safe_open(path, framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format") != "hf_seq.RecurrentCache":
        raise ValueError(f"{path}: not a carried recurrent state (metadata {meta})")
    if global_step is not None and meta.get("global_step") != str(global_step):
        raise ValueError(f"{path}: saved at step {meta.get('global_step')}, but the checkpoint is at step {global_step}")
    epoch = None if meta.get("epoch_of_state", "none") == "none" else int(meta["epoch_of_state"])
    if meta.get("carried") != "yes":
        return None, epoch
    states = []
    for i in range(int(meta["num_layers"])):
        layer, j = [], 0
        while f"layers.{i}.{j}" in tensors:
            layer.append(tensors[f"layers.{i}.{j}"].to(device) if device is not None else tensors[f"layers.{i}.{j}"])
            j += 1
        if not layer:
            raise ValueError(f"{path}: no tensor for layer {i} of {meta['num_layers']}")
        states.append(tuple(layer))
    return RecurrentCache(states, int(meta.get("seen_tokens", 0))), epoch


class StatefulLMTrainer(Trainer):
    """`Trainer` for truncated BPTT with the hidden state carried across consecutive batches (Zaremba et al. 2014;
    PyTorch's word_language_model). Expects rows from `hf_seq.data.contiguous_stream_blocks` with
    `per_device_train_batch_size` equal to the number of sub-streams; batches are read in order, never shuffled.

    The carried state is detached (gradients stop at the batch boundary) and reset at the start of every epoch.
    Every checkpoint holds it (`carried_state.safetensors`, written before trainer_state.json) and a resumed run
    starts from it: with Trainer's own step counter (the position in the stream: batches are read in order) and RNG
    state, a run killed and resumed ends bit-identical to an uninterrupted one.
    Evaluation reads its own contiguous rows (`contiguous_stream_blocks` with `per_device_eval_batch_size`
    sub-streams) with the state carried too, from a zero state at the start of every `evaluate()`: the validation
    loss logged during training is then Zaremba et al.'s protocol, the number `evaluate_perplexity` gives.
    Single process only: a distributed sampler would break the contiguity of the sub-streams.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.world_size > 1:
            raise ValueError("StatefulLMTrainer needs one process: sharding would break the contiguous sub-streams")
        if self.args.gradient_accumulation_steps != 1:
            raise ValueError("StatefulLMTrainer carries state batch to batch; use gradient_accumulation_steps=1")
        self._carried = None
        self._eval_carried = None
        self._epoch_of_state = None

    def _get_train_sampler(self, *args, **kwargs):
        return SequentialSampler(self.train_dataset)

    def _save_rng_state(self, output_dir: str) -> None:
        # the carried state is part of the training state, like the RNG: written before trainer_state.json, so a
        # checkpoint that passes `checkpoint_problems` always has it
        super()._save_rng_state(output_dir)
        if self.args.should_save:
            save_carried_state(output_dir, self._carried, self._epoch_of_state, self.state.global_step)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        if not os.path.isfile(os.path.join(resume_from_checkpoint, CARRIED_STATE)):
            logger.warning(
                "%s has no %s (saved by an older hf-seq, or with save_only_model): training resumes from a zero "
                "recurrent state and will not match an uninterrupted run exactly", resume_from_checkpoint, CARRIED_STATE
            )
            self._carried = self._epoch_of_state = None
            return
        step = _checkpoint_step(resume_from_checkpoint)
        self._carried, self._epoch_of_state = load_carried_state(resume_from_checkpoint, self.args.device, step)
        if self._carried is not None:
            rows = self._carried.states[0][0].shape[1]
            if rows != self.args.per_device_train_batch_size:
                logger.warning("%s carries %d sub-streams but per_device_train_batch_size is %d: the state is dropped",
                               resume_from_checkpoint, rows, self.args.per_device_train_batch_size)

    def evaluate(self, *args, **kwargs):
        self._eval_carried = None  # every evaluation reads its stream from the start
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self._eval_carried = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        epoch = self.state.epoch if self.state.epoch is not None else 0.0
        if self._epoch_of_state is None or int(epoch) != self._epoch_of_state:
            self._carried = None  # a new pass over the stream starts from a zero state
        self._epoch_of_state = int(epoch)
        targets = inputs.pop("target_ids")
        state = self._carried if model.training else self._eval_carried
        if state is not None and state.states[0][0].shape[1] != targets.shape[0]:
            state = None  # a last, smaller batch: its rows do not continue the previous ones
        outputs = model(input_ids=inputs["input_ids"], cache=state, use_cache=True)
        if model.training:
            self._carried = outputs.cache.detach()
        else:
            self._eval_carried = outputs.cache.detach()
        loss = F.cross_entropy(outputs.logits.flatten(0, 1).float(), targets.flatten())
        return (loss, outputs) if return_outputs else loss


def _checkpoint_step(folder: str) -> int | None:
    import json

    try:
        with open(os.path.join(folder, "trainer_state.json"), encoding="utf-8") as f:
            return int(json.load(f)["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class EpochDecayCallback(TrainerCallback):
    """Zaremba et al. (2014)'s schedule: the learning rate stays at `TrainingArguments.learning_rate` for the first
    `start_epoch` epochs, then is multiplied by `decay` at the start of every further epoch (their small model:
    lr 1, start_epoch 4, decay 0.5; medium: start_epoch 6, decay 1/1.2). Use it with `lr_scheduler_type="constant"`.

    The rate is set from the epoch number each time an epoch begins (through the scheduler's `base_lrs`), so a run
    resumed from a checkpoint gets the same rates as an uninterrupted one.
    """

    def __init__(self, decay: float, start_epoch: int):
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay!r}")
        if int(start_epoch) != start_epoch or start_epoch < 0:
            raise ValueError(f"start_epoch must be a non-negative integer, got {start_epoch!r}")
        self.decay, self.start_epoch = float(decay), int(start_epoch)

    def rate(self, base: float, epoch: int) -> float:
        """The learning rate of 0-based epoch `epoch`."""
        return base * self.decay ** max(0, epoch - self.start_epoch + 1)

    def on_train_begin(self, args, state, control, **kwargs):
        scheduler = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)  # SchedulerType or str
        if scheduler != "constant":
            raise ValueError(f"EpochDecayCallback sets the rate itself: use lr_scheduler_type='constant', got {scheduler!r}")

    def on_epoch_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        epoch = int(math.floor((state.epoch or 0.0) + 1e-6))  # epochs completed = index of the one starting
        lr = self.rate(args.learning_rate, epoch)
        if lr_scheduler is not None:
            lr_scheduler.base_lrs = [lr for _ in lr_scheduler.base_lrs]
            lr_scheduler._last_lr = [lr for _ in lr_scheduler.base_lrs]  # what Trainer logs (get_last_lr)
        if optimizer is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr


class RunClock:
    """Wall and process CPU seconds since a task runner started (on a shared machine the CPU time is what a run
    cost), for its results: `{**clock.seconds()}` gives `wall_seconds` and `cpu_seconds`."""

    def __init__(self):
        self.wall, self.cpu = time.time(), time.process_time()

    def seconds(self) -> dict[str, float]:
        return {"wall_seconds": round(time.time() - self.wall, 1), "cpu_seconds": round(time.process_time() - self.cpu, 1)}


def scale_learning_rates(optimizer, lr_scheduler, factor: float, base_lrs: list[float] | None) -> list[float] | None:
    """Set every parameter group's rate to `factor` times the one the scheduler has just set (Trainer steps it before
    `on_step_end`), and make the scheduler report the scaled rate, which is what Trainer logs. The scheduler computes
    its next rate from its base rates again, so the factors never compound. Without a scheduler the base is the
    rates found on the first call: pass back the `base_lrs` this returns."""
    if lr_scheduler is None and base_lrs is None:
        base_lrs = [g["lr"] for g in optimizer.param_groups]
    lrs = lr_scheduler.get_last_lr() if lr_scheduler is not None else base_lrs
    for group, lr in zip(optimizer.param_groups, lrs):
        group["lr"] = lr * factor
    if lr_scheduler is not None:
        lr_scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
    return base_lrs


class TrainingClock(TrainerCallback):
    """Stamp every log entry with `elapsed_seconds` of training wall time (so validation scores can be plotted against
    time), and stop once `minutes` have passed in this process (the step that crosses the budget still finishes).
    A resumed run continues the clock from the last stamp in the checkpoint's log history.

    `decay_lr=True` is the wall-clock form of the linear schedule: the learning rate the scheduler sets (use a
    constant one, with or without warm-up) is scaled by `1 - elapsed / budget` after every step, so it reaches zero
    when the budget ends however fast the machine is; the elapsed time then counts across resumes, and so does the
    budget."""

    def __init__(self, minutes: float | None = None, decay_lr: bool = False):
        if decay_lr and minutes is None:
            raise ValueError("TrainingClock(decay_lr=True) needs a budget: minutes=None")
        self.seconds = None if minutes is None else minutes * 60
        self.decay_lr = decay_lr
        self.base_lrs = None

    def elapsed(self) -> float:
        return self.offset + time.time() - self.start

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()
        stamps = [e["elapsed_seconds"] for e in state.log_history if "elapsed_seconds" in e]
        self.offset = stamps[-1] if stamps else 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.log_history:
            state.log_history[-1]["elapsed_seconds"] = round(self.elapsed(), 1)

    def on_step_end(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        # Trainer has just stepped the scheduler: scale the rate it set for the next step (and what Trainer logs);
        # its next step computes from its base rates again, so the factors never compound
        if self.decay_lr and optimizer is not None:
            factor = max(0.0, 1.0 - self.elapsed() / self.seconds)
            self.base_lrs = scale_learning_rates(optimizer, lr_scheduler, factor, self.base_lrs)
        spent = self.elapsed() if self.decay_lr else time.time() - self.start
        if self.seconds is not None and spent > self.seconds:
            control.should_training_stop = True


__all__ = ["EpochDecayCallback", "RunClock", "StatefulLMTrainer", "TrainingClock", "load_carried_state",
           "save_carried_state", "scale_learning_rates"]
