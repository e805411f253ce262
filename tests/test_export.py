"""Exported models equal the eager ones: CTranslate2 (the Transformer) and ONNX Runtime (every generative model).

Tiny random models built here, CPU, offline. Equality is asserted on greedy tokens (identical to `model.generate()`),
on beam search where the runner uses transformers' own `generate()`, and on logits / token log-probabilities
(close). int8 paths must run and stay close to float32.
"""

import argparse
import json
import os

import pytest
import torch

import hf_seq
from hf_seq import export
from hf_seq.models.transformer import TransformerDecoderConfig

ct2 = pytest.importorskip("ctranslate2")
ort = pytest.importorskip("onnxruntime")

SENTENCES = ["a b c d", "b c a", "d d c b a a", "c a b", "a a a b b c c d", "b"]


def _spread(model, scale=1.5):
    """Wider random weights, so that greedy decoding of a random model does not collapse to one repeated token."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=g) * scale / p.shape[1] ** 0.5)
    return model.eval()


def _batch(vocab=40, B=4, S=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (B, S), generator=g)
    mask = torch.ones_like(ids)
    for row in range(1, B):
        mask[row, S - row :] = 0  # right padding of increasing length
    return ids.masked_fill(mask == 0, 1), mask


def _transformer(**overrides):
    cfg = dict(vocab_size=40, hidden_size=32, intermediate_size=64, num_attention_heads=4, encoder_layers=2,
               decoder_layers=2, dropout=0.0, max_position_embeddings=64)  # fmt: skip
    cfg.update(overrides)
    return _spread(hf_seq.TransformerForConditionalGeneration(hf_seq.TransformerConfig(**cfg)))


def _transformer_lm(**overrides):
    cfg = dict(vocab_size=40, hidden_size=32, intermediate_size=64, num_attention_heads=4, decoder_layers=2,
               dropout=0.0, max_position_embeddings=64)  # fmt: skip
    cfg.update(overrides)
    return _spread(hf_seq.TransformerForCausalLM(TransformerDecoderConfig(**cfg)))


def _generated(rows: torch.Tensor, eos=3, pad=1, start=1) -> list[list[int]]:
    """generate() rows → the generated ids without the start token, the end token and padding."""
    out = []
    for row in rows[:, start:].tolist():
        out.append(row[: row.index(eos)] if eos in row else [t for t in row if t != pad])
    return out


def _eager_log_probs(model, ids, mask, targets: list[list[int]]) -> list[list[float]]:
    """Teacher-forced log p(target token) of every target token (and the end token) under the eager model."""
    out = []
    for i, target in enumerate(targets):
        full = target + [model.config.eos_token_id]
        dec = torch.tensor([[model.config.decoder_start_token_id] + full[:-1]])
        row_mask = mask[i : i + 1]
        src = ids[i : i + 1, : int(row_mask.sum())]
        with torch.no_grad():
            logits = model(input_ids=src, decoder_input_ids=dec).logits[0]
        out.append(torch.log_softmax(logits, -1)[range(len(full)), full].tolist())
    return out


# --- CTranslate2 --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "norm_first,positions,share",
    [(False, "sinusoidal", True), (True, "learned", False), (False, "learned", False), (True, "sinusoidal", True)],
)
def test_ctranslate2_seq2seq_equals_generate(tmp_path, norm_first, positions, share):
    model = _transformer(norm_first=norm_first, position_embedding_type=positions, share_embeddings=share,
                         tie_word_embeddings=True, activation_function="gelu" if share else "relu")  # fmt: skip
    out = export.to_ctranslate2(model, tmp_path / "ct2")
    runner = export.load_runner(out)
    assert isinstance(runner, export.CTranslate2Translator)
    ids, mask = _batch()
    with torch.no_grad():
        ref = _generated(model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False))
    sources = [row[: int(m.sum())] for row, m in zip(ids.tolist(), mask)]
    got = runner.translate_ids(sources, max_new_tokens=12)
    assert got == ref
    assert len({tuple(r) for r in ref}) > 1  # the rows differ: the comparison is not trivially one repeated token
    # token log-probabilities of CTranslate2's own output, teacher-forced in both engines
    scores = runner.translator.score_batch([runner._tokens(s) for s in sources], [runner._tokens(t) for t in got])
    eager = _eager_log_probs(model, ids, mask, got)
    for s, e in zip(scores, eager):
        assert s.log_probs == pytest.approx(e, abs=2e-4)


def test_ctranslate2_causal_lm_equals_generate(tmp_path):
    model = _transformer_lm(norm_first=True, position_embedding_type="learned")
    runner = export.load_runner(export.to_ctranslate2(model, tmp_path / "ct2"))
    assert isinstance(runner, export.CTranslate2Generator)
    prompts = [[5, 9, 11, 20], [7, 8]]
    for prompt in prompts:  # one by one: CTranslate2 pads prompts on the right, generate() on the left
        with torch.no_grad():
            ref = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=10, do_sample=False)[0].tolist()
        got = runner.generate_ids([prompt], max_new_tokens=10)[0]
        ref = ref[: ref.index(3)] if 3 in ref[len(prompt) :] else ref
        assert got == ref[: len(got)] and len(got) >= min(len(ref), len(prompt) + 1)
    assert runner.generate_ids(prompts, max_new_tokens=10)[1][:2] == [7, 8]
    for prompt in prompts:  # beam 4, with both stopping rules (the generation config's default and early_stopping)
        for kwargs in ({}, {"early_stopping": True}):
            with torch.no_grad():
                ref = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=10, num_beams=4,
                                     do_sample=False, **kwargs)[0].tolist()  # fmt: skip
            ref = ref[: ref.index(3, len(prompt))] if 3 in ref[len(prompt) :] else ref
            assert runner.generate_ids([prompt], max_new_tokens=10, num_beams=4, **kwargs)[0] == ref


def _ends_early_transformer():
    """A tiny Transformer whose hypotheses end at different lengths (a stronger end-token row of the output layer):
    with the plain random model every beam runs to max_new_tokens and the stopping rule of beam search never acts."""
    model = _transformer(norm_first=True, tie_word_embeddings=False, share_embeddings=False)
    with torch.no_grad():
        row = model.get_output_embeddings().weight[model.config.eos_token_id]
        row += 0.5 * row.sign()
    return model


def _sources_and_beam4(model, seeds=(0, 1, 2), **generate_kwargs):
    """[(source id lists, eager beam-4 ids)] per seed's batch of six right-padded sources."""
    out = []
    for seed in seeds:
        ids, mask = _batch(B=6, seed=seed)
        with torch.no_grad():
            ref = model.generate(input_ids=ids, attention_mask=mask, num_beams=4, do_sample=False, **generate_kwargs)
        out.append(([row[: int(m.sum())] for row, m in zip(ids.tolist(), mask)], _generated(ref)))
    return out


