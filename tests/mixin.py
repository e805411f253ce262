"""hf-seq's own model tester mixins, in the spirit of transformers' ModelTesterMixin / GenerationTesterMixin.

A test class sets `model_tester` (an object with `get_config()`, `prepare_inputs(config)` -> dict with at least
`input_ids` and `attention_mask`), `all_model_classes`, and for generation `generative_model_classes`. Each check is
one small method so a failure names exactly what broke.
"""

import inspect
import json

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


def _first_tensor(output):
    for key in ("logits", "last_hidden_state"):
        if key in output and output[key] is not None:
            return output[key]
    raise AssertionError(f"no logits/last_hidden_state in {list(output.keys())}")


class ModelTesterMixin:
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
            model = self._model(cls, config)
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(float("nan"))
                    p._is_hf_initialized = False
            for module in model.modules():
                model._init_weights(module)
            left = [n for n, p in model.named_parameters() if torch.isnan(p).any()]
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


__all__ = ["ModelTesterMixin", "GenerationTesterMixin"]
