"""The one writer of a finished run's folder, the same for every family.

The run folder IS a Hub-ready model folder (`pipeline(model=RUN)`, `AutoModel*.from_pretrained(RUN)` and `hf-seq
publish RUN` all take it as it is):

    config.json (+ auto_map)  model.safetensors  tokenizer files  generation_config.json  *.py (remote code)
    eval_results.json  experiment.json  training_curve.png (+ family pictures)  sample.txt  README.md (model card)
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import torch
from transformers.utils import logging

from ..io_utils import atomic_write, write_json_atomic

logger = logging.get_logger(__name__)


def environment() -> dict:
    return {
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_run_folder(
    output_dir: str,
    *,
    model,
    tokenizer,
    auto_class: str,
    results: dict,
    experiment=None,
    log_history: list[dict] | None = None,
    curve_title: str | None = None,
    curve_metric: str = "loss",
    sample: str | None = None,
    pictures: dict[str, Callable[[str], object]] | None = None,
    results_file: str | None = None,
) -> str:
    """Save `model` + `tokenizer` with remote code, the results, the experiment, the curves and the model card.

    `pictures` maps a file name to a function drawing it (`fn(path)`); `results_file` also receives a copy of the
    results (a benchmark's record). Returns `output_dir`."""
    from ..hub import write_model_card
    from ..hub.publishing import clean_generation_config
    from ..plotting import plot_training_curve

    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        torch.distributed.barrier()  # one process (rank 0) writes the folder; the others wait for it
        return output_dir
    os.makedirs(output_dir, exist_ok=True)
    # 1. weights, config with auto_map, generation config, remote code
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class(auto_class)
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = True  # Trainer switches it off for training
    if getattr(model, "generation_config", None) is not None and model.can_generate():
        model.generation_config = clean_generation_config(model.generation_config, model.config)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    if auto_class == "AutoModelForSeq2SeqLM":
        from ..pipelines import save_translation_pipeline

        save_translation_pipeline(model, tokenizer, output_dir)  # `pipeline(model=RUN)` translates
    # 2. results and the resolved experiment
    results = {**results, "environment": environment()}
    if experiment is not None:
        results.setdefault("experiment", experiment.name)
        results.setdefault("config_file", experiment.path)
        write_json_atomic(os.path.join(output_dir, "experiment.json"), experiment.to_dict())
    write_json_atomic(os.path.join(output_dir, "eval_results.json"), results)
    if results_file:
        write_json_atomic(results_file, results)
    if sample is not None:
        with atomic_write(os.path.join(output_dir, "sample.txt"), "w", encoding="utf-8") as f:
            f.write(sample + "\n")
    # 3. pictures
    if log_history and any(curve_metric in e for e in log_history):
        plot_training_curve(log_history, os.path.join(output_dir, "training_curve.png"), title=curve_title,
                            metric=curve_metric)
    for name, draw in (pictures or {}).items():
        try:
            draw(os.path.join(output_dir, name))
        except (ValueError, RuntimeError) as e:  # a picture is a bonus: never lose a finished run over it
            logger.warning("could not draw %s: %s", name, e)
    # 4. the model card, rendered from eval_results.json (`hf-seq publish` re-renders it with the real repo id)
    write_model_card(output_dir, repo_id=f"YOUR_NAME/{os.path.basename(os.path.abspath(output_dir))}", model=model)
    logger.info("run folder written to %s", output_dir)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return output_dir


__all__ = ["environment", "write_run_folder"]
