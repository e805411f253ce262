"""Publishing, one parametrised suite over every registered hf-seq class (hf_seq.hub.registered_classes()).

Each class: a tiny model saved as a training script would (run folder, leaked generation defaults, pickles) →
`prepare_hub_folder` → the folder is complete and clean; the card parses as Hub YAML and its numbers equal the
folder's eval_results.json; and, in ONE process where hf_seq cannot be imported, every folder loads with
`trust_remote_code=True`, gives the local outputs (atol 1e-6) and runs its task pipeline like the local one.
A family without an entry in FAMILIES below fails its rows with the name of what to add.
"""

import json
import math
import os
import shutil

import pytest
import torch
from conftest import run_without_hf_seq
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results
from transformers import GenerationConfig

import hf_seq
from hf_seq.hub import PublishError, clean_generation_config, prepare_hub_folder, publish, registered_classes
from hf_seq.hub.cards import card_numbers_match
from hf_seq.tokenization import build_word_level_tokenizer

CORPUS = ["the cat sat on the mat", "the dog ran to the cat", "a bird sat on a dog", "the mat was red and the dog was"]
ENTRIES = registered_classes()
ROW_IDS = [e.model_class.__name__ for e in ENTRIES]


# --- one tiny model + tokenizer + results per family ---------------------------------------------------------------
def _word_tokenizer(**kw):
    return build_word_level_tokenizer(CORPUS, **kw)


def _recurrent(entry):
    padding = "left" if entry.auto_class == "AutoModelForCausalLM" else "right"
    tok = _word_tokenizer(padding_side=padding)
    kw = dict(vocab_size=len(tok), hidden_size=16, embedding_size=12, num_hidden_layers=1, embedding_dropout=0.0,
              hidden_dropout=0.0, output_dropout=0.0)
    if entry.auto_class == "AutoModelForSequenceClassification":
        kw.update(num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
                  bidirectional=True, classifier_pooling="max")
    if entry.auto_class == "AutoModelForTokenClassification":
        tags = ["O", "B-NP", "I-NP"]
        kw.update(num_labels=3, id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)},
                  bidirectional=True)
    return entry.config_class(**kw), tok, "ptb"


def _seq2seq(entry):
    tok = _word_tokenizer()
    config = entry.config_class(vocab_size=len(tok), hidden_size=16, encoder_embedding_size=8,
                                decoder_embedding_size=8, attention="bahdanau", dropout=0.0)
    return config, tok, "tatoeba"


def _transformer(entry):
    tok = _word_tokenizer(padding_side="left" if entry.auto_class == "AutoModelForCausalLM" else "right")
    config = entry.config_class(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_attention_heads=2,
                                encoder_layers=1, decoder_layers=1, max_position_embeddings=32, dropout=0.0)
    return config, tok, "multi30k"


def _word2vec(entry):
    from hf_seq.models.word2vec.training_word2vec import prepare_word2vec

    tok, config, _ = prepare_word2vec(CORPUS, min_count=1, vector_size=8, window=2, architecture="cbow")
    return config, tok, "text8"


FAMILIES = {"recurrent": _recurrent, "seq2seq": _seq2seq, "transformer": _transformer, "word2vec": _word2vec}


def _pipeline_task(entry, config):
    if entry.auto_class == "AutoModel" and getattr(config, "is_encoder_decoder", False):
        return None  # an encoder-decoder body needs decoder inputs: no pipeline runs on it
    return entry.task