def test_ctranslate2_beam_search_stops_like_generate(tmp_path):
    """CTranslate2 stops a beam search once beam_size hypotheses ended (generate()'s early_stopping=True); the runner
    maps the generation config's early_stopping to CTranslate2's patience and its length_penalty across, so beam 4
    gives generate()'s tokens with early_stopping=True (exact) and with the default early_stopping=False (patience 2,
    equal on these sentences although the two stopping rules choose differently on some of them)."""
    model = _ends_early_transformer()
    runner = export.load_runner(export.to_ctranslate2(model, tmp_path / "ct2"))
    early = _sources_and_beam4(model, max_new_tokens=12, early_stopping=True)
    default = _sources_and_beam4(model, max_new_tokens=12)
    rule_matters = ct2_own_default_differs = 0
    for (sources, ref_early), (_, ref) in zip(early, default):
        assert runner.translate_ids(sources, num_beams=4, max_new_tokens=12, early_stopping=True) == ref_early
        assert runner.translate_ids(sources, num_beams=4, max_new_tokens=12) == ref  # the generation config's rule
        rule_matters += sum(a != b for a, b in zip(ref, ref_early))
        # CTranslate2's own default, patience 1, stops like early_stopping=True, not like generate()'s default
        own = runner.translate_ids(sources, num_beams=4, max_new_tokens=12, patience=1)
        ct2_own_default_differs += sum(a != b for a, b in zip(own, ref))
    assert rule_matters > 0 and ct2_own_default_differs > 0  # the sentences tell the two rules apart
    # length_penalty: the same exponent on the same length in both engines (exact with early_stopping=True)
    for length_penalty in (0.5, 2.0):
        sources, ref = _sources_and_beam4(model, seeds=(0,), max_new_tokens=12, early_stopping=True,
                                          length_penalty=length_penalty)[0]  # fmt: skip
        assert runner.translate_ids(sources, num_beams=4, max_new_tokens=12, early_stopping=True,
                                    length_penalty=length_penalty) == ref  # fmt: skip


