"""`hf-seq`: one command line for every hf-seq model.

    hf-seq train configs/lstm_timemachine.yaml [--smoke ...]     train from an experiment file (picks the script)
    hf-seq evaluate MODEL FILE                                   score a model on a file (its task's metric)
    hf-seq generate MODEL "the time traveller"                   continue a prompt (language models)
    hf-seq translate MODEL "a sentence" | --file F               translate (encoder-decoders)
    hf-seq similar MODEL WORD                                    nearest words (word2vec)
    hf-seq average RUN_FOLDER --last 5 --output-dir OUT          average the last checkpoints into one model
    hf-seq publish RUN_FOLDER [REPO_ID]                          complete Hub folder + upload

MODEL is a local folder (a training run's output_dir works too) or a Hub model id; both load through the
transformers Auto classes, so they behave the same.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

from .hub import PublishError, RegisteredClass, class_by_name, find_model_dir
from .training.experiment import ConfigError, check_keys, read_yaml

TRAINING_DIR = Path(__file__).resolve().parent.parent / "training"
# script -> the model families whose config fields its `model` section takes
SCRIPTS = {
    "train_lm.py": ("recurrent", "transformer"),  # RNN/GRU/LSTM, or `architecture: transformer` (decoder-only)
    "train_classifier.py": "recurrent",
    "train_tagger.py": "recurrent",
    "train_seq2seq.py": "seq2seq",
    "train_transformer.py": "transformer",
    "train_word2vec.py": "word2vec",
}
_MODEL_EXTRAS = {"recurrent": {"architecture", "nonlinearity", "word_vectors", "freeze_embeddings"},
                 "transformer": {"architecture"}}
_SEQ2SEQ_ARGS = {"train_seq2seq.py", "train_transformer.py"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
COMMAND_TASKS = {  # command -> tasks it serves, and how to name them in an error
    "generate": ({"text-generation"}, "a language model (…ForCausalLM)"),
    "translate": ({"hf-seq-translation"}, "an encoder-decoder translation model (…ForConditionalGeneration)"),
    "similar": (None, "a word2vec model"),
}


def _emit(*args, file=None) -> None:
    """The command's output (stdout) or its error lines (stderr): the one place the CLI prints."""
    print(*args, file=file or sys.stdout)  # noqa: T201


class CLIError(Exception):
    """A user error: printed as `hf-seq <command>: error: <message>`, exit status 2."""


# --- train -----------------------------------------------------------------------------------------------------------
def _dataclass_fields_in(script: Path, class_name: str) -> set[str] | None:
    """Field names of `class_name` in `script`, read from its source (no import: cheap, no side effects)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    return None


def _model_keys(families: str | tuple[str, ...]) -> set[str]:
    from . import hub

    families = (families,) if isinstance(families, str) else families
    keys = set().union(*(_MODEL_EXTRAS.get(f, set()) for f in families))
    for entry in hub.registered_classes():
        if entry.family in families:
            keys |= {f.name for f in dataclasses.fields(entry.config_class)}
            keys |= set(getattr(entry.config_class, "attribute_map", {}))
    return keys


def _training_keys(script: str) -> set[str]:
    from transformers import Seq2SeqTrainingArguments, TrainingArguments

    if script == "train_word2vec.py":  # its own SGD loop, not Trainer
        from .models.word2vec.training_word2vec import Word2VecTrainingArguments as cls
    else:
        cls = Seq2SeqTrainingArguments if script in _SEQ2SEQ_ARGS else TrainingArguments
    return {f.name for f in dataclasses.fields(cls) if f.init}


# sections a script reads into its own dataclasses: section -> class name in the script
_SCRIPT_SECTIONS = {"data": "DataArguments", "generate": "GenerateArguments", "output": "OutputArguments"}


def script_schema(script: Path) -> dict[str, set[str]]:
    """{section: allowed keys} of a training script's experiment files."""
    schema = {"model": _model_keys(SCRIPTS[script.name]), "training": _training_keys(script.name)}
    for section, class_name in _SCRIPT_SECTIONS.items():
        fields = _dataclass_fields_in(script, class_name)
        if fields is not None:
            schema[section] = fields
    return schema