def _inputs(entry, tok, config):
    enc = tok(CORPUS[:2], padding=True, return_tensors="pt")
    if entry.family == "word2vec" and entry.auto_class == "AutoModelForPreTraining":
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    inputs = dict(enc)
    if getattr(config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = tok(CORPUS[2:], padding=True, return_tensors="pt")["input_ids"]
    return inputs


def _main_output(out):
    for key in ("logits", "last_hidden_state", "hidden_states"):
        if key in out and out[key] is not None:
            return out[key]
    raise AssertionError(f"no tensor output among {list(out.keys())}")


def _results(entry, model, inputs):
    """A real measurement per task, in the key style of the training scripts (numbers the card must copy)."""
    with torch.no_grad():
        out = _main_output(model(**inputs)).float()
    score = float(out.softmax(-1).max(-1).values.mean()) if out.dim() > 1 else float(out.mean())
    by_task = {
        "AutoModelForCausalLM": {"validation_perplexity": math.exp(1 + score), "test_perplexity": math.exp(2 + score)},
        "AutoModelForSeq2SeqLM": {"test_bleu": 100 * score, "test_chrf": 50 * score, "dataset": "tatoeba",
                                  "direction": "en->fr"},
        "AutoModelForSequenceClassification": {"dev_accuracy": score, "test_accuracy": score / 2, "test_f1": score / 3},
        "AutoModelForTokenClassification": {"test_f1": score, "test_accuracy": score / 2},
    }
    if entry.family == "word2vec":  # train_word2vec.py's layout: nested analogy and word-pair evaluations
        results = {"analogies": {"total": score / 4, "semantic": score / 5, "total_questions": 10},
                   "word_pairs": {"EN-WS-353-ALL.txt": [[score, 0.1], [score / 2, 0.2], 0.3],
                                  "EN-SIMLEX-999.txt": [[score, 0.1], [score / 3, 0.2], 0.4]}}
    else:
        results = dict(by_task.get(entry.auto_class, {"test_accuracy": score}))
    results.update(parameters=sum(p.numel() for p in model.parameters()), train_seconds=1.5)
    return results


def _expected_metric_paths(results):
    """Where the numbers of a run are, written out independently of hf_seq.hub.cards."""
    if "analogies" in results:
        return {("analogies", "total"), ("word_pairs", "EN-WS-353-ALL.txt", 1, 0),
                ("word_pairs", "EN-SIMLEX-999.txt", 1, 0)}
    return {(k,) for k in results if k.endswith(("perplexity", "accuracy", "f1", "bleu", "chrf"))}


PIPELINE_INPUTS = {
    "text-generation": ["the cat", "a dog sat on"],
    "hf-seq-translation": ["the cat sat", "a dog"],
    "text-classification": ["the cat sat on the mat", "the dog ran"],
    "token-classification": ["the cat sat on the mat"],
    "feature-extraction": ["the cat sat"],
    "fill-mask": ["the cat <mask> on the mat"],
}

# Runs here and in the process without hf_seq: one function, kept as source text.
PIPELINE_CODE = """
def run_pipeline(task, folder, texts, **kwargs):
    from transformers import pipeline

    if task == "hf-seq-translation":
        pipe = pipeline(model=folder, **kwargs)  # the folder's config names its custom pipeline
        return [r[0]["translation_text"] for r in pipe(texts, max_new_tokens=6, num_beams=2)]
    pipe = pipeline(task, model=folder, **kwargs)
    if task == "text-generation":
        return [r[0]["generated_text"] for r in pipe(texts, max_new_tokens=4, do_sample=False)]
    if task == "text-classification":
        return [[r["label"], round(r["score"], 5)] for r in pipe(texts)]
    if task == "token-classification":
        return [[[t["entity"], t["word"], round(float(t["score"]), 5)] for t in pipe(x)] for x in texts]
    if task == "fill-mask":
        return [[[r["token_str"], round(r["score"], 5)] for r in pipe(x, top_k=3)] for x in texts]
    if task == "feature-extraction":
        return [[round(v, 5) for row in pipe(x)[0] for v in row] for x in texts]
    raise ValueError(task)
"""
_ns = {}
exec(PIPELINE_CODE, _ns)
run_pipeline = _ns["run_pipeline"]

LEAKED = GenerationConfig()._get_default_generation_params()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Every registered class: run folder → Hub folder, local outputs, then ONE clean subprocess for all of them."""
    root = tmp_path_factory.mktemp("hub")
    rows, jobs = {}, []
    picture = root / "training_curve.png"
    from hf_seq.plotting import plot_training_curve

    plot_training_curve([{"step": s, "loss": 3.0 / s} for s in range(1, 6)], str(picture), title="tiny")
    for entry in ENTRIES:
        name = entry.model_class.__name__
        if entry.family not in FAMILIES:
            rows[name] = {"missing": entry.family}
            continue
        torch.manual_seed(0)
        config, tok, dataset = FAMILIES[entry.family](entry)
        model = entry.model_class(config).eval()
        inputs = _inputs(entry, tok, config)
        with torch.no_grad():
            expected = _main_output(model(**inputs))
        # a run folder as the training scripts leave it (encoder-decoders: model/ + results.json one level up)
        run = root / "runs" / name
        model_dir = run / "model" if config.is_encoder_decoder else run
        deliberate = {}
        if model.can_generate():
            deliberate = {"max_new_tokens": 5, "num_beams": 2} if config.is_encoder_decoder else {"max_new_tokens": 5}
            model.generation_config.update(**deliberate)
            model.generation_config.update(**LEAKED, defaults_only=True)  # what Seq2SeqTrainer does
        model.save_pretrained(model_dir)
        tok.save_pretrained(model_dir)
        results = _results(entry, model, inputs)
        (run / ("results.json" if config.is_encoder_decoder else "eval_results.json")).write_text(json.dumps(results))
        shutil.copyfile(picture, run / "training_curve.png")
        (run / "training_args.bin").write_bytes(b"pickle")  # must not travel
        (run / "checkpoint-1").mkdir()
        (run / "checkpoint-1" / "optimizer.pt").write_bytes(b"pickle")
        hub_dir = root / "hub" / name
        prepare_hub_folder(run, hub_dir, repo_id=f"someone/{name.lower()}", dataset=dataset)
        torch.save(inputs, hub_dir.parent / f"{name}.inputs.pt")
        task = _pipeline_task(entry, config)
        rows[name] = {"entry": entry, "hub": hub_dir, "results": results, "expected": expected, "inputs": inputs,
                      "task": task, "deliberate": deliberate, "config": config}
        jobs.append((entry.auto_class, name, str(hub_dir), task, PIPELINE_INPUTS.get(task)))

    # the cards' remote-code snippets, run as written (repo id -> folder) in the same process: a language model's and a
    # feature tagger's (the one token classifier no pipeline can drive)
    tagger_hub = root / "hub" / "feature_tagger"
    prepare_hub_folder(_feature_tagger_folder(root / "runs" / "feature_tagger"), tagger_hub, repo_id="someone/chunker")
    snippets = {}
    for repo_id, folder in {"someone/lstmforcausallm": root / "hub" / "LSTMForCausalLM",
                            "someone/chunker": tagger_hub}.items():
        snippets[repo_id] = _usage_blocks(folder, repo_id)

    remote = run_without_hf_seq(
        PIPELINE_CODE + f"""
import builtins, contextlib, io, json, torch, transformers
out = {{}}
for auto_name, name, folder, task, texts in {jobs!r}:
    model = getattr(transformers, auto_name).from_pretrained(folder, trust_remote_code=True).eval()
    inputs = torch.load(folder + ".inputs.pt")
    with torch.no_grad():
        o = model(**inputs)
    t = next(o[k] for k in ("logits", "last_hidden_state", "hidden_states") if k in o and o[k] is not None)
    out[name] = {{"class": type(model).__name__, "module": type(model).__module__, "values": t.flatten().tolist(),
                 "pipeline": run_pipeline(task, folder, texts, trust_remote_code=True) if task else None}}
prompts = []
builtins.input = lambda *a: prompts.append(a) or "n"  # transformers' "Do you wish to run the custom code?" prompt
out["card_snippets"] = {{}}
for repo_id, blocks in {dict((k, v[1]) for k, v in snippets.items())!r}.items():
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(blocks, repo_id + " card, remote-code block", "exec"), {{}})
    out["card_snippets"][repo_id] = {{"printed": printed.getvalue(), "prompts": len(prompts)}}
