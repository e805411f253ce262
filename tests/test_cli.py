"""The `hf-seq` command line (hf_seq/cli/, one module per subcommand): help texts, clear errors, a smoke training run,
and the model commands on tiny folders (a local folder and a Hub id from the cache behave the same; every model loads
through `load_checked`)."""

import json
import os
import shutil

import pytest
import torch

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.cli import main
from hf_seq.tokenization import build_word_level_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = ["the cat sat on the mat", "the dog ran to the cat", "a bird sat on a dog"]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("command, words", [
    (None, ["train", "evaluate", "generate", "translate", "similar", "average", "publish", "Hub model id"]),
    ("average", ["--last", "checkpoints", "tokenizer"]),
    ("train", ["experiment", "--smoke", "--publish", "--output_dir"]),
    ("evaluate", ["perplexity", "BLEU", "accuracy", "Spearman"]),
    ("generate", ["PROMPT", "--max-new-tokens", "--revision", "Greedy unless --do-sample"]),
    ("translate", ["--file", "encoder-decoder", "hf-seq export"]),
    ("similar", ["WORD", "cosine"]),
    ("publish", ["REPO_ID", "model card", "--output-dir", "dry run", "--results", "study"]),
])
def test_help_explains_each_command(capsys, command, words):
    with pytest.raises(SystemExit) as exit_:
        main(([command] if command else []) + ["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for word in words:
        assert word in text, (command, word)


def test_console_script_is_declared_and_installed():
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.name == "hf-seq"}
    assert scripts == {"hf-seq": "hf_seq.cli:main"}, "reinstall with pip install -e . to get the hf-seq command"


def test_train_errors_name_the_file_and_the_bad_key(capsys, tmp_path):
    code, _, err = run(capsys, "train", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml" in err
    bad = _write(tmp_path / "bad.yaml", "task: language-modeling\nmodel:\n  architecture: lstm\n  hiden_size: 16\n")
    code, _, err = run(capsys, "train", bad)
    assert code == 2 and "['hiden_size']" in err and "section 'model'" in err and "hidden_size" in err
    assert "Allowed keys" in err and "bad.yaml" in err
    code, _, err = run(capsys, "train", _write(tmp_path / "s.yaml", "stuff:\n  a: 1\n"))
    assert code == 2 and "unknown key(s) ['stuff'] in section 'top level'" in err


def _write(path, text):
    path.write_text(text)
    return str(path)


class FakeHfApi:
    """Records what `publish` would send to the Hub."""

    calls = []

    def __init__(self, token=None):
        self.calls.append(("HfApi", {"token": token}))

    def create_repo(self, **kw):
        self.calls.append(("create_repo", kw))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", {**kw, "files": sorted(os.listdir(kw["folder_path"]))}))

        class Info:
            oid = "f" * 40

        return Info()

    def upload_file(self, **kw):
        self.calls.append(("upload_file", {k: v for k, v in kw.items() if k != "path_or_fileobj"}))


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    """`hf-seq train configs/lstm_timemachine.yaml --smoke --publish someone/tm`: the real train_lm.py, a few steps,
    then the complete folder goes to a mocked HfApi."""
    out = tmp_path_factory.mktemp("cli") / "lm"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("huggingface_hub.HfApi", FakeHfApi)
        code = main(["train", os.path.join(REPO, "configs", "lstm_timemachine.yaml"), "--smoke", "--output_dir",
                     str(out), "--publish", "someone/tm", "--dataset", "timemachine"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def lm_folder(tmp_path_factory):
    """A tiny LSTM LM saved as a run leaves it (model + tokenizer + eval_results.json at the root), built directly so
    the model commands are tested without a training run. Its generation config asks for sampling, as the demo's does."""
    from hf_seq.models.recurrent import LSTMConfig, LSTMForCausalLM

    folder = tmp_path_factory.mktemp("cli") / "tiny_lm"
    torch.manual_seed(0)
    tok = build_word_level_tokenizer(CORPUS, padding_side="left")
    model = LSTMForCausalLM(LSTMConfig(vocab_size=len(tok), hidden_size=16, embedding_size=8, num_hidden_layers=1,
                                       initializer_range=0.5)).eval()
    model.generation_config.update(do_sample=True, top_k=0, max_new_tokens=20)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "eval_results.json").write_text(json.dumps({"test_perplexity": 12.5, "train_seconds": 716.4}))
    return folder


def test_train_publish_uploads_the_complete_folder(lm_run):
    names = [c[0] for c in FakeHfApi.calls]
    assert names == ["HfApi", "create_repo", "upload_folder", "upload_file"]
    upload = FakeHfApi.calls[2][1]
    assert upload["repo_id"] == "someone/tm" and upload["delete_patterns"] == "*"
    assert {"README.md", "config.json", "model.safetensors", "modeling_recurrent.py", "configuration_recurrent.py",
            "tokenizer.json", "generation_config.json", "eval_results.json", "training_curve.png",
            "sample.txt"} <= set(upload["files"])
    assert not {f for f in upload["files"] if f.endswith((".bin", ".pt")) or f.startswith("checkpoint")}
    assert FakeHfApi.calls[3][1]["path_in_repo"] == "README.md"


def test_smoke_train_then_generate_evaluate_publish(capsys, lm_run, tmp_path):
    assert (lm_run / "eval_results.json").is_file() and (lm_run / "model.safetensors").is_file()
    capsys.readouterr()
    code, out, _ = run(capsys, "generate", str(lm_run), "the time", "--max-new-tokens", "5")
    assert code == 0 and out.startswith("the time") and len(out.strip()) > len("the time")
    text = tmp_path / "eval.txt"
    text.write_text("the time traveller\nwas here\n" * 40)
    code, out, _ = run(capsys, "evaluate", str(lm_run), str(text), "--quiet", "--batch-size", "2",
                       "--block-size", "16")
    result = json.loads(out)
    assert code == 0 and 1 < result["perplexity"] < 1e4 and result["tokens"] > 100
    code, out, _ = run(capsys, "publish", str(lm_run), "--output-dir", str(tmp_path / "hub"), "--dataset",
                       "timemachine")
    assert code == 0 and "README.md" in out and "training_args.bin" not in out
    card = (tmp_path / "hub" / "README.md").read_text()
    value = json.loads((lm_run / "eval_results.json").read_text())["test_perplexity"]
    assert f"value: {value!r}" in card and "The Time Machine" in card


def test_wrong_family_and_missing_folder_are_clear(capsys, lm_folder, tmp_path, monkeypatch):
    lm_run = lm_folder
    code, _, err = run(capsys, "similar", str(lm_run), "the")
    assert code == 2 and "LSTMForCausalLM" in err and "needs a word2vec model" in err
    code, _, err = run(capsys, "translate", str(lm_run), "hello")
    assert code == 2 and "needs an encoder-decoder translation model" in err
    code, _, err = run(capsys, "generate", str(tmp_path / "nope"), "x")
    assert code == 2 and "does not exist" in err
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "generate", "runs/typo", "x")
    assert code == 2 and "'runs/typo' does not exist" in err
    code, _, err = run(capsys, "evaluate", str(lm_run), str(tmp_path / "none.txt"))
    assert code == 2 and "none.txt' does not exist" in err
    code, _, err = run(capsys, "publish", str(lm_run))
    assert code == 2 and "REPO_ID" in err


def test_translate_and_similar_on_tiny_models(capsys, tmp_path):
    from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
    from hf_seq.models.word2vec.training_word2vec import prepare_word2vec
    from hf_seq.pipelines import save_translation_pipeline

    torch.manual_seed(0)
    tok = build_word_level_tokenizer(CORPUS)
    config = RNNSeq2SeqConfig(vocab_size=len(tok), hidden_size=16, encoder_embedding_size=8,
                              decoder_embedding_size=8, dropout=0.0)
    model = RNNSeq2SeqForConditionalGeneration(config).eval()
    model.generation_config.update(max_new_tokens=4)
    save_translation_pipeline(model, tok, tmp_path / "s2s")
    (tmp_path / "src.txt").write_text("the cat\na dog sat\nthe mat\n")
    code, out, _ = run(capsys, "translate", str(tmp_path / "s2s"), "the dog", "--file", str(tmp_path / "src.txt"),
                       "--batch-size", "2")
    assert code == 0 and len(out.splitlines()) == 4
    direct = model.generate(**tok(["the dog"], return_tensors="pt"))
    assert out.splitlines()[0] == tok.decode(direct[0], skip_special_tokens=True).strip()
    (tmp_path / "pairs.tsv").write_text("the cat\tthe cat\na dog\ta dog\n")
    code, out, _ = run(capsys, "evaluate", str(tmp_path / "s2s"), str(tmp_path / "pairs.tsv"), "--quiet")
    result = json.loads(out)
    import sacrebleu

    hyps = [tok.decode(model.generate(**tok([s], return_tensors="pt"))[0], skip_special_tokens=True).strip()
            for s in ("the cat", "a dog")]
    assert code == 0 and result["sentences"] == 2 and "bleu_signature" in result
    assert result["bleu"] == round(sacrebleu.corpus_bleu(hyps, [["the cat", "a dog"]]).score, 2)
    assert result["chrf"] == round(sacrebleu.corpus_chrf(hyps, [["the cat", "a dog"]]).score, 2)

    w2v_tok, w2v_config, _ = prepare_word2vec(CORPUS * 3, min_count=1, vector_size=8, window=2)
    from hf_seq.models.word2vec import Word2VecForPreTraining

    w2v = Word2VecForPreTraining(w2v_config)
    w2v.save_pretrained(tmp_path / "w2v")
    w2v_tok.save_pretrained(tmp_path / "w2v")
    code, out, _ = run(capsys, "similar", str(tmp_path / "w2v"), "cat", "--top-k", "3")
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and len(rows) == 3 and "cat" not in [r[0] for r in rows]
    vectors = torch.nn.functional.normalize(w2v.get_input_embeddings().weight.detach(), dim=-1)
    vocab = w2v_tok.get_vocab()
    assert abs(float(rows[0][1]) - float(vectors[vocab[rows[0][0]]] @ vectors[vocab["cat"]])) < 1e-4
    code, _, err = run(capsys, "similar", str(tmp_path / "w2v"), "zebra")
    assert code == 2 and "'zebra' is not in the vocabulary" in err
    code, _, err = run(capsys, "generate", str(tmp_path / "w2v"), "the")
    assert code == 2 and "needs a language model" in err


def test_hub_id_behaves_like_the_local_folder(capsys, lm_folder, tmp_path, monkeypatch):
    """A Hub id resolved from the Hub cache (offline) gives the same output as the folder, and the same errors."""
    import huggingface_hub.constants

    lm_run = lm_folder
    snapshot = tmp_path / "cache" / "models--someone--tiny-lstm" / "snapshots" / ("a" * 40)
    shutil.copytree(lm_run, snapshot, ignore=shutil.ignore_patterns("checkpoint-*", "*.bin", "*.png"))
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    outputs = [run(capsys, "generate", model, "the cat", "--max-new-tokens", "6")
               for model in (str(lm_run), "someone/tiny-lstm")]
    assert outputs[0][0] == outputs[1][0] == 0 and outputs[0][1] == outputs[1][1]
    assert outputs[0][1].startswith("the cat")
    code, _, err = run(capsys, "similar", "someone/tiny-lstm", "the")
    assert code == 2 and "'someone/tiny-lstm' is a recurrent LSTMForCausalLM" in err
    code, _, err = run(capsys, "generate", "someone/not-cached", "x")
    assert code == 2 and "cannot load 'someone/not-cached' as a local folder or a Hub model id" in err


def test_evaluate_classifier_tagger_and_word_vectors_match_direct_computation(capsys, tmp_path):
    from hf_seq.models.recurrent import GRUConfig, GRUForSequenceClassification, GRUForTokenClassification
    from hf_seq.models.word2vec import Word2VecModel
    from hf_seq.models.word2vec.training_word2vec import prepare_word2vec

    torch.manual_seed(0)
    tok = build_word_level_tokenizer(CORPUS)
    common = dict(vocab_size=len(tok), hidden_size=8, num_hidden_layers=1, bidirectional=True)
    labels = {0: "neg", 1: "pos"}
    cls = GRUForSequenceClassification(GRUConfig(**common, num_labels=2, id2label=labels,
                                                 label2id={v: k for k, v in labels.items()})).eval()
    cls.save_pretrained(tmp_path / "cls")
    tok.save_pretrained(tmp_path / "cls")
    rows = [("pos", "the cat sat"), ("neg", "a dog ran to the mat"), ("pos", "the bird")]
    (tmp_path / "cls.tsv").write_text("".join(f"{y}\t{x}\n" for y, x in rows))
    code, out, _ = run(capsys, "evaluate", str(tmp_path / "cls"), str(tmp_path / "cls.tsv"), "--quiet")
    with torch.no_grad():
        pred = [int(cls(**tok(x, return_tensors="pt")).logits.argmax()) for _, x in rows]
    want = sum(labels[p] == y for p, (y, _) in zip(pred, rows)) / len(rows)
    assert code == 0 and json.loads(out) == {"accuracy": want, "examples": 3}
    (tmp_path / "bad.tsv").write_text("maybe\tthe cat\n")
    code, _, err = run(capsys, "evaluate", str(tmp_path / "cls"), str(tmp_path / "bad.tsv"), "--quiet")
    assert code == 2 and "labels ['maybe'] are not the model's" in err

    tags = {0: "O", 1: "B-NP", 2: "I-NP"}
    tagger = GRUForTokenClassification(GRUConfig(**common, num_labels=3, id2label=tags,
                                                 label2id={v: k for k, v in tags.items()})).eval()
    tagger.save_pretrained(tmp_path / "tag")
    tok.save_pretrained(tmp_path / "tag")
    sents = [[("the", "B-NP"), ("cat", "I-NP"), ("sat", "O")], [("a", "B-NP"), ("dog", "I-NP")]]
    (tmp_path / "tags.txt").write_text("\n\n".join("\n".join(f"{w} X {t}" for w, t in s) for s in sents) + "\n")
    code, out, _ = run(capsys, "evaluate", str(tmp_path / "tag"), str(tmp_path / "tags.txt"), "--quiet")
    with torch.no_grad():
        got = [[tags[int(i)] for i in tagger(**tok(" ".join(w for w, _ in s), return_tensors="pt")).logits[0].argmax(-1)]
               for s in sents]
    gold = [[t for _, t in s] for s in sents]
    accuracy = sum(g == p for gs, ps in zip(gold, got) for g, p in zip(gs, ps)) / 5
    result = json.loads(out)
    assert code == 0 and result["accuracy"] == accuracy and result["sentences"] == 2 and 0 <= result["f1"] <= 1

    w2v_tok, w2v_config, _ = prepare_word2vec(CORPUS * 3, min_count=1, vector_size=8, window=2)
    w2v = Word2VecModel(w2v_config)
    w2v.save_pretrained(tmp_path / "w2v")
    w2v_tok.save_pretrained(tmp_path / "w2v")
    (tmp_path / "sim.txt").write_text("cat\tdog\t9\ncat\tmat\t2\nbird\tdog\t5\nzebra\tcat\t1\n")
    code, out, _ = run(capsys, "evaluate", str(tmp_path / "w2v"), str(tmp_path / "sim.txt"), "--quiet")
    result = json.loads(out)
    assert code == 0 and result["pairs"] == 3 and result["coverage"] == 0.75
    from scipy.stats import spearmanr

    vec = torch.nn.functional.normalize(w2v.get_input_embeddings().weight.detach(), dim=-1)
    vocab = w2v_tok.get_vocab()
    cos = [float(vec[vocab[a]] @ vec[vocab[b]]) for a, b in (("cat", "dog"), ("cat", "mat"), ("bird", "dog"))]
    assert abs(result["spearman"] - spearmanr(cos, [9, 2, 5]).statistic) < 1e-9



# --- behaviour of the split CLI (issue 18 / issue 20 point 8) --------------------------------------------------------
def test_generate_is_greedy_unless_do_sample_even_if_the_model_saves_sampling(capsys, lm_folder):
    """The folder's generation_config.json says do_sample: true; the help promises greedy: two seeds give the same
    text, equal to greedy decoding; --do-sample really samples."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert json.loads((lm_folder / "generation_config.json").read_text())["do_sample"] is True
    outs = [run(capsys, "generate", str(lm_folder), "the cat", "--max-new-tokens", "12", "--seed", seed)
            for seed in ("0", "1", "2")]
    assert all(code == 0 for code, _, _ in outs) and outs[0][1] == outs[1][1] == outs[2][1]
    model, tok = AutoModelForCausalLM.from_pretrained(lm_folder).eval(), AutoTokenizer.from_pretrained(lm_folder)
    enc = tok("the cat", return_tensors="pt", add_special_tokens=False)
    greedy = model.generate(**enc, max_new_tokens=12, do_sample=False)
    assert outs[0][1] == tok.decode(greedy[0], skip_special_tokens=True).strip() + "\n"
    sampled = {run(capsys, "generate", str(lm_folder), "the cat", "--max-new-tokens", "12", "--do-sample", "--seed",
                   seed)[1] for seed in ("0", "1", "2", "3")}
    assert len(sampled) > 1


def _broken_copies(lm_folder, tmp_path):
    """The same model as a pickle-only folder and with a truncated model.safetensors."""
    from transformers import AutoModelForCausalLM

    pickled = tmp_path / "pickled"
    shutil.copytree(lm_folder, pickled)
    (pickled / "model.safetensors").unlink()
    torch.save(AutoModelForCausalLM.from_pretrained(lm_folder).state_dict(), pickled / "pytorch_model.bin")
    truncated = tmp_path / "truncated"
    shutil.copytree(lm_folder, truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    return pickled, truncated


@pytest.mark.parametrize("command", ["generate", "evaluate", "publish"])
def test_model_commands_refuse_pickles_and_name_a_truncated_file(capsys, lm_folder, tmp_path, command):
    pickled, truncated = _broken_copies(lm_folder, tmp_path)
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\n" * 20)
    extra = {"generate": ["the cat"], "evaluate": [str(text), "--quiet"],
             "publish": ["--output-dir", str(tmp_path / "out")]}[command]
    code, _, err = run(capsys, command, str(pickled), *extra)
    assert code == 2 and "pytorch_model.bin: pickled weights are not loaded" in err, err
    extra = extra if command != "publish" else ["--output-dir", str(tmp_path / "out2")]
    code, _, err = run(capsys, command, str(truncated), *extra)
    assert code == 2 and f"{truncated / 'model.safetensors'}" in err and "truncated" in err, err


def test_similar_and_translate_refuse_pickle_only_folders(capsys, tmp_path):
    from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
    from hf_seq.models.word2vec import Word2VecModel
    from hf_seq.models.word2vec.training_word2vec import prepare_word2vec

    tok = build_word_level_tokenizer(CORPUS)
    s2s = RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqConfig(vocab_size=len(tok), hidden_size=8,
                                                              encoder_embedding_size=8, decoder_embedding_size=8))
    w2v_tok, w2v_config, _ = prepare_word2vec(CORPUS * 3, min_count=1, vector_size=8, window=2)
    for name, model, t, argv in (("s2s", s2s, tok, ["translate", "the cat"]), ("w2v", Word2VecModel(w2v_config),
                                                                                w2v_tok, ["similar", "cat"])):
        folder = tmp_path / name
        model.save_pretrained(folder)
        t.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
        code, _, err = run(capsys, argv[0], str(folder), *argv[1:])
        assert code == 2 and "pickled weights are not loaded" in err, err


def test_mistyped_local_path_is_a_missing_folder_not_a_hub_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("tiny_lm_typo", "runs_typo/model", "./tiny_lm"):
        code, _, err = run(capsys, "generate", name, "the")
        assert code == 2 and f"model folder {name!r} does not exist" in err, err
        assert "Traceback" not in err


def test_empty_inputs_are_clear_errors(capsys, lm_folder, tmp_path):
    """Empty files and values: an error naming the problem, exit status 2, no ZeroDivisionError/IndexError."""
    from hf_seq.models.recurrent import GRUConfig, GRUForSequenceClassification, GRUForTokenClassification

    tok = build_word_level_tokenizer(CORPUS)
    common = dict(vocab_size=len(tok), hidden_size=8, num_hidden_layers=1)
    for name, cls, labels in (("cls", GRUForSequenceClassification, ["neg", "pos"]),
                              ("tag", GRUForTokenClassification, ["O", "B-NP"])):
        cls(GRUConfig(**common, num_labels=2, id2label=dict(enumerate(labels)),
                      label2id={v: k for k, v in enumerate(labels)})).save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    for folder in (lm_folder, tmp_path / "cls", tmp_path / "tag"):
        code, out, err = run(capsys, "evaluate", str(folder), str(empty), "--quiet")
        assert code == 2 and "empty" in err and out == "", err
    code, _, err = run(capsys, "generate", str(lm_folder), "  ")
    assert code == 2 and "PROMPT is empty" in err
    code, _, err = run(capsys, "generate", str(lm_folder), "the", "--max-new-tokens", "0")
    assert code == 2 and "--max-new-tokens (0)" in err
    code, _, err = run(capsys, "evaluate", str(lm_folder), str(empty), "--batch-size", "0")
    assert code == 2 and "--batch-size (0)" in err
    code, _, err = run(capsys, "translate", str(lm_folder), "--file", str(empty))
    assert code == 2 and "nothing to translate" in err
    code, _, err = run(capsys, "average", str(lm_folder), "--last", "-2", "--output-dir", str(tmp_path / "avg"))
    assert code == 2 and "--last must be >= 1, got -2" in err


def test_evaluate_tagger_with_features_and_constant_similarity_scores(capsys, tmp_path):
    """A tagger that reads POS features is evaluated from 'word POS tag' lines (the features mapped through
    config.feature_names, as the training run does); a word-similarity file whose scores are all equal is refused
    (the correlation is undefined) instead of printing NaN."""
    from hf_seq.models.recurrent import LSTMConfig, LSTMForTokenClassification
    from hf_seq.models.word2vec import Word2VecModel
    from hf_seq.models.word2vec.training_word2vec import prepare_word2vec

    torch.manual_seed(0)
    tok = build_word_level_tokenizer(CORPUS)
    tags, pos = {0: "O", 1: "B-NP", 2: "I-NP"}, ["<unk-feature>", "DT", "NN", "VBD"]
    config = LSTMConfig(vocab_size=len(tok), hidden_size=8, embedding_size=8, num_hidden_layers=1, bidirectional=True,
                        num_labels=3, id2label=tags, label2id={v: k for k, v in tags.items()}, use_crf=True,
                        initializer_range=0.5)
    config.feature_vocab_size, config.feature_names = len(pos), pos
    tagger = LSTMForTokenClassification(config).eval()
    tagger.save_pretrained(tmp_path / "tag")
    tok.save_pretrained(tmp_path / "tag")
    sents = [[("the", "DT", "B-NP"), ("cat", "NN", "I-NP"), ("sat", "VBD", "O")],
             [("a", "DT", "B-NP"), ("dog", "XX", "I-NP")]]
    (tmp_path / "tags.txt").write_text("\n\n".join("\n".join(" ".join(t) for t in s) for s in sents) + "\n")
    code, out, err = run(capsys, "evaluate", str(tmp_path / "tag"), str(tmp_path / "tags.txt"), "--quiet")
    assert code == 0, err
    got = []
    with torch.no_grad():
        for s in sents:
            enc = tok(" ".join(w for w, _, _ in s), return_tensors="pt")
            feats = torch.tensor([[pos.index(p) if p in pos else 0 for _, p, _ in s]])
            got += [tags[int(i)] for i in tagger(**enc, feature_ids=feats).logits[0].argmax(-1)]
    gold = [t for s in sents for _, _, t in s]
    assert json.loads(out)["accuracy"] == sum(g == p for g, p in zip(gold, got)) / len(gold)
    (tmp_path / "two.txt").write_text("the B-NP\ncat I-NP\n")
    code, _, err = run(capsys, "evaluate", str(tmp_path / "tag"), str(tmp_path / "two.txt"), "--quiet")
    assert code == 2 and "'word feature tag'" in err

    w2v_tok, w2v_config, _ = prepare_word2vec(CORPUS * 3, min_count=1, vector_size=8, window=2)
    Word2VecModel(w2v_config).save_pretrained(tmp_path / "w2v")
    w2v_tok.save_pretrained(tmp_path / "w2v")
    (tmp_path / "flat.txt").write_text("cat\tdog\t5\ncat\tmat\t5\nbird\tdog\t5\n")
    code, out, err = run(capsys, "evaluate", str(tmp_path / "w2v"), str(tmp_path / "flat.txt"), "--quiet")
    assert code == 2 and "undefined" in err and "NaN" not in out
    (tmp_path / "bad.txt").write_text("cat\tdog\t5\ncat\tmat\tlots\n")
    code, _, err = run(capsys, "evaluate", str(tmp_path / "w2v"), str(tmp_path / "bad.txt"), "--quiet")
    assert code == 2 and f"{tmp_path / 'bad.txt'}:2: score 'lots' is not a number" in err


def test_translate_runs_an_exported_folder(capsys, tmp_path):
    """`hf-seq translate` on a folder written by `hf-seq export` runs it through hf_seq.export.load_runner, with the
    same output as the runner itself."""
    pytest.importorskip("ctranslate2")
    from hf_seq.export import load_runner
    from hf_seq.models.transformer import TransformerConfig, TransformerForConditionalGeneration

    torch.manual_seed(0)
    tok = build_word_level_tokenizer(CORPUS)
    model = TransformerForConditionalGeneration(TransformerConfig(
        vocab_size=len(tok), d_model=16, d_ff=32, num_heads=2, encoder_layers=1, decoder_layers=1,
        max_position_embeddings=32, dropout=0.0)).eval()
    model.save_pretrained(tmp_path / "mt")
    tok.save_pretrained(tmp_path / "mt")
    code, out, err = run(capsys, "export", str(tmp_path / "mt"), "--format", "ctranslate2", "--output-dir",
                         str(tmp_path / "ct2"))
    assert code == 0, err
    code, out, err = run(capsys, "translate", str(tmp_path / "ct2"), "the cat", "a dog sat", "--max-new-tokens", "5")
    assert code == 0, err
    assert out.splitlines() == load_runner(tmp_path / "ct2").translate(["the cat", "a dog sat"], max_new_tokens=5)


def test_generate_runs_an_exported_language_model(capsys, lm_folder, tmp_path):
    """`hf-seq generate` on an ONNX export of a language model: the runner's greedy and beam-search text equals the
    model folder's; sampling is refused with what to do instead."""
    pytest.importorskip("onnxruntime")
    code, _, err = run(capsys, "export", str(lm_folder), "--format", "onnx", "--output-dir", str(tmp_path / "onnx"))
    assert code == 0, err
    for beams in ("1", "3"):
        args = ("the cat", "--max-new-tokens", "8", "--num-beams", beams)
        code, exported, err = run(capsys, "generate", str(tmp_path / "onnx"), *args)
        assert code == 0, err
        assert exported == run(capsys, "generate", str(lm_folder), *args)[1]
    code, _, err = run(capsys, "generate", str(tmp_path / "onnx"), "the cat", "--do-sample")
    assert code != 0 and "exported folder" in err and "sample with the model folder" in err


def test_publish_quotes_the_study_only_when_given(capsys, lm_folder, tmp_path):
    """The card reads no file of the source checkout: the study's rows come from --results only."""
    study = {"subsets": {"lm": {"settings": {"budget_seconds": 60.0}, "models": [
        {"label": "LSTM", "parameters": 1000, "train_tokens": 5000, "test_perplexity": 99.5}]}}}
    (tmp_path / "study.json").write_text(json.dumps(study))
    code, _, err = run(capsys, "publish", str(lm_folder), "--output-dir", str(tmp_path / "plain"))
    assert code == 0, err
    plain = (tmp_path / "plain" / "README.md").read_text()
    assert "Compared side by side" not in plain
    assert "training took 11.9 min in total" in plain  # eval_results.json's train_seconds: 716.4
    code, _, err = run(capsys, "publish", str(lm_folder), "--output-dir", str(tmp_path / "study"), "--results",
                       str(tmp_path / "study.json"))
    assert code == 0, err
    card = (tmp_path / "study" / "README.md").read_text()
    assert "Compared side by side" in card and "| LSTM | 1000 | 5000 | 99.50 |" in card
    code, _, err = run(capsys, "publish", str(lm_folder), "--output-dir", str(tmp_path / "x"), "--results",
                       str(tmp_path / "nope.json"))
    assert code == 2 and "nope.json' does not exist" in err


def test_build_parser_registers_one_module_per_command():
    import importlib

    from hf_seq.cli import COMMANDS, build_parser

    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    for name in COMMANDS:
        module = importlib.import_module(f"hf_seq.cli.{name}")
        assert choices[name].get_default("func") is module.run, name
    assert "export" in choices
