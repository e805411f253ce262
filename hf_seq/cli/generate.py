"""`hf-seq generate MODEL PROMPT`: continue a prompt with a causal language model, a model folder or a folder written
by `hf-seq export` (ONNX Runtime or CTranslate2, run through `hf_seq.export.load_runner`)."""

from __future__ import annotations

from .common import CLIError, _emit, add_model_argument, add_parser, is_exported_folder, load

DESCRIPTION = """Continue PROMPT with a causal language model. Greedy unless --do-sample, whatever the model's
generation config says (a run may save `do_sample: true` for its own samples); the model's other generation settings
(e.g. its end-of-sequence token) apply. MODEL may be a folder written by `hf-seq export` (greedy or beam search)."""


def register(subparsers) -> None:
    p = add_parser(subparsers, "generate", "continue a prompt with a language model", DESCRIPTION, run)
    add_model_argument(p)
    p.add_argument("prompt", metavar="PROMPT")
    p.add_argument("--max-new-tokens", type=int, default=50)
    p.add_argument("--do-sample", action="store_true", help="sample (with --temperature, --top-k) instead of greedy")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0, help="0: no top-k filtering")
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)


def generate_kwargs(args) -> dict:
    """generate() keywords of the command line: do_sample is always explicit, so the model's saved default never
    turns the documented greedy decoding into sampling."""
    if args.max_new_tokens < 1 or args.num_beams < 1:
        raise CLIError(f"--max-new-tokens ({args.max_new_tokens}) and --num-beams ({args.num_beams}) must be >= 1")
    kwargs = {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams, "do_sample": args.do_sample}
    if args.do_sample:
        if not args.temperature > 0 or args.top_k < 0:
            raise CLIError(f"--temperature must be > 0 and --top-k >= 0, got {args.temperature} and {args.top_k}")
        kwargs.update(temperature=args.temperature, top_k=args.top_k)
    return kwargs


def run(args) -> int:
    import torch
    from transformers import set_seed

    kwargs = generate_kwargs(args)
    if not args.prompt.strip():
        raise CLIError("PROMPT is empty: give the text to continue")
    if is_exported_folder(args.model):
        return _run_exported(args, kwargs)
    model, tokenizer, _ = load(args.model, "generate", args.revision)
    set_seed(args.seed)
    enc = tokenizer(args.prompt, return_tensors="pt", add_special_tokens=False)
    if enc["input_ids"].shape[1] == 0:
        raise CLIError(f"PROMPT {args.prompt!r} gives no tokens with this model's tokenizer")
    with torch.no_grad():
        out = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], **kwargs)
    _emit(tokenizer.decode(out[0], skip_special_tokens=True).strip())  # word-level decoding starts with a space
    return 0


def _run_exported(args, kwargs: dict) -> int:
    """An exported language model: its runner's own greedy / beam decoding."""
    from ..export import load_runner, read_marker

    if kwargs["do_sample"]:
        raise CLIError(f"{args.model!r} is an exported folder: its runner decodes greedily or with --num-beams; "
                       "sample with the model folder it was exported from")
    try:
        task = read_marker(args.model)["task"]
        if task == "translation":
            raise CLIError(f"{args.model!r} is an exported translation model: use `hf-seq translate`")
        runner = load_runner(args.model)
    except (ValueError, ImportError) as e:
        raise CLIError(f"{args.model}: {e}") from e
    _emit(runner.generate_text(args.prompt, max_new_tokens=kwargs["max_new_tokens"],
                               num_beams=kwargs["num_beams"]).strip())
    return 0