print(json.dumps(out))
""",
        root,
    )
    return {"rows": rows, "remote": remote, "root": root, "snippets": snippets}


def _row(published, name):
    row = published["rows"][name]
    if "missing" in row:
        pytest.fail(f"family {row['missing']!r} has no tiny model in tests/test_hub.py FAMILIES: add one")
    return row


@pytest.mark.parametrize("name", ROW_IDS)
def test_remote_code_loads_without_hf_seq_and_matches(published, name):
    row = _row(published, name)
    remote = published["remote"][name]
    assert remote["class"] == name  # same class, from the folder's code
    assert not remote["module"].startswith("hf_seq"), remote["module"]
    want = row["expected"]
    torch.testing.assert_close(torch.tensor(remote["values"], dtype=want.dtype), want.flatten(), atol=1e-6, rtol=0)
    # local classes from the published folder give the same numbers too
    import transformers

    local = getattr(transformers, row["entry"].auto_class).from_pretrained(row["hub"]).eval()
    assert type(local) is row["entry"].model_class
    with torch.no_grad():
        torch.testing.assert_close(_main_output(local(**row["inputs"])), want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ROW_IDS)
def test_task_pipeline_runs_from_folder_locally_and_remotely(published, name):
    row = _row(published, name)
    task = row["task"]
    if task is None:
        assert row["entry"].auto_class == "AutoModel" and row["config"].is_encoder_decoder
        return
    texts = PIPELINE_INPUTS[task]
    kwargs = {"trust_remote_code": True} if task == "hf-seq-translation" else {}
    local = run_pipeline(task, str(row["hub"]), texts, **kwargs)
    assert len(local) == len(texts)  # a random tiny translator may stop at once: "" is a valid translation
    if task != "hf-seq-translation":
        assert all(local)
    if task == "text-generation":
        assert all(out.startswith(prompt) and out != prompt for out, prompt in zip(local, texts))
    remote = published["remote"][name]["pipeline"]
    assert json.loads(json.dumps(local)) == remote


@pytest.mark.parametrize("name", ROW_IDS)
def test_folder_is_complete_and_clean(published, name):
    row = _row(published, name)
    hub, entry, config = row["hub"], row["entry"], row["config"]
    files = set(os.listdir(hub))
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
            "eval_results.json", "training_curve.png"} <= files
    assert not files & {"training_args.bin", "optimizer.pt", "checkpoint-1", "results.json", "pytorch_model.bin"}
    saved = json.loads((hub / "config.json").read_text())
    module = entry.model_class.__module__.rsplit(".", 1)[-1]
    assert saved["auto_map"][entry.auto_class] == f"{module}.{name}" and f"{module}.py" in files
    assert saved["auto_map"]["AutoConfig"].endswith(type(config).__name__)
    if entry.task == "hf-seq-translation":
        assert "translation.py" in files and "hf-seq-translation" in saved["custom_pipelines"]
    if entry.auto_class in ("AutoModelForPreTraining", "AutoModelForMaskedLM"):  # one output layer, both heads
        assert {"AutoModel", "AutoModelForPreTraining", "AutoModelForMaskedLM"} <= set(saved["auto_map"])
    elif entry.auto_class != "AutoModel":
        assert set(saved["auto_map"]) <= {"AutoConfig", entry.auto_class, "AutoModel"}
    if row["deliberate"]:
        gen = json.loads((hub / "generation_config.json").read_text())
        gen.pop("transformers_version")
        ids = {k: getattr(config, k) for k in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id")
               if getattr(config, k, None) is not None}
        assert gen == {**row["deliberate"], **ids}  # no leaked defaults (max_length 20, top_k 50, ...)
    assert json.loads((hub / "eval_results.json").read_text()) == row["results"]


@pytest.mark.parametrize("name", ROW_IDS)
def test_model_card_metadata_and_numbers(published, name):
    row = _row(published, name)
    card = ModelCard.load(row["hub"] / "README.md")
    data = card.data
    assert data.library_name == "transformers" and "hf-seq" in data.tags and "custom_code" in data.tags
    assert data.pipeline_tag == {"hf-seq-translation": "translation"}.get(row["entry"].task, row["entry"].task)
    # YAML round trip and a valid model-index
    again = ModelCardData(**data.to_dict())
    assert again.to_dict() == data.to_dict()
    model_name, evals = model_index_to_eval_results(data.to_dict()["model-index"])
    assert model_name == name.lower() and len(evals) == len(data.eval_results) > 0
    assert eval_results_to_model_index(model_name, evals) == data.to_dict()["model-index"]
    # every number is the run's, and every metric of the run is on the card
    results = json.loads((row["hub"] / "eval_results.json").read_text())
    found = card_numbers_match(card, results)
    assert set(found) == _expected_metric_paths(results)
    for path, value in found.items():
        at = results
        for key in path:
            at = at[key]
        assert at == value, path
    table = card.text[card.text.index("| metric | split | value |"):].split("\n\n")[0]  # the metrics table only
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == len(found) + 1
    text = card.text
    assert "![" in text and "(training_curve.png)" in text
    assert 'trust_remote_code=True, revision="COMMIT_SHA"' in text
    assert "License:" in text and "## Limitations" in text


def test_every_registered_family_has_a_row():
    assert {e.family for e in ENTRIES} <= set(FAMILIES), "add the new family to FAMILIES"
    heads = {e.auto_class for e in ENTRIES}
    assert {"AutoModelForCausalLM", "AutoModelForSequenceClassification", "AutoModelForTokenClassification",
            "AutoModelForSeq2SeqLM", "AutoModelForMaskedLM", "AutoModel"} <= heads


def test_publish_uploads_exactly_the_folder_and_pins_the_commit(published, tmp_path, monkeypatch):
    """The upload path with a mocked HfApi: the calls, their arguments and the files that would go out."""
    row = published["rows"]["LSTMForCausalLM"]
    run = published["root"] / "runs" / "LSTMForCausalLM"
    calls = []

    class FakeApi:
        def create_repo(self, **kw):
            calls.append(("create_repo", kw))

        def upload_folder(self, **kw):
            folder = kw["folder_path"]
            calls.append(("upload_folder", {**kw, "files": sorted(os.listdir(folder))}))
            self.card_at_upload = open(os.path.join(folder, "README.md")).read()

            class Info:
                oid = "0123456789abcdef0123456789abcdef01234567"

            return Info()

        def upload_file(self, **kw):
            calls.append(("upload_file", {**kw, "text": open(kw["path_or_fileobj"]).read()}))

    api = FakeApi()
    created = []
    monkeypatch.setattr("huggingface_hub.HfApi", lambda token=None: created.append(token) or api)
    info = publish(run, "someone/tiny-lstm", token="hf_test", dataset="ptb", private=True)
    assert created == ["hf_test"] and info.oid.startswith("0123")
    assert [c[0] for c in calls] == ["create_repo", "upload_folder", "upload_file"]
    assert calls[0][1] == {"repo_id": "someone/tiny-lstm", "repo_type": "model", "private": True, "exist_ok": True}
    up = calls[1][1]
    assert up["repo_id"] == "someone/tiny-lstm" and up["repo_type"] == "model" and up["delete_patterns"] == "*"
    assert up["files"] == sorted(os.listdir(row["hub"]))  # the same complete folder as prepare_hub_folder
    assert 'revision="COMMIT_SHA"' in api.card_at_upload
    readme = calls[2][1]
    assert readme["path_in_repo"] == "README.md" and readme["repo_id"] == "someone/tiny-lstm"
    assert 'revision="0123456789abcdef0123456789abcdef01234567"' in readme["text"] and "COMMIT_SHA" not in readme["text"]
    assert not os.path.exists(up["folder_path"])  # the staging folder is removed afterwards


def test_publish_model_object_dry_run_and_errors(tmp_path):
    entry = next(e for e in ENTRIES if e.model_class.__name__ == "GRUForCausalLM")
    config, tok, _ = _recurrent(entry)
    model = entry.model_class(config)
    with pytest.raises(PublishError, match="needs its `tokenizer=`"):
        publish(model, output_dir=tmp_path / "a")
    folder = publish(model, output_dir=tmp_path / "b", tokenizer=tok, dataset="timemachine")
    card = ModelCard.load(folder / "README.md")
    assert card.data.eval_results is None and "No evaluation file" in card.text  # nothing invented
    assert "The Time Machine" in card.text
    with pytest.raises(PublishError, match="not empty"):
        prepare_hub_folder(model, folder, tokenizer=tok)
    with pytest.raises(PublishError, match="repo_id"):
        publish(model, tokenizer=tok)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_hub_folder(tmp_path / "nope", tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PublishError, match="no config.json"):
        prepare_hub_folder(tmp_path / "empty", tmp_path / "d")


def test_clean_generation_config_keeps_deliberate_values():
    entry = next(e for e in ENTRIES if e.model_class.__name__ == "LSTMForCausalLM")
    config, _, _ = _recurrent(entry)
    gen = GenerationConfig(max_new_tokens=7, temperature=0.7, do_sample=True)
    gen.update(**LEAKED, defaults_only=True)
    assert gen.max_length == 20 and gen.top_k == 50  # the leak
    clean = clean_generation_config(gen, config).to_diff_dict()
    clean.pop("transformers_version")
    assert clean == {"max_new_tokens": 7, "temperature": 0.7, "do_sample": True, "pad_token_id": 1,
                     "bos_token_id": 2, "eos_token_id": 3}


assert hf_seq  # the import registers the Auto classes used above


def test_model_cards_quote_the_study(tmp_path):
    """Cards of the families the study compares carry its rows, copied from the study's JSON given as `study_results`
    (numbers never typed); without the file, or for a task the study does not cover, no section. Nothing is read from
    the source checkout (its benchmarks/results/study/study.json exists, and must not appear)."""
    import hf_seq.hub.cards as mc

    study = {"subsets": {
        "lm": {"settings": {"budget_seconds": 240.0},
               "models": [{"label": "LSTM", "parameters": 2_000_000, "train_tokens": 700_000, "test_perplexity": 181.25},
                          {"label": "GRU", "parameters": 2_000_100, "train_tokens": 650_000, "test_perplexity": 190.5}]},
        "lm_recipes": {"recipes": [{"label": "Zaremba small", "parameters": 4_650_000, "train_hours": 1.9,
                                    "test_perplexity": 116.75, "reference": "published", "reference_test_perplexity": 114.5}]},
        "translation": {"systems": [{"label": "Transformer", "parameters": 5_489_664, "train_cpu_seconds": 2315.5,
                                     "test_bleu": 33.0, "test_chrf": 53.73, "test_num_beams": 4}]},
    }}
    path = tmp_path / "study.json"
    path.write_text(json.dumps(study))
    kwargs = dict(config={"model_type": "hf_seq_lstm", "num_hidden_layers": 2, "hidden_size": 8, "embedding_size": 8,
                          "vocab_size": 20}, model_class="LSTMForCausalLM", auto_class="AutoModelForCausalLM",
                  family="recurrent", head="lm", repo_id="me/lm", results={"test_perplexity": 50.0})
    text = str(mc.build_model_card(**kwargs, study_results=str(path)))
    assert "## Compared side by side" in text and "(240.00 CPU seconds per model)" in text
    assert "| LSTM | 2000000 | 700000 | 181.25 |" in text and "| GRU | 2000100 | 650000 | 190.50 |" in text
    assert "| Zaremba small | 4650000 | 1.90 | 116.75 | published | 114.50 |" in text
    assert "Transformer | 5489664" not in text  # translation rows belong to translation cards
    assert "Compared side by side" not in str(mc.build_model_card(**kwargs))
    assert mc.study_excerpt("hf-seq-translation", path)["sections"][0]["rows"] == [
        ["Transformer", "5489664", "2315.50", "33.00", "53.73", "4"]]
    assert mc.study_excerpt("text-classification", path) is None
    assert mc.study_excerpt("text-generation", None) is None
    with pytest.raises(mc.ModelCardError, match="absent.json' do not exist"):
        mc.study_excerpt("text-generation", tmp_path / "absent.json")
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(mc.ModelCardError, match="other.json: not the study's results JSON"):
        mc.study_excerpt("text-generation", tmp_path / "other.json")


def test_cards_report_the_total_training_time():
    """`train_seconds` of eval_results.json is the run's total over every session (the run-folder writer sums them);
    the card says so in words, for every family's template."""
    import hf_seq.hub.cards as mc

    assert mc.training_time({"train_seconds": 1.14}) == "1 s in total"
    assert mc.training_time({"train_seconds": 716.4, "train_sessions": 2}) == (
        "11.9 min over 2 sessions (the run was resumed) in total")
    assert mc.training_time({"train_seconds": 9000.0}) == "2.5 h in total"
    assert mc.training_time({}) is None and mc.training_time({"train_seconds": "n/a"}) is None
    for entry in ENTRIES:
        config, _, _ = FAMILIES[entry.family](entry)
        card = mc.build_model_card(config=config.to_dict(), model_class=entry.model_class.__name__,
                                   auto_class=entry.auto_class, family=entry.family,
                                   head=hf_seq.hub.publishing._HEADS[entry.auto_class], repo_id="me/x",
                                   results={"test_accuracy": 0.5, "train_seconds": 716.4})
        assert "training took 11.9 min in total" in str(card), entry.model_class.__name__


