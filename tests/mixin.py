"""hf-seq's own model tester mixins, in the spirit of transformers' ModelTesterMixin / GenerationTesterMixin.

A test class sets `model_tester` (an object with `get_config()`, `prepare_inputs(config)` -> dict with at least
`input_ids` and `attention_mask`), `all_model_classes`, `auto_classes`, and for generation `generative_model_classes`.
Each check is one small method so a failure names exactly what broke. The conventions checks (issue 19) read a few
optional class attributes, documented above `ConventionsTesterMixin`.
"""

import inspect
import json

import pytest
import torch
from conftest import run_without_hf_seq


def _takes_labels(cls):
    return "labels" in inspect.signature(cls.forward).parameters


def _loss(model, inputs):
    """The head's loss, or for a base model a scalar that depends on every output."""
    if _takes_labels(type(model)):
        return model(**inputs).loss
    inputs = {k: v for k, v in inputs.items() if k != "labels"}
    return _first_tensor(model(**inputs)).pow(2).mean()


def parameters_init_leaves_unset(model) -> list[str]:
    """Fill every parameter of `model` with NaN, run the model's own `_init_weights` on every module; the names of
    the parameters still NaN."""
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
            p._is_hf_initialized = False
    for module in model.modules():
        model._init_weights(module)
    return [n for n, p in model.named_parameters() if torch.isnan(p).any()]


def _first_tensor(output):
    for key in ("logits", "last_hidden_state"):
        if key in output and output[key] is not None:
            return output[key]
    raise AssertionError(f"no logits/last_hidden_state in {list(output.keys())}")


class _CoreModelTesterMixin:
    model_tester = None
    all_model_classes = ()
    auto_classes = {}  # model class name -> Auto class name, for the remote-code check

    def _model(self, cls, config=None):
        torch.manual_seed(0)
        return cls(config or self.model_tester.get_config()).eval()

    def test_forward_shapes_and_loss(self):
        config = self.model_tester.get_config()
        for cls in self.all_model_classes:
            model = self._model(cls, config)
            inputs = self.model_tester.prepare_inputs(config, with_labels=_takes_labels(cls))
            out = model(**inputs)
            if _takes_labels(cls):
                assert out.loss is not None and out.loss.ndim == 0 and torch.isfinite(out.loss), cls.__name__
            assert _first_tensor(out).shape[0] == inputs["input_ids"].shape[0], cls.__name__

    def test_save_load_identical(self, tmp_path):
        config = self.model_tester.get_config()
        for cls in self.all_model_classes:
            model = self._model(cls, config)
            inputs = self.model_tester.prepare_inputs(config)
            model.save_pretrained(tmp_path / cls.__name__)
            assert (tmp_path / cls.__name__ / "model.safetensors").exists()
            reloaded = cls.from_pretrained(tmp_path / cls.__name__).eval()
            with torch.no_grad():
                # equal up to float rounding: BLAS may pick another kernel for differently aligned loaded tensors
                torch.testing.assert_close(
                    _first_tensor(model(**inputs)), _first_tensor(reloaded(**inputs)), atol=1e-6, rtol=0, msg=cls.__name__
                )

    def test_every_parameter_initialized(self):
        # Fill every parameter with NaN, run the model's own init; nothing may stay NaN (HF-NOTES: the default init
        # misses nn.GRU / nn.RNN).
        config = self.model_tester.get_config()
        for cls in self.all_model_classes:
            left = parameters_init_leaves_unset(self._model(cls, config))
            assert not left, f"{cls.__name__}: not initialized by _init_weights: {left}"

    def test_gradients_reach_every_parameter(self):
        config = self.model_tester.get_config()
        for cls in self.all_model_classes:
            model = self._model(cls, config).train()
            inputs = self.model_tester.prepare_inputs(config, with_labels=True)
            _loss(model, inputs).backward()
            missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
            assert not missing, f"{cls.__name__}: no gradient for {missing}"

    def test_resize_token_embeddings(self):
        config = self.model_tester.get_config()
        for cls in self.all_model_classes:
            model = self._model(cls, config)
            new_size = config.vocab_size + 7
            model.resize_token_embeddings(new_size)
            assert model.get_input_embeddings().weight.shape[0] == new_size
            assert model.config.vocab_size == new_size
            inputs = self.model_tester.prepare_inputs(config)
            inputs["input_ids"] = inputs["input_ids"].clone()
            inputs["input_ids"][0, -1] = new_size - 1  # a new id is accepted now
            with torch.no_grad():
                out = _first_tensor(model(**inputs))
            assert torch.isfinite(out).all()
            if model.get_output_embeddings() is not None:
                assert model.get_output_embeddings().weight.shape[0] == new_size
                assert out.shape[-1] == new_size

    def test_remote_code_in_clean_process(self, tmp_path):
        # every class saved with its code, then loaded in ONE process where hf_seq cannot be imported
        config = self.model_tester.get_config()
        inputs = self.model_tester.prepare_inputs(config)
        torch.save(inputs, tmp_path / "inputs.pt")
        expected, jobs = {}, []
        for cls in self.all_model_classes:
            auto_name = self.auto_classes[cls.__name__]
            model = self._model(cls, config)
            type(model.config).register_for_auto_class()
            cls.register_for_auto_class(auto_name)
            folder = tmp_path / cls.__name__
            model.save_pretrained(folder)
            assert "auto_map" in json.loads((folder / "config.json").read_text())
            with torch.no_grad():
                expected[cls.__name__] = _first_tensor(model(**inputs))
            jobs.append((auto_name, str(folder)))
        result = run_without_hf_seq(
            f"""
            import json, torch, transformers
            inputs = torch.load({str(tmp_path / 'inputs.pt')!r})
            result = {{}}
            for auto_name, folder in {jobs!r}:
                model = getattr(transformers, auto_name).from_pretrained(folder, trust_remote_code=True).eval()
                with torch.no_grad():
                    out = model(**inputs)
                t = out["logits"] if "logits" in out and out["logits"] is not None else out["last_hidden_state"]
                result[type(model).__name__] = {{"module": type(model).__module__, "values": t.flatten().tolist()}}
            print(json.dumps(result))
            """,
            tmp_path,
        )
        assert set(result) == set(expected)
        for name, want in expected.items():
            assert not result[name]["module"].startswith("hf_seq"), result[name]["module"]
            got = torch.tensor(result[name]["values"], dtype=want.dtype)
            torch.testing.assert_close(got, want.flatten(), atol=1e-6, rtol=0, msg=name)