def training_dir() -> Path:
    if not TRAINING_DIR.is_dir():
        raise CLIError(
            f"the training scripts are not installed: expected {TRAINING_DIR} next to the hf_seq package. "
            "`hf-seq train` needs a source checkout (git clone ... && pip install -e .)"
        )
    return TRAINING_DIR


def choose_script(config_path: str, script: str | None = None) -> Path:
    """The training script an experiment file is written for, from its sections and keys.

    Every section and key must be one the script accepts; a file that fits no script is refused naming the bad key and
    the allowed ones (for the script it fits best)."""
    folder = training_dir()
    doc = read_yaml(config_path)
    available = [folder / name for name in SCRIPTS if (folder / name).is_file()]
    if script:
        name = script if script.endswith(".py") else f"train_{script}.py"
        if not (folder / name).is_file():
            raise CLIError(f"--script {script!r}: no {name} in {folder}; have {', '.join(p.name for p in available)}")
        available = [folder / name]
    fits, misfits = [], []
    for path in available:
        schema = script_schema(path)
        bad = [("top level", k) for k in doc if k not in schema]
        for section, allowed in schema.items():
            values = doc.get(section) or {}
            if isinstance(values, dict):
                bad += [(section, k) for k in values if k not in allowed]
        (misfits if bad else fits).append((len(bad), path, schema, bad))
    if len(fits) == 1:
        return fits[0][1]
    if len(fits) > 1:
        names = ", ".join(p.name for _, p, _, _ in fits)
        raise CLIError(f"{config_path} fits several training scripts ({names}); pick one with --script NAME")
    _, path, schema, bad = min(misfits, key=lambda m: m[0])
    section = bad[0][0]
    if section == "top level":
        check_keys("top level", doc, list(schema), f"{config_path} (for {path.name})")
    check_keys(section, doc[section], schema[section], f"{config_path} (for {path.name})")
    raise AssertionError("unreachable")  # check_keys raised