def _usage_blocks(folder, repo_id) -> tuple[str, str, str]:
    """(hf-seq block, remote-code block, whole usage section) of a card's "How to use", the repo id replaced by the
    local folder (the pinned revision then means nothing)."""
    text = (folder / "README.md").read_text()
    usage = text[text.index("## How to use"):text.index("## Training data")]
    blocks = [b.split("```", 1)[0].replace(f'"{repo_id}"', json.dumps(str(folder)))
              .replace('revision="COMMIT_SHA"', "revision=None") for b in usage.split("```python\n")[1:]]
    assert len(blocks) == 2, (repo_id, blocks)
    return blocks[0], blocks[1], usage


def _feature_tagger_folder(root):
    """A BiLSTM-CRF chunker that reads POS features (`feature_ids`), saved as the tagging run saves it."""
    from hf_seq.models.recurrent import LSTMConfig, LSTMForTokenClassification

    tok = _word_tokenizer()
    tags, pos = ["O", "B-NP", "I-NP"], ["<unk-feature>", "DT", "IN", "NN"]
    config = LSTMConfig(vocab_size=len(tok), hidden_size=8, embedding_size=8, num_hidden_layers=1, bidirectional=True,
                        num_labels=3, id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)},
                        use_crf=True)
    config.feature_vocab_size, config.feature_names = len(pos), pos
    model = LSTMForTokenClassification(config).eval()
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class("AutoModelForTokenClassification")
    model.save_pretrained(root)
    tok.save_pretrained(root)
    return root