class GenerationTesterMixin:
    """Cached == uncached (greedy, beam, seeded sampling) and left-padded batch == one prompt at a time."""

    generative_model_classes = ()
    max_new_tokens = 8

    def _gen_model(self, cls):
        torch.manual_seed(0)
        config = self.model_tester.get_config()
        model = cls(config).eval()
        model.generation_config.pad_token_id = config.pad_token_id
        model.generation_config.eos_token_id = None  # fixed-length outputs make comparisons exact
        return model, config

    def _compare(self, extra):
        for cls in self.generative_model_classes:
            model, config = self._gen_model(cls)
            inputs = self.model_tester.prepare_inputs(config, padded=False)
            kwargs = dict(max_new_tokens=self.max_new_tokens, **extra)
            torch.manual_seed(1)
            cached = model.generate(**inputs, use_cache=True, **kwargs)
            torch.manual_seed(1)
            uncached = model.generate(**inputs, use_cache=False, **kwargs)
            assert torch.equal(cached, uncached), f"{cls.__name__} {extra}:\n{cached}\n{uncached}"

    def test_greedy_cached_equals_uncached(self):
        self._compare({"do_sample": False})

    def test_beam_cached_equals_uncached(self):
        self._compare({"do_sample": False, "num_beams": 3, "num_return_sequences": 2})

    def test_sampling_cached_equals_uncached(self):
        self._compare({"do_sample": True, "top_k": 0, "temperature": 1.0})

    def test_left_padded_batch_equals_one_by_one(self):
        for cls in self.generative_model_classes:
            model, config = self._gen_model(cls)
            inputs = self.model_tester.prepare_inputs(config, padded=True)
            batched = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            ids, mask = inputs["input_ids"], inputs["attention_mask"]
            for i in range(ids.shape[0]):
                single = ids[i : i + 1, mask[i].bool()]
                alone = model.generate(single, max_new_tokens=self.max_new_tokens, do_sample=False)
                assert torch.equal(alone[0, -self.max_new_tokens :], batched[i, -self.max_new_tokens :]), (
                    f"{cls.__name__} row {i}"
                )

    def test_generation_scores_match_forward(self):
        # the scores generate() reports at each step are the logits a full forward pass gives at that position
        for cls in self.generative_model_classes:
            model, config = self._gen_model(cls)
            inputs = self.model_tester.prepare_inputs(config, padded=False)
            out = model.generate(
                **inputs, max_new_tokens=4, do_sample=False, output_logits=True, return_dict_in_generate=True
            )
            with torch.no_grad():
                full = model(out.sequences).logits
            T = inputs["input_ids"].shape[1]
            for step, logits in enumerate(out.logits):
                assert torch.allclose(logits, full[:, T - 1 + step], atol=1e-5), f"{cls.__name__} step {step}"