def test_ctranslate2_runner_reads_the_exported_generation_config(tmp_path):
    model = _ends_early_transformer()
    config = model.generation_config
    config.num_beams, config.early_stopping, config.length_penalty, config.max_new_tokens = 4, True, 0.5, 7
    runner = export.load_runner(export.to_ctranslate2(model, tmp_path / "ct2"))
    for sources, ref in _sources_and_beam4(model, seeds=(0, 1)):  # generate() reads the same config
        assert runner.translate_ids(sources) == ref
    assert max(len(r) for r in ref) == 7  # the config's max_new_tokens carried over
    assert max(len(r) for r in runner.translate_ids(sources, max_new_tokens=3)) <= 3


def test_ctranslate2_search_options_mapping():
    from transformers import GenerationConfig

    from hf_seq.export.ctranslate2_export import search_options

    default = GenerationConfig()
    assert search_options(default, 4, None) == ({"beam_size": 4, "patience": 2.0}, None)
    assert search_options(default, None, 9) == ({"beam_size": 1}, 9)  # greedy: patience does not apply
    assert search_options(GenerationConfig(early_stopping=True, length_penalty=0.6, max_new_tokens=20), 4, None) == (
        {"beam_size": 4, "patience": 1.0, "length_penalty": 0.6}, 20)  # fmt: skip
    assert search_options(default, 4, 5, early_stopping=True, patience=3)[0]["patience"] == 3  # caller's patience
    assert search_options(None, 4, None, early_stopping="never")[0]["patience"] >= 100
    with pytest.raises(ValueError, match="early_stopping"):
        search_options(default, 4, None, early_stopping="sometimes")
    with pytest.raises(ValueError, match="num_beams"):
        search_options(default, 0.5, None)


@pytest.mark.parametrize("quantization", ["int8", "int8_float32", "float16"])
def test_ctranslate2_quantized_runs_and_stays_close(tmp_path, quantization):
    model = _transformer(norm_first=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fp32 = export.load_runner(export.to_ctranslate2(model, tmp_path / "fp32"))
    quant = export.load_runner(export.to_ctranslate2(model, tmp_path / "q", quantization=quantization))
    for name, value in model.state_dict().items():  # quantizing the export leaves the model's weights alone
        assert torch.equal(value, before[name]), name
    assert export.read_marker(tmp_path / "q")["quantization"] == quantization
    ids, mask = _batch()
    sources = [row[: int(m.sum())] for row, m in zip(ids.tolist(), mask)]
    targets = fp32.translate_ids(sources, max_new_tokens=8)
    a = fp32.translator.score_batch([fp32._tokens(s) for s in sources], [fp32._tokens(t) for t in targets])
    b = quant.translator.score_batch([quant._tokens(s) for s in sources], [quant._tokens(t) for t in targets])
    diff = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra.log_probs, rb.log_probs))
    assert diff < 0.15, diff  # int8 weights: per-token log-prob within 0.15 nats on this random model
    assert len(quant.translate_ids(sources, num_beams=2, max_new_tokens=8)) == len(sources)


def _word_tokenizer():
    return hf_seq.build_word_level_tokenizer(SENTENCES)


def _saved_translation_folder(tmp_path):
    tok = _word_tokenizer()
    model = _transformer(vocab_size=len(tok))
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok, folder