def test_card_snippets_run_as_written_without_a_remote_code_prompt(published):
    """Every Python block of the cards of a language model and of a feature tagger runs as written, with the repo id
    replaced by the local folder: the hf-seq blocks here, the remote-code blocks in the process where hf_seq cannot be
    imported. None of them reaches transformers' "Do you wish to run the custom code?" prompt (AutoTokenizer reads
    config.json, whose auto_map names this repository's code, so the tokenizer needs trust_remote_code=True too), and
    the tagger that needs `feature_ids` is shown called directly, not through pipeline("token-classification")."""
    for repo_id, (with_hf_seq, remote_code, usage) in published["snippets"].items():
        if repo_id == "someone/chunker":
            assert "pipeline(" not in usage and "feature_ids=feature_ids" in usage
        assert "import hf_seq" in with_hf_seq and "import hf_seq" not in remote_code
        assert "AutoTokenizer.from_pretrained(" in remote_code
        exec(compile(with_hf_seq, f"{repo_id} card, hf-seq block", "exec"), {})
        ran = published["remote"]["card_snippets"][repo_id]
        assert ran["prompts"] == 0 and ran["printed"].strip(), (repo_id, ran)
    assert "('Confidence', " in published["remote"]["card_snippets"]["someone/chunker"]["printed"]


@pytest.mark.slow
def test_publishing_works_from_the_package_alone(published, tmp_path):
    """Installed is the product: a copy of the hf_seq package with no checkout around it (no benchmarks/, no
    model_cards/ next to it) writes the same complete Hub folder and card."""
    import subprocess
    import sys

    site = tmp_path / "site"
    shutil.copytree(os.path.dirname(hf_seq.__file__), site / "hf_seq", ignore=shutil.ignore_patterns("__pycache__"))
    run = published["root"] / "runs" / "GRUForCausalLM"
    code = (f"import hf_seq, sys\nassert hf_seq.__file__.startswith({str(site)!r}), hf_seq.__file__\n"
            f"from hf_seq.hub import prepare_hub_folder\n"
            f"prepare_hub_folder({str(run)!r}, {str(tmp_path / 'out')!r}, repo_id='someone/gruforcausallm', "
            f"dataset='ptb')\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.listdir(published["rows"]["GRUForCausalLM"]["hub"]))
    assert (tmp_path / "out" / "README.md").read_text() == (published["rows"]["GRUForCausalLM"]["hub"] / "README.md"
                                                             ).read_text()
