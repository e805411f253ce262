"""The `hf-seq` command line: help texts, clear errors, a smoke training run, and the model commands on tiny folders
(a local folder and a Hub id from the cache behave the same)."""

import json
import os
import shutil

import pytest
import torch

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.cli import TRAINING_DIR, choose_script, main
from hf_seq.tokenization import build_word_level_tokenizer
from hf_seq.training.experiment import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = ["the cat sat on the mat", "the dog ran to the cat", "a bird sat on a dog"]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("command, words", [
    (None, ["train", "evaluate", "generate", "translate", "similar", "average", "publish", "Hub model id"]),
    ("average", ["--last", "checkpoints", "tokenizer"]),
    ("train", ["experiment file", "--smoke", "--publish", "push_to_hub"]),
    ("evaluate", ["perplexity", "BLEU", "accuracy", "Spearman"]),
    ("generate", ["PROMPT", "--max-new-tokens", "--revision"]),
    ("translate", ["--file", "encoder-decoder"]),
    ("similar", ["WORD", "cosine"]),
    ("publish", ["REPO_ID", "model card", "--output-dir", "dry run"]),
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


PREFIX_TO_SCRIPT = {"transformer_lm_": "train_lm.py", "lstm_": "train_lm.py", "gru_": "train_lm.py", "rnn_": "train_lm.py",
                    "seq2seq_": "train_seq2seq.py", "transformer_": "train_transformer.py",
                    "classify_": "train_classifier.py", "tag_": "train_tagger.py", "word2vec_": "train_word2vec.py"}


def test_train_picks_the_script_from_the_yaml_content():
    """Every experiment file in configs/ goes to its family's script, judged by its keys alone."""
    checked = 0
    for name in sorted(os.listdir(os.path.join(REPO, "configs"))):
        want = next((s for p, s in PREFIX_TO_SCRIPT.items() if name.startswith(p)), None)
        if want and (TRAINING_DIR / want).is_file():
            assert choose_script(os.path.join(REPO, "configs", name)).name == want, name
            checked += 1
    assert checked >= 1 and (TRAINING_DIR / "train_lm.py").is_file()


def test_train_errors_name_the_file_and_the_bad_key(capsys, tmp_path):
    code, _, err = run(capsys, "train", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml' does not exist" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  architecture: lstm\n  hiden_size: 16\ndata:\n  block_size: 8\n")
    code, _, err = run(capsys, "train", str(bad))
    assert code == 2 and "['hiden_size']" in err and "section 'model'" in err and "hidden_size" in err
    assert "Allowed keys" in err
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['epochs'\] in section 'training'.*num_train_epochs"):
        choose_script(_write(tmp_path / "t.yaml", "model:\n  d_model: 8\ntraining:\n  epochs: 3\n"))
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


def test_wrong_family_and_missing_folder_are_clear(capsys, lm_run, tmp_path, monkeypatch):
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
    assert code == 0 and set(json.loads(out)) == {"bleu", "chrf", "sentences"}

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


def test_hub_id_behaves_like_the_local_folder(capsys, lm_run, tmp_path, monkeypatch):
    """A Hub id resolved from the Hub cache (offline) gives the same output as the folder, and the same errors."""
    import huggingface_hub.constants

    snapshot = tmp_path / "cache" / "models--someone--tiny-lstm" / "snapshots" / ("a" * 40)
    shutil.copytree(lm_run, snapshot, ignore=shutil.ignore_patterns("checkpoint-*", "*.bin", "*.png"))
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    outputs = [run(capsys, "generate", model, "the time", "--max-new-tokens", "6")
               for model in (str(lm_run), "someone/tiny-lstm")]
    assert outputs[0][0] == outputs[1][0] == 0 and outputs[0][1] == outputs[1][1]
    assert outputs[0][1].startswith("the time")
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