def _load_script(path: Path):
    sys.path.insert(0, str(path.parent))  # train_classifier.py imports its sibling classification_common.py
    spec = importlib.util.spec_from_file_location(f"hf_seq_training_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _output_dir(doc: dict, extra: list[str]) -> str | None:
    """Where the script writes: training.output_dir (output.output_dir for word2vec), as overridden on the line."""
    out = (doc.get("training") or {}).get("output_dir") or (doc.get("output") or {}).get("output_dir")
    for i, arg in enumerate(extra):
        value = extra[i + 1] if i + 1 < len(extra) else None
        if arg in ("--output_dir", "--set") and value and (arg == "--output_dir" or value.split("=")[0].endswith(
                ".output_dir")):
            out = value.split("=", 1)[-1]
        elif arg.startswith("--output_dir="):
            out = arg.split("=", 1)[1]
        elif arg.startswith(("training.output_dir=", "output.output_dir=")):
            out = arg.split("=", 1)[1]
    return out


def cmd_train(args, extra: list[str]) -> int:
    script = choose_script(args.config, args.script)
    doc = read_yaml(args.config)
    training = doc.get("training") or {}
    repo_id = args.publish
    if not repo_id and training.get("push_to_hub") and "hf_seq.hub" not in script.read_text(encoding="utf-8"):
        # the script leaves Trainer's partial push: publish the complete folder over it (same repo id rule)
        repo_id = training.get("hub_model_id") or os.path.basename(os.path.abspath(_output_dir(doc, extra) or "."))
    _emit(f"hf-seq train: {args.config} -> {script.relative_to(script.parent.parent)}", file=sys.stderr)
    module = _load_script(script)
    module.main([args.config, *extra])
    if repo_id:
        out = _output_dir(doc, extra)
        info = _publish(out, repo_id, dataset=args.dataset, private=bool(training.get("hub_private_repo")),
                        token=training.get("hub_token"))
        _emit(f"published {out} to {repo_id} ({getattr(info, 'oid', info)})")
    return 0


# --- loading a model (folder or Hub id) -----------------------------------------------------------------------------
def resolve(name: str) -> str:
    """A local folder (a run folder's model/ subfolder too) or a Hub id; a missing local path is an error."""
    if os.path.exists(name):
        try:
            return str(find_model_dir(name))
        except PublishError as e:
            raise CLIError(str(e)) from e
    looks_local = (name.startswith((".", "/", "~")) or name.count("/") > 1 or not _HUB_ID.match(name)
                   or ("/" in name and os.path.isdir(name.split("/")[0])))  # runs/typo: a folder, not a Hub id
    if looks_local:
        raise CLIError(f"model folder {name!r} does not exist")
    return name  # a Hub id


def load(name: str, command: str, revision: str | None = None):
    """(model, tokenizer, registered class) through the Auto classes; refuses a model of the wrong family."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    source = resolve(name)
    try:
        config = AutoConfig.from_pretrained(source, revision=revision)
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot load {name!r} as a local folder or a Hub model id: {e}") from e
    arch = (getattr(config, "architectures", None) or [None])[0]
    try:
        entry = class_by_name(arch or "")
    except PublishError as e:
        raise CLIError(f"{name!r} is not an hf-seq model ({arch or config.model_type}): {e}") from e
    _check_family(entry, command, name)
    model = getattr(transformers, entry.auto_class).from_pretrained(source, revision=revision).eval()
    tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
    return model, tokenizer, entry


def _check_family(entry: RegisteredClass, command: str, name: str) -> None:
    if command not in COMMAND_TASKS:
        return
    tasks, wanted = COMMAND_TASKS[command]
    ok = entry.family == "word2vec" if command == "similar" else entry.task in tasks
    if not ok:
        raise CLIError(
            f"{name!r} is a {entry.family} {entry.model_class.__name__} ({entry.task}); "
            f"`hf-seq {command}` needs {wanted}"
        )


# --- generate / translate / similar ---------------------------------------------------------------------------------
def cmd_generate(args, extra) -> int:
    import torch
    from transformers import set_seed

    model, tok, _ = load(args.model, "generate", args.revision)
    set_seed(args.seed)
    kwargs = {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams}
    if args.do_sample:
        kwargs.update(do_sample=True, temperature=args.temperature, top_k=args.top_k)
    elif not model.generation_config.do_sample:
        kwargs["do_sample"] = False
    enc = tok(args.prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, **kwargs)
    _emit(tok.decode(out[0], skip_special_tokens=True))
    return 0


def _read_lines(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise CLIError(f"input file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def _translate_all(model, tok, sources: list[str], batch_size: int, num_beams: int | None, progress: bool):
    from tqdm.auto import tqdm

    from .pipelines import Seq2SeqTranslationPipeline

    pipe = Seq2SeqTranslationPipeline(model=model, tokenizer=tok)
    kwargs = {"num_beams": num_beams} if num_beams else {}
    out = []
    for start in tqdm(range(0, len(sources), batch_size), desc="translating", disable=not progress, unit="batch"):
        batch = sources[start : start + batch_size]
        out += [r[0]["translation_text"] for r in pipe(batch, batch_size=len(batch), **kwargs)]
    return out


def cmd_translate(args, extra) -> int:
    model, tok, _ = load(args.model, "translate", args.revision)
    sources = list(args.text) + (_read_lines(args.file) if args.file else [])
    if not sources:
        raise CLIError("nothing to translate: give TEXT arguments or --file")
    for line in _translate_all(model, tok, sources, args.batch_size, args.num_beams, progress=len(sources) > args.batch_size):
        _emit(line)
    return 0


def cmd_similar(args, extra) -> int:
    import torch

    model, tok, _ = load(args.model, "similar", args.revision)
    vectors = model.get_input_embeddings().weight.detach()
    ids = tok(args.word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or ids[0] == tok.unk_token_id:
        raise CLIError(f"{args.word!r} is not in the vocabulary of {args.model!r}")
    unit = torch.nn.functional.normalize(vectors, dim=-1)
    scores = unit @ unit[ids[0]]
    counts = getattr(model.config, "word_counts", None)
    if counts is not None:  # special tokens and dropped words never trained
        scores = scores.masked_fill(torch.tensor(counts) == 0, -2.0)
    scores[ids[0]] = -2.0
    top = scores.topk(min(args.top_k, int((scores > -2).sum())))
    for score, idx in zip(top.values.tolist(), top.indices.tolist()):
        _emit(f"{tok.convert_ids_to_tokens(idx)}\t{score:.4f}")
    return 0


# --- evaluate --------------------------------------------------------------------------------------------------------
def _perplexity(model, tok, path, batch_size, block_size, progress):
    import numpy as np

    lines = _read_lines(path)
    ids = []
    for line in lines:
        ids += tok(line, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    from .evaluation import evaluate_perplexity, windowed_perplexity  # as train_lm.py evaluates

    if getattr(model.config, "model_type", "") in ("hf_seq_rnn", "hf_seq_gru", "hf_seq_lstm"):
        # the state carried across windows
        r = evaluate_perplexity(model, np.asarray(ids), batch_size=batch_size, bptt=block_size, progress=progress)
    else:
        # no state: a sliding window, every token predicted once with >= block_size // 2 tokens of context
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and block_size > limit:
            raise CLIError(f"--block-size {block_size} exceeds the model's max_position_embeddings={limit}")
        r = windowed_perplexity(model, np.asarray(ids), window=block_size, stride=max(1, block_size // 2),
                                batch_size=batch_size, progress=progress)
    return {"loss": r["loss"], "perplexity": r["perplexity"], "tokens": len(ids)}


def _tsv(path: str, columns: int) -> list[list[str]]:
    rows = [line.split("\t") for line in _read_lines(path)]
    bad = [i + 1 for i, r in enumerate(rows) if len(r) < columns]
    if bad:
        raise CLIError(f"{path}: line {bad[0]} has fewer than {columns} tab-separated columns")
    return rows


def cmd_evaluate(args, extra) -> int:
    import torch

    model, tok, entry = load(args.model, "evaluate", args.revision)
    progress = not args.quiet
    task = entry.task
    if task == "text-generation":
        result = _perplexity(model, tok, args.file, args.batch_size, args.block_size, progress)
    elif task == "hf-seq-translation":
        import sacrebleu

        rows = _tsv(args.file, 2)
        hyps = _translate_all(model, tok, [r[0] for r in rows], args.batch_size, None, progress)
        refs = [r[1] for r in rows]
        result = {"bleu": sacrebleu.corpus_bleu(hyps, [refs]).score, "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score,
                  "sentences": len(rows)}
    elif task == "text-classification":
        rows = _tsv(args.file, 2)
        label2id = {str(k): v for k, v in model.config.label2id.items()}
        unknown = sorted({r[0] for r in rows} - set(label2id))
        if unknown:
            raise CLIError(f"{args.file}: labels {unknown} are not the model's ({sorted(label2id)})")
        correct = 0
        from tqdm.auto import tqdm

        for start in tqdm(range(0, len(rows), args.batch_size), desc="classifying", disable=not progress):
            batch = rows[start : start + args.batch_size]
            enc = tok([r[1] for r in batch], padding=True, truncation=True, return_tensors="pt")
            with torch.no_grad():
                pred = model(**enc).logits.argmax(-1).tolist()
            correct += sum(p == label2id[r[0]] for p, r in zip(pred, batch))
        result = {"accuracy": correct / len(rows), "examples": len(rows)}
    elif task == "token-classification":
        result = _evaluate_tagger(model, tok, args.file, args.batch_size, progress)
    elif entry.family == "word2vec":
        result = _evaluate_similarity(model, tok, args.file)
    else:
        raise CLIError(f"`hf-seq evaluate` has no metric for {entry.model_class.__name__} ({task})")
    _emit(json.dumps(result, indent=2))
    return 0


def _evaluate_tagger(model, tok, path, batch_size, progress):
    """CoNLL format: one `word ... tag` per line (tag last), a blank line between sentences."""
    import torch
    from tqdm.auto import tqdm

    if not os.path.isfile(path):
        raise CLIError(f"input file {path!r} does not exist")
    sents, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in list(f) + [""]:
            parts = line.split()
            if not parts and words:
                sents.append((words, tags))
                words, tags = [], []
            elif parts:
                words.append(parts[0])
                tags.append(parts[-1])
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    gold, pred = [], []
    for start in tqdm(range(0, len(sents), batch_size), desc="tagging", disable=not progress):
        batch = sents[start : start + batch_size]
        enc = tok([w for w, _ in batch], is_split_into_words=True, padding=True, return_tensors="pt")
        with torch.no_grad():
            out = model(**enc).logits.argmax(-1)
        for i, (w, t) in enumerate(batch):
            first = {}
            for pos, wid in enumerate(enc.word_ids(i)):
                if wid is not None and wid not in first:
                    first[wid] = pos
            gold.append(t)
            pred.append([id2label[int(out[i, first[j]])] for j in range(len(w))])
    flat = [(g, p) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps)]
    result = {"accuracy": sum(g == p for g, p in flat) / len(flat), "sentences": len(sents)}
    try:
        from seqeval.metrics import f1_score

        result["f1"] = f1_score(gold, pred)
    except ImportError:
        pass
    return result


def _evaluate_similarity(model, tok, path):
    """Word-similarity file `word1<TAB>word2<TAB>score`: Spearman correlation of cosine vs score, with coverage."""
    import torch

    rows = [r for r in (line.split() for line in _read_lines(path)) if len(r) >= 3]
    vocab = tok.get_vocab()
    vectors = torch.nn.functional.normalize(model.get_input_embeddings().weight.detach(), dim=-1)
    pairs = [(float((vectors[vocab[a]] * vectors[vocab[b]]).sum()), float(s))
             for a, b, s in (r[:3] for r in rows) if a in vocab and b in vocab]
    if len(pairs) < 2:
        raise CLIError(f"{path}: fewer than 2 pairs have both words in the vocabulary")

    def ranks(xs):  # average rank for ties, as scipy.stats.spearmanr
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        r = [0.0] * len(xs)
        start = 0
        while start < len(order):
            end = start
            while end + 1 < len(order) and xs[order[end + 1]] == xs[order[start]]:
                end += 1
            for k in range(start, end + 1):
                r[order[k]] = (start + end) / 2
            start = end + 1
        return torch.tensor(r, dtype=torch.float64)

    a, b = ranks([p[0] for p in pairs]), ranks([p[1] for p in pairs])
    spearman = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    return {"spearman": spearman, "pairs": len(pairs), "coverage": len(pairs) / len(rows)}


# --- publish ---------------------------------------------------------------------------------------------------------
def _publish(folder, repo_id, **kwargs):
    from .hub import publish

    if folder is None or not os.path.exists(folder):
        raise CLIError(f"model folder {folder!r} does not exist")
    return publish(folder, repo_id, **{k: v for k, v in kwargs.items() if v is not None})


def cmd_publish(args, extra) -> int:
    if args.repo_id is None and args.output_dir is None:
        raise CLIError("give a REPO_ID to upload, or --output-dir for a local dry run")
    result = _publish(args.folder, args.repo_id, output_dir=args.output_dir, dataset=args.dataset,
                      license=args.license, private=args.private, token=args.token)
    if args.repo_id is None:
        _emit(f"Hub folder written to {result}: {', '.join(sorted(os.listdir(result)))}")
    else:
        _emit(f"uploaded to https://huggingface.co/{args.repo_id} (commit {getattr(result, 'oid', '?')})")
    return 0


def cmd_average(args, extra) -> int:
    from .training.checkpointing import list_checkpoints, safetensors_problem, save_averaged_checkpoints

    complete = [c for c in list_checkpoints(args.folder)
                if os.path.isfile(os.path.join(c, "model.safetensors"))
                and not safetensors_problem(os.path.join(c, "model.safetensors"))]
    try:
        model_dir = resolve(args.folder)
    except CLIError:
        if not complete:
            raise
        model_dir = complete[0]  # a run still training: its newest checkpoint (config + tokenizer) is the template
    if not os.path.isdir(model_dir):
        raise CLIError(f"{args.folder!r} is not a local model folder")
    checkpoints = list(args.checkpoints)
    if args.last:
        if len(complete) < args.last:
            raise CLIError(f"--last {args.last}: {args.folder!r} has {len(complete)} checkpoint folders with "
                           f"complete weights")
        checkpoints += complete[: args.last][::-1]
    if not checkpoints:
        raise CLIError("name the checkpoint folders to average, or --last N for a run folder's newest N")
    try:
        out = save_averaged_checkpoints(model_dir, checkpoints, args.output_dir)
    except ValueError as e:
        raise CLIError(str(e)) from e
    _emit(f"averaged {len(checkpoints)} checkpoints ({', '.join(os.path.basename(c) for c in checkpoints)}) "
          f"into {out}")
    return 0


# --- parser ----------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-seq", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, help_, description, func):
        p = sub.add_parser(name, help=help_, description=description,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    def model_arg(p):
        p.add_argument("model", metavar="MODEL", help="local folder (a run's output_dir works) or Hub model id")
        p.add_argument("--revision", help="Hub branch, tag or commit to load (pin one for reproducible results)")

    p = add("train", "train a model from a YAML experiment file",
            "Train from an experiment file (configs/*.yaml). The training script (training/train_*.py) is chosen\n"
            "from the file's sections and keys; arguments after the file go to the script (e.g. --smoke,\n"
            "--output_dir DIR, section.key=value). With --publish REPO_ID, or `push_to_hub: true` + `hub_model_id`\n"
            "in the training section, the finished folder is published with `hf-seq publish`.", cmd_train)
    p.add_argument("config", metavar="CONFIG.yaml")
    p.add_argument("--script", help="force a script: lm, classifier, tagger, seq2seq, transformer, word2vec")
    p.add_argument("--publish", metavar="REPO_ID", help="upload the complete folder to this Hub repo afterwards")
    p.add_argument("--dataset", help="training data set for the model card (e.g. ptb, multi30k, timemachine)")

    p = add("evaluate", "score a model on a file with its task's metric",
            "Score MODEL on FILE with its task's metric; prints JSON.\n"
            "  language model:      text file -> perplexity\n"
            "  translation:         TSV source<TAB>reference -> sacreBLEU BLEU and chrF\n"
            "  text classification: TSV label<TAB>text -> accuracy\n"
            "  token tagger:        CoNLL file (word ... tag, blank line between sentences) -> accuracy, seqeval F1\n"
            "  word2vec:            word1 word2 score lines -> Spearman correlation", cmd_evaluate)
    model_arg(p)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=64, help="tokens per window for perplexity")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add("generate", "continue a prompt with a language model",
            "Continue PROMPT with a causal language model (greedy unless --do-sample; the model's own generation\n"
            "settings apply otherwise).", cmd_generate)
    model_arg(p)
    p.add_argument("prompt", metavar="PROMPT")
    p.add_argument("--max-new-tokens", type=int, default=50)
    p.add_argument("--do-sample", action="store_true")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)

    p = add("translate", "translate sentences with an encoder-decoder",
            "Translate TEXT arguments and/or the lines of --file with an encoder-decoder (RNN seq2seq or\n"
            "Transformer); one translation per line on stdout.", cmd_translate)
    model_arg(p)
    p.add_argument("text", nargs="*", metavar="TEXT")
    p.add_argument("--file", help="one source sentence per line")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-beams", type=int, help="default: the model's generation config")

    p = add("similar", "nearest words of a word2vec model",
            "Print the words whose vectors are closest (cosine) to WORD's, with their similarity.", cmd_similar)
    model_arg(p)
    p.add_argument("word", metavar="WORD")
    p.add_argument("--top-k", type=int, default=10)

    p = add("average", "average the weights of several checkpoints into one model folder",
            "Average the parameters of CHECKPOINT folders (or the run's newest --last N) into a model folder that\n"
            "keeps FOLDER's config, tokenizer, generation config and pipeline code (Vaswani et al. 2017 evaluate\n"
            "the average of the last 5 checkpoints).", cmd_average)
    p.add_argument("folder", metavar="RUN_FOLDER", help="a run folder (its model/ is used) or a model folder")
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT")
    p.add_argument("--last", type=int, help="average the run folder's newest N complete checkpoint-* folders")
    p.add_argument("--output-dir", required=True, help="where to write the averaged model folder")

    p = add("publish", "make a run folder Hub-complete and upload it",
            "Write the complete Hub folder of a training run (config, safetensors, tokenizer, clean generation\n"
            "config, remote code, custom pipeline, eval results, pictures, README.md model card) and upload it\n"
            "with huggingface_hub. Without REPO_ID, --output-dir writes the folder only (a dry run).", cmd_publish)
    p.add_argument("folder", metavar="RUN_FOLDER")
    p.add_argument("repo_id", nargs="?", metavar="REPO_ID")
    p.add_argument("--output-dir", help="where to write the Hub folder (default: a temporary folder)")
    p.add_argument("--dataset", help="training data set for the card (ptb, wikitext-2, multi30k, timemachine, ...)")
    p.add_argument("--license", default="apache-2.0")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", help="Hub token (default: the logged-in one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args, extra)
    except (CLIError, ConfigError, PublishError, FileNotFoundError) as e:
        _emit(f"hf-seq {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