# ---------------------------------------------------------------------------------------------------------------------
# Conventions of a native transformers model (issue 19). Each check is generic; a test class tunes it with:
#   heavy_checks_in_default_run  run torch.compile / torch.export on the first class in the default run (one test class
#                                per family opts in; every class is compiled and exported in the slow run, -m slow)
#   pipeline_model_classes       classes whose pipeline round trip is checked (None: every class with a text task)
#   checkpointing_model_classes  classes with layers to checkpoint (None: every class)
#   compile_atol                 tolerance of compiled / exported vs eager outputs
# ---------------------------------------------------------------------------------------------------------------------
_PIPELINE_TASKS = {
    "AutoModelForCausalLM": "text-generation",
    "AutoModelForSequenceClassification": "text-classification",
    "AutoModelForTokenClassification": "token-classification",
    "AutoModelForMaskedLM": "fill-mask",
    "AutoModel": "feature-extraction",
}


def _assert_same_structure(got, want, where):
    """`got` (a return_dict=False tuple) equals `want` (ModelOutput.to_tuple()) entry by entry."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor), f"{where}: {type(got).__name__} instead of a tensor"
        torch.testing.assert_close(got, want, atol=0, rtol=0, msg=where)
    elif isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), f"{where}: {got!r:.200} vs {want!r:.200}"
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same_structure(g, w, f"{where}[{i}]")
    else:
        assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"


def _word_tokenizer(config):
    """A word-level tokenizer whose ids cover exactly the tiny config's vocabulary: w0, w1, ... after the specials."""
    from hf_seq.tokenization import build_word_level_tokenizer

    with_mask = getattr(config, "mask_token_id", None) is not None
    n_words = config.vocab_size - 4 - int(with_mask)
    tok = build_word_level_tokenizer([" ".join(f"w{i}" for i in range(n_words))], with_mask=with_mask,
                                     padding_side="left")
    assert len(tok) == config.vocab_size
    return tok


def _named_hidden_states(output):
    """Every tensor of every `*hidden_states` tuple of an output, with a name for messages."""
    found = []
    for key in output.keys():
        value = output[key]
        if key.endswith("hidden_states") and isinstance(value, (tuple, list)):
            found += [(f"{key}[{i}]", t) for i, t in enumerate(value) if isinstance(t, torch.Tensor)]
    return found