def test_ctranslate2_folder_export_translates_text(tmp_path):
    model, tok, folder = _saved_translation_folder(tmp_path)
    out = export.to_ctranslate2(folder, tmp_path / "ct2")
    assert export.is_exported_folder(out)
    marker = json.loads((tmp_path / "ct2" / export.MARKER_FILE).read_text())
    assert marker["format"] == "ctranslate2" and marker["task"] == "translation"
    assert (tmp_path / "ct2" / "tokenizer.json").is_file() and (tmp_path / "ct2" / "README.md").is_file()
    runner = export.CTranslate2Translator.from_folder(out)
    texts = SENTENCES[:3]
    enc = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        ref = model.generate(**enc, max_new_tokens=10, do_sample=False)
    expected = [tok.decode(r, skip_special_tokens=True).strip() for r in ref]
    assert runner.translate(texts, max_new_tokens=10) == expected
    # an exported folder refuses a second export, a non-exported folder refuses load_runner
    with pytest.raises(ValueError, match="already an exported folder"):
        export.to_ctranslate2(out, tmp_path / "again")
    with pytest.raises(ValueError, match="hf_seq_export.json"):
        export.load_runner(folder)


def test_export_refuses_bad_arguments(tmp_path):
    lstm = hf_seq.LSTMForCausalLM(hf_seq.LSTMConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1))
    with pytest.raises(TypeError, match="Transformer only"):
        export.to_ctranslate2(lstm, tmp_path / "a")
    with pytest.raises(ValueError, match="quantization"):
        export.to_ctranslate2(_transformer(), tmp_path / "b", quantization="int4")
    with pytest.raises(ValueError, match="quantize"):
        export.to_onnx(lstm, tmp_path / "c", quantize="float16")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        export.to_onnx(lstm, tmp_path / "busy")
    with pytest.raises(TypeError, match="saved model folder"):
        export.to_onnx(42, tmp_path / "d")


# --- ONNX Runtime -------------------------------------------------------------------------------------------------
RECURRENT = {"lstm": (hf_seq.LSTMForCausalLM, hf_seq.LSTMConfig), "gru": (hf_seq.GRUForCausalLM, hf_seq.GRUConfig),
             "rnn": (hf_seq.RNNForCausalLM, hf_seq.RNNConfig)}  # fmt: skip


def _recurrent(kind, **overrides):
    cls, config_cls = RECURRENT[kind]
    cfg = dict(vocab_size=40, hidden_size=16, embedding_size=16, num_hidden_layers=2, initializer_range=0.5)
    cfg.update(overrides)
    return cls(config_cls(**cfg)).eval()


def _left_padded(vocab=40, B=3, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (B, T), generator=g)
    mask = torch.ones_like(ids)
    for row in range(1, B):
        mask[row, :row] = 0
    return ids.masked_fill(mask == 0, 1), mask


def _onnx_runner(model, tmp_path, cls, **kwargs):
    """Export `model` to ONNX and load the runner, which must be a `cls`."""
    runner = export.load_runner(export.to_onnx(model, tmp_path / "onnx", **kwargs))
    assert isinstance(runner, cls)
    return runner


def _assert_generate_equal(model, runner, ids, mask) -> torch.Tensor:
    """The runner's generate() gives the model's tokens, greedy and beam 3; returns the beam-3 output."""
    with torch.no_grad():
        for beams in (1, 3):
            kwargs = dict(max_new_tokens=10, do_sample=False, num_beams=beams)
            ref = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            assert torch.equal(runner.generate(input_ids=ids, attention_mask=mask, **kwargs), ref)
    return ref


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_onnx_recurrent_lm_equals_generate(tmp_path, kind, monkeypatch):
    model = _recurrent(kind)
    runner = _onnx_runner(model, tmp_path, export.ORTRecurrentForCausalLM)
    assert not model.training  # the exporter leaves the model's mode as it was
    ids, mask = _left_padded()
    _assert_generate_equal(model, runner, ids, mask)
    with torch.no_grad():
        eager = model(input_ids=ids, attention_mask=mask).logits[:, -1]
    torch.testing.assert_close(runner(input_ids=ids, attention_mask=mask).logits[:, -1], eager, atol=1e-5, rtol=1e-4)
    # the runner's greedy/sampled generate() runs hf-seq's lean loop: the tokens of transformers' own loop
    from transformers import GenerationMixin

    own_loop = []  # calls of transformers' `_sample`
    original = GenerationMixin._sample
    monkeypatch.setattr(GenerationMixin, "_sample", lambda *a, **k: own_loop.append(1) or original(*a, **k))
    calls = [dict(max_new_tokens=10, min_new_tokens=3, eos_token_id=[5, 9]), dict(do_sample=True, top_k=6, max_new_tokens=8)]
    for call in calls:
        results = []
        for lean in (True, False):
            runner.lean_decoding = lean
            torch.manual_seed(4)
            results.append(runner.generate(input_ids=ids, attention_mask=mask, **call))
        assert torch.equal(results[0], results[1])
    assert len(own_loop) == len(calls)  # the reference runs only
    runner.lean_decoding = True


