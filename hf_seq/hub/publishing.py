"""Publish any trained hf-seq model to the Hugging Face Hub as a complete, clean folder.

`prepare_hub_folder(run_or_model, output_dir)` writes: config.json (+ `auto_map`), model.safetensors, the tokenizer,
a clean generation_config.json (Seq2SeqTrainer's leaked defaults removed), the modeling/configuration code
(`register_for_auto_class`) so that `AutoModel*.from_pretrained(repo, trust_remote_code=True)` works without hf-seq,
the custom translation pipeline for encoder-decoders, the run's `eval_results.json` and pictures, and a README.md
model card. Nothing else travels: no optimizer state, no pickled `training_args.bin`, no checkpoints.

`publish(run_or_model, repo_id)` prepares that folder and uploads it with `HfApi.create_repo` + `upload_folder`, then
pins the uploaded commit in the card's remote-code snippet (`upload_file` of README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoTokenizer, GenerationConfig, PreTrainedModel
from transformers.utils import logging

from ..auto import REGISTRY, RegisteredClass, UnknownModelClassError, base_class_for
from ..auto import class_by_name as _class_by_name
from .cards import REVISION_PLACEHOLDER, ModelCardError, build_model_card, load_results
from .loading import load_checked

logger = logging.get_logger(__name__)

RESULT_FILES = ("eval_results.json", "results.json")  # train_lm/classifier/tagger; seq2seq/transformer
EXTRA_FILES = ("sample.txt", "vectors.txt")  # a generated sample; word2vec's vectors in the C text format
# auto class -> the head kind that picks the card template (model_cards/<family>_<head>.md)
_HEADS = {
    "AutoModelForCausalLM": "lm",
    "AutoModelForSeq2SeqLM": "translation",
    "AutoModelForSequenceClassification": "classifier",
    "AutoModelForTokenClassification": "classifier",
    "AutoModelForMaskedLM": "embeddings",
    "AutoModelForPreTraining": "embeddings",
    "AutoModel": "base",
}


class PublishError(ValueError):
    """A folder that cannot be published as it is (no model, unknown class, no tokenizer)."""


def registered_classes() -> list[RegisteredClass]:
    """Every row of the static registry (`hf_seq.auto.REGISTRY`)."""
    return list(REGISTRY)


def class_by_name(name: str) -> RegisteredClass:
    try:
        return _class_by_name(name)
    except UnknownModelClassError as e:
        raise PublishError(str(e)) from e


def entry_for_model(model: PreTrainedModel) -> RegisteredClass:
    return class_by_name(type(model).__name__)


def find_model_dir(folder: str | os.PathLike) -> Path:
    """The folder holding config.json: `folder` itself or its `model/` subfolder (seq2seq / transformer runs)."""
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"model folder {str(folder)!r} does not exist")
    for candidate in (folder, folder / "model"):
        if (candidate / "config.json").is_file():
            return candidate
    raise PublishError(f"{str(folder)!r} holds no config.json (nor does {str(folder / 'model')!r}): not a saved model")


def clean_generation_config(generation_config: GenerationConfig, model_config) -> GenerationConfig:
    """Drop every value equal to generate()'s own default (what `Seq2SeqTrainer` writes in, HF-NOTES) and fill the
    special token ids from the model config; what a training script set on purpose stays."""
    # generate()'s defaults, plus the output flags GenerationConfig.from_model_config copies from a config (False)
    defaults = {**GenerationConfig()._get_default_generation_params(), "output_attentions": False,
                "output_hidden_states": False}
    blank = GenerationConfig()
    kept = {
        k: v
        for k, v in generation_config.to_diff_dict().items()
        if not k.startswith("_") and k != "transformers_version"
        and not (k in defaults and defaults[k] == v) and not (hasattr(blank, k) and getattr(blank, k) == v)
    }
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
        value = getattr(model_config, key, None)
        if kept.get(key) is None and value is not None:
            kept[key] = value
    return GenerationConfig(**kept)


def entry_for_folder(model_dir: str | os.PathLike) -> RegisteredClass:
    """The registry row of the head a saved folder holds (config.json's first `architectures` entry)."""
    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PublishError(f"{path}: cannot be read as JSON ({e})") from e
    names = config.get("architectures") if isinstance(config, dict) else None
    if not names:
        raise PublishError(f"{path} names no `architectures`: cannot tell which head was trained")
    return class_by_name(names[0])


def _load_from_folder(model_dir: Path) -> tuple[PreTrainedModel, RegisteredClass]:
    entry = entry_for_folder(model_dir)
    # safetensors only, whole files, weights that fit the config, a tokenizer that fits the embedding (issue 20);
    # extra config attributes (a tagger's feature_vocab_size) are allowed
    model = load_checked(model_dir, entry.model_class, strict_config=False)
    return model, entry


def prepare_hub_folder(
    source: str | os.PathLike | PreTrainedModel,
    output_dir: str | os.PathLike,
    *,
    tokenizer=None,
    repo_id: str | None = None,
    dataset: str | None = None,
    license: str = "apache-2.0",
    language: list[str] | None = None,
    revision: str | None = None,
    tags: list[str] = (),
    results: dict | None = None,
    study_results: str | os.PathLike | None = None,
) -> Path:
    """Write the complete Hub folder for `source` (a run folder, a saved model folder, or a model object with
    `tokenizer`) to `output_dir`, which must not exist or be empty. Returns `output_dir` as a Path.

    A model object's `generation_config` is cleaned in place. Without `repo_id` the card's snippets name
    `YOUR_NAME/<folder name>`; `dataset` (a key of `hf_seq.hub.cards.DATASETS`) is guessed from the run when not
    given; `study_results` (the study's JSON) adds the study's rows for this kind of model to the card.
    """
    out = Path(output_dir)
    if out.exists() and any(out.iterdir()):
        raise PublishError(f"output folder {str(out)!r} is not empty; give a new folder")
    run_dir = model_dir = None
    if isinstance(source, PreTrainedModel):
        model, entry = source, entry_for_model(source)
        if tokenizer is None:
            raise PublishError("publishing a model object needs its `tokenizer=`")
    else:
        run_dir = Path(source)
        model_dir = find_model_dir(run_dir)
        model, entry = _load_from_folder(model_dir)
        if tokenizer is None:
            try:
                tokenizer = AutoTokenizer.from_pretrained(model_dir)
            except (OSError, ValueError) as e:
                raise PublishError(f"no tokenizer saved in {str(model_dir)!r}: {e}") from e
    out.mkdir(parents=True, exist_ok=True)
    model.eval()

    # 1. clean generation settings (generative heads only)
    if model.can_generate():
        model.generation_config = clean_generation_config(model.generation_config, model.config)

    # 2. weights + config + remote code (+ the translation pipeline, which saves model and tokenizer itself)
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class(entry.auto_class)
    if entry.auto_class == "AutoModelForSeq2SeqLM":
        from ..pipelines import save_translation_pipeline

        target = None
        if model_dir is not None and (model_dir / "target_tokenizer").is_dir():
            target = AutoTokenizer.from_pretrained(model_dir / "target_tokenizer")
        save_translation_pipeline(model, tokenizer, out, target_tokenizer=target)
    else:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    _add_sibling_classes_to_auto_map(out, entry, model)

    # 3. the run's results, sample and pictures
    if results is None:
        results = {}
        for folder in [d for d in (model_dir, run_dir) if d is not None]:
            for name in RESULT_FILES:
                if (folder / name).is_file() and not results:
                    results = json.loads((folder / name).read_text(encoding="utf-8"))
    if results:
        (out / "eval_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    pictures = []
    for folder in [d for d in (model_dir, run_dir) if d is not None]:
        for path in sorted(folder.glob("*.png")) + [folder / n for n in EXTRA_FILES]:
            if path.is_file() and not (out / path.name).exists():
                shutil.copyfile(path, out / path.name)
                if path.suffix == ".png":
                    pictures.append(path.name)

    # 4. model card
    write_model_card(out, repo_id=repo_id or f"YOUR_NAME/{out.resolve().name}", dataset=dataset, license=license,
                     language=language, revision=revision, tags=tags, pictures=pictures, model=model, entry=entry,
                     study_results=study_results)
    logger.info("Hub folder ready in %s: %s", out, ", ".join(sorted(p.name for p in out.iterdir())))
    return out


def _add_sibling_classes_to_auto_map(out: Path, entry: RegisteredClass, model: PreTrainedModel) -> None:
    """More Auto classes for the same weights, when their code ships in the folder: `AutoModel` for the base model the
    head wraps (under `base_model_prefix`; feature extraction), and any other head of the family whose weights are
    exactly these (word2vec's pre-training and fill-mask heads)."""
    extra = {}
    base = base_class_for(entry)
    if base is not None and entry.auto_class != "AutoModel" and isinstance(
        getattr(model, model.base_model_prefix, None), base
    ):
        extra["AutoModel"] = base
    keys = set(model.state_dict())
    shared = {"AutoModelForPreTraining", "AutoModelForMaskedLM"}  # one output layer serves both objectives
    for other in registered_classes() if entry.auto_class in shared else []:
        if other.config_class is entry.config_class and other.auto_class in shared - {entry.auto_class}:
            with torch.device("meta"):
                sibling = other.model_class(model.config)
            if set(sibling.state_dict()) == keys:
                extra[other.auto_class] = other.model_class
    path = out / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    for auto_name, cls in extra.items():
        module = cls.__module__.rsplit(".", 1)[-1]
        if (out / f"{module}.py").is_file():
            config.setdefault("auto_map", {}).setdefault(auto_name, f"{module}.{cls.__name__}")
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_model_card(folder: str | os.PathLike, *, repo_id: str, model=None, entry: RegisteredClass | None = None,
                     pictures: list[str] | None = None, study_results: str | os.PathLike | None = None,
                     **card_kwargs) -> Path:
    """(Re)render README.md of a saved model folder (a Hub folder, or a run folder with the model at its root) from
    its config.json, eval_results.json (`train_seconds` there is the run's total training time, every resumed session
    included), sample.txt and pictures. `study_results` (the study's JSON) adds the study's rows; `card_kwargs` go to
    `build_model_card` (dataset, license, language, revision, tags, extra_files). Written atomically."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if entry is None:
        entry = class_by_name((config.get("architectures") or [""])[0])
    if pictures is None:
        pictures = sorted(p.name for p in folder.glob("*.png"))
    card_kwargs.setdefault("extra_files", [n for n in EXTRA_FILES if (folder / n).is_file()])
    sample_path = folder / "sample.txt"
    results = load_results(folder)
    parameters = sum(p.numel() for p in model.parameters()) if model is not None else results.get("parameters")
    card = build_model_card(
        config=config,
        model_class=entry.model_class.__name__,
        auto_class=entry.auto_class,
        family=entry.family,
        head=_HEADS[entry.auto_class],
        repo_id=repo_id,
        results=results,
        pictures=pictures,
        sample=sample_path.read_text(encoding="utf-8") if sample_path.is_file() else None,
        parameters=parameters,
        study_results=study_results,
        **card_kwargs,
    )
    path = folder / "README.md"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".README.", suffix=".tmp")
    os.close(fd)
    try:
        card.save(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make the card private to its writer
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def publish(
    source: str | os.PathLike | PreTrainedModel,
    repo_id: str | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    tokenizer=None,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload hf-seq model",
    pin_revision: bool = True,
    api=None,
    **card_kwargs,
):
    """Prepare the Hub folder of `source` and upload it to `repo_id`.

    Without `repo_id` nothing is uploaded: the folder is written to `output_dir` (required then) and its path
    returned. `card_kwargs` go to `prepare_hub_folder` (dataset, license, language, tags, results, study_results). With `repo_id`: `HfApi.create_repo(exist_ok=True)` + `upload_folder` (replacing whatever the repo
    held), then README.md re-rendered with
    the uploaded commit pinned as `revision=` in the remote-code snippet (in place of `COMMIT_SHA`) and uploaded with
    `upload_file`. Returns the
    `CommitInfo` of the folder upload.
    """
    if repo_id is None and output_dir is None:
        raise PublishError("give a `repo_id` to upload, or an `output_dir` for a local dry run")
    cleanup = None
    if output_dir is None:
        cleanup = tempfile.mkdtemp(prefix="hf_seq_publish_")
        output_dir = Path(cleanup) / repo_id.split("/")[-1]
    try:
        folder = prepare_hub_folder(source, output_dir, tokenizer=tokenizer, repo_id=repo_id, **card_kwargs)
        if repo_id is None:
            return folder
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi(token=token)
        api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
        # delete_patterns="*": the repo ends up exactly this folder (stale files of a Trainer push or an earlier
        # publish go in the same commit; huggingface_hub never deletes .gitattributes)
        info = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder),
                                 commit_message=commit_message, delete_patterns="*")
        oid = getattr(info, "oid", None)
        if pin_revision and oid:
            readme = folder / "README.md"
            readme.write_text(readme.read_text(encoding="utf-8").replace(REVISION_PLACEHOLDER, oid), encoding="utf-8")
            api.upload_file(repo_id=repo_id, repo_type="model", path_or_fileobj=str(folder / "README.md"),
                            path_in_repo="README.md", commit_message=f"Model card: pin revision {oid[:10]}")
        return info
    finally:
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)


__all__ = [
    "ModelCardError",
    "PublishError",
    "RegisteredClass",
    "clean_generation_config",
    "entry_for_folder",
    "find_model_dir",
    "prepare_hub_folder",
    "publish",
    "registered_classes",
    "write_model_card",
]