class ConventionsTesterMixin:
    heavy_checks_in_default_run = False
    pipeline_model_classes = None
    checkpointing_model_classes = None
    compile_atol = 1e-5

    def test_return_dict_false_gives_the_output_tuple(self):
        config = self.model_tester.get_config()
        for cls in self.all_model_classes:
            model = self._model(cls, config)
            inputs = self.model_tester.prepare_inputs(config, with_labels=_takes_labels(cls))
            with torch.no_grad():
                want = model(**inputs).to_tuple()
                got = model(**inputs, return_dict=False)
                assert type(got) is tuple, f"{cls.__name__}: return_dict=False gave {type(got).__name__}"
                _assert_same_structure(got, want, cls.__name__)
                model.config.return_dict = False  # the config default is honoured too
                try:
                    _assert_same_structure(model(**inputs), want, f"{cls.__name__} (config.return_dict=False)")
                finally:
                    model.config.return_dict = True  # the tester may share one config between classes

    def test_from_pretrained_in_low_precision_runs_forward(self, tmp_path):
        config = self.model_tester.get_config()
        for cls in self.all_model_classes:
            model = self._model(cls, config)
            model.save_pretrained(tmp_path / cls.__name__)
            inputs = self.model_tester.prepare_inputs(config)
            with torch.no_grad():
                want = _first_tensor(model(**inputs))
            for dtype in (torch.bfloat16, torch.float16):
                low = cls.from_pretrained(tmp_path / cls.__name__, dtype=dtype).eval()
                wrong = [n for n, t in [*low.named_parameters(), *low.named_buffers()]
                         if t.is_floating_point() and t.dtype != dtype]
                assert not wrong, f"{cls.__name__} {dtype}: not cast by from_pretrained: {wrong}"
                with torch.no_grad():
                    got = _first_tensor(low(**inputs))
                assert got.dtype == dtype, f"{cls.__name__}: {dtype} model returned {got.dtype}"
                assert torch.isfinite(got).all(), f"{cls.__name__} {dtype}"
                # masked scores (finfo.min) saturate at each dtype's own limit
                limit = torch.finfo(dtype)
                want_in_range = want.clamp(limit.min, limit.max)
                torch.testing.assert_close(got.float(), want_in_range, atol=0.1, rtol=0.1, msg=f"{cls.__name__} {dtype}")

    def test_gradient_checkpointing_gives_the_same_loss_and_gradients(self):
        config = self.model_tester.get_config()
        classes = self.all_model_classes if self.checkpointing_model_classes is None else self.checkpointing_model_classes
        for cls in classes:
            assert cls.supports_gradient_checkpointing, f"{cls.__name__} does not support gradient checkpointing"
            inputs = self.model_tester.prepare_inputs(config, with_labels=True)
            results = []
            for checkpointing in (False, True):
                model = self._model(cls, config).train()
                calls = []
                if checkpointing:
                    model.activation_checkpointing_enable()
                    for module in model.modules():
                        if getattr(module, "gradient_checkpointing", False):
                            func = module._gradient_checkpointing_func
                            module._gradient_checkpointing_func = lambda *a, _f=func, _c=calls, **k: _c.append(1) or _f(*a, **k)
                torch.manual_seed(1)  # same dropout masks in both runs (checkpointing replays the RNG state)
                loss = _loss(model, inputs)
                loss.backward()
                assert not checkpointing or calls, f"{cls.__name__}: checkpointing enabled but never used"
                results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
            (loss0, grads0), (loss1, grads1) = results
            torch.testing.assert_close(loss1, loss0, atol=1e-6, rtol=0, msg=cls.__name__)
            assert grads0.keys() == grads1.keys(), cls.__name__
            for name in grads0:
                torch.testing.assert_close(grads1[name], grads0[name], atol=1e-6, rtol=1e-5, msg=f"{cls.__name__} {name}")

    def test_hidden_states_are_on_the_autograd_path(self):
        config = self.model_tester.get_config()
        for cls in self.all_model_classes:
            model = self._model(cls, config)
            inputs = self.model_tester.prepare_inputs(config, with_labels=_takes_labels(cls))  # padded batch
            out = model(**inputs, output_hidden_states=True)
            states = _named_hidden_states(out)
            assert states, f"{cls.__name__}: no hidden states returned"
            for _, t in states:
                t.retain_grad()
            (out.loss if out.get("loss") is not None else _first_tensor(out).pow(2).mean()).backward()
            missing = [name for name, t in states if t.grad is None]
            assert not missing, f"{cls.__name__}: hidden states off the autograd graph: {missing}"

    def test_unknown_keyword_argument_is_refused(self):
        config = self.model_tester.get_config()
        for cls in self.all_model_classes:
            model = self._model(cls, config)
            inputs = self.model_tester.prepare_inputs(config)
            with pytest.raises(TypeError, match="attention_maks"):
                model(**inputs, attention_maks=inputs["attention_mask"])

    def test_shift_labels_equal_shifting_inside(self):
        config = self.model_tester.get_config()
        for cls in [c for c in self.all_model_classes if c.__name__.endswith("ForCausalLM")]:
            model = self._model(cls, config)
            inputs = self.model_tester.prepare_inputs(config, with_labels=True)
            labels = inputs.pop("labels")
            shifted = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=-100)
            with torch.no_grad():
                want = model(**inputs, labels=labels).loss
                got = model(**inputs, shift_labels=shifted).loss
            assert got is not None, f"{cls.__name__}: shift_labels gave no loss"
            torch.testing.assert_close(got, want, msg=cls.__name__)

    # -- torch.compile / torch.export ------------------------------------------------------------------------------
    def _heavy_classes(self, every_class):
        if every_class:
            return self.all_model_classes
        if not self.heavy_checks_in_default_run:
            pytest.skip("compiled in the slow run (-m slow); one test class per family compiles in the default run")
        return self.all_model_classes[:1]

    def _check_compile(self, cls):
        config = self.model_tester.get_config()
        model = self._model(cls, config)
        inputs = self.model_tester.prepare_inputs(config)  # padded: the packed-sequence path must compile
        # fullgraph=True: no graph break anywhere (input checks, packing, caches). Dynamo refuses to touch an
        # nn.LSTM/GRU/RNN object unless `allow_rnn` is set (torch's own policy, not a graph break of ours): with it, the
        # traced path (`masked_rnn_layer`) compiles as one graph. README's conventions table gives this recipe.
        with torch.no_grad(), torch._dynamo.config.patch(allow_rnn=True):
            want = _first_tensor(model(**inputs))
            torch._dynamo.reset()
            got = _first_tensor(torch.compile(model, fullgraph=True)(**inputs))
        torch.testing.assert_close(got, want, atol=self.compile_atol, rtol=0, msg=f"{cls.__name__} compiled")

    def _check_export(self, cls):
        config = self.model_tester.get_config()
        model = self._model(cls, config)
        inputs = self.model_tester.prepare_inputs(config)
        program = torch.export.export(model, args=(), kwargs=inputs)
        with torch.no_grad():
            want = _first_tensor(model(**inputs))
            got = _first_tensor(program.module()(**inputs))
        torch.testing.assert_close(got, want, atol=self.compile_atol, rtol=0, msg=f"{cls.__name__} exported")
        self._check_dynamo_onnx(cls, program, inputs)

    def _check_dynamo_onnx(self, cls, program, inputs):
        """The dynamo ONNX exporter (`torch.onnx.export(..., dynamo=True)`, built on torch.export) writes a graph that
        ONNX Runtime runs to the exported program's outputs, every output tensor in order."""
        ort = pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
        import tempfile
        import warnings

        from torch.utils._pytree import tree_leaves

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx_program = torch.onnx.export(program, (), kwargs=inputs, dynamo=True, verbose=False)
        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/model.onnx"
            onnx_program.save(path)
            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            feeds = {i.name: inputs[i.name].numpy() for i in session.get_inputs()}
            outputs = session.run(None, feeds)
        with torch.no_grad():
            leaves = [t for t in tree_leaves(program.module()(**inputs)) if isinstance(t, torch.Tensor)]
        assert len(outputs) == len(leaves), f"{cls.__name__}: ONNX gives {len(outputs)} outputs, torch {len(leaves)}"
        for i, (got, want) in enumerate(zip(outputs, leaves)):
            torch.testing.assert_close(torch.from_numpy(got), want, atol=self.compile_atol, rtol=0,
                                       msg=f"{cls.__name__} dynamo ONNX output {i}")

    def test_torch_compile_padded_batch_equals_eager(self):
        for cls in self._heavy_classes(every_class=False):
            self._check_compile(cls)

    def test_torch_export_equals_eager(self):
        for cls in self._heavy_classes(every_class=False):
            self._check_export(cls)

    @pytest.mark.slow
    def test_torch_compile_and_export_every_class(self):
        for cls in self._heavy_classes(every_class=True):
            self._check_compile(cls)
            self._check_export(cls)

    # -- pipelines ----------------------------------------------------------------------------------------------------
    def test_pipeline_text_round_trip(self, tmp_path):
        from transformers import pipeline

        config = self.model_tester.get_config()
        classes = self.pipeline_model_classes
        if classes is None:
            classes = [c for c in self.all_model_classes if self.auto_classes.get(c.__name__) in _PIPELINE_TASKS]
        tok = _word_tokenizer(config)
        text = "w1 w5 w2 w7"
        for cls in classes:
            task = _PIPELINE_TASKS[self.auto_classes[cls.__name__]]
            model = self._model(cls, config)
            if getattr(model, "generation_config", None) is not None:
                model.generation_config.eos_token_id = None  # fixed-length continuations
            folder = tmp_path / cls.__name__
            model.save_pretrained(folder)
            tok.save_pretrained(folder)
            pipe = pipeline(task, model=str(folder))
            enc = tok(text.replace("w2", tok.mask_token) if task == "fill-mask" else text, return_tensors="pt")
            with torch.no_grad():
                out = model(**enc)
            if task == "text-generation":
                got = pipe(text, max_new_tokens=4, do_sample=False)[0]["generated_text"]
                new = model.generate(**enc, max_new_tokens=4, do_sample=False)[0, enc["input_ids"].shape[1]:]
                continuation = tok.decode(new, skip_special_tokens=True)
                assert got == text + continuation, (cls.__name__, got)
                assert not continuation or continuation.startswith(" "), f"{cls.__name__}: glued words {got!r}"
            elif task == "text-classification":
                got = {r["label"]: r["score"] for r in pipe(text, top_k=None)}
                probs = out.logits[0].softmax(-1)
                want = {model.config.id2label[i]: p.item() for i, p in enumerate(probs)}
                assert got.keys() == want.keys() and all(abs(got[k] - want[k]) < 1e-5 for k in want), cls.__name__
            elif task == "token-classification":
                got = pipe(text)
                probs = out.logits[0].softmax(-1)
                assert [r["word"] for r in got] == text.split(), (cls.__name__, got)
                for i, r in enumerate(got):
                    assert r["entity"] == model.config.id2label[int(probs[i].argmax())], (cls.__name__, i)
                    assert abs(r["score"] - probs[i].max().item()) < 1e-5, (cls.__name__, i)
            elif task == "feature-extraction":
                got = torch.tensor(pipe(text))[0]
                torch.testing.assert_close(got, out.last_hidden_state[0], atol=1e-6, rtol=0, msg=cls.__name__)
            elif task == "fill-mask":
                got = pipe(text.replace("w2", tok.mask_token), top_k=1)[0]
                position = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0])
                best = int(out.logits[0, position].argmax())
                assert got["token"] == best and got["token_str"].strip() == tok.decode([best]).strip(), cls.__name__

    # -- PEFT ---------------------------------------------------------------------------------------------------------
    def test_lora_trainer_save_reload_merge(self, tmp_path):
        from peft import LoraConfig, PeftModel, get_peft_model
        from transformers import Trainer, TrainingArguments

        config = self.model_tester.get_config()
        for cls in self.all_model_classes:
            base_folder = tmp_path / cls.__name__ / "base"
            self._model(cls, config).save_pretrained(base_folder)
            inputs = self.model_tester.prepare_inputs(config, with_labels=_takes_labels(cls))
            # no target_modules: PEFT takes hf-seq's registered defaults for this model_type
            lora = LoraConfig(r=4, lora_alpha=8, init_lora_weights=_takes_labels(cls))
            model = get_peft_model(cls.from_pretrained(base_folder), lora)
            assert model.get_nb_trainable_parameters()[0] > 0, cls.__name__
            if _takes_labels(cls):  # fine-tune with Trainer: the LoRA weights move away from their zero start
                rows = [{k: v[i] for k, v in inputs.items()} for i in range(inputs["input_ids"].shape[0])]
                args = TrainingArguments(output_dir=str(tmp_path / "run"), max_steps=3, learning_rate=0.05,
                                         per_device_train_batch_size=len(rows), report_to=[], save_strategy="no",
                                         use_cpu=True, disable_tqdm=True, label_names=["labels"])
                Trainer(model=model, args=args, train_dataset=rows).train()
            model.eval()
            inputs.pop("labels", None)
            with torch.no_grad():
                tuned = _first_tensor(model(**inputs))
                base = _first_tensor(cls.from_pretrained(base_folder).eval()(**inputs))
            assert not torch.allclose(tuned, base), f"{cls.__name__}: the adapter changed nothing"
            model.save_pretrained(tmp_path / cls.__name__ / "adapter")
            reloaded = PeftModel.from_pretrained(cls.from_pretrained(base_folder), tmp_path / cls.__name__ / "adapter").eval()
            with torch.no_grad():
                torch.testing.assert_close(_first_tensor(reloaded(**inputs)), tuned, atol=1e-6, rtol=0, msg=cls.__name__)
                merged = reloaded.merge_and_unload()
                assert type(merged) is cls
                if not getattr(config, "tie_word_embeddings", False):
                    # merging into a matrix the output layer shares changes both (PEFT issue 2777, hf_seq.peft_defaults)
                    torch.testing.assert_close(_first_tensor(merged(**inputs)), tuned, atol=1e-5, rtol=0, msg=cls.__name__)


class ModelTesterMixin(_CoreModelTesterMixin, ConventionsTesterMixin):
    """Every shared model check: hf-seq's own (save/load, init, gradients, resize, remote code) and the conventions
    of a native transformers model (return_dict, dtype loading, checkpointing, compile/export, kwargs, pipelines,
    PEFT)."""


__all__ = ["ModelTesterMixin", "GenerationTesterMixin", "ConventionsTesterMixin"]