@pytest.mark.parametrize(
    "kind,overrides",
    [("lstm", {"output_projection": True, "embedding_size": 8, "tie_word_embeddings": True}), ("gru", {}),
     ("rnn", {"nonlinearity": "relu"})],
)  # fmt: skip
def test_onnx_recurrent_unpadded_paths(tmp_path, kind, overrides):
    """Without padding a prompt and the decode steps of a batch go through the sequence graph (ONNX's own recurrent
    operator, T tokens per call), a batch-1 decode step through the step graph (one-row products); the masked step
    graph is never opened. Tokens and logits stay the model's."""
    onnx = pytest.importorskip("onnx")
    model = _recurrent(kind, **overrides)
    runner = _onnx_runner(model, tmp_path, export.ORTRecurrentForCausalLM)
    ids = _left_padded(B=2)[0][:, 2:]  # (2, 4), no padding
    _assert_generate_equal(model, runner, ids, torch.ones_like(ids))
    assert set(runner.sessions) == {"sequence"}
    _assert_generate_equal(model, runner, ids[:1], None)  # greedy batch 1: the step graph; beams: the sequence graph
    assert set(runner.sessions) == {"sequence", "step"}
    with torch.no_grad():
        eager = model(input_ids=ids).logits[:, -1]
        prompt = model(input_ids=ids[:1, :-1], use_cache=True)
        eager_step = model(input_ids=ids[:1, -1:], cache=prompt.cache).logits[:, -1]
    torch.testing.assert_close(runner(input_ids=ids).logits[:, -1], eager, atol=1e-5, rtol=1e-4)
    step = runner(input_ids=ids[:1, -1:], cache=runner(input_ids=ids[:1, :-1]).cache).logits[:, -1]
    torch.testing.assert_close(step, eager_step, atol=1e-5, rtol=1e-4)
    for name in ("decoder_model.onnx", "decoder_sequence_model.onnx"):  # every weight product is a Gemm there
        graph = onnx.load(str(tmp_path / "onnx" / name)).graph
        weights = {init.name for init in graph.initializer}
        assert not [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    # the step graph: one-row MatMuls by (in, out) weights, the output layer's kept 3-D so it is not prepacked
    graph = onnx.load(str(tmp_path / "onnx" / "decoder_step_model.onnx")).graph
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    products = [shapes[n.input[1]] for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in shapes]
    per_layer = 2 if kind == "gru" else 1  # RNN and LSTM: one product of [x, h]
    head = model.lm_head.weight
    assert len(products) == 2 * per_layer + 1 + (model.projection is not None)
    assert products[-1] == [1, head.shape[1], head.shape[0]]
    assert all(len(shape) == 2 for shape in products[:-1])
    # an export from before the step graph decodes through the sequence graph
    marker_file = tmp_path / "onnx" / "hf_seq_export.json"
    marker = json.loads(marker_file.read_text())
    del marker["files"]["step"]
    marker_file.write_text(json.dumps(marker))
    older = export.load_runner(tmp_path / "onnx")
    _assert_generate_equal(model, older, ids[:1], None)
    assert set(older.sessions) == {"sequence"}


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_int8_paths_run_and_stay_close(tmp_path, kind):
    model = _recurrent(kind, initializer_range=0.1)
    ids, mask = _left_padded()
    with torch.no_grad():
        eager = torch.log_softmax(model(input_ids=ids).logits[:, -1], -1)
    runner = export.load_runner(export.to_onnx(model, tmp_path / "onnx", quantize="int8"))
    marker = export.read_marker(tmp_path / "onnx")
    assert marker["quantization"] == "int8" and "sequence" not in marker["files"]  # the quantized step graph only
    onnx_int8 = torch.log_softmax(runner(input_ids=ids).logits[:, -1], -1)
    torch_int8 = export.quantize_dynamic_int8(model)
    assert type(model.model.layers[0].rnn) is not type(torch_int8.model.layers[0].rnn)  # the copy is quantized
    with torch.no_grad():
        torch_q = torch.log_softmax(torch_int8(input_ids=ids).logits[:, -1], -1)
    for quantized in (onnx_int8, torch_q):
        assert (quantized - eager).abs().max() < 0.05
    assert runner.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5).shape == (3, 11)


@pytest.mark.parametrize("cell,attention", [("lstm", "bahdanau"), ("gru", "luong"), ("lstm", "none")])
def test_onnx_rnn_seq2seq_equals_generate(tmp_path, cell, attention):
    cfg = hf_seq.RNNSeq2SeqConfig(vocab_size=40, hidden_size=16, encoder_embedding_size=16, decoder_embedding_size=16,
                                  encoder_layers=2, decoder_layers=2, cell_type=cell, attention=attention, dropout=0.0)  # fmt: skip
    model = _spread(hf_seq.RNNSeq2SeqForConditionalGeneration(cfg))
    runner = _onnx_runner(model, tmp_path, export.ORTRNNSeq2SeqForConditionalGeneration, max_source_length=9)
    ids, mask = _batch()
    _assert_generate_equal(model, runner, ids, mask)
    with torch.no_grad():
        dec = torch.full((4, 1), cfg.decoder_start_token_id)
        eager = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits[:, -1]
    got = runner(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits[:, -1]
    torch.testing.assert_close(got, eager, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="max_source_length=9"):
        runner.generate(input_ids=torch.ones(1, 10, dtype=torch.long), max_new_tokens=2)


EOLE_FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "eole")


def _positional_seq2seq(name):
    """(model, ids, mask) of an RNN seq2seq with target positions (`position_encoding="sinusoidal"`): an eole
    fixture converted by hf_seq.interop.eole (trained by eole, sources from its dump), or a tiny random model."""
    if name == "tiny":
        cfg = hf_seq.RNNSeq2SeqConfig(vocab_size=40, hidden_size=16, encoder_embedding_size=16,
                                      decoder_embedding_size=16, encoder_layers=2, decoder_layers=2, cell_type="lstm",
                                      attention="luong", attention_score="mlp", input_feeding=True, bridge="concat",
                                      position_encoding="sinusoidal", dropout=0.0)  # fmt: skip
        return (_spread(hf_seq.RNNSeq2SeqForConditionalGeneration(cfg)), *_batch())
    from hf_seq.interop.eole import eole_to_hf_seq

    folder = os.path.join(EOLE_FIXTURES, name)
    model, source, _ = eole_to_hf_seq(folder)
    with open(os.path.join(folder, "eole_outputs.json"), encoding="utf-8") as f:
        texts = [r["src"] for r in json.load(f)["sentences"]]
    source.padding_side = "right"
    enc = source(texts, return_tensors="pt", padding=True)
    return model.eval(), enc["input_ids"], enc["attention_mask"]


@pytest.mark.parametrize("name", ["rnn_brnn_lstm_mlp_feed", "rnn_brnn_gru_mlp_small_tgt", "tiny"])
def test_onnx_rnn_seq2seq_with_target_positions_equals_generate(tmp_path, name):
    """With `position_encoding="sinusoidal"` every decode step adds the position of its target token: the decoder
    graph takes `seen_tokens` (B, 1) and the runner feeds its step count, so greedy and beam-4 tokens and the logits
    of every step equal the eager model's (a graph traced at position 0 gave other tokens from the second step on)."""
    model, ids, mask = _positional_seq2seq(name)
    assert model.config.position_encoding == "sinusoidal"
    runner = _onnx_runner(model, tmp_path, export.ORTRNNSeq2SeqForConditionalGeneration, max_source_length=9)
    assert "seen_tokens" in {i.name for i in runner.sessions["decoder"].get_inputs()}
    with torch.no_grad():
        for beams in (1, 4):
            kwargs = dict(max_new_tokens=12, do_sample=False, num_beams=beams)
            ref = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            assert torch.equal(runner.generate(input_ids=ids, attention_mask=mask, **kwargs), ref)
        dec = ref[:, :-1]  # teacher-forced on beam 4's tokens
        eager = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    encoder_outputs, cache = runner.get_encoder()(input_ids=ids, attention_mask=mask), None
    for t in range(dec.shape[1]):  # one decode step at a time, with the runner's own cache
        out = runner(attention_mask=mask, decoder_input_ids=dec[:, t : t + 1], encoder_outputs=encoder_outputs,
                     cache=cache)  # fmt: skip
        torch.testing.assert_close(out.logits[:, -1], eager[:, t], atol=1e-4, rtol=1e-4)
        cache = out.cache


def test_onnx_rnn_seq2seq_graph_without_positions_has_no_seen_tokens_input(tmp_path):
    """A model without target positions keeps the decoder graph's old inputs (folders exported before `seen_tokens`
    load and run as before); a folder whose config adds positions but whose graph lacks the input, an export from
    before the fix, loads with a warning that it decodes every step at position 0."""
    from transformers.testing_utils import CaptureLogger

    from hf_seq.export import onnx_runners

    cfg = hf_seq.RNNSeq2SeqConfig(vocab_size=40, hidden_size=8, encoder_embedding_size=8, decoder_embedding_size=8,
                                  encoder_layers=1, decoder_layers=1, cell_type="gru", attention="luong", dropout=0.0)  # fmt: skip
    model = _spread(hf_seq.RNNSeq2SeqForConditionalGeneration(cfg))
    out = export.to_onnx(model, tmp_path / "onnx", max_source_length=8)
    with CaptureLogger(onnx_runners.logger) as quiet:
        runner = export.load_runner(out)
    assert "seen_tokens" not in {i.name for i in runner.sessions["decoder"].get_inputs()}
    assert "position" not in quiet.out
    ids, mask = _batch(S=6)
    _assert_generate_equal(model, runner, ids, mask)
    config = json.loads((tmp_path / "onnx" / "config.json").read_text())
    (tmp_path / "onnx" / "config.json").write_text(json.dumps({**config, "position_encoding": "sinusoidal"}))
    with CaptureLogger(onnx_runners.logger) as old_export:
        export.load_runner(out)
    assert "decodes every step at position 0" in old_export.out


def test_onnx_transformer_seq2seq_equals_generate(tmp_path):
    model = _transformer(norm_first=True, position_embedding_type="learned", share_embeddings=False)
    runner = _onnx_runner(model, tmp_path, export.ORTTransformerForConditionalGeneration)
    ids, mask = _batch()
    dec = _assert_generate_equal(model, runner, ids, mask)[:, :6]
    with torch.no_grad():
        eager = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits[:, -1]
    # without past (the whole prefix), then with the cache (one token after a 5-token prefix)
    torch.testing.assert_close(runner(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits[:, -1], eager,
                               atol=1e-4, rtol=1e-4)  # fmt: skip
    first = runner(input_ids=ids, attention_mask=mask, decoder_input_ids=dec[:, :5])
    step = runner(input_ids=ids, attention_mask=mask, decoder_input_ids=dec[:, 5:], cache=first.cache)
    torch.testing.assert_close(step.logits[:, -1], eager, atol=1e-4, rtol=1e-4)


def test_onnx_transformer_causal_lm_equals_generate(tmp_path):
    model = _transformer_lm()
    runner = _onnx_runner(model, tmp_path, export.ORTTransformerForCausalLM)
    _assert_generate_equal(model, runner, *_left_padded())


def test_onnx_folder_export_and_cli(tmp_path):
    model, tok, folder = _saved_translation_folder(tmp_path)
    parser = argparse.ArgumentParser()
    from hf_seq.export.cli import register

    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", str(folder), "--format", "onnx", "--output-dir", str(tmp_path / "onnx")])
    assert args.func(args) == 0
    runner = export.load_runner(tmp_path / "onnx")
    texts = SENTENCES[:3]
    enc = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        ref = model.generate(**enc, max_new_tokens=10, num_beams=2, do_sample=False)
    expected = [tok.decode(r, skip_special_tokens=True).strip() for r in ref]
    assert runner.translate(texts, num_beams=2, max_new_tokens=10) == expected
    args = parser.parse_args(["export", str(folder), "--format", "onnx", "--output-dir", str(tmp_path / "x"),
                              "--quantization", "float16"])  # fmt: skip
    with pytest.raises(ValueError, match="not available for --format onnx"):
        args.func(args)
    written = set(os.listdir(tmp_path / "onnx"))
    assert {"config.json", "tokenizer.json", "encoder_model.onnx", "decoder_with_past_model.onnx"} <= written
